/**
 * The controller: the one place where backend state changes. Monitors report health, the admin
 * API reports operator actions, data planes report safety errors (certificate mismatch); the
 * controller computes each backend's effective state, builds a new immutable snapshot and
 * publishes it to every subscriber (data planes, status API, metrics) in one step.
 *
 * Slow start (`slowStart`, per pool or service): a backend that comes back up (from down or
 * disabled) enters with a fraction of its weight, raised in `SLOW_START_STEPS` equal steps
 * over the duration, one new snapshot per step. Every data plane follows from the snapshot
 * alone: least connections and round robin see a smaller weight (a recovered server under least
 * connections would otherwise take every new client until it caught up: the thundering herd
 * that HAProxy's `slowstart` and F5's slow ramp time exist for), and the Maglev table gives the
 * backend that fraction of its slots, so the kernel plane hands its slots over in steps instead
 * of one map rewrite. Several balancer nodes may be a step apart during a ramp: they disagree
 * only on new clients of the ramping backend's slots, and established flows are untouched.
 */
import { EventEmitter } from 'node:events';
import { ConnectionCounts, type Candidate } from '../balancer/balancer.js';
import { createBalancer } from '../balancer/index.js';
import type { Config, Ikev2Service, SstpService } from '../config/types.js';
import { VpnlbError } from '../errors.js';
import type {
  AdminState,
  BackendState,
  BackendStatus,
  Health,
  ServiceSnapshot,
  Snapshot,
} from './snapshot.js';

/** One state transition, as logged and counted. */
export interface Transition {
  readonly service: string;
  readonly backend: string;
  readonly from: BackendState;
  readonly to: BackendState;
  readonly reason: string;
  readonly at: string;
}

/** Weight steps of a slow start (one snapshot each; the kernel plane rewrites its map each time). */
export const SLOW_START_STEPS = 10;

/** The fraction of its weight a backend has `elapsed` ms into a slow start of `duration` ms. */
export function slowStartShare(elapsed: number, duration: number): number {
  if (duration <= 0 || elapsed >= duration) return 1;
  const step = Math.floor((Math.max(0, elapsed) * SLOW_START_STEPS) / duration) + 1;
  return Math.min(1, step / SLOW_START_STEPS);
}

interface BackendRecord {
  readonly name: string;
  readonly pool: string;
  readonly address: string;
  readonly family: 4 | 6;
  readonly weight: number;
  readonly maxConnections: number;
  health: Health;
  healthReason: string;
  error: string | undefined;
  state: BackendState;
  reason: string;
  since: string;
  /** When the backend entered slow start (epoch ms); undefined when not ramping. */
  rampFrom: number | undefined;
}

interface ServiceRecord {
  readonly kind: 'ikev2' | 'sstp';
  readonly service: Ikev2Service | SstpService;
  readonly backends: BackendRecord[];
  readonly connections: ConnectionCounts;
}

export interface ControllerEvents {
  snapshot: [Snapshot];
  transition: [Transition];
}

export class Controller extends EventEmitter<ControllerEvents> {
  #config: Config;
  #services: ServiceRecord[];
  /** Admin state per backend key `pool/name`; shared by every service using the pool. */
  readonly #admin = new Map<string, AdminState>();
  readonly #now: () => Date;
  #snapshot: Snapshot;
  #version = 0;
  /** The next slow-start step (a snapshot rebuild), while any backend ramps. */
  #rampTimer: NodeJS.Timeout | undefined;

