/**
 * The last 15 minutes of each backend, for the dashboard's charts (`GET /api/v1/history`): a
 * ring buffer per backend in memory (no external database), sampled from the data planes'
 * counters and the health checker's last probe. Rates are differences of cumulative counters
 * between two samples (a counter that went backwards — a data plane restarted by a reload —
 * counts as zero for that interval). Also kept here: each backend's total downtime since start,
 * from the controller's transitions, and new data-plane warnings, which go to the timeline.
 */
import type { BackendCounters, DataPlane } from './dataplane-interface.js';
import type { EventLog } from './event-log.js';
import type { Snapshot } from './snapshot.js';
import type { Transition } from './controller.js';

/** 15 minutes at one sample every 5 s. */
export const HISTORY_INTERVAL_MS = 5_000;
export const HISTORY_SAMPLES = 180;

/** One backend's series, oldest first; `t` in ms since the epoch, rates per second. */
export interface BackendSeries {
  readonly t: number[];
  /** Null where no rate is known yet (the first sample of a backend). */
  readonly bytesInPerSec: (number | null)[];
  readonly bytesOutPerSec: (number | null)[];
  readonly packetsInPerSec: (number | null)[];
  readonly packetsOutPerSec: (number | null)[];
  /** Open tunnels (SSTP connections) or tracked flows (IKEv2 relay), where the plane knows. */
  readonly tunnels: (number | null)[];
  readonly probeLatencyMs: (number | null)[];
  readonly up: number[];
}

export interface HistoryDocument {
  readonly intervalMs: number;
  readonly samples: number;
  /** `service/backend` → series. */
  readonly series: Readonly<Record<string, BackendSeries>>;
  /** `service/backend` → milliseconds spent `down` since vpnlb started. */
  readonly downtimeMs: Readonly<Record<string, number>>;
}

interface Previous {
  readonly t: number;
  readonly counters: BackendCounters;
}

export class History {
  readonly #capacity: number;
  readonly #series = new Map<string, BackendSeries>();
  readonly #previous = new Map<string, Previous>();
  readonly #downSince = new Map<string, number>();
  readonly #downtime = new Map<string, number>();
  #warnings = new Set<string>();

  constructor(capacity = HISTORY_SAMPLES) {
    this.#capacity = capacity;
  }

  /** A transition from the controller (downtime bookkeeping). */
  onTransition(t: Transition, nowMs = Date.parse(t.at)): void {
    const key = `${t.service}/${t.backend}`;
    if (t.to === 'down' && !this.#downSince.has(key)) this.#downSince.set(key, nowMs);
    if (t.to !== 'down') {
      const since = this.#downSince.get(key);
      if (since !== undefined)
        this.#downtime.set(key, (this.#downtime.get(key) ?? 0) + Math.max(0, nowMs - since));
      this.#downSince.delete(key);
    }
  }

  /** Takes one sample of every backend. */
  sample(
    snap: Snapshot,
    planes: ReadonlyMap<string, DataPlane>,
    lastProbes: ReadonlyMap<string, unknown>,
    nowMs: number,
    events?: EventLog,
  ): void {
    const seen = new Set<string>();
    const warnings = new Set<string>();
    for (const s of snap.services) {
      const status = planes.get(s.name)?.status();
      for (const w of status?.warnings ?? []) warnings.add(`${s.name}: ${w}`);
      for (const b of s.backends) {
        const key = `${s.name}/${b.name}`;
        seen.add(key);
        const counters = status?.backends[b.name] ?? {};
        const prev = this.#previous.get(key);
        this.#previous.set(key, { t: nowMs, counters });
        const rate = (k: keyof BackendCounters) => {
          if (!prev) return null;
          if (counters[k] === undefined || prev.counters[k] === undefined) return 0;
          const d = counters[k]! - prev.counters[k]!;
          const secs = (nowMs - prev.t) / 1000;
          return d > 0 && secs > 0 ? d / secs : 0;
        };
        const probe = lastProbes.get(key) as { ok?: boolean; latencyMs?: number } | undefined;
        const series = this.#series.get(key) ?? newSeries();
        this.#series.set(key, series);
        push(series.t, nowMs, this.#capacity);
        push(series.bytesInPerSec, rate('bytesIn'), this.#capacity);
        push(series.bytesOutPerSec, rate('bytesOut'), this.#capacity);
        push(series.packetsInPerSec, rate('packetsIn'), this.#capacity);
        push(series.packetsOutPerSec, rate('packetsOut'), this.#capacity);
        push(series.tunnels, counters.connections ?? counters.flows ?? null, this.#capacity);
        push(series.probeLatencyMs, probe?.ok ? (probe.latencyMs ?? null) : null, this.#capacity);
        push(series.up, b.state === 'up' || b.state === 'draining' ? 1 : 0, this.#capacity);
      }
    }
    // Backends and services that left the configuration leave the history.
    for (const key of [...this.#series.keys()]) if (!seen.has(key)) this.#series.delete(key);
    for (const key of [...this.#previous.keys()]) if (!seen.has(key)) this.#previous.delete(key);
    for (const w of warnings)
      if (!this.#warnings.has(w)) events?.record({ kind: 'warning', severity: 'warn', message: w });
    this.#warnings = warnings;
  }

  document(nowMs = Date.now()): HistoryDocument {
    const downtimeMs: Record<string, number> = {};
    for (const key of this.#series.keys()) {
      const since = this.#downSince.get(key);
      downtimeMs[key] =
        (this.#downtime.get(key) ?? 0) + (since !== undefined ? Math.max(0, nowMs - since) : 0);
    }
    return {
      intervalMs: HISTORY_INTERVAL_MS,
      samples: this.#capacity,
      series: Object.fromEntries(this.#series),
      downtimeMs,
    };
  }
}

function newSeries(): BackendSeries {
  return {
    t: [],
    bytesInPerSec: [],
    bytesOutPerSec: [],
    packetsInPerSec: [],
    packetsOutPerSec: [],
    tunnels: [],
    probeLatencyMs: [],
    up: [],
  };
}

function push<T>(list: T[], v: T, capacity: number): void {
  list.push(v);
  if (list.length > capacity) list.splice(0, list.length - capacity);
}
