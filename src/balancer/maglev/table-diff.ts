/**
 * Slot-level difference between two Maglev tables. The kernel data plane rewrites only the
 * slots that changed (one batched `nft -f`), and moving a client also means deleting its
 * conntrack entries (DESIGN.md §4), so the set must be exact: no slot left out, none added.
 */
import type { Candidate } from '../balancer.js';
import type { MaglevTable } from './maglev.js';

function sameBackend(a: Candidate | undefined, b: Candidate | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  return a.name === b.name && a.address === b.address;
}

/**
 * Lists the slots whose backend differs between `before` and `after`, in ascending order.
 *
 * Slots are compared by the backend they designate (name and address), not by index: indices
 * shift when a backend joins or leaves the name-sorted list. A backend whose address changed
 * counts as changed, since the kernel map stores addresses. With no `before` (first programming)
 * every slot is listed.
 *
 * @throws RangeError when the two tables differ in size (the ruleset's modulus changes too:
 *   a full rewrite, not a diff).
 */
export function diffMaglevTables(before: MaglevTable | undefined, after: MaglevTable): number[] {
  const size = after.slots.length;
  if (before === undefined) return Array.from({ length: size }, (_, slot) => slot);
  if (before.slots.length !== size) {
    throw new RangeError(`cannot diff Maglev tables of sizes ${before.slots.length} and ${size}`);
  }
  // Translate each old index to the index of the same backend in `after` (−1 when it left or
  // changed address), so that slots can then be compared as integers.
  const indexMap = new Int32Array(before.backends.length);
  for (let i = 0; i < before.backends.length; i++) {
    const old = before.backends[i];
    indexMap[i] = after.backends.findIndex((c) => sameBackend(c, old));
  }
  const changed: number[] = [];
  for (let slot = 0; slot < size; slot++) {
    const oldIndex = before.slots[slot] as number;
    const newIndex = after.slots[slot] as number;
    const translated = oldIndex < 0 ? -1 : (indexMap[oldIndex] as number);
    // Unchanged only when the old backend still exists in `after` and still owns the slot, or
    // when the slot was and stays empty.
    const isSame = oldIndex < 0 ? newIndex < 0 : translated >= 0 && translated === newIndex;
    if (!isSame) changed.push(slot);
  }
  return changed;
}
