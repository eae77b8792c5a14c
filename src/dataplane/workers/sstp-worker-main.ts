/**
 * An SSTP worker process (started by sstp-worker-pool.ts through `cluster`): one `SstpProxy` for
 * one service, fed by the main process.
 *
 * - Backend states: the worker runs its own `Controller` over the same configuration and mirrors
 *   every backend's health, admin state and error from the main process (messages `init`,
 *   `backends`), so its snapshots choose exactly as the main process's would. A safety error
 *   the proxy finds (re-encryption certificate mismatch) goes to the main process, which owns it.
 * - Listening: `net.Server.listen` in a cluster worker is served by the main process's listener
 *   in round robin (Node's default on Linux), so the workers share the virtual IP and port.
 * - Persistence: what this worker learns (TLS session id or client address → backend) goes to
 *   the main process, which sends it to every other worker; a new worker starts with all of it.
 * - Least connections: the worker reports its own open connections per backend when they
 *   change (checked every `COUNTS_INTERVAL_MS`), and receives the others' sum.
 * - Metrics: its own registry, sent on request; the main process merges them into `/metrics`.
 */
import cluster from 'node:cluster';
import type { ConnectionCounts } from '../../balancer/balancer.js';
import { Metrics } from '../../observability/metrics.js';
import type { Config, SstpService } from '../../config/types.js';
import { Controller } from '../../control/controller.js';
import { createLogger } from '../../log/logger.js';
import type { SstpServiceSnapshot } from '../../control/snapshot.js';
import { SstpProxy } from '../sstp/sstp-proxy.js';
import { isToWorker, type BackendMirror, type FromWorker, type ToWorker } from './messages.js';

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

async function run(init: Extract<ToWorker, { vpnlb: 'init' }>): Promise<void> {
  const config: Config = init.config;
  const logger = createLogger({ level: config.log.level }).child({ worker: cluster.worker?.id });
  const controller = new MirrorController(config);
  mirror(controller, init.service, init.backends);
  const metrics = new Metrics();
  const configured = config.services.sstp.find((s) => s.name === init.service);
  if (!configured) throw new Error(`no SSTP service ${init.service} in the configuration`);
  const svc = workerShare(configured, config.workers);
  const proxy = new SstpProxy(
    svc,
    { config, controller, logger, metrics },
    {
      // The listener is cluster's (round-robin accept in the main process): Node's front.
      front: 'node',
      onPersistenceLearned: (table, key, backend) =>
        send({ vpnlb: 'learn', entry: [table, key, backend] }),
      ticketKeys: init.ticketKeys,
    },
  );
  for (const [table, key, backend] of init.persistence) proxy.learnReplica(table, key, backend);
  const counts: ConnectionCounts = controller.connections(svc.name);
  let chain = Promise.resolve();
  controller.on('snapshot', () => {
    chain = chain.then(async () => {
      const s = controller.service(svc.name);
      if (s)
        await proxy
          .apply(s)
          .catch((err: Error) => logger.error({ err }, `${svc.name}: worker apply failed`));
    });
  });
  let countsTimer: NodeJS.Timeout | undefined;
  let statusTimer: NodeJS.Timeout | undefined;
  // Before start: the main process may already send replicas and states (IPC keeps the order).
  process.on('message', (m: unknown) => {
    if (!isToWorker(m)) return;
    switch (m.vpnlb) {
      case 'backends':
        mirror(controller, svc.name, m.backends);
        break;
      case 'learn':
        proxy.learnReplica(m.entry[0], m.entry[1], m.entry[2]);
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
        void proxy.stop().finally(() => {
          send({ vpnlb: 'stopped' });
          process.disconnect?.();
          setTimeout(() => process.exit(0), 100).unref();
        });
        break;
      default:
        break;
    }
  });
  await proxy.start(controller.service(svc.name) as SstpServiceSnapshot);

  let lastCounts = '';
  countsTimer = setInterval(() => {
    const own = new Map<string, number>();
    for (const b of controller.service(svc.name)?.backends ?? []) {
      const n = counts.local(b.name);
      if (n > 0) own.set(b.name, n);
    }
    const key = JSON.stringify([...own]);
    if (key === lastCounts) return;
    lastCounts = key;
    send({ vpnlb: 'counts', counts: own });
  }, COUNTS_INTERVAL_MS);
  const sendStatus = () =>
    void acceptedSoFar(metrics).then((accepted) =>
      send({ vpnlb: 'status', status: localStatus(proxy, counts), accepted }),
    );
  statusTimer = setInterval(sendStatus, STATUS_INTERVAL_MS);

  sendStatus();
  send({ vpnlb: 'ready', port: proxy.port() });
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

/** The proxy's status with this worker's own connection counts (the main process adds them up). */
function localStatus(proxy: SstpProxy, counts: ConnectionCounts) {
  const st = proxy.status();
  const backends = Object.fromEntries(
    Object.entries(st.backends).map(([name, c]) => [
      name,
      { ...c, connections: counts.local(name) },
    ]),
  );
  return { ...st, backends };
}

if (cluster.isWorker) {
  process.once('message', (m: unknown) => {
    if (!isToWorker(m) || m.vpnlb !== 'init') return;
    run(m).catch((err: Error & { code?: string }) => {
      send({ vpnlb: 'failed', error: err.message, ...(err.code ? { code: err.code } : {}) });
      setTimeout(() => process.exit(1), 100).unref();
    });
  });
  send({ vpnlb: 'hello' });
}
