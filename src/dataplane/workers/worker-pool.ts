/**
 * The userspace data planes on every core: `workers` processes each run the SSTP proxy or the
 * IKEv2 relay for one service (worker-main.ts); this class is the service's data plane in the
 * main process and keeps them one service.
 *
 * How connections reach the workers:
 * - SSTP passthrough on the native front (sstp-native-front.ts): each worker's front listens on
 *   the virtual IP and port with SO_REUSEPORT, and the kernel spreads the connections over them
 *   (by a hash of their addresses and ports); with port 0 the first worker picks the port and the
 *   others join it. Per connection this costs a fraction of the path below (bench: 2 workers
 *   sharing one core kept 0.90 of one process's connections/s; through cluster, 0.11).
 * - SSTP otherwise (offload and re-encryption, whose TLS tickets the workers share through
 *   Node; no addon): `cluster`'s round-robin scheduling (the default on Linux; Node 20's `net`
 *   has no `reusePort`, DESIGN §6) accepts in the main process and hands each connection to the
 *   next worker, which does the rest (ClientHello, the backend connection, TLS, relaying until
 *   the tunnel moves to the splice path).
 * - IKEv2 relay: datagrams cannot be handed over one by one at that cost, so the main process
 *   opens one SO_REUSEPORT group per port (500, 4500) steered by source address
 *   (reuseport-group.ts) and hands worker i socket i of each; the kernel then delivers every
 *   datagram of a client address to the worker that holds its flows. The groups outlive the
 *   workers: a restarted worker gets the same sockets.
 *
 * Correct across workers:
 * - backend states: the main process's controller (health checks, admin actions) is mirrored
 *   into each worker's own controller at start and on every snapshot;
 * - persistence: an entry one worker learns is sent to all the others and kept here, so a new
 *   or restarted worker starts with every live entry (SSTP: TLS resumption reaches the server
 *   that issued the session whichever worker accepts it; IKEv2: an IKE SA whose client roams
 *   to an address another worker serves stays on its server; the lag is one IPC message, well
 *   below a client's reconnect or a MOBIKE address update);
 * - least connections and per-backend `maxConnections`: each worker reports its own counts,
 *   gets the others' sum, and the main process's counts (status, dashboard) are the total;
 * - TLS session tickets (SSTP offload, reencrypt): one key for all workers.
 * A worker that dies is restarted (after a delay that grows while restarts keep failing); the
 * others' connections are untouched. Its tunnels are lost, as they would be with one process.
 *
 * Metrics: each worker's registry is fetched on `/metrics` and merged with the main process's
 * (prom-client's aggregation: counters and gauges summed per label set).
 */
import cluster, { type Worker } from 'node:cluster';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import type { MetricObjectWithValues, MetricValue } from 'prom-client';
import type { Socket as UdpSocket } from 'node:dgram';
import type { Ikev2Service, SstpService } from '../../config/types.js';
import { listenError } from '../../platform/capabilities.js';
import type { RuntimeContext } from '../../control/runtime-context.js';
import type { ServiceSnapshot } from '../../control/snapshot.js';
import { VpnlbError } from '../../errors.js';
import type { Logger } from '../../log/logger.js';
import type {
  BackendCounters,
  DataPlane,
  DataPlaneStatus,
} from '../../control/dataplane-interface.js';
import {
  isFromWorker,
  type BackendMirror,
  type FromWorker,
  type PersistenceEntry,
  type ToWorker,
} from './messages.js';
import { closeReuseportGroup, openReuseportGroup, type ReuseportGroup } from './reuseport-group.js';

/** Longest wait for a worker's start (loading its modules, listening) or stop: generous, a loaded machine is slow to start processes. */
const START_TIMEOUT_MS = 60_000;
const STOP_TIMEOUT_MS = 10_000;
/** Most persistence entries kept here for new workers (each worker's tables have the same bound). */
const MAX_PERSISTENCE_ENTRIES = 200_000;
/** Restart delays after a worker died: 0, then doubling up to the cap while it keeps dying young. */
const RESTART_MAX_DELAY_MS = 5_000;
const YOUNG_WORKER_MS = 5_000;

