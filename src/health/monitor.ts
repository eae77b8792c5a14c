/**
 * The health-check interface. A `Probe` answers one question about one backend — "does the
 * service answer right now?" — and nothing else: thresholds, scheduling and state live in
 * health-checker.ts. Each monitor type (`icmp`, `ikev2`, `sstp`, `tcp`) is one small
 * implementation under checks/, and every implementation passes the same conformance suite
 * (test/support/probe-conformance.ts).
 *
 * Contract, checked by the suite:
 * - `probe` never throws and never rejects: every failure (refused, timeout, garbage answer,
 *   abort, missing privilege) is a result with `ok: false` and a `detail` an administrator can
 *   act on;
 * - it settles no later than `timeoutMs` (plus scheduling noise) and promptly after `signal`
 *   aborts, releasing its socket / child process either way;
 * - it never blocks the event loop (all I/O is asynchronous).
 */
import type { MonitorType } from '../config/types.js';

/** What a probe is aimed at: a backend's address and, where the monitor needs one, a port. */
export interface ProbeTarget {
  readonly address: string;
  readonly family: 4 | 6;
  /** UDP or TCP port; ignored by `icmp`, required by the others. */
  readonly port?: number;
}

/** The outcome of one probe. */
export interface ProbeResult {
  /** True when the service answered as a working one must. */
  readonly ok: boolean;
  /** What was seen, in words (e.g. `IKE_SA_INIT answered with NO_PROPOSAL_CHOSEN`, `no answer within 2000 ms`). */
  readonly detail: string;
  /** Time from sending to the verdict, in milliseconds (round-trip time for successes). */
  readonly latencyMs: number;
}

/** One monitor implementation. Stateless between calls: concurrent probes are independent. */
export interface Probe {
  readonly type: MonitorType;
  /** Probes `target` once; resolves (never rejects) within `timeoutMs` or soon after `signal` aborts. */
  probe(target: ProbeTarget, signal: AbortSignal, timeoutMs: number): Promise<ProbeResult>;
}

/** The name the issue and the docs use for the same thing. */
export type HealthCheck = Probe;
