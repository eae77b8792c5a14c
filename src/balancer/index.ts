/**
 * The balancing core's entry point: `createBalancer(method, input)` and the public API of the
 * implementations, so other layers import from one place.
 */
import type { Balancer, BalancerFactory, BalancerInput, BalancingMethod } from './balancer.js';
import { LeastConnectionsBalancer } from './least-connections/least-connections.js';
import { MaglevBalancer } from './maglev/maglev.js';
import { WeightedRoundRobinBalancer } from './weighted-round-robin/weighted-round-robin.js';

export type {
  Balancer,
  BalancerFactory,
  BalancerInput,
  BalancingMethod,
  Candidate,
} from './balancer.js';
export { ConnectionCounts } from './balancer.js';
export { type AffinityMode, IKE_SPI_LENGTH, ikeSpiKey, sourceIpKey } from './affinity.js';
export { jhash, reciprocalScale, slotOf } from './jhash.js';
export {
  MAGLEV_TABLE_SIZE,
  type MaglevTable,
  MaglevBalancer,
  buildMaglevTable,
  maglevPermutation,
} from './maglev/maglev.js';
export { diffMaglevTables } from './maglev/table-diff.js';
export { LeastConnectionsBalancer } from './least-connections/least-connections.js';
export { WeightedRoundRobinBalancer } from './weighted-round-robin/weighted-round-robin.js';

/** One factory per configured method; `satisfies` makes a new method a compile error until registered. */
export const BALANCER_FACTORIES = Object.freeze({
  maglev: (input) => new MaglevBalancer(input),
  'least-connections': (input) => new LeastConnectionsBalancer(input),
  'weighted-round-robin': (input) => new WeightedRoundRobinBalancer(input),
} satisfies Record<BalancingMethod, BalancerFactory>);

/**
 * Builds the balancer for `method` from an immutable candidate set. Build a new one whenever
 * the set changes and swap it in; the old one stays valid for in-flight decisions.
 *
 * @throws RangeError when `method` is not a known method (only possible from untyped input)
 *   or two candidates share a name.
 */
export function createBalancer(method: BalancingMethod, input: BalancerInput): Balancer {
  const factory: BalancerFactory | undefined = Object.hasOwn(BALANCER_FACTORIES, method)
    ? BALANCER_FACTORIES[method]
    : undefined;
  if (factory === undefined) throw new RangeError(`unknown balancing method "${String(method)}"`);
  return factory(input);
}
