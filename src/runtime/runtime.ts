/**
 * The running balancer: controller + data planes + health monitors + admin listener, wired so
 * that every snapshot reaches every data plane in order, every transition is logged and counted,
 * and one failing part degrades (with a warning) instead of bringing the process down.
 */
import { readFileSync } from 'node:fs';
import { Metrics } from '../observability/metrics.js';
import { AdminServer } from '../admin/admin-server.js';
import { AdminCredentials, loadOrCreateToken } from '../admin/credentials.js';
import { checkConfigFile, formatIssue } from '../config/load-config.js';
import type { Config } from '../config/types.js';
import type { DataPlane } from '../control/dataplane-interface.js';
import type { Logger } from '../log/logger.js';
import type { ReloadOutcome } from '../admin/admin-server.js';
import { diffConfig } from '../control/config-diff.js';
import { Controller } from '../control/controller.js';
import { localNode } from '../config/ha.js';
import { HaStatusReader } from '../ha/ha-status.js';
import { observeBgp, type BgpObserver } from '../bgp/bgp-observe.js';
import { FlowStateSync, type FlowStatePlane } from '../bgp/flow-sync.js';
import { localBgpNode } from '../config/bgp.js';
import type { ServiceFlowState } from '../dataplane/kernel/flow-state.js';
import { EventLog } from '../control/event-log.js';
import { History, HISTORY_INTERVAL_MS } from '../control/history.js';
import { backendsToFlush, type ServiceSnapshot, type Snapshot } from '../control/snapshot.js';
import type { RuntimeContext, Watcher } from '../control/runtime-context.js';

