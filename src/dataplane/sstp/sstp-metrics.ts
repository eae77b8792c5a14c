/**
 * The SSTP proxy's declared metrics (one list, as Envoy declares a component's stats) and a
 * rate-limited logger for per-connection drops, so that a flood of bad clients cannot flood
 * the log: the first few of each reason per window are logged, the rest summed into one line.
 */
import type { Metrics } from '../../observability/metrics.js';
import type { Logger } from '../../log/logger.js';

/**
 * Why the proxy refused a client connection before it became a tunnel (the `reason` label of
 * `vpnlb_sstp_rejected_total`). `tls-<code>` are the TLS hello reader's codes.
 */
export type SstpRejectReason =
  | `tls-${string}`
  | 'handshake-timeout'
  | 'service-limit'
  | 'source-limit'
  | 'source-rate'
  | 'hello-memory'
  | 'no-backend'
  | 'backend-connect-failed'
  | 'backend-no-answer'
  | 'certificate-mismatch'
  | 'tls-handshake-failed'
  | 'client-closed';

/** Why the proxy closed an established tunnel (the `reason` label of `vpnlb_sstp_closed_total`). */
export type SstpCloseReason =
  | 'idle-timeout'
  | 'drain-timeout'
  | 'backend-down'
  | 'backend-disabled'
  | 'backend-removed'
  | 'stopped'
  /** The splice path refused a tunnel of the native front (no Node socket to fall back on). */
  | 'splice-refused'
  /** Offload, re-encryption: the client sent a record TLS refused (an alert went back). */
  | 'tls-error';

export function sstpMetrics(metrics: Metrics) {
  return {
    accepted: metrics.counter({
      name: 'vpnlb_sstp_connections_total',
      help: 'SSTP connections forwarded to a backend, by service, backend and how the backend was chosen.',
      labelNames: ['service', 'backend', 'via'],
    }),
    rejected: metrics.counter({
      name: 'vpnlb_sstp_rejected_total',
      help: 'SSTP client connections refused before reaching a backend, by service and reason.',
      labelNames: ['service', 'reason'],
    }),
    closed: metrics.counter({
      name: 'vpnlb_sstp_closed_total',
      help: 'Established SSTP tunnels closed by vpnlb (idle timeout, drain deadline, backend down...), by service, backend and reason.',
      labelNames: ['service', 'backend', 'reason'],
    }),
    open: metrics.gauge({
      name: 'vpnlb_sstp_open_connections',
      help: 'Open SSTP tunnels per service and backend.',
      labelNames: ['service', 'backend'],
    }),
    bytes: metrics.counter({
      name: 'vpnlb_sstp_bytes_total',
      help: 'Octets relayed per service, backend and direction (to-backend, to-client).',
      labelNames: ['service', 'backend', 'direction'],
    }),
    persistence: metrics.counter({
      name: 'vpnlb_sstp_persistence_total',
      help: "Persistence lookups for new SSTP connections: kind (tls-session, source-ip) and result (hit, ineligible, full; unlearned: a ServerHello not complete in the server's first segment, native front).",
      labelNames: ['service', 'kind', 'result'],
    }),
    learned: metrics.counter({
      name: 'vpnlb_sstp_sessions_learned_total',
      help: 'TLS session ids learned from ServerHellos (passthrough), by service and backend.',
      labelNames: ['service', 'backend'],
    }),
    spliced: metrics.gauge({
      name: 'vpnlb_sstp_spliced_tunnels',
      help: 'Established SSTP passthrough tunnels relayed by the native splice path (the rest are Node pipes), by service.',
      labelNames: ['service'],
    }),
    helloBytes: metrics.gauge({
      name: 'vpnlb_sstp_hello_bytes_held',
      help: 'Octets held for ClientHellos not yet complete beyond the small allowance per connection (the budget is 32 MiB per service), by service.',
      labelNames: ['service'],
    }),
    backendFailures: metrics.counter({
      name: 'vpnlb_sstp_backend_failures_total',
      help: 'Backend-side failures of SSTP connections (connect refused/timeout, no answer, certificate mismatch), by service, backend and reason.',
      labelNames: ['service', 'backend', 'reason'],
    }),
  };
}

export type SstpMetrics = ReturnType<typeof sstpMetrics>;

/** Logs at most `perWindow` lines per reason per `windowMs`; reports the suppressed count. */
export class RateLimitedLog {
  readonly #logger: Logger;
  readonly #perWindow: number;
  readonly #windowMs: number;
  readonly #windows = new Map<string, { start: number; logged: number; suppressed: number }>();

  constructor(logger: Logger, options: { perWindow?: number; windowMs?: number } = {}) {
    this.#logger = logger;
    this.#perWindow = options.perWindow ?? 10;
    this.#windowMs = options.windowMs ?? 10_000;
  }

  warn(reason: string, fields: Record<string, unknown>, message: string): void {
    const now = Date.now();
    let w = this.#windows.get(reason);
    if (!w || now - w.start >= this.#windowMs) {
      if (w && w.suppressed > 0) {
        this.#logger.warn(
          { ...fields, reason, suppressed: w.suppressed },
          `${w.suppressed} more "${reason}" events were not logged in the last ${Math.round((now - w.start) / 1000)} s`,
        );
      }
      w = { start: now, logged: 0, suppressed: 0 };
      this.#windows.set(reason, w);
    }
    if (w.logged < this.#perWindow) {
      w.logged++;
      this.#logger.warn({ ...fields, reason }, message);
    } else {
      w.suppressed++;
    }
  }
}
