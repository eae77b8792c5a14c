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
}

/** Something with a lifecycle that watches backends (the health checker). */
export interface Watcher {
  start(): void;
  stop(): Promise<void>;
  /** The latest probe per (service, backend), for status. */
  lastProbes?(): ReadonlyMap<string, unknown>;
}