interface Slot {
  readonly index: number;
  worker: Worker | undefined;
  startedAt: number;
  restartDelay: number;
  counts: ReadonlyMap<string, number>;
  status: DataPlaneStatus | undefined;
  served: number;
  ready: boolean;
}

/** The service a pool runs, by kind: `sstp` (the proxy) or `ikev2` (the relay). */
export type PooledService =
  | { readonly kind: 'sstp'; readonly service: SstpService }
  | { readonly kind: 'ikev2'; readonly service: Ikev2Service };

let clusterConfigured = false;

/** Points `cluster` at the worker script (once per process; every pool uses the same script). */
function setupCluster(): void {
  if (clusterConfigured) return;
  clusterConfigured = true;
  const url = new URL('./worker-main.js', import.meta.url);
  const fromSource = import.meta.url.endsWith('.ts');
  const exec = fileURLToPath(fromSource ? new URL('./worker-main.ts', import.meta.url) : url);
  cluster.setupPrimary({
    exec,
    execArgv: fromSource ? ['--import', 'tsx'] : [],
    // Structured clone: Maps, Buffers and Infinity survive (the configuration has them).
    serialization: 'advanced',
    silent: false,
  });
}

export class WorkerPool implements DataPlane {
  readonly serviceName: string;
  readonly #pooled: PooledService;
  readonly #ctx: RuntimeContext;
  readonly #logger: Logger;
  readonly #count: number;
  readonly #ticketKeys = randomBytes(48);
  readonly #slots: Slot[] = [];
  /** Every live persistence entry, by table and key (insertion order = age). */
  readonly #persistence = new Map<string, PersistenceEntry>();
  readonly #restarts;
  readonly #workersGauge;
  #snapshot: ServiceSnapshot | undefined;
  #port = 0;
  /** IKEv2: the listening groups (500, 4500), worker i serving socket i of each. */
  #groups: { ike: ReuseportGroup; natT: ReuseportGroup } | undefined;
  #stopping = false;
  #metricsId = 0;
  readonly #metricsWaiters = new Map<
    number,
    { pending: number; got: MetricObjectWithValues<MetricValue<string>>[][]; done: () => void }
  >();
  readonly #onExit = (worker: Worker, code: number | null, signal: string | null) =>
    this.#exited(worker, code, signal);

