/**
 * Weighted least connections: a new client goes to the backend with the lowest load, load
 * being open connections relative to weight. Suited to SSTP, whose tunnels last hours and vary
 * in number per backend more than in rate.
 */
import type { Balancer, BalancerInput, Candidate, ConnectionCounts } from '../balancer.js';
import { isPickable, sortByName } from '../candidate-order.js';

/**
 * Picks the candidate minimising `(connections + 1) / weight` — the load the backend would
 * have *after* taking this client (HAProxy's `leastconn` key). Counting the new client makes
 * weights matter even when every backend is idle: weights {3, 1} with no connections give the
 * first three clients to the heavier backend, not one each.
 *
 * Ties are broken by a rotating start over the name-sorted candidates, so a burst of clients
 * that arrive before their connections are counted spreads over the tied backends instead of
 * piling onto the first name. Deterministic for a given sequence of picks and counts.
 *
 * Loads are compared by cross-multiplication, `(a + 1) · wB < (b + 1) · wA`, which is exact
 * for the integer weights the configuration allows.
 */
export class LeastConnectionsBalancer implements Balancer {
  readonly method = 'least-connections' as const;
  readonly isConsistent = false;

  // Immutable.
  readonly #candidates: readonly Candidate[];
  readonly #connections: ConnectionCounts;
  // Mutable: where the next tie-breaking scan starts.
  #cursor = 0;

  constructor(input: BalancerInput) {
    this.#candidates = sortByName(input.candidates).filter(isPickable);
    this.#connections = input.connections;
  }

  /** `key` is ignored: least connections is not key-based. */
  pick(_key: Uint8Array): Candidate | undefined {
    const count = this.#candidates.length;
    if (count === 0) return undefined;
    let best: Candidate | undefined;
    let bestNext = 0; // best's connections + 1
    for (let k = 0; k < count; k++) {
      const candidate = this.#candidates[(this.#cursor + k) % count] as Candidate;
      const next = this.#connections.get(candidate.name) + 1;
      if (best === undefined || next * best.weight < bestNext * candidate.weight) {
        best = candidate;
        bestNext = next;
      }
    }
    this.#cursor = (this.#cursor + 1) % count;
    return best;
  }
}
