/**
 * The running balancer: controller + data planes + health monitors + admin listener, wired so
 * that every snapshot reaches every data plane in order, every transition is logged and counted,
 * and one failing part degrades (with a warning) instead of bringing the process down.
 */
import { Metrics } from '../admin/metrics.js';
import { AdminServer } from '../admin/admin-server.js';
import { AdminCredentials, loadOrCreateToken } from '../admin/credentials.js';
import type { Config } from '../config/types.js';
import type { DataPlane } from '../dataplane/dataplane.js';
import type { Logger } from '../log/logger.js';
import { Controller } from './controller.js';
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
  /**
   * Admin listener address (and Unix socket); `false` for none. Defaults to the configuration's
   * (`admin.listen`, `admin.port`, `admin.socket`).
   */
  readonly admin?: { host: string; port: number; socket?: string } | false;
  /** Admin tokens; default: read (or created) from `admin.tokenFile` / `admin.readOnlyTokenFile`. */
  readonly adminCredentials?: AdminCredentials;
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
  #admin: AdminServer | undefined;
  #adminAddress: { host: string; port: number; url: string } | undefined;

  constructor(options: RuntimeOptions) {
    this.#opts = options;
    this.metrics = options.metrics ?? new Metrics();
    this.controller = new Controller(options.config);
  }

  get adminAddress(): { host: string; port: number; url: string } | undefined {
    return this.#adminAddress;
  }

  dataPlanes(): ReadonlyMap<string, DataPlane> {
    return this.#dataPlanes;
  }

  /** Per service, the snapshot version its data plane has fully applied (status: "in sync"). */
  appliedVersions(): ReadonlyMap<string, number> {
    return this.#applied;
  }

  async start(): Promise<void> {
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
      await dp.start(this.controller.service(s.name) ?? s);
      this.#applied.set(s.name, this.controller.snapshot().version);
      const st = dp.status();
      logger.info({ component: 'runtime', service: s.name, dataplane: st.dataplane, listeners: st.listeners }, `${s.name}: serving on ${st.listeners.join(', ')} (${st.dataplane})`);
    }

    if (this.#opts.createWatcher) {
      this.#watcher = this.#opts.createWatcher(ctx);
      this.#watcher.start();
    }

    const adminOpt = this.#opts.admin ?? { host: config.admin.listen, port: config.admin.port, ...(config.admin.socket ? { socket: config.admin.socket } : {}) };
    if (adminOpt !== false) {
      this.#admin = new AdminServer({
        controller: () => this.controller,
        metrics: this.metrics,
        logger,
        credentials: this.#opts.adminCredentials ?? this.#loadCredentials(),
        security: config.admin,
        dataPlanes: () => this.#dataPlanes,
        appliedVersions: () => this.#applied,
        lastProbes: () => this.#watcher?.lastProbes?.() ?? new Map(),
        warnings: () => this.#opts.configWarnings ?? [],
        startedAt: this.startedAt,
      });
      const addr = await this.#admin.listen(adminOpt.host, adminOpt.port);
      const scheme = config.admin.tls ? 'https' : 'http';
      this.#adminAddress = { host: addr.address, port: addr.port, url: `${scheme}://${fmtHost(addr.address)}:${addr.port}/` };
      logger.info({ component: 'admin', address: addr.address, port: addr.port, tls: scheme === 'https' }, `admin API on ${this.#adminAddress.url}`);
      if (adminOpt.socket) {
        await this.#admin.listenSocket(adminOpt.socket);
        logger.info({ component: 'admin', socket: adminOpt.socket }, `admin API on unix socket ${adminOpt.socket} (mode 0600)`);
      }
    }
  }

  /** A one-time URL that logs a browser into the dashboard as operator (the demo prints it). */
  adminLoginUrl(): string | undefined {
    if (!this.#admin || !this.#adminAddress) return undefined;
    return new URL(this.#admin.loginPath('operator'), this.#adminAddress.url).toString();
  }

  #loadCredentials(): AdminCredentials {
    const { config, logger } = this.#opts;
    const load = (file: string, role: string) => {
      const t = loadOrCreateToken(file);
      if (t.created) logger.info({ component: 'admin', file, role }, `admin ${role} token created in ${file} (mode 0600)`);
      if (t.warning) logger.warn({ component: 'admin', file }, t.warning);
      return t.token;
    };
    const operator = load(config.admin.tokenFile, 'operator');
    const readOnly = config.admin.readOnlyTokenFile ? load(config.admin.readOnlyTokenFile, 'read-only') : undefined;
    return new AdminCredentials({ operator, ...(readOnly !== undefined ? { readOnly } : {}) });
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
    await this.#admin?.close();
    await this.settled();
    for (const [name, dp] of this.#dataPlanes) {
      try {
        await dp.stop(options);
      } catch (err) {
        this.#opts.logger.error({ component: 'runtime', service: name, err }, `${name}: stopping the data plane failed`);
      }
    }
    this.controller.removeAllListeners();
  }
}

function fmtHost(h: string): string {
  return h.includes(':') ? `[${h}]` : h;
}