  constructor(pooled: PooledService, ctx: RuntimeContext, workers: number) {
    const service = pooled.service;
    this.serviceName = service.name;
    this.#pooled = pooled;
    this.#ctx = ctx;
    this.#count = workers;
    this.#logger = ctx.logger.child({ component: 'workers', service: service.name });
    this.#restarts = ctx.metrics.counter({
      name: 'vpnlb_workers_restarts_total',
      help: 'Worker processes of a service restarted after they died.',
      labelNames: ['service'],
    });
    this.#workersGauge = ctx.metrics.gauge({
      name: 'vpnlb_workers_running',
      help: 'Worker processes serving a service (SSTP proxy or IKEv2 relay), by service.',
      labelNames: ['service'],
    });
    this.#restarts.inc({ service: service.name }, 0);
    ctx.metrics.addSource(() => this.#workerMetrics());
  }

  async start(snapshot: ServiceSnapshot): Promise<void> {
    if (snapshot.kind !== this.#pooled.kind)
      throw new VpnlbError(
        'VPNLB_DATAPLANE_APPLY',
        `${this.serviceName}: a ${this.#pooled.kind} worker pool cannot serve a ${snapshot.kind} service`,
        'internal',
      );
    this.#snapshot = snapshot;
    if (this.#pooled.kind === 'ikev2') this.#groups = this.#openGroups(this.#pooled.service);
    setupCluster();
    cluster.on('exit', this.#onExit);
    for (let i = 0; i < this.#count; i++)
      this.#slots.push({
        index: i,
        worker: undefined,
        startedAt: 0,
        restartDelay: 0,
        counts: new Map(),
        status: undefined,
        served: 0,
        ready: false,
      });
    try {
      // Port 0 (tests): the first worker picks the port, the others listen beside it.
      const [first, ...rest] = this.#slots;
      if (this.#pooled.kind === 'sstp' && this.#pooled.service.port === 0) await this.#fork(first!);
      else rest.unshift(first!);
      await Promise.all(rest.map((s) => this.#fork(s)));
    } catch (err) {
      await this.stop();
      throw err;
    }
    this.#updateGauge();
    const s = this.#pooled.service;
    const ports = this.#groups
      ? `UDP ${this.#groups.ike.port}, ${this.#groups.natT.port}`
      : `${this.#port}`;
    this.#logger.info(
      { workers: this.#count },
      `${this.serviceName}: ${this.#count} worker processes serve ${s.virtualIp} port ${ports}`,
    );
  }

  async apply(snapshot: ServiceSnapshot): Promise<void> {
    if (snapshot.kind !== this.#pooled.kind) return;
    this.#snapshot = snapshot;
    this.#broadcast({ vpnlb: 'backends', backends: this.#mirror() });
  }

  async stop(): Promise<void> {
    this.#stopping = true;
    cluster.off('exit', this.#onExit);
    await Promise.all(
      this.#slots.map(async (s) => {
        const w = s.worker;
        if (!w || w.isDead()) return;
        const gone = new Promise<void>((resolve) => w.once('exit', () => resolve()));
        this.#send(w, { vpnlb: 'stop' });
        const timer = setTimeout(() => w.process.kill('SIGKILL'), STOP_TIMEOUT_MS);
        await gone;
        clearTimeout(timer);
      }),
    );
    for (const s of this.#slots) s.worker = undefined;
    if (this.#groups) {
      closeReuseportGroup(this.#groups.ike);
      closeReuseportGroup(this.#groups.natT);
      this.#groups = undefined;
    }
    this.#updateGauge();
  }

  status(): DataPlaneStatus {
    const backends: Record<string, BackendCounters> = {};
    const add = (a: number | undefined, b: number | undefined) =>
      a === undefined && b === undefined ? undefined : (a ?? 0) + (b ?? 0);
    let listeners: readonly string[] = [];
    const warnings = new Set<string>();
    for (const s of this.#slots) {
      if (!s.status) continue;
      listeners = s.status.listeners;
      for (const w of s.status.warnings) warnings.add(w);
      for (const [name, c] of Object.entries(s.status.backends)) {
        const prev = backends[name] ?? {};
        const sum: Record<string, number> = {};
        for (const k of [
          'packetsIn',
          'bytesIn',
          'packetsOut',
          'bytesOut',
          'connections',
          'flows',
        ] as const) {
          const v = add(prev[k], c[k]);
          if (v !== undefined) sum[k] = v;
        }
        backends[name] = sum;
      }
    }
    const running = this.#slots.filter((s) => s.ready).length;
    if (running < this.#count)
      warnings.add(
        `${running} of ${this.#count} worker processes running (a dead one is being restarted)`,
      );
    return {
      dataplane: `${this.#pooled.kind === 'sstp' ? 'sstp-proxy' : 'userspace-relay'} (${this.#count} workers)`,
      listeners,
      backends,
      warnings: [...warnings],
    };
  }

  /** The bound port (after `start`): every worker serves the same one (IKEv2: the IKE port). */
  port(): number {
    return this.#groups?.ike.port ?? this.#port;
  }

  /** IKEv2: the bound ports (after `start`), as the relay's `ports()`. */
  ports(): { ike: number; natT: number } {
    return { ike: this.#groups?.ike.port ?? 0, natT: this.#groups?.natT.port ?? 0 };
  }

  /**
   * Per worker: process id, whether it serves, and what it served since it started — SSTP:
   * connections accepted; IKEv2: flows set up (tests, troubleshooting).
   */
  workers(): { pid: number | undefined; ready: boolean; served: number }[] {
    return this.#slots.map((s) => ({
      pid: s.worker?.process.pid,
      ready: s.ready,
      served: s.served,
    }));
  }

  // --- IKEv2 listening groups ---------------------------------------------------------------

  #openGroups(s: Ikev2Service): { ike: ReuseportGroup; natT: ReuseportGroup } {
    const open = (port: number) => {
      try {
        return openReuseportGroup(s.family, s.virtualIp, port, this.#count);
      } catch (err) {
        throw listenError(
          `${s.name}: cannot listen on UDP ${s.virtualIp}:${port}`,
          port,
          err as Error,
        );
      }
    };
    const ike = open(s.ikePort);
    try {
      return { ike, natT: open(s.natTPort) };
    } catch (err) {
      closeReuseportGroup(ike);
      throw err;
    }
  }

  /** Worker `index`'s sockets (IKEv2), sent after `init`, one handle per message. */
  #sendSockets(w: Worker, index: number): void {
    const g = this.#groups;
    if (!g) return;
    this.#send(w, { vpnlb: 'socket', port: 'ike' }, g.ike.sockets[index]);
    this.#send(w, { vpnlb: 'socket', port: 'natT' }, g.natT.sockets[index]);
  }

  // --- workers ------------------------------------------------------------------------------

  #fork(slot: Slot): Promise<void> {
    const w = cluster.fork({ VPNLB_WORKER_SERVICE: this.serviceName });
    slot.worker = w;
    slot.ready = false;
    slot.startedAt = Date.now();
    slot.counts = new Map();
    slot.status = undefined;
    slot.served = 0;
    // A message to a worker that has just died fails asynchronously (EPIPE on the IPC channel)
    // before its exit is seen: the exit handler restarts it; the error must not be thrown.
    w.on('error', (err: Error) =>
      this.#logger.debug(
        { worker: slot.index, err },
        `${this.serviceName}: worker ${slot.index}: ${err.message}`,
      ),
    );
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () =>
          reject(
            new VpnlbError(
              'VPNLB_DATAPLANE_APPLY',
              `${this.serviceName}: worker ${slot.index} did not start within ${START_TIMEOUT_MS} ms`,
              'internal',
            ),
          ),
        START_TIMEOUT_MS,
      );
      w.on('message', (m: unknown) => {
        if (!isFromWorker(m)) return;
        if (m.vpnlb === 'ready') {
          clearTimeout(timer);
          this.#port = m.port;
          slot.ready = true;
          this.#updateGauge();
          resolve();
        } else if (m.vpnlb === 'failed') {
          clearTimeout(timer);
          reject(
            new VpnlbError(
              m.code === 'VPNLB_LISTEN' ? 'VPNLB_LISTEN' : 'VPNLB_DATAPLANE_APPLY',
              `${this.serviceName}: worker ${slot.index}: ${m.error}`,
              'internal',
            ),
          );
        } else if (m.vpnlb === 'hello') {
          this.#send(w, {
            vpnlb: 'init',
            kind: this.#pooled.kind,
            ...(this.#pooled.kind === 'sstp' && this.#port > 0 ? { port: this.#port } : {}),
            config: this.#ctx.config,
            service: this.serviceName,
            backends: this.#mirror(),
            persistence: [...this.#persistence.values()],
            ticketKeys: this.#ticketKeys,
          });
          this.#sendSockets(w, slot.index);
          this.#send(w, { vpnlb: 'remote-counts', counts: this.#remoteFor(slot) });
        } else this.#onMessage(slot, m);
      });
    });
  }

  #exited(worker: Worker, code: number | null, signal: string | null): void {
    const slot = this.#slots.find((s) => s.worker === worker);
    if (!slot) return;
    slot.worker = undefined;
    slot.ready = false;
    slot.counts = new Map();
    slot.status = undefined;
    this.#updateGauge();
    this.#publishCounts();
    if (this.#stopping) return;
    const young = Date.now() - slot.startedAt < YOUNG_WORKER_MS;
    slot.restartDelay = young
      ? Math.min(RESTART_MAX_DELAY_MS, Math.max(250, slot.restartDelay * 2))
      : 0;
    this.#restarts.inc({ service: this.serviceName });
    this.#logger.error(
      { worker: slot.index, pid: worker.process.pid, code, signal, restartInMs: slot.restartDelay },
      `${this.serviceName}: worker ${slot.index} died (${signal ?? `exit ${code}`}); restarting it, the other workers' connections are untouched`,
    );
    setTimeout(() => {
      if (this.#stopping) return;
      this.#fork(slot).catch((err: Error) =>
        this.#logger.error(
          { worker: slot.index, err },
          `${this.serviceName}: worker ${slot.index} failed to restart: ${err.message}`,
        ),
      );
    }, slot.restartDelay).unref();
  }

  #onMessage(slot: Slot, m: FromWorker): void {
    switch (m.vpnlb) {
      case 'learn': {
        for (const entry of m.entries) {
          const id = `${entry[0]}\u0000${entry[1]}`;
          this.#persistence.delete(id);
          this.#persistence.set(id, entry);
          if (this.#persistence.size > MAX_PERSISTENCE_ENTRIES)
            this.#persistence.delete(this.#persistence.keys().next().value as string);
        }
        for (const s of this.#slots) if (s !== slot && s.worker) this.#send(s.worker, m);
        break;
      }
      case 'counts':
        slot.counts = m.counts;
        this.#publishCounts();
        break;
      case 'status':
        slot.status = m.status;
        slot.served = m.served;
        break;
      case 'metrics': {
        const waiter = this.#metricsWaiters.get(m.id);
        if (waiter) {
          waiter.got.push(m.metrics);
          if (--waiter.pending === 0) waiter.done();
        }
        break;
      }
      case 'set-error':
        this.#ctx.controller.setError(this.serviceName, m.backend, m.error);
        break;
      default:
        break;
    }
  }

  /** The main process's counts become the total; each worker gets the sum of the others'. */
  #publishCounts(): void {
    const total = new Map<string, number>();
    for (const s of this.#slots)
      for (const [b, n] of s.counts) total.set(b, (total.get(b) ?? 0) + n);
    this.#ctx.controller.connections(this.serviceName).setRemote(total);
    for (const s of this.#slots)
      if (s.worker && s.ready)
        this.#send(s.worker, { vpnlb: 'remote-counts', counts: this.#remoteFor(s) });
  }

  #remoteFor(slot: Slot): Map<string, number> {
    const out = new Map<string, number>();
    for (const s of this.#slots)
      if (s !== slot) for (const [b, n] of s.counts) out.set(b, (out.get(b) ?? 0) + n);
    return out;
  }

  #mirror(): BackendMirror[] {
    const snap = this.#snapshot;
    if (!snap) return [];
    // Health reasons live in the controller's records; the snapshot's `reason` carries them.
    return snap.backends.map((b) => ({
      pool: b.pool,
      name: b.name,
      admin: b.admin,
      health: b.health,
      healthReason: b.reason,
      ...(b.error !== undefined ? { error: b.error } : {}),
    }));
  }

  #broadcast(m: ToWorker): void {
    for (const s of this.#slots) if (s.worker) this.#send(s.worker, m);
  }

  /** A message, with a socket as its handle (IKEv2 listening sockets). */
  #send(w: Worker, m: ToWorker, handle?: UdpSocket): void {
    if (!w.isConnected()) return;
    try {
      if (handle) w.send(m, handle);
      else w.send(m);
    } catch {
      // the worker is going away; its exit handler restarts it
    }
  }

  async #workerMetrics(): Promise<MetricObjectWithValues<MetricValue<string>>[][]> {
    const live = this.#slots.filter((s) => s.worker && s.ready);
    if (live.length === 0) return [];
    const id = ++this.#metricsId;
    const got: MetricObjectWithValues<MetricValue<string>>[][] = [];
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, 2_000); // a worker that does not answer is left out of this scrape
      this.#metricsWaiters.set(id, {
        pending: live.length,
        got,
        done: () => {
          clearTimeout(timer);
          resolve();
        },
      });
      for (const s of live) this.#send(s.worker!, { vpnlb: 'metrics', id });
    });
    this.#metricsWaiters.delete(id);
    return got;
  }

  #updateGauge(): void {
    this.#workersGauge.set(
      { service: this.serviceName },
      this.#slots.filter((s) => s.ready).length,
    );
  }
}
