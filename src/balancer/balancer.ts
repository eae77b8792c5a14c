/**
 * The balancing core's one interface. Every method (Maglev, least connections, weighted round
 * robin) implements it, and one conformance suite (`test/support/balancer-conformance.ts`) runs against each.
 *
 * A `Balancer` is built immutably from the set of backends eligible for *new* clients (up, not
 * draining, not disabled, weight > 0) and swapped atomically when that set changes (Pingora's
 * habit). Mutable per-backend state that must survive a rebuild (open connection counts for
 * least connections) lives in a `ConnectionCounts` shared across builds.
 */
/**
 * The balancing methods. The configuration schema (src/config/schema.ts) spells the same list;
 * it is defined here so that the balancer does not depend on the configuration layer above it,
 * and src/balancer/index.test.ts fails to compile if the two lists differ.
 */
export type BalancingMethod = 'maglev' | 'least-connections' | 'weighted-round-robin';

/** A backend that may receive new clients. `name` is its stable identity. */
export interface Candidate {
  readonly name: string;
  readonly address: string;
  readonly weight: number;
}

/** Open connections (tunnels) per backend name; shared by successive balancers of a service. */
export class ConnectionCounts {
  readonly #counts = new Map<string, number>();
  get(name: string): number {
    return this.#counts.get(name) ?? 0;
  }
  increment(name: string): void {
    this.#counts.set(name, this.get(name) + 1);
  }
  decrement(name: string): void {
    const n = this.get(name) - 1;
    if (n <= 0) this.#counts.delete(name);
    else this.#counts.set(name, n);
  }
  entries(): IterableIterator<[string, number]> {
    return this.#counts.entries();
  }
}

export interface BalancerInput {
  /** Backends eligible for new clients, in any order (implementations must not depend on it). */
  readonly candidates: readonly Candidate[];
  /** Hash seed shared by every balancer node of a farm (and by the kernel data plane). */
  readonly seed: number;
  /** Open connections per backend (least connections reads it). */
  readonly connections: ConnectionCounts;
}

export interface Balancer {
  readonly method: BalancingMethod;
  /** True when the same key always yields the same backend for a given candidate set. */
  readonly isConsistent: boolean;
  /**
   * Chooses a backend for a new client. `key` is the affinity key (IKE initiator SPI, client
   * address bytes, TLS session id...). Methods that are not key-based ignore it. Returns
   * undefined only when there is no candidate. Never throws.
   */
  pick(key: Uint8Array): Candidate | undefined;
}

export type BalancerFactory = (input: BalancerInput) => Balancer;
