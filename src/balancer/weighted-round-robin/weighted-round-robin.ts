/**
 * Smooth weighted round robin, nginx's algorithm (ngx_http_upstream_round_robin.c,
 * ngx_http_upstream_get_peer): weights {5, 1, 1} give `a a b a c a a`, interleaving the light
 * backends among the heavy one instead of sending five clients in a row to it.
 */
import type { Balancer, BalancerInput, Candidate } from '../balancer.js';
import { isPickable, sortByName } from '../candidate-order.js';

/**
 * On each pick every candidate's `current` grows by its weight; the candidate with the largest
 * `current` wins (the first in name order on a tie) and loses the total weight. Over any
 * Σweight consecutive picks each candidate is picked exactly `weight` times.
 *
 * nginx's `effective_weight` (lowered on upstream failures) is left out: failures are the
 * health monitors' business here, and a failed backend leaves the candidate set.
 *
 * The cursor restarts when the balancer is rebuilt for a new candidate set.
 */
export class WeightedRoundRobinBalancer implements Balancer {
  readonly method = 'weighted-round-robin' as const;
  readonly isConsistent = false;

  // Immutable.
  readonly #candidates: readonly Candidate[];
  readonly #totalWeight: number;
  // Mutable: nginx's per-peer `current_weight`.
  readonly #current: Float64Array;

  constructor(input: BalancerInput) {
    this.#candidates = sortByName(input.candidates).filter(isPickable);
    this.#totalWeight = this.#candidates.reduce((sum, c) => sum + c.weight, 0);
    this.#current = new Float64Array(this.#candidates.length);
  }

  /** `key` is ignored: round robin is not key-based. */
  pick(_key: Uint8Array): Candidate | undefined {
    let bestIndex = -1;
    for (let i = 0; i < this.#candidates.length; i++) {
      this.#current[i] = (this.#current[i] as number) + (this.#candidates[i] as Candidate).weight;
      if (bestIndex < 0 || (this.#current[i] as number) > (this.#current[bestIndex] as number))
        bestIndex = i;
    }
    if (bestIndex < 0) return undefined;
    this.#current[bestIndex] = (this.#current[bestIndex] as number) - this.#totalWeight;
    return this.#candidates[bestIndex];
  }
}
