/**
 * The running balancer: controller + data planes + health monitors + admin listener, wired so
 * that every snapshot reaches every data plane in order, every transition is logged and counted,
 * and one failing part degrades (with a warning) instead of bringing the process down.
 */
import { Metrics } from '../admin/metrics.js';
import { AdminServer } from '../admin/admin-server.js';
import type { Config } from '../config/types.js';
import type { DataPlane } from '../dataplane/dataplane.js';
import type { Logger } from '../log/logger.js';
import { Controller } from './controller.js';
import { localNode } from '../config/ha.js';
import { HaStatusReader } from '../ha/ha-status.js';
import type { ServiceSnapshot, Snapshot } from './snapshot.js';

/** What a data plane or monitor needs from the process around it. */
export interface RuntimeContext {
  readonly config: Config;
  readonly controller: Controller;
  readonly logger: Logger;
  readonly metrics: Metrics;
}

export type DataPlaneFactory = (snapshot: ServiceSnapshot, ctx: RuntimeContext) => Promise<DataPlane>;

/** Something with a lifecycle that watches backends (the health checker). */
export interface Watcher {
  start(): void;
  stop(): Promise<void>;
  /** The latest probe per (service, backend), for status. */
  lastProbes?(): ReadonlyMap<string, unknown>;
}

export interface RuntimeOptions {
  readonly config: Config;
  readonly logger: Logger;
  readonly metrics?: Metrics;
  readonly createDataPlane: DataPlaneFactory;
  /** Creates the health checker; omitted in tests that drive health by hand. */
  readonly createWatcher?: (ctx: RuntimeContext) => Watcher;
  /** Admin listener address; `false` for none. Defaults to the configuration's. */
  readonly admin?: { host: string; port: number } | false;
  /** Warnings from configuration checking, shown in status. */
  readonly configWarnings?: readonly string[];
}

export class Runtime {
  readonly controller: Controller;
  readonly metrics: Metrics;
  readonly startedAt = new Date();
  readonly #opts: RuntimeOptions;
  readonly #dataPlanes = new Map<string, DataPlane>();
  readonly #applyChains = new Map<string, Promise<void>>();
  /** Per service, the version of the last snapshot its data plane finished applying. */
  readonly #applied = new Map<string, number>();
  #watcher: Watcher | undefined;
  #ha: HaStatusReader | undefined;
  #admin: AdminServer | undefined;
  #adminAddress: { host: string; port: number } | undefined;

  constructor(options: RuntimeOptions) {
    this.#opts = options;
    this.metrics = options.metrics ?? new Metrics();
    this.controller = new Controller(options.config);
  }

  get adminAddress(): { host: string; port: number } | undefined {
    return this.#adminAddress;
  }

  dataPlanes(): ReadonlyMap<string, DataPlane> {
    return this.#dataPlanes;
  }

  /** Per service, the snapshot version its data plane has fully applied (status: "in sync"). */
  appliedVersions(): ReadonlyMap<string, number> {
    return this.#applied;
  }

  /**
   * Starts every part. A fatal error at any step (a listener that cannot bind, a data plane
   * that cannot start, the admin address in use or not an address) first undoes what had
   * started — listeners closed, monitors stopped, kernel state removed — and then rejects, so
   * that `vpnlb run` exits non-zero and a service manager's `Restart=on-failure` fires. (Before,
   * the error was logged and the process stayed up with half of its services.)
   */
  async start(): Promise<void> {
    try {
      await this.#start();
    } catch (err) {
      this.#opts.logger.error({ component: 'runtime', err }, `start-up failed, undoing what had started: ${(err as Error).message}`);
      await this.stop();
      throw err;
    }
  }

  async #start(): Promise<void> {
    const { logger, config } = this.#opts;
    const ctx: RuntimeContext = { config, controller: this.controller, logger, metrics: this.metrics };
    const transitions = this.metrics.counter({
      name: 'vpnlb_backend_transitions_total',
      help: 'Backend state changes, by service, backend and new state.',
      labelNames: ['service', 'backend', 'to'],
    });
    const stateGauge = this.metrics.gauge({
      name: 'vpnlb_backend_state',
      help: '1 for the current state of each backend (up, down, draining, disabled), else 0.',
      labelNames: ['service', 'backend', 'state'],
    });
    const allDown = this.metrics.gauge({
      name: 'vpnlb_service_all_down_fallback',
      help: '1 when every backend of the service is down and new clients go to every enabled backend (health.allDown: serve-all).',
      labelNames: ['service'],
    });
    const version = this.metrics.gauge({ name: 'vpnlb_snapshot_version', help: 'Version of the current snapshot.' });
    const publishGauges = (snap: Snapshot) => {
      version.set(snap.version);
      for (const s of snap.services) {
        allDown.set({ service: s.name }, s.isAllDownFallback ? 1 : 0);
        for (const b of s.backends) {
          for (const st of ['up', 'down', 'draining', 'disabled'] as const) {
            stateGauge.set({ service: s.name, backend: b.name, state: st }, b.state === st ? 1 : 0);
          }
        }
      }
    };
    publishGauges(this.controller.snapshot());

    this.controller.on('transition', (t) => {
      transitions.inc({ service: t.service, backend: t.backend, to: t.to });
      const level = t.to === 'down' ? 'warn' : 'info';
      logger[level]({ component: 'controller', ...t }, `${t.service}/${t.backend}: ${t.from} -> ${t.to} (${t.reason})`);
    });
    this.controller.on('snapshot', (snap) => {
      publishGauges(snap);
      for (const s of snap.services) {
        if (s.isAllDownFallback) logger.warn({ component: 'controller', service: s.name }, `${s.name}: every backend is down; new clients go to every enabled backend (health.allDown: serve-all)`);
        this.#enqueueApply(s, snap.version);
      }
    });

