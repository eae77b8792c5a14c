/**
 * The health checker: for every service with a `monitor`, probes each backend every `interval`
 * (shifted by ±`jitter`), feeds the results through rise/fall thresholds (thresholds.ts) and
 * reports each verdict change to the controller, which turns it into a state and a snapshot
 * that every data plane applies (failover). Probes are asynchronous and bounded by `timeout`;
 * nothing here blocks the event loop, and a probe that fails in an unexpected way is a failure
 * result, not an exception.
 *
 * Decisions (docs/operations.md, "Health monitors and failover"):
 * - every backend is probed, disabled and draining ones included, so that when an
 *   administrator enables a server its health is already known and a dead one stays out;
 * - the first probe of each backend runs at a random offset within the first second (or
 *   interval, if shorter), and each later one `interval × (1 ± jitter)` after the previous one
 *   started, so probes to a farm spread out instead of arriving in bursts;
 * - the controller is told only about verdict changes (each call rebuilds a snapshot);
 * - the runtime logs state transitions; this module logs a verdict only when it does not
 *   change the state (a disabled server found dead), so one event makes one log line.
 */
import type { Histogram, Counter } from 'prom-client';
import type { Monitor } from '../config/types.js';
import { REAL_TIMER_CLOCK, type TimerClock } from '../util/clock.js';
import type { RuntimeContext, Watcher } from '../control/runtime-context.js';
import type { ServiceSnapshot } from '../control/snapshot.js';
import type { Probe, ProbeResult, ProbeTarget } from './monitor.js';
import { createServiceProbe, type ServiceProbe } from './checks/index.js';
import { Thresholds, type ThresholdStep } from './thresholds.js';

/** Timers and time, injectable for tests. */
export type Clock = TimerClock;

export interface HealthCheckerOptions {
  /** Builds the probe of a monitor for a service (tests inject fakes). */
  readonly createProbe?: (monitor: Monitor, service: ServiceSnapshot) => ServiceProbe;
  readonly clock?: Clock;
  /** Uniform random numbers in [0, 1). */
  readonly random?: () => number;
  /** Upper bound of the first probe's random offset; default 1000 ms (or the interval, if shorter). */
  readonly firstProbeWithinMs?: number;
}

/** One (service, backend) pair under watch. */
interface Watch {
  readonly service: string;
  readonly backend: string;
  readonly monitorName: string;
  readonly monitor: Monitor;
  readonly target: ProbeTarget;
  readonly probe: Probe;
  readonly thresholds: Thresholds;
  timer: unknown;
  inFlight: Promise<void> | undefined;
  probes: number;
  last: LastProbe | undefined;
}

/** The latest probe of one backend, as shown in `/api/v1/status`. */
export interface LastProbe {
  readonly ok: boolean;
  readonly detail: string;
  readonly latencyMs: number;
  /** ISO 8601 time the probe finished. */
  readonly at: string;
  /** Consecutive results like this one (what rise / fall count). */
  readonly streak: number;
}

/** The probe schedule of one backend, for status and tests. */
export interface WatchInfo {
  readonly service: string;
  readonly backend: string;
  readonly monitor: string;
  readonly target: ProbeTarget;
  readonly verdict: 'unknown' | 'up' | 'down';
  readonly probes: number;
  readonly last?: LastProbe;
}

export class HealthChecker implements Watcher {
  readonly #ctx: RuntimeContext;
  readonly #clock: Clock;
  readonly #random: () => number;
  readonly #firstWithin: number;
  readonly #createProbe: (monitor: Monitor, service: ServiceSnapshot) => ServiceProbe;
  readonly #watches: Watch[] = [];
  readonly #abort = new AbortController();
  readonly #probesTotal: Counter<'service' | 'backend' | 'monitor' | 'result'>;
  readonly #duration: Histogram<'service' | 'backend' | 'monitor'>;
  #running = false;

