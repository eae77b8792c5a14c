/**
 * What a data plane or monitor needs from the process around it, and what the runtime needs
 * from a watcher. Defined here, below the data planes and health, so that they depend on this
 * contract and not on the runtime (src/runtime/) that wires them together.
 */
import type { Config } from '../config/types.js';
import type { Logger } from '../log/logger.js';
import type { Metrics } from '../observability/metrics.js';
import type { Controller } from './controller.js';

/** What a data plane or monitor needs from the process around it. */
export interface RuntimeContext {
  readonly config: Config;
  readonly controller: Controller;
  readonly logger: Logger;
  readonly metrics: Metrics;
  /**
   * Whether this node may delete conntrack entries that a peer replicates: false while it is
   * the standby or faulted node of an HA pair. conntrackd carries a deletion made there to the
   * active node, where it would cut live tunnels for a view of the servers only this node has
   * (a node whose links are down sees every server down). Absent: always.
   */
  readonly ownsReplicatedFlows?: () => boolean;
}

/** Something with a lifecycle that watches backends (the health checker). */
export interface Watcher {
  start(): void;
  stop(): Promise<void>;
  /** The latest probe per (service, backend), for status. */
  lastProbes?(): ReadonlyMap<string, unknown>;
}