export type DataPlaneFactory = (
  snapshot: ServiceSnapshot,
  ctx: RuntimeContext,
) => Promise<DataPlane>;

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
  /** The file `reload()` re-reads; without it the runtime cannot reload (the demo, tests). */
  readonly configFile?: string;
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
  readonly events = new EventLog();
  readonly history = new History();
  /** Per service, what its data plane last forwarded to (see forwardingKey). */
  readonly #lastForwarding = new Map<string, string>();
  #historyTimer: NodeJS.Timeout | undefined;
  #config: Config;
  #configWarnings: readonly string[];
  #reloading: Promise<ReloadOutcome> = Promise.resolve({ ok: true, issues: [], changes: [] });
  #watcher: Watcher | undefined;
  #ha: HaStatusReader | undefined;
  #bgp: BgpObserver | undefined;
  #flowSync: FlowStateSync | undefined;
  #flowStateCache: { at: number; doc: Promise<unknown>; pending: boolean } | undefined;
  #admin: AdminServer | undefined;
  #adminAddress: { host: string; port: number; url: string } | undefined;

  constructor(options: RuntimeOptions) {
    this.#opts = options;
    this.metrics = options.metrics ?? new Metrics();
    this.controller = new Controller(options.config);
    this.#config = options.config;
    this.#configWarnings = options.configWarnings ?? [];
  }

  /** The configuration in force (replaced by a successful reload). */
  get config(): Config {
    return this.#config;
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

  /**
   * Starts every part. A fatal error at any step (a listener that cannot bind, a data plane
   * that cannot start, the admin address in use or not an address) first undoes what had
   * started — listeners closed, monitors stopped, kernel state it created removed (a table
   * adopted from the previous process stays, with its tunnels) — and then rejects, so
   * that `vpnlb run` exits non-zero and a service manager's `Restart=on-failure` fires. (Before,
   * the error was logged and the process stayed up with half of its services.)
   */
  async start(): Promise<void> {
    try {
      await this.#start();
    } catch (err) {
      this.#opts.logger.error(
        { component: 'runtime', err },
        `start-up failed, undoing what had started: ${(err as Error).message}`,
      );
      await this.stop({ failedStart: true });
      throw err;
    }
  }

  #context(config: Config): RuntimeContext {
    return {
      config,
      controller: this.controller,
      logger: this.#opts.logger,
      metrics: this.metrics,
      // A standby's conntrack deletions would reach the active node through conntrackd.
      ownsReplicatedFlows: () => {
        const role = this.#ha?.status.role;
        return role !== 'standby' && role !== 'fault';
      },
    };
  }

  async #start(): Promise<void> {
    const { logger } = this.#opts;
    const config = this.#config;
    const ctx = this.#context(config);
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
    const version = this.metrics.gauge({
      name: 'vpnlb_snapshot_version',
      help: 'Version of the current snapshot.',
    });
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
      logger[level](
        { component: 'controller', ...t },
        `${t.service}/${t.backend}: ${t.from} -> ${t.to} (${t.reason})`,
      );
      this.history.onTransition(t);
      this.events.record({
        kind: 'state',
        severity: t.to === 'down' ? 'warn' : 'info',
        service: t.service,
        backend: t.backend,
        message: `${t.from} → ${t.to}: ${t.reason}`,
      });
    });
    this.controller.on('snapshot', (snap) => {
      publishGauges(snap);
      for (const s of snap.services) {
        if (s.isAllDownFallback)
          logger.warn(
            { component: 'controller', service: s.name },
            `${s.name}: every backend is down; new clients go to every enabled backend (health.allDown: serve-all)`,
          );
        this.#enqueueApply(s, snap.version);
      }
    });

    // Once for the process: every userspace SSTP service runs in that many processes.
    if (config.workersAuto && config.services.sstp.some((s) => s.dataplane !== 'kernel'))
      logger.info(
        { component: 'runtime', workers: config.workers },
        `workers auto: ${config.workersAuto}`,
      );
    for (const s of this.controller.snapshot().services) await this.#startDataPlane(s.name, ctx);
    this.#startWatcher(ctx);
    this.sampleHistory();
    this.#historyTimer = setInterval(() => this.sampleHistory(), HISTORY_INTERVAL_MS);
    this.#historyTimer.unref();

    if (config.ha) this.#ha = this.#startHaStatus(config.ha);
    if (config.bgp) this.#bgp = observeBgp(this.metrics, config.bgp);

    const adminOpt = this.#opts.admin ?? {
      host: config.admin.listen,
      port: config.admin.port,
      ...(config.admin.socket ? { socket: config.admin.socket } : {}),
    };
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
        warnings: () => this.#configWarnings,
        events: () => this.events.list(),
        history: () => this.history.document(),
        onAction: (a) =>
          this.events.record({
            kind: 'action',
            severity: 'info',
            backend: a.backend,
            message: a.message,
          }),
        ...(this.#opts.configFile ? { reload: () => this.reload() } : {}),
        startedAt: this.startedAt,
        ...(this.#ha ? { ha: () => this.#ha?.status } : {}),
        ...(this.#bgp
          ? {
              bgp: () => ({
                ...this.#bgp?.status(),
                ...(this.#flowSync ? { flowSync: this.#flowSync.status() } : {}),
              }),
            }
          : {}),
        ...(config.bgp?.flowSync ? { flowState: () => this.#flowStateDocument() } : {}),
      });
      const addr = await this.#admin.listen(adminOpt.host, adminOpt.port);
      const scheme = config.admin.tls ? 'https' : 'http';
      this.#adminAddress = {
        host: addr.address,
        port: addr.port,
        url: `${scheme}://${fmtHost(addr.address)}:${addr.port}/`,
      };
      logger.info(
        { component: 'admin', address: addr.address, port: addr.port, tls: scheme === 'https' },
        `admin API on ${this.#adminAddress.url}`,
      );
      if (adminOpt.socket) {
        await this.#admin.listenSocket(adminOpt.socket);
        logger.info(
          { component: 'admin', socket: adminOpt.socket },
          `admin API on unix socket ${adminOpt.socket} (mode 0600)`,
        );
      }
    }
    this.#startFlowSync();
  }

  /** The `ike-spi` flow-state exchange with the other nodes of an ECMP farm (`bgp.flowSync`). */
  #startFlowSync(): void {
    const bgp = this.#config.bgp;
    if (!bgp?.flowSync) return;
    const { logger } = this.#opts;
    const self = localBgpNode(bgp);
    if (!self) {
      logger.warn(
        { component: 'flow-sync' },
        'flow sync: this host is none of bgp.nodes (no router id of theirs is configured here and bgp.node is not set): not pulling flow state',
      );
      return;
    }
    const peers = bgp.nodes
      .filter((n) => n.name !== self.name && n.adminUrl !== undefined)
      .map((n) => ({ name: n.name, url: n.adminUrl! }));
    if (peers.length === 0) return;
    const token = loadOrCreateToken(bgp.flowSync.tokenFile);
    if (token.warning) logger.warn({ component: 'flow-sync' }, token.warning);
    this.#flowSync = new FlowStateSync({
      peers,
      token: token.token,
      interval: bgp.flowSync.interval,
      startupWait: bgp.flowSync.startupWait,
      ...(bgp.flowSync.ca ? { ca: readFileSync(bgp.flowSync.ca, 'utf8') } : {}),
      planes: () => [...this.#dataPlanes.values()].filter(keepsFlowState),
      logger,
      metrics: this.metrics,
    });
    this.#flowSync.start();
  }

  /**
   * `GET /api/v1/flow-state`: every kernel-plane service's pins, SPIs and peer addresses. One
   * read of the sets serves every request within half a second (all the other nodes pull).
   */
  #flowStateDocument(): Promise<unknown> {
    const now = Date.now();
    // A read still running is shared whatever its age: reads must not pile up on a busy host.
    const cached = this.#flowStateCache;
    if (cached && (cached.pending || now - cached.at < 500)) return cached.doc;
    const doc = (async () => {
      const services: ServiceFlowState[] = [];
      for (const dp of this.#dataPlanes.values()) {
        if (!keepsFlowState(dp)) continue;
        const state = await dp.exportFlowState();
        if (state) services.push(state);
      }
      const self = this.#config.bgp ? localBgpNode(this.#config.bgp) : undefined;
      return {
        ...(self ? { node: self.name } : {}),
        generatedAt: new Date().toISOString(),
        services,
      };
    })();
    const entry = { at: now, doc, pending: true };
    this.#flowStateCache = entry;
    doc.then(
      () => {
        entry.pending = false;
        entry.at = Date.now();
      },
      () => {
        if (this.#flowStateCache === entry) this.#flowStateCache = undefined;
      },
    );
    return doc;
  }

  /**
   * Follows this node's role in the pair (files written by `vpnlb ha start` and keepalived's
   * notify script) for status and metrics. A host that is neither node only gets a warning.
   */
  #startHaStatus(ha: NonNullable<Config['ha']>): HaStatusReader | undefined {
    const { logger } = this.#opts;
    const found = localNode(ha);
    if (!found) {
      logger.warn(
        { component: 'ha' },
        "ha: no sync address of ha.nodes is configured here and ha.node is not set: the pair's role is not shown",
      );
      return undefined;
    }
    const roles = ['active', 'standby', 'fault', 'stopped', 'unknown'] as const;
    const failovers = this.metrics.counter({
      name: 'vpnlb_ha_failovers_total',
      help: "Changes of this node's ownership of the pair's addresses, by new role.",
      labelNames: ['to'],
    });
    const reader = new HaStatusReader(ha, found.self, found.peer, (s, previous) => {
      const level = s.role === 'fault' ? 'warn' : 'info';
      logger[level](
        { component: 'ha', role: s.role, from: previous.role, lastFailover: s.lastFailover },
        `ha: ${found.self.name} is ${s.role} (was ${previous.role})${s.lastFailover ? `: ${s.lastFailover.cause}` : ''}`,
      );
      if ((s.role === 'active') !== (previous.role === 'active') && previous.role !== 'unknown')
        failovers.inc({ to: s.role });
    });
    this.metrics.gauge({
      name: 'vpnlb_ha_role',
      help: "1 for this node's current role in the pair (active, standby, fault, stopped, unknown), else 0.",
      labelNames: ['role'],
      collect() {
        for (const r of roles) this.set({ role: r }, reader.status.role === r ? 1 : 0);
      },
    });
    this.metrics.gauge({
      name: 'vpnlb_ha_sync_entries',
      help: "Connections in conntrackd's internal cache on this node (-1 when conntrackd does not answer).",
      collect() {
        this.set(reader.status.sync.entries ?? -1);
      },
    });
    reader.start();
    return reader;
  }

  /** A one-time URL that logs a browser into the dashboard as operator (the demo prints it). */
  adminLoginUrl(): string | undefined {
    if (!this.#admin || !this.#adminAddress) return undefined;
    return new URL(this.#admin.loginPath('operator'), this.#adminAddress.url).toString();
  }

  #loadCredentials(): AdminCredentials {
    const { logger } = this.#opts;
    const config = this.#config;
    const load = (file: string, role: string) => {
      const t = loadOrCreateToken(file);
      if (t.created)
        logger.info(
          { component: 'admin', file, role },
          `admin ${role} token created in ${file} (mode 0600)`,
        );
      if (t.warning) logger.warn({ component: 'admin', file }, t.warning);
      return t.token;
    };
    const operator = load(config.admin.tokenFile, 'operator');
    const readOnly = config.admin.readOnlyTokenFile
      ? load(config.admin.readOnlyTokenFile, 'read-only')
      : undefined;
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
        const started = performance.now();
        await dp.apply(latest);
        this.#applied.set(s.name, version);
        const ms = Math.round(performance.now() - started);
        // The timeline shows applies that changed forwarding (who gets new clients, whose flows
        // go), not the many snapshots that only refresh a reason.
        const forwarding = forwardingKey(latest);
        if (this.#lastForwarding.get(s.name) !== forwarding) {
          this.#lastForwarding.set(s.name, forwarding);
          this.events.record({
            kind: 'apply',
            severity: 'info',
            service: s.name,
            ms,
            message: `snapshot #${version} applied by the ${dp.status().dataplane} data plane in ${ms} ms (new clients: ${latest.candidates.map((c) => c.name).join(', ') || 'none'})`,
          });
        }
      } catch (err) {
        this.events.record({
          kind: 'apply',
          severity: 'error',
          service: s.name,
          message: `applying snapshot #${version} failed: ${(err as Error).message}; the data plane keeps its previous state`,
        });
        this.#opts.logger.error(
          { component: 'runtime', service: s.name, err },
          `${s.name}: applying snapshot failed; the data plane keeps its previous state`,
        );
      }
    });
    this.#applyChains.set(s.name, next);
  }

  async #startDataPlane(name: string, ctx: RuntimeContext): Promise<void> {
    const s = this.controller.service(name)!;
    const dp = await this.#opts.createDataPlane(s, ctx);
    this.#dataPlanes.set(name, dp);
    await dp.start(s);
    this.#applied.set(name, this.controller.snapshot().version);
    this.#lastForwarding.set(name, forwardingKey(s));
    const st = dp.status();
    this.#opts.logger.info(
      { component: 'runtime', service: name, dataplane: st.dataplane, listeners: st.listeners },
      `${name}: serving on ${st.listeners.join(', ')} (${st.dataplane})`,
    );
  }

  /** Stops one service's data plane after its queued applies. */
  async #stopDataPlane(name: string, options: { keepState?: boolean }): Promise<void> {
    const dp = this.#dataPlanes.get(name);
    if (!dp) return;
    this.#dataPlanes.delete(name);
    await this.#applyChains.get(name);
    this.#applyChains.delete(name);
    this.#applied.delete(name);
    await dp.stop(options);
  }

  #startWatcher(ctx: RuntimeContext): void {
    if (!this.#opts.createWatcher) return;
    this.#watcher = this.#opts.createWatcher(ctx);
    this.#watcher.start();
  }

  /**
   * Re-reads the configuration file and applies only the difference (SIGHUP, `vpnlb reload`,
   * `POST /api/v1/reload`). A file with errors is refused, every problem listed, and nothing
   * changes. Reloads run one at a time.
   *
   * How each difference is applied (docs/operations.md, "Reloading the configuration"):
   * - weights, `enabled`, added backends on the userspace planes, health policy: a new snapshot,
   *   as for a drain — hitless;
   * - removed backends (or a changed address): disabled first (their flows go, as on disable),
   *   then left out;
   * - a kernel-plane service whose backend set or own settings changed, same table: its data
   *   plane is restarted keeping the kernel table, and the new one adopts it (the path of a
   *   control-plane restart: established tunnels keep flowing);
   * - other changed services (userspace planes: ports, timeouts, TLS files...): that service
   *   restarts, which cuts its tunnels — reported as such;
   * - added / removed services: started / stopped;
   * - monitors: restarted with each backend's current verdict (no flap);
   * - the `admin` section: kept until the next start (reported).
   */
  reload(): Promise<ReloadOutcome> {
    const next = this.#reloading.then(() => this.#reload());
    this.#reloading = next.catch(() => ({ ok: false, issues: [], changes: [] }));
    return next;
  }

  async #reload(): Promise<ReloadOutcome> {
    const { logger, configFile } = this.#opts;
    const reloads = this.metrics.counter({
      name: 'vpnlb_config_reloads_total',
      help: 'Configuration reloads, by result (applied, unchanged, refused, failed).',
      labelNames: ['result'],
    });
    if (!configFile)
      return {
        ok: false,
        issues: ['this balancer was not started from a configuration file'],
        changes: [],
      };
    const started = performance.now();
    const checked = checkConfigFile(configFile);
    const issues = checked.issues.map((i) => formatIssue(configFile, i));
    if (!checked.config) {
      reloads.inc({ result: 'refused' });
      logger.error(
        { component: 'runtime', file: configFile, issues },
        `reload refused: ${configFile} has errors; the running configuration stays\n${issues.join('\n')}`,
      );
      this.events.record({
        kind: 'reload',
        severity: 'error',
        message: `reload refused: ${issues.filter((i) => i.includes('error')).length} error(s) in ${configFile}; the running configuration stays`,
      });
      return { ok: false, issues, changes: [] };
    }
    const next = checked.config;
    // Token files are read again (replacing a file's content and reloading rotates a token);
    // their paths are the running configuration's, like the rest of the admin section.
    if (this.#admin && !this.#opts.adminCredentials) {
      try {
        this.#admin.setCredentials(this.#loadCredentials());
      } catch (err) {
        issues.push(`admin tokens not reloaded: ${(err as Error).message}`);
      }
    }
    const diff = diffConfig(this.#config, next);
    if (diff.changes.length === 0) {
      reloads.inc({ result: 'unchanged' });
      logger.info({ component: 'runtime', file: configFile }, 'reload: no change');
      this.events.record({
        kind: 'reload',
        severity: 'info',
        message: 'configuration reloaded: no change',
      });
      return { ok: true, issues, changes: [] };
    }
    try {
      const changes = [...diff.changes];
      // 1. Backends that leave lose their flows the way a disabled one does, on every plane.
      for (const key of diff.backendsRemoved) {
        try {
          this.controller.setAdminState(key, 'disabled');
        } catch {
          /* its pool is gone with it */
        }
      }
      await this.settled();
      // 2. Data planes that cannot take the new configuration as a snapshot.
      const restart: { name: string; keepState: boolean }[] = [];
      for (const name of diff.servicesRemoved) await this.#stopDataPlane(name, {});
      for (const s of this.controller.snapshot().services) {
        if (diff.servicesRemoved.includes(s.name) || !this.#dataPlanes.has(s.name)) continue;
        const after = [...next.services.ikev2, ...next.services.sstp].find(
          (x) => x.name === s.name,
        )!;
        const isKernel = this.#dataPlanes.get(s.name)!.status().dataplane === 'kernel';
        const settingsChanged = diff.servicesChanged.includes(s.name);
        const membersChanged =
          diff.poolsWithNewMembers.includes(s.service.pool) || s.service.pool !== after.pool;
        if (!settingsChanged && !(isKernel && membersChanged)) continue;
        const before = s.service as { table?: string; family: number };
        const keepState =
          isKernel &&
          after.dataplane !== 'userspace' &&
          before.table === after.table &&
          before.family === after.family;
        restart.push({ name: s.name, keepState });
        if (!keepState)
          changes.push(
            `service ${s.name}: restarted with its new settings (its existing tunnels are cut)`,
          );
        else
          changes.push(
            `service ${s.name}: kernel data plane re-adopted its table with the new settings (tunnels keep flowing)`,
          );
      }
      await this.#watcher?.stop();
      for (const r of restart) await this.#stopDataPlane(r.name, { keepState: r.keepState });
      // 3. The new configuration: one snapshot for the planes that stay.
      this.#config = next;
      this.#configWarnings = issues;
      const ctx = this.#context(next);
      if (next.log.level !== logger.level) logger.level = next.log.level;
      this.controller.reconfigure(next);
      // 4. New and restarted services.
      for (const name of [...restart.map((r) => r.name), ...diff.servicesAdded])
        await this.#startDataPlane(name, ctx);
      this.#startWatcher(ctx);
      await this.settled();
      const ms = Math.round(performance.now() - started);
      reloads.inc({ result: 'applied' });
      logger.info(
        { component: 'runtime', file: configFile, changes, ms },
        `configuration reloaded in ${ms} ms:\n  ${changes.join('\n  ')}`,
      );
      this.events.record({
        kind: 'reload',
        severity: 'info',
        ms,
        message: `configuration reloaded in ${ms} ms: ${changes.join('; ')}`,
      });
      return { ok: true, issues, changes };
    } catch (err) {
      reloads.inc({ result: 'failed' });
      logger.error(
        { component: 'runtime', err },
        `reload failed while applying: ${(err as Error).message}`,
      );
      this.events.record({
        kind: 'reload',
        severity: 'error',
        message: `reload failed while applying: ${(err as Error).message}`,
      });
      return {
        ok: false,
        issues: [...issues, `applying failed: ${(err as Error).message}`],
        changes: diff.changes,
      };
    }
  }

  /** One sample of every backend into the 15-minute history (a timer calls it; tests too). */
  sampleHistory(nowMs = Date.now()): void {
    this.history.sample(
      this.controller.snapshot(),
      this.#dataPlanes,
      this.#watcher?.lastProbes?.() ?? new Map(),
      nowMs,
      this.events,
    );
  }

  /** Waits until every queued snapshot has been applied (tests, orderly shutdown). */
  async settled(): Promise<void> {
    await Promise.all(this.#applyChains.values());
  }

  async stop(options: { keepState?: boolean; failedStart?: boolean } = {}): Promise<void> {
    if (this.#historyTimer) clearInterval(this.#historyTimer);
    await this.#flowSync?.stop();
    await this.#watcher?.stop();
    this.#ha?.stop();
    await this.#admin?.close();
    await this.settled();
    for (const [name, dp] of this.#dataPlanes) {
      try {
        await dp.stop(options);
      } catch (err) {
        this.#opts.logger.error(
          { component: 'runtime', service: name, err },
          `${name}: stopping the data plane failed`,
        );
      }
    }
    this.controller.dispose();
    this.controller.removeAllListeners();
  }
}

/** What decides forwarding in a service snapshot: the candidates, their weights, the flushed backends. */
function forwardingKey(s: ServiceSnapshot): string {
  return JSON.stringify([
    s.candidates.map((c) => [c.name, c.address, c.weight]),
    backendsToFlush(s).map((b) => b.name),
  ]);
}

type FlowStateDataPlane = DataPlane &
  FlowStatePlane & { exportFlowState(): Promise<ServiceFlowState | undefined> };

/** Whether a data plane keeps `ike-spi` flow state (the kernel plane does). */
function keepsFlowState(dp: DataPlane): dp is FlowStateDataPlane {
  const d = dp as Partial<FlowStateDataPlane>;
  return typeof d.exportFlowState === 'function' && typeof d.importFlowState === 'function';
}

function fmtHost(h: string): string {
  return h.includes(':') ? `[${h}]` : h;
}
