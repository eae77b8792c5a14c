/**
 * Health monitoring: the probe interface (monitor.ts), one implementation per monitor type
 * (checks/), thresholds, and the checker that reports verdicts to the controller.
 */
export type { HealthCheck, Probe, ProbeResult, ProbeTarget } from './monitor.js';
export { Thresholds, type ThresholdStep, type Verdict } from './thresholds.js';
export {
  createServiceProbe,
  createIcmpProbe,
  createIkev2Probe,
  createSstpProbe,
  createTcpProbe,
  type ServiceProbe,
} from './checks/index.js';
export {
  createHealthChecker,
  HealthChecker,
  healthReason,
  type Clock,
  type HealthCheckerOptions,
  type WatchInfo,
} from './health-checker.js';
