/**
 * The one canonical order of candidates: by name. Every balancer works on this order, so that
 * the order backends appear in the configuration (or in which health results arrived) never
 * changes a decision — two balancer nodes with the same backend set decide the same way.
 */
import type { Candidate } from './balancer.js';

/**
 * Compares names by UTF-16 code units. Deliberately not `localeCompare`: the order must be the
 * same on every node whatever its locale or ICU version.
 */
export function compareNames(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * Returns a new array of the candidates sorted by name.
 *
 * @throws RangeError when two candidates share a name: a name is a backend's identity, and the
 *   configuration loader already rejects duplicates within a pool, so this is a programming error.
 */
export function sortByName(candidates: readonly Candidate[]): Candidate[] {
  const sorted = [...candidates].sort((a, b) => compareNames(a.name, b.name));
  for (let i = 1; i < sorted.length; i++) {
    if (sorted[i]?.name === sorted[i - 1]?.name) {
      throw new RangeError(`duplicate backend name "${sorted[i]?.name}" among balancer candidates`);
    }
  }
  return sorted;
}

/**
 * True when a candidate can receive clients. The controller only passes weights > 0, but a
 * balancer must not divide by zero or loop forever if it is handed a weight of 0, a negative
 * or a non-finite one: such a candidate is simply never picked.
 */
export function isPickable(candidate: Candidate): boolean {
  return Number.isFinite(candidate.weight) && candidate.weight > 0;
}
