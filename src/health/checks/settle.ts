/**
 * The one place that turns a callback-style network exchange into a `ProbeResult` that honours
 * the probe contract (monitor.ts): exactly one result, a deadline, prompt abort, cleanup on every
 * path, and no exception escaping. Each check supplies only its protocol logic.
 */
import { isIP } from 'node:net';
import { performance } from 'node:perf_hooks';
import type { ProbeResult, ProbeTarget } from '../monitor.js';

/** Called by a check to finish; later calls are ignored. `latencyMs` overrides the measured time. */
export type Finish = (ok: boolean, detail: string, latencyMs?: number) => void;

/**
 * Runs `start(finish)`; resolves with the first `finish` call, or with a failure when `timeoutMs`
 * passes (`timeoutDetail()` explains what was or was not seen) or `signal` aborts. `start`
 * returns a cleanup function (close the socket, kill the child) that runs exactly once.
 *
 * `options.clockStartsAt: 'ready'`: the deadline runs from `start`'s call of `ready()` instead
 * of from the call — for a probe that runs a child process, whose start on a loaded host is the
 * balancer's own delay, not the target's silence. The probe must call `ready()` or `finish`.
 */
export function settleProbe(
  signal: AbortSignal,
  timeoutMs: number,
  start: (finish: Finish, ready: () => void) => (() => void) | undefined,
  timeoutDetail: () => string = () => `no answer within ${timeoutMs} ms`,
  options: { clockStartsAt?: 'call' | 'ready' } = {},
): Promise<ProbeResult> {
  const started = performance.now();
  return new Promise<ProbeResult>((resolve) => {
    let done = false;
    let cleanup: (() => void) | undefined;
    let timer: NodeJS.Timeout | undefined;
    const onAbort = () => finish(false, 'probe aborted');
    const finish: Finish = (ok, detail, latencyMs) => {
      if (done) return;
      done = true;
      if (timer) clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
      try {
        cleanup?.();
      } catch {
        /* closing an already-closed socket: nothing left to release */
      }
      resolve({
        ok,
        detail,
        latencyMs: latencyMs ?? Math.round((performance.now() - started) * 1000) / 1000,
      });
    };
    if (signal.aborted) {
      finish(false, 'probe aborted');
      return;
    }
    if (!Number.isFinite(timeoutMs) || timeoutMs <= 0) {
      finish(false, `invalid timeout ${timeoutMs}`);
      return;
    }
    signal.addEventListener('abort', onAbort, { once: true });
    const arm = () => {
      if (!done && timer === undefined)
        timer = setTimeout(() => finish(false, timeoutDetail()), timeoutMs);
    };
    if (options.clockStartsAt !== 'ready') arm();
    try {
      cleanup = start(finish, arm);
      // A check that finished synchronously already ran the (then undefined) cleanup.
      if (done) cleanup?.();
    } catch (err) {
      finish(false, `probe failed to start: ${(err as Error).message}`);
    }
  });
}

/** `node:net`-style error → short text (`ECONNREFUSED (connection refused)`). */
export function describeSocketError(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  const hints: Record<string, string> = {
    ECONNREFUSED: 'connection refused: nothing listens on the port',
    ECONNRESET: 'connection reset by the server',
    EHOSTUNREACH: 'host unreachable',
    ENETUNREACH: 'network unreachable',
    EADDRNOTAVAIL: 'address not available',
  };
  const hint = e?.code ? hints[e.code] : undefined;
  if (e?.code) return hint ? `${e.code} (${hint})` : `${e.code}: ${e.message}`;
  return String(e?.message ?? err);
}

/** A usable TCP/UDP destination port (1–65535). */
export function isValidPort(port: number | undefined): port is number {
  return port !== undefined && Number.isInteger(port) && port >= 1 && port <= 65535;
}

/**
 * Why a target cannot be probed, or undefined. Probes take IP addresses only and never resolve
 * names: a health check must not depend on (or send traffic to) a DNS server.
 */
export function targetProblem(target: ProbeTarget, needsPort: boolean): string | undefined {
  const family = isIP(target.address);
  if (family === 0) return `"${target.address}" is not an IP address`;
  if (family !== target.family) return `${target.address} is not an IPv${target.family} address`;
  if (needsPort && !isValidPort(target.port))
    return `no valid port configured (${String(target.port)})`;
  return undefined;
}
