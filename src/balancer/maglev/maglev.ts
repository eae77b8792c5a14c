/**
 * Maglev consistent hashing (Eisenbud et al., "Maglev: A Fast and Reliable Software Network
 * Load Balancer", NSDI 2016), weighted.
 *
 * The control plane builds the lookup table once per backend set (§3.4) and swaps it
 * atomically; the kernel data plane receives the same table as an nftables map
 * `slot → backend address` and only looks it up with `jhash <key> mod M seed S` (Katran's split).
 * Userspace looks up the same slot with `slotOf()` (see ../jhash.ts), so both planes, and every
 * balancer node of a farm, send a given client to the same backend without sharing state.
 */
import type { Balancer, BalancerInput, Candidate } from '../balancer.js';
import { isPickable, sortByName } from '../candidate-order.js';
import { jhash, slotOf } from '../jhash.js';
import { MAGLEV_TABLE_SIZE } from './table-size.js';

export { MAGLEV_TABLE_SIZE } from './table-size.js';

/** jhash seed for a backend's `offset` ("offs" in ASCII). Changing it reshuffles every farm. */
export const MAGLEV_OFFSET_SEED = 0x6f666673;
/** jhash seed for a backend's `skip` ("skip" in ASCII); distinct from the offset seed (§3.4). */
export const MAGLEV_SKIP_SEED = 0x736b6970;

const utf8 = new TextEncoder();

/** A backend's permutation of the table: slot j of its preference list is (offset + j·skip) mod M. */
export interface MaglevPermutation {
  readonly offset: number;
  readonly skip: number;
}

/**
 * A built table together with the backend list its slots index into.
 * Immutable by contract: nobody writes into `slots` after `buildMaglevTable` returns.
 */
export interface MaglevTable {
  /** The candidates sorted by name; `slots[s]` is an index into this list. */
  readonly backends: readonly Candidate[];
  /** Slot → index into `backends`, or −1 when no backend is pickable. */
  readonly slots: Int32Array;
}

/**
 * Maglev §3.4: `offset = h1(name) mod M`, `skip = h2(name) mod (M − 1) + 1`.
 *
 * Hashed from the backend's *name*, not its address or its position in the configuration:
 * the name is the backend's stable identity (an address may be renumbered, a list reordered),
 * and a backend's permutation must not change when other backends come and go — that is what
 * keeps disruption to the changed backend's own share. h1 and h2 are jhash with two fixed,
 * distinct seeds, so that offset and skip are independent.
 */
export function maglevPermutation(
  name: string,
  size: number = MAGLEV_TABLE_SIZE,
): MaglevPermutation {
  const bytes = utf8.encode(name);
  return {
    offset: jhash(bytes, MAGLEV_OFFSET_SEED) % size,
    skip: (jhash(bytes, MAGLEV_SKIP_SEED) % (size - 1)) + 1,
  };
}

function isPrime(n: number): boolean {
  if (!Number.isInteger(n) || n < 2) return false;
  for (let d = 2; d * d <= n; d++) if (n % d === 0) return false;
  return true;
}

/**
 * Populates a Maglev lookup table (Maglev §3.4, Pseudocode 1), weighted.
 *
 * Candidates are sorted by name first, so their order in the input never matters. Each round
 * visits the backends in that order; a backend with weight w earns w/maxWeight credit per round
 * and claims its next preferred free slot for each whole credit (at most one per round, since
 * w ≤ maxWeight). With equal weights every backend claims one slot per round: exactly the
 * paper's algorithm. Shares end within one slot of `M · w / Σw` plus rounding of the last
 * round. Candidates with weight ≤ 0 get no slot.
 *
 * Credits are kept as integers scaled by maxWeight (credit += w; claim when credit ≥ maxWeight)
 * so integer weights involve no floating-point rounding.
 *
 * @param candidates the backends, in any order; names must be unique.
 * @param size the table size M; must be prime (§5.3).
 * @returns slot → index into the name-sorted candidate list, −1 when no candidate is pickable.
 * @throws RangeError when `size` is not prime or two candidates share a name.
 */
export function buildMaglevTable(
  candidates: readonly Candidate[],
  size: number = MAGLEV_TABLE_SIZE,
): Int32Array {
  if (!isPrime(size)) throw new RangeError(`Maglev table size must be a prime, got ${size}`);
  const sorted = sortByName(candidates);
  const table = new Int32Array(size).fill(-1);

  const members: number[] = [];
  for (let i = 0; i < sorted.length; i++) if (isPickable(sorted[i] as Candidate)) members.push(i);
  if (members.length === 0) return table;

  const count = members.length;
  const weights = new Float64Array(count);
  const positions = new Float64Array(count); // current slot in each backend's permutation
  const skips = new Float64Array(count);
  const credits = new Float64Array(count);
  let maxWeight = 0;
  for (let m = 0; m < count; m++) {
    const candidate = sorted[members[m] as number] as Candidate;
    const { offset, skip } = maglevPermutation(candidate.name, size);
    weights[m] = candidate.weight;
    positions[m] = offset;
    skips[m] = skip;
    if (candidate.weight > maxWeight) maxWeight = candidate.weight;
  }

  // §3.4: each backend walks its own permutation and takes the first slot not yet taken.
  // Terminates: skip is coprime with the prime M, so a permutation visits every slot.
  let filled = 0;
  for (;;) {
    for (let m = 0; m < count; m++) {
      credits[m] = (credits[m] as number) + (weights[m] as number);
      if ((credits[m] as number) < maxWeight) continue;
      credits[m] = (credits[m] as number) - maxWeight;

      let slot = positions[m] as number;
      const skip = skips[m] as number;
      while ((table[slot] as number) >= 0) {
        slot += skip;
        if (slot >= size) slot -= size;
      }
      table[slot] = members[m] as number;
      slot += skip;
      positions[m] = slot >= size ? slot - size : slot;
      if (++filled === size) return table;
    }
  }
}

/**
 * The Maglev balancer: `pick(key)` is the backend of slot `reciprocal_scale(jhash(key, seed), M)`,
 * the same slot the kernel's `jhash <key> mod M seed <seed>` selects.
 */
export class MaglevBalancer implements Balancer {
  readonly method = 'maglev' as const;
  readonly isConsistent = true;
  /** The farm's hash seed (u32), shared with the kernel ruleset and the other nodes. */
  readonly seed: number;
  readonly table: MaglevTable;

  /**
   * Builds the table now (a few milliseconds for M = 65537); construct once per backend-set
   * change and swap the instance.
   *
   * @throws RangeError on a non-prime `tableSize` or duplicate candidate names.
   */
  constructor(input: BalancerInput, tableSize: number = MAGLEV_TABLE_SIZE) {
    this.seed = input.seed >>> 0;
    this.table = {
      backends: Object.freeze(sortByName(input.candidates)),
      slots: buildMaglevTable(input.candidates, tableSize),
    };
  }

  /** The slot a key hashes to (what the kernel computes); for simulators and the dashboard. */
  slotOf(key: Uint8Array): number {
    return slotOf(key, this.seed, this.table.slots.length);
  }

  /** The backend that owns `slot`, or undefined when the table is empty. */
  backendAt(slot: number): Candidate | undefined {
    const index = this.table.slots[slot];
    return index === undefined || index < 0 ? undefined : this.table.backends[index];
  }

  pick(key: Uint8Array): Candidate | undefined {
    return this.backendAt(this.slotOf(key));
  }
}