  constructor(ctx: RuntimeContext, options: HealthCheckerOptions = {}) {
    this.#ctx = ctx;
    this.#clock = options.clock ?? REAL_TIMER_CLOCK;
    this.#random = options.random ?? Math.random;
    this.#firstWithin = options.firstProbeWithinMs ?? 1_000;
    this.#createProbe =
      options.createProbe ??
      ((m, s) =>
        createServiceProbe(
          m,
          s.kind === 'ikev2'
            ? { kind: 'ikev2', service: s.service }
            : { kind: 'sstp', service: s.service },
        ));
    this.#probesTotal = ctx.metrics.counter({
      name: 'vpnlb_health_probes_total',
      help: 'Health probes by service, backend, monitor and result (success, failure).',
      labelNames: ['service', 'backend', 'monitor', 'result'],
    });
    this.#duration = ctx.metrics.histogram({
      name: 'vpnlb_health_probe_duration_seconds',
      help: 'Time from sending a health probe to its verdict (round-trip time for successes).',
      labelNames: ['service', 'backend', 'monitor'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    });
  }

  /** Creates the watches and schedules every backend's first probe. */
  start(): void {
    if (this.#running) return;
    this.#running = true;
    const log = this.#ctx.logger.child({ component: 'health' });
    for (const s of this.#ctx.controller.snapshot().services) {
      const monitorName = s.service.monitor;
      if (monitorName === undefined) continue;
      const monitor = this.#ctx.config.monitors[monitorName];
      if (!monitor) continue; // the configuration check rejects unknown monitors
      let sp: ServiceProbe;
      try {
        sp = this.#createProbe(monitor, s);
      } catch (err) {
        // E.g. an unreadable `ca` file: a monitor that cannot run cannot vouch for anyone.
        const reason = `${monitor.type} monitor "${monitorName}" cannot run: ${(err as Error).message}`;
        log.error({ service: s.name, monitor: monitorName, err }, `${s.name}: ${reason}`);
        for (const b of s.backends) this.#ctx.controller.setHealth(s.name, b.name, 'down', reason);
        continue;
      }
      const first = Math.min(this.#firstWithin, monitor.interval);
      for (const b of s.backends) {
        const watch: Watch = {
          service: s.name,
          backend: b.name,
          monitorName,
          monitor,
          target: {
            address: b.address,
            family: b.family,
            ...(sp.port !== undefined ? { port: sp.port } : {}),
          },
          probe: sp.probe,
          // The controller's verdict carries over a configuration reload (unknown at start).
          thresholds: new Thresholds(monitor.rise, monitor.fall, b.health),
          timer: undefined,
          inFlight: undefined,
          probes: 0,
          last: undefined,
        };
        this.#watches.push(watch);
        this.#schedule(watch, this.#random() * first);
      }
      log.info(
        {
          service: s.name,
          monitor: monitorName,
          type: monitor.type,
          port: sp.port,
          interval: monitor.interval,
          timeout: monitor.timeout,
          rise: monitor.rise,
          fall: monitor.fall,
        },
        `${s.name}: ${monitor.type} monitor "${monitorName}" on ${s.backends.length} backend(s)${sp.port !== undefined ? ` port ${sp.port}` : ''}, every ${monitor.interval} ms`,
      );
    }
  }

  /** Cancels timers, aborts probes in flight and waits for them to settle. */
  async stop(): Promise<void> {
    this.#running = false;
    this.#abort.abort();
    for (const w of this.#watches) {
      if (w.timer !== undefined) this.#clock.clearTimeout(w.timer);
      w.timer = undefined;
    }
    await Promise.all(this.#watches.map((w) => w.inFlight));
  }

  /** The latest probe of each watched backend, keyed `service/backend` (status document). */
  lastProbes(): ReadonlyMap<string, LastProbe & { monitor: string }> {
    const out = new Map<string, LastProbe & { monitor: string }>();
    for (const w of this.#watches)
      if (w.last) out.set(`${w.service}/${w.backend}`, { monitor: w.monitorName, ...w.last });
    return out;
  }

  /** What is being watched, with each backend's current verdict. */
  watches(): WatchInfo[] {
    return this.#watches.map((w) => ({
      service: w.service,
      backend: w.backend,
      monitor: w.monitorName,
      target: w.target,
      verdict: w.thresholds.verdict,
      probes: w.probes,
      ...(w.last ? { last: w.last } : {}),
    }));
  }

  #schedule(w: Watch, delayMs: number): void {
    if (!this.#running) return;
    w.timer = this.#clock.setTimeout(
      () => {
        w.timer = undefined;
        w.inFlight = this.#runOnce(w).finally(() => {
          w.inFlight = undefined;
        });
      },
      Math.max(0, delayMs),
    );
  }

  /** The delay between two probe starts: interval × (1 ± jitter), uniformly. */
  nextDelay(monitor: Monitor): number {
    return monitor.interval * (1 + monitor.jitter * (2 * this.#random() - 1));
  }

  async #runOnce(w: Watch): Promise<void> {
    const started = this.#clock.now();
    const delay = this.nextDelay(w.monitor);
    let result: ProbeResult;
    try {
      result = await w.probe.probe(w.target, this.#abort.signal, w.monitor.timeout);
    } catch (err) {
      // The probe contract says this cannot happen; if it does, it is a failure, not a crash.
      result = {
        ok: false,
        detail: `probe error: ${(err as Error).message}`,
        latencyMs: this.#clock.now() - started,
      };
    }
    if (!this.#running) return; // stopped while in flight: an aborted probe is not a verdict
    w.probes++;
    const labels = { service: w.service, backend: w.backend, monitor: w.monitorName };
    this.#probesTotal.inc({ ...labels, result: result.ok ? 'success' : 'failure' });
    this.#duration.observe(labels, result.latencyMs / 1000);
    const step = w.thresholds.record(result.ok);
    w.last = {
      ok: result.ok,
      detail: result.detail,
      latencyMs: Math.round(result.latencyMs * 100) / 100,
      at: new Date().toISOString(),
      streak: step.streak,
    };
    this.#ctx.logger.debug(
      {
        component: 'health',
        ...labels,
        ok: result.ok,
        detail: result.detail,
        latencyMs: result.latencyMs,
        streak: step.streak,
        verdict: step.verdict,
      },
      `${w.service}/${w.backend}: probe ${result.ok ? 'ok' : 'failed'}: ${result.detail}`,
    );
    if (step.changed) this.#report(w, step, result);
    this.#schedule(w, delay - (this.#clock.now() - started));
  }

  #report(w: Watch, step: ThresholdStep, result: ProbeResult): void {
    const verdict = step.verdict === 'up' ? 'up' : 'down';
    const reason = healthReason(w.monitor.type, result, step);
    const stateOf = () =>
      this.#ctx.controller.service(w.service)?.backends.find((b) => b.name === w.backend)?.state;
    const before = stateOf();
    this.#ctx.controller.setHealth(w.service, w.backend, verdict, reason);
    const after = stateOf();
    if (before === after) {
      // No state transition, so the runtime logs nothing: say it here (e.g. a disabled server
      // found dead, or the first verdict confirming an up server).
      this.#ctx.logger[verdict === 'down' ? 'warn' : 'info'](
        {
          component: 'health',
          service: w.service,
          backend: w.backend,
          monitor: w.monitorName,
          health: verdict,
          state: after,
          reason,
        },
        `${w.service}/${w.backend}: health ${verdict} (${reason}); state stays ${String(after)}`,
      );
    }
  }
}

/** The reason shown in status and logs, e.g. `ikev2 probe: no answer within 2000 ms (3 consecutive failures)`. */
export function healthReason(type: string, result: ProbeResult, step: ThresholdStep): string {
  const detail = result.detail.replace(/^\w+ probe: /, '');
  const plural = step.streak === 1 ? '' : result.ok ? 'es' : 's';
  const count =
    step.from === 'unknown'
      ? 'first probe'
      : `${step.streak} consecutive ${result.ok ? 'success' : 'failure'}${plural}`;
  return `${type} probe: ${detail} (${count})`;
}

/** Creates the health checker the runtime starts (see src/runtime/runtime.ts). */
export function createHealthChecker(
  ctx: RuntimeContext,
  options: HealthCheckerOptions = {},
): HealthChecker {
  return new HealthChecker(ctx, options);
}