  constructor(config: Config, options: { now?: () => Date } = {}) {
    super();
    this.#config = config;
    this.#now = options.now ?? (() => new Date());
    this.#services = this.#records(config, undefined);
    const at = this.#now().toISOString();
    for (const s of this.#services) for (const b of s.backends) this.#recompute(s, b, at, false);
    this.#snapshot = this.#build();
  }

  /** The configuration in force (replaced by `reconfigure`). */
  get config(): Config {
    return this.#config;
  }

  /**
   * A configuration reload: services and backends are matched by name (a backend also by its
   * address). What matches keeps its health, state, "since", error, connection counts and the
   * operator's drain/disable — unless the file changed that backend's `enabled`, which then
   * wins. New backends start as at process start; a service whose monitor changed is judged
   * afresh. Publishes one snapshot.
   */
  reconfigure(config: Config): void {
    const previous = this.#config;
    this.#config = config;
    this.#services = this.#records(config, { previous, services: this.#services });
    const at = this.#now().toISOString();
    for (const s of this.#services) for (const b of s.backends) this.#recompute(s, b, at, true);
    this.#snapshot = this.#build();
    this.emit('snapshot', this.#snapshot);
  }

  #records(
    config: Config,
    old: { previous: Config; services: readonly ServiceRecord[] } | undefined,
  ): ServiceRecord[] {
    const at = this.#now().toISOString();
    const services: ServiceRecord[] = [];
    const admin = new Map<string, AdminState>();
    const add = (kind: 'ikev2' | 'sstp', service: Ikev2Service | SstpService) => {
      const pool = config.pools[service.pool];
      if (!pool) throw new Error(`service ${service.name}: unknown pool ${service.pool}`);
      const hasMonitor = service.monitor !== undefined;
      const before = old?.services.find((x) => x.kind === kind && x.service.name === service.name);
      const sameMonitor =
        before !== undefined &&
        before.service.monitor === service.monitor &&
        sameJson(
          old!.previous.monitors[service.monitor ?? ''],
          config.monitors[service.monitor ?? ''],
        );
      services.push({
        kind,
        service,
        connections: before?.connections ?? new ConnectionCounts(),
        backends: pool.backends.map((b): BackendRecord => {
          const key = `${pool.name}/${b.name}`;
          const prevBackend = old?.previous.pools[pool.name]?.backends.find(
            (x) => x.name === b.name,
          );
          const kept =
            prevBackend?.address === b.address
              ? before?.backends.find((x) => x.name === b.name && x.pool === pool.name)
              : undefined;
          const fromFile: AdminState = b.enabled ? 'enabled' : 'disabled';
          admin.set(
            key,
            prevBackend && prevBackend.enabled === b.enabled && this.#admin.has(key)
              ? this.#admin.get(key)!
              : fromFile,
          );
          const fresh = {
            // Without a monitor a backend is assumed up; with one it is up until proven down,
            // and the first probe result decides at once (see health/health-checker.ts).
            health: (hasMonitor ? 'unknown' : 'up') as Health,
            healthReason: hasMonitor ? 'not yet probed' : 'no monitor configured',
          };
          const health =
            kept && sameMonitor ? { health: kept.health, healthReason: kept.healthReason } : fresh;
          return {
            name: b.name,
            pool: pool.name,
            address: b.address,
            family: b.family,
            weight: b.weight,
            maxConnections: b.maxConnections,
            ...health,
            error: kept?.error,
            state: kept?.state ?? 'up',
            reason: kept?.reason ?? '',
            since: kept?.since ?? at,
            // A server added by a reload enters through slow start like one coming back up; a
            // kept one keeps its ramp.
            rampFrom: kept
              ? kept.rampFrom
              : old !== undefined && service.slowStart > 0
                ? Date.parse(at)
                : undefined,
          };
        }),
      });
    };
    for (const s of config.services.ikev2) add('ikev2', s);
    for (const s of config.services.sstp) add('sstp', s);
    this.#admin.clear();
    for (const [k, v] of admin) this.#admin.set(k, v);
    return services;
  }

  /** Publishes the next slow-start step (the step timer calls it; tests with an injected clock too). */
  refreshSlowStart(): void {
    this.#rampTimer = undefined;
    if (this.#services.some((s) => s.backends.some((b) => b.rampFrom !== undefined)))
      this.#changed([]);
  }

  /** Stops the slow-start timer (the runtime calls it at stop). */
  dispose(): void {
    clearTimeout(this.#rampTimer);
    this.#rampTimer = undefined;
  }

  /** The current snapshot (immutable). */
  snapshot(): Snapshot {
    return this.#snapshot;
  }

  /** The current snapshot of one service. */
  service(name: string): ServiceSnapshot | undefined {
    return this.#snapshot.services.find((s) => s.name === name);
  }

  /** Open-connection counters of a service, for data planes that track connections. */
  connections(serviceName: string): ConnectionCounts {
    const s = this.#services.find((x) => x.service.name === serviceName);
    if (!s) throw new Error(`unknown service ${serviceName}`);
    return s.connections;
  }

  /** A monitor's verdict on one backend of one service. */
  setHealth(serviceName: string, backendName: string, health: 'up' | 'down', reason: string): void {
    const s = this.#services.find((x) => x.service.name === serviceName);
    const b = s?.backends.find((x) => x.name === backendName);
    if (!s || !b) return;
    if (b.health === health && b.healthReason === reason) return;
    b.health = health;
    b.healthReason = reason;
    this.#changed([[s, b]]);
  }

  /** A data plane's safety verdict (e.g. re-encryption certificate mismatch); `undefined` clears it. */
  setError(serviceName: string, backendName: string, error: string | undefined): void {
    const s = this.#services.find((x) => x.service.name === serviceName);
    const b = s?.backends.find((x) => x.name === backendName);
    if (!s || !b || b.error === error) return;
    b.error = error;
    this.#changed([[s, b]]);
  }

  /**
   * An operator action on a backend, named `name` or `pool/name`. Applies to every service
   * that uses the backend's pool. Throws `VPNLB_UNKNOWN_BACKEND` when nothing matches.
   */
  setAdminState(ref: string, admin: AdminState): BackendStatus[] {
    const [poolName, name] = ref.includes('/')
      ? (ref.split('/', 2) as [string, string])
      : [undefined, ref];
    const keys = [...this.#admin.keys()].filter((k) => {
      const [p, n] = k.split('/', 2);
      return n === name && (poolName === undefined || p === poolName);
    });
    if (keys.length === 0) {
      throw new VpnlbError(
        'VPNLB_UNKNOWN_BACKEND',
        `no backend named "${ref}" (use NAME or POOL/NAME)`,
        'client',
      );
    }
    const pools = new Set(keys.map((k) => k.split('/', 2)[0]));
    if (poolName === undefined && pools.size > 1) {
      throw new VpnlbError(
        'VPNLB_UNKNOWN_BACKEND',
        `"${ref}" exists in several pools (${[...pools].join(', ')}): use POOL/NAME`,
        'client',
      );
    }
    for (const k of keys) this.#admin.set(k, admin);
    const touched: [ServiceRecord, BackendRecord][] = [];
    for (const s of this.#services)
      for (const b of s.backends) if (keys.includes(`${b.pool}/${b.name}`)) touched.push([s, b]);
    this.#changed(touched);
    return this.#snapshot.services.flatMap((s) =>
      s.backends.filter((b) => keys.includes(`${b.pool}/${b.name}`)),
    );
  }

  #changed(touched: [ServiceRecord, BackendRecord][]): void {
    const at = this.#now().toISOString();
    let any = false;
    for (const [s, b] of touched) any = this.#recompute(s, b, at, true) || any;
    // Rebuild even when the effective state did not change: reasons shown in status did.
    this.#snapshot = this.#build();
    this.emit('snapshot', this.#snapshot);
    void any;
  }

  /** Derives the effective state; returns true and emits a transition when it changed. */
  #recompute(s: ServiceRecord, b: BackendRecord, at: string, emit: boolean): boolean {
    const admin = this.#admin.get(`${b.pool}/${b.name}`) ?? 'enabled';
    let state: BackendState;
    let reason: string;
    if (admin === 'disabled') {
      [state, reason] = ['disabled', 'disabled by the administrator'];
    } else if (b.error !== undefined) {
      [state, reason] = ['down', b.error];
    } else if (b.health === 'down') {
      [state, reason] = ['down', b.healthReason];
    } else if (admin === 'draining') {
      [state, reason] = ['draining', 'draining: no new clients, existing tunnels kept'];
    } else {
      [state, reason] = ['up', b.healthReason];
    }
    const from = b.state;
    const changed = from !== state;
    b.reason = reason;
    if (changed) {
      b.state = state;
      b.since = at;
      // Back from down or disabled: a server with no tunnels, which least connections would
      // flood. (From draining it kept its tunnels; at start every backend is new alike.)
      b.rampFrom =
        state === 'up' &&
        emit &&
        (from === 'down' || from === 'disabled') &&
        s.service.slowStart > 0
          ? Date.parse(at)
          : undefined;
      if (emit)
        this.emit('transition', {
          service: s.service.name,
          backend: b.name,
          from,
          to: state,
          reason,
          at,
        });
    }
    return changed;
  }

  #build(): Snapshot {
    const now = this.#now().getTime();
    let nextStep = Infinity;
    const shareOf = (s: ServiceRecord, b: BackendRecord): number => {
      if (b.rampFrom === undefined) return 1;
      const duration = s.service.slowStart;
      const elapsed = now - b.rampFrom;
      if (elapsed >= duration) {
        b.rampFrom = undefined;
        return 1;
      }
      const stepMs = duration / SLOW_START_STEPS;
      nextStep = Math.min(
        nextStep,
        b.rampFrom + (Math.floor(Math.max(0, elapsed) / stepMs) + 1) * stepMs - now,
      );
      return slowStartShare(elapsed, duration);
    };
    const services = this.#services.map((s): ServiceSnapshot => {
      const shares = new Map(s.backends.map((b) => [b.name, shareOf(s, b)]));
      const backends: BackendStatus[] = s.backends.map((b) => ({
        name: b.name,
        pool: b.pool,
        address: b.address,
        family: b.family,
        weight: b.weight,
        maxConnections: b.maxConnections,
        admin: this.#admin.get(`${b.pool}/${b.name}`) ?? 'enabled',
        health: b.health,
        ...(b.error !== undefined ? { error: b.error } : {}),
        state: b.state,
        reason: b.reason,
        since: b.since,
        ...(b.rampFrom !== undefined
          ? {
              slowStart: {
                share: shares.get(b.name) ?? 1,
                until: new Date(b.rampFrom + s.service.slowStart).toISOString(),
              },
            }
          : {}),
      }));
      let candidates: Candidate[] = backends
        .filter((b) => b.state === 'up' && b.weight > 0)
        .map((b) => ({
          name: b.name,
          address: b.address,
          weight: b.weight * (shares.get(b.name) ?? 1),
        }));
      let isAllDownFallback = false;
      if (candidates.length === 0 && this.config.health.allDown === 'serve-all') {
        // Every backend is down. Rather than refuse everyone, send new clients to every
        // enabled backend without a safety error: when the monitors are wrong (a firewall
        // dropping the probes) the farm keeps working; when they are right, nothing is lost.
        // Not "the last healthy set": backends fail one by one, so that set would be the last
        // survivor alone. Disabled, draining and certificate-mismatched backends stay out.
        candidates = backends
          .filter((b) => b.admin === 'enabled' && b.error === undefined && b.weight > 0)
          .map((b) => ({ name: b.name, address: b.address, weight: b.weight }));
        isAllDownFallback = candidates.length > 0;
      }
      const balancer = createBalancer(s.service.method, {
        candidates,
        seed: s.service.hashSeed,
        connections: s.connections,
      });
      const base = { name: s.service.name, backends, candidates, balancer, isAllDownFallback };
      return s.kind === 'ikev2'
        ? { ...base, kind: 'ikev2', service: s.service as Ikev2Service }
        : { ...base, kind: 'sstp', service: s.service as SstpService };
    });
    this.#scheduleRamp(nextStep);
    return Object.freeze({
      version: ++this.#version,
      createdAt: this.#now().toISOString(),
      services: Object.freeze(services),
    });
  }

  /** A rebuild at the next slow-start step (at most one timer; none when nothing ramps). */
  #scheduleRamp(delay: number): void {
    clearTimeout(this.#rampTimer);
    this.#rampTimer = undefined;
    if (!Number.isFinite(delay)) return;
    this.#rampTimer = setTimeout(() => this.refreshSlowStart(), Math.max(1, Math.ceil(delay)));
    this.#rampTimer.unref();
  }
}

function sameJson(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}
