/**
 * The Maglev lookup table size, in its own module so that the hash (`jhash.ts`) and the table
 * builder (`maglev.ts`) can both use it without importing each other.
 */

/**
 * Maglev §5.3: the table size M must be prime (so that every `skip` in [1, M − 1] is coprime
 * with M and each backend's permutation visits every slot), and much larger than the number of
 * backends (so that shares differ by at most one slot in M). 65537 is the prime the paper
 * uses; the kernel ruleset hashes with `mod 65537` into a map of the same size (DESIGN.md §4).
 */
export const MAGLEV_TABLE_SIZE = 65537;
