/**
 * The data-plane interface. Each service runs on one data plane: the kernel (nftables) for
 * IKEv2 in transparent mode, the userspace UDP relay for IKEv2 where the kernel cannot be used,
 * the userspace TCP/TLS proxy for SSTP. The controller publishes snapshots; the runtime hands
 * each service's snapshot to its data plane. Data planes never change backend state themselves:
 * they report (counters, warnings, safety errors through the controller).
 */
import type { ServiceSnapshot } from './snapshot.js';

/** Traffic counters per backend, as far as a data plane can tell. */
export interface BackendCounters {
  /** Packets and bytes forwarded towards the backend (client → server). */
  readonly packetsIn?: number;
  readonly bytesIn?: number;
  /** Packets and bytes from the backend back to clients. */
  readonly packetsOut?: number;
  readonly bytesOut?: number;
  /** Open connections / tracked flows / clients currently on the backend. */
  readonly connections?: number;
  readonly flows?: number;
}

export interface DataPlaneStatus {
  /** `kernel`, `userspace-relay`, `sstp-proxy`... */
  readonly dataplane: string;
  /** Listening addresses, e.g. `udp 198.19.0.1:500`. */
  readonly listeners: readonly string[];
  readonly backends: Readonly<Record<string, BackendCounters>>;
  /** Degraded conditions worth an administrator's attention (also logged and counted). */
  readonly warnings: readonly string[];
}

export interface DataPlane {
  readonly serviceName: string;
  /** Binds listeners / programs the kernel with the first snapshot. */
  start(snapshot: ServiceSnapshot): Promise<void>;
  /** Applies a new snapshot (backend set or states changed). Never throws for one bad backend. */
  apply(snapshot: ServiceSnapshot): Promise<void>;
  /**
   * Stops serving. `keepState` (kernel plane) leaves the kernel programmed so that a restart
   * of the control plane is hitless; the default removes everything this data plane created.
   * `failedStart`: the process is giving up its start-up; kernel state this process did not
   * create (a table adopted from the previous process, or one it could not even read) stays,
   * with the tunnels it carries, for the next start to adopt.
   */
  stop(options?: { keepState?: boolean; failedStart?: boolean }): Promise<void>;
  status(): DataPlaneStatus;
}
