/**
 * A worker process (started by worker-pool.ts through `cluster`): one `SstpProxy` or one
 * `UdpRelay` for one service, fed by the main process.
 *
 * - Backend states: the worker runs its own `Controller` over the same configuration and mirrors
 *   every backend's health, admin state and error from the main process (messages `init`,
 *   `backends`), so its snapshots choose exactly as the main process's would. A safety error
 *   the proxy finds (re-encryption certificate mismatch) goes to the main process, which owns it.
 * - Listening: SSTP passthrough on the native front: each worker's front listens on the
 *   virtual IP and port with SO_REUSEPORT, and the kernel spreads the connections; otherwise
 *   (offload, re-encryption, no addon) `net.Server.listen` in a cluster worker is served by the
 *   main process's listener in round robin (Node's default on Linux). IKEv2: the main process sends this worker its socket of each SO_REUSEPORT group
 *   (reuseport-group.ts), which the kernel feeds with the datagrams of this worker's clients.
 * - Persistence: what this worker learns (SSTP: TLS session id or client address → backend;
 *   IKEv2: IKE SA → backend) goes to the main process, which sends it to every other worker; a
 *   new worker starts with all of it.
 * - Least connections: the worker reports its own open connections per backend when they
 *   change (checked every `COUNTS_INTERVAL_MS`), and receives the others' sum.
 * - Metrics: its own registry, sent on request; the main process merges them into `/metrics`.
 */
import cluster from 'node:cluster';
import type { Socket as UdpSocket } from 'node:dgram';
import type { ConnectionCounts } from '../../balancer/balancer.js';
import { isSpiAffinity } from '../../balancer/affinity.js';
import { Metrics } from '../../observability/metrics.js';
import type { Config, Ikev2Service, SstpService } from '../../config/types.js';
import { Controller } from '../../control/controller.js';
import type { DataPlane } from '../../control/dataplane-interface.js';
import { createLogger, type Logger } from '../../log/logger.js';
import type { ServiceSnapshot } from '../../control/snapshot.js';
import { SstpProxy } from '../sstp/sstp-proxy.js';
import { UdpRelay } from '../relay/udp-relay.js';
import {
  isToWorker,
  type BackendMirror,
  type FromWorker,
  type PersistenceEntry,
  type ToWorker,
} from './messages.js';

/** How often a worker checks whether its connection counts changed. */
export const COUNTS_INTERVAL_MS = 50;
/** How often a worker sends its status. */
export const STATUS_INTERVAL_MS = 1_000;

/** The controller of a worker: errors found here belong to the main process's controller. */
class MirrorController extends Controller {
  override setError(serviceName: string, backendName: string, error: string | undefined): void {
    send({ vpnlb: 'set-error', backend: backendName, error });
    super.setError(serviceName, backendName, error);
  }
}

function send(m: FromWorker): void {
  process.send?.(m);
}

function mirror(controller: Controller, service: string, backends: readonly BackendMirror[]): void {
  for (const b of backends) {
    if (b.health !== 'unknown') controller.setHealth(service, b.name, b.health, b.healthReason);
    const current = controller.service(service)?.backends.find((x) => x.name === b.name);
    if (current && current.admin !== b.admin)
      controller.setAdminState(`${b.pool}/${b.name}`, b.admin);
    Controller.prototype.setError.call(controller, service, b.name, b.error);
  }
}

type Init = Extract<ToWorker, { vpnlb: 'init' }>;

/** The data plane a worker runs, with what the pool needs of it beyond `DataPlane`. */
interface WorkerPlane {
  readonly plane: DataPlane;
  start(snapshot: ServiceSnapshot): Promise<void>;
  /** A persistence entry another worker learned. */
  learn(entry: PersistenceEntry): void;
  /** The bound port (SSTP: the listener's; IKEv2: the IKE port). */
  port(): number;
  /** SSTP: connections accepted; IKEv2: flows set up; since start. */
  served(): Promise<number>;
}