    for (const s of this.controller.snapshot().services) {
      const dp = await this.#opts.createDataPlane(s, ctx);
      this.#dataPlanes.set(s.name, dp);
      await dp.start(this.controller.service(s.name) ?? s); // on failure, stop() undoes what it began
      this.#applied.set(s.name, this.controller.snapshot().version);
      const st = dp.status();
      logger.info({ component: 'runtime', service: s.name, dataplane: st.dataplane, listeners: st.listeners }, `${s.name}: serving on ${st.listeners.join(', ')} (${st.dataplane})`);
    }

    if (this.#opts.createWatcher) {
      this.#watcher = this.#opts.createWatcher(ctx);
      this.#watcher.start();
    }

    if (config.ha) this.#ha = this.#startHaStatus(config.ha);

    const adminOpt = this.#opts.admin ?? { host: config.admin.listen, port: config.admin.port };
    if (adminOpt !== false) {
      this.#admin = new AdminServer({
        controller: this.controller,
        metrics: this.metrics,
        logger,
        dataPlanes: () => this.#dataPlanes,
        appliedVersions: () => this.#applied,
        lastProbes: () => this.#watcher?.lastProbes?.() ?? new Map(),
        warnings: () => this.#opts.configWarnings ?? [],
        startedAt: this.startedAt,
        ...(this.#ha ? { ha: () => this.#ha?.status } : {}),
      });
      const addr = await this.#admin.listen(adminOpt.host, adminOpt.port);
      this.#adminAddress = { host: addr.address, port: addr.port };
      logger.info({ component: 'admin', address: addr.address, port: addr.port }, `admin API on http://${fmtHost(addr.address)}:${addr.port}/`);
    }
  }

  /**
   * Follows this node's role in the pair (files written by `vpnlb ha start` and keepalived's
   * notify script) for status and metrics. A host that is neither node only gets a warning.
   */
  #startHaStatus(ha: NonNullable<Config['ha']>): HaStatusReader | undefined {
    const { logger } = this.#opts;
    const found = localNode(ha);
    if (!found) {
      logger.warn({ component: 'ha' }, 'ha: no sync address of ha.nodes is configured here and ha.node is not set: the pair\'s role is not shown');
      return undefined;
    }
    const roles = ['active', 'standby', 'fault', 'stopped', 'unknown'] as const;
    const failovers = this.metrics.counter({ name: 'vpnlb_ha_failovers_total', help: 'Changes of this node\'s ownership of the pair\'s addresses, by new role.', labelNames: ['to'] });
    const reader = new HaStatusReader(ha, found.self, found.peer, (s, previous) => {
      const level = s.role === 'fault' ? 'warn' : 'info';
      logger[level]({ component: 'ha', role: s.role, from: previous.role, lastFailover: s.lastFailover }, `ha: ${found.self.name} is ${s.role} (was ${previous.role})${s.lastFailover ? `: ${s.lastFailover.cause}` : ''}`);
      if ((s.role === 'active') !== (previous.role === 'active') && previous.role !== 'unknown') failovers.inc({ to: s.role });
    });
    this.metrics.gauge({
      name: 'vpnlb_ha_role',
      help: '1 for this node\'s current role in the pair (active, standby, fault, stopped, unknown), else 0.',
      labelNames: ['role'],
      collect() {
        for (const r of roles) this.set({ role: r }, reader.status.role === r ? 1 : 0);
      },
    });
    this.metrics.gauge({
      name: 'vpnlb_ha_sync_entries',
      help: 'Connections in conntrackd\'s internal cache on this node (-1 when conntrackd does not answer).',
      collect() {
        this.set(reader.status.sync.entries ?? -1);
      },
    });
    reader.start();
    return reader;
  }

  /** Applies snapshots to a data plane strictly in order; a newer one supersedes a queued one. */
  #enqueueApply(s: ServiceSnapshot, version: number): void {
    const dp = this.#dataPlanes.get(s.name);
    if (!dp) return;
    const prev = this.#applyChains.get(s.name) ?? Promise.resolve();
    const next = prev.then(async () => {
      const latest = this.controller.service(s.name);
      if (!latest || latest !== s) return; // superseded: the newer snapshot's own apply follows
      try {
        await dp.apply(latest);
        this.#applied.set(s.name, version);
      } catch (err) {
        this.#opts.logger.error({ component: 'runtime', service: s.name, err }, `${s.name}: applying snapshot failed; the data plane keeps its previous state`);
      }
    });
    this.#applyChains.set(s.name, next);
  }

  /** Waits until every queued snapshot has been applied (tests, orderly shutdown). */
  async settled(): Promise<void> {
    await Promise.all(this.#applyChains.values());
  }

  async stop(options: { keepState?: boolean } = {}): Promise<void> {
    await this.#watcher?.stop();
    this.#ha?.stop();
    await this.#admin?.close();
    await this.settled();
    for (const [name, dp] of this.#dataPlanes) {
      try {
        await dp.stop(options);
      } catch (err) {
        this.#opts.logger.error({ component: 'runtime', service: name, err }, `${name}: stopping the data plane failed`);
      }
    }
    this.controller.dispose();
    this.controller.removeAllListeners();
  }
}

function fmtHost(h: string): string {
  return h.includes(':') ? `[${h}]` : h;
}