function sstpPlane(
  init: Init,
  config: Config,
  ctx: { config: Config; controller: Controller; logger: Logger; metrics: Metrics },
): WorkerPlane {
  const configured = config.services.sstp.find((s) => s.name === init.service);
  if (!configured) throw new Error(`no SSTP service ${init.service} in the configuration`);
  const proxy = new SstpProxy(workerShare(configured, config.workers), ctx, {
    // Passthrough on the native front: each worker listens with SO_REUSEPORT (on the first
    // worker's port when the service asks for any); otherwise Node's front, through cluster.
    reusePort: init.port !== undefined ? { port: init.port } : {},
    onPersistenceLearned: (table, key, backend) =>
      send({ vpnlb: 'learn', entries: [[table, key, backend]] }),
    ticketKeys: init.ticketKeys,
  });
  const learn = (e: PersistenceEntry) => {
    if (e[0] !== 'ike-sa') proxy.learnReplica(e[0], e[1], e[2]);
  };
  for (const e of init.persistence) learn(e);
  return {
    plane: proxy,
    start: (snapshot) => proxy.start(snapshot),
    learn,
    port: () => proxy.port(),
    served: () => acceptedSoFar(ctx.metrics),
  };
}

function relayPlane(
  init: Init,
  config: Config,
  ctx: { config: Config; controller: Controller; logger: Logger; metrics: Metrics },
  sockets: { ike: UdpSocket; natT: UdpSocket },
): WorkerPlane {
  const configured = config.services.ikev2.find((s) => s.name === init.service);
  if (!configured) throw new Error(`no IKEv2 service ${init.service} in the configuration`);
  const svc = relayWorkerShare(configured, config.workers);
  const relay = new UdpRelay(svc, ctx, {
    sockets,
    maxSessions: configured.maxFlows,
    ...(isSpiAffinity(svc.affinity)
      ? {
          onSessionsLearned: (entries: readonly (readonly [string, string])[]) =>
            send({ vpnlb: 'learn', entries: entries.map(([k, b]) => ['ike-sa', k, b] as const) }),
        }
      : {}),
  });
  const learn = (e: PersistenceEntry) => {
    if (e[0] === 'ike-sa') relay.learnReplica(e[1], e[2]);
  };
  for (const e of init.persistence) learn(e);
  return {
    plane: relay,
    start: (snapshot) => relay.start(snapshot),
    learn,
    port: () => relay.ports().ike,
    served: async () => relay.stats().flowsCreated,
  };
}

async function run(init: Init, sockets?: { ike: UdpSocket; natT: UdpSocket }): Promise<void> {
  const config: Config = init.config;
  const logger = createLogger({ level: config.log.level }).child({ worker: cluster.worker?.id });
  const controller = new MirrorController(config);
  mirror(controller, init.service, init.backends);
  const metrics = new Metrics();
  const ctx = { config, controller, logger, metrics };
  const w =
    init.kind === 'ikev2' ? relayPlane(init, config, ctx, sockets!) : sstpPlane(init, config, ctx);
  const plane = w.plane;
  const name = init.service;
  const counts: ConnectionCounts = controller.connections(name);
  let chain = Promise.resolve();
  controller.on('snapshot', () => {
    chain = chain.then(async () => {
      const s = controller.service(name);
      if (s)
        await plane
          .apply(s)
          .catch((err: Error) => logger.error({ err }, `${name}: worker apply failed`));
    });
  });
  let countsTimer: NodeJS.Timeout | undefined;
  let statusTimer: NodeJS.Timeout | undefined;
  // Before start: the main process may already send replicas and states (IPC keeps the order).
  process.on('message', (m: unknown) => {
    if (!isToWorker(m)) return;
    switch (m.vpnlb) {
      case 'backends':
        mirror(controller, name, m.backends);
        break;
      case 'learn':
        for (const e of m.entries) w.learn(e);
        break;
      case 'remote-counts':
        counts.setRemote(m.counts);
        break;
      case 'metrics':
        void metrics.registry
          .getMetricsAsJSON()
          .then((list) => send({ vpnlb: 'metrics', id: m.id, metrics: list }));
        break;
      case 'stop':
        clearInterval(countsTimer);
        clearInterval(statusTimer);
        void plane.stop().finally(() => {
          send({ vpnlb: 'stopped' });
          process.disconnect?.();
          setTimeout(() => process.exit(0), 100).unref();
        });
        break;
      default:
        break;
    }
  });
  await w.start(controller.service(name) as ServiceSnapshot);

  let lastCounts = '';
  countsTimer = setInterval(() => {
    const own = new Map<string, number>();
    for (const b of controller.service(name)?.backends ?? []) {
      const n = counts.local(b.name);
      if (n > 0) own.set(b.name, n);
    }
    const key = JSON.stringify([...own]);
    if (key === lastCounts) return;
    lastCounts = key;
    send({ vpnlb: 'counts', counts: own });
  }, COUNTS_INTERVAL_MS);
  const sendStatus = () =>
    void w
      .served()
      .then((served) => send({ vpnlb: 'status', status: localStatus(plane, counts), served }));
  statusTimer = setInterval(sendStatus, STATUS_INTERVAL_MS);

  sendStatus();
  send({ vpnlb: 'ready', port: w.port() });
}

/**
 * The limits one worker enforces: round robin gives each worker an even share of every source's
 * connections, so per-source limits and a numeric `maxConnections` are divided by the number
 * of workers (rounded up). `maxConnections: auto` is not: it follows the open-file limit, and
 * each worker is a process with its own descriptors.
 */
export function workerShare(s: SstpService, workers: number): SstpService {
  const share = (n: number) => (n > 0 ? Math.ceil(n / workers) : n);
  return {
    ...s,
    maxConnectionsPerSource: share(s.maxConnectionsPerSource),
    maxNewConnectionsPerSecondPerSource: share(s.maxNewConnectionsPerSecondPerSource),
    ...(typeof s.maxConnections === 'number' ? { maxConnections: share(s.maxConnections) } : {}),
  };
}

/** Connections this worker accepted since it started (its `vpnlb_sstp_connections_total`). */
async function acceptedSoFar(metrics: Metrics): Promise<number> {
  const m = await metrics.registry.getSingleMetric('vpnlb_sstp_connections_total')?.get();
  return (m?.values ?? []).reduce((a, v) => a + v.value, 0);
}

/**
 * The limits one IKEv2 relay worker enforces. The kernel gives all of a source address's
 * datagrams to one worker, so per-source limits stay whole; the service's new-flow budget and
 * `maxFlows` are divided (rounded up), and each SNAT address's sessions per server rounded
 * down (at least one), so that together the workers never exceed what the servers allow.
 * Kernel shedding is off in workers: it follows one relay's flows (docs/operations.md).
 */
export function relayWorkerShare(s: Ikev2Service, workers: number): Ikev2Service {
  const share = (n: number) => (Number.isFinite(n) && n > 0 ? Math.ceil(n / workers) : n);
  return {
    ...s,
    maxFlows: share(s.maxFlows),
    maxNewFlowsPerSecond: share(s.maxNewFlowsPerSecond),
    kernelShed: 'off',
    ...(s.snat
      ? {
          snat: {
            ...s.snat,
            maxSasPerAddress: Number.isFinite(s.snat.maxSasPerAddress)
              ? Math.max(1, Math.floor(s.snat.maxSasPerAddress / workers))
              : s.snat.maxSasPerAddress,
          },
        }
      : {}),
  };
}

/** The data plane's status with this worker's own connection counts (the main process adds them up). */
function localStatus(plane: DataPlane, counts: ConnectionCounts) {
  const st = plane.status();
  const backends = Object.fromEntries(
    Object.entries(st.backends).map(([name, c]) => [
      name,
      { ...c, connections: counts.local(name) },
    ]),
  );
  return { ...st, backends };
}

if (cluster.isWorker) {
  // `init`, then (IKEv2) one message per listening socket, carrying it as the handle.
  let init: Init | undefined;
  const sockets: { ike?: UdpSocket; natT?: UdpSocket } = {};
  const collect = (m: unknown, handle: unknown) => {
    if (!isToWorker(m)) return;
    if (m.vpnlb === 'init') init = m;
    else if (m.vpnlb === 'socket' && handle) sockets[m.port] = handle as UdpSocket;
    else return;
    if (!init || (init.kind === 'ikev2' && !(sockets.ike && sockets.natT))) return;
    process.off('message', collect);
    const got = sockets.ike && sockets.natT ? { ike: sockets.ike, natT: sockets.natT } : undefined;
    run(init, got).catch((err: Error & { code?: string }) => {
      send({ vpnlb: 'failed', error: err.message, ...(err.code ? { code: err.code } : {}) });
      setTimeout(() => process.exit(1), 100).unref();
    });
  };
  process.on('message', collect);
  send({ vpnlb: 'hello' });
}
