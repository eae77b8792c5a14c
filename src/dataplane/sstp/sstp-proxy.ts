/**
 * The SSTP data plane: a userspace TCP/TLS proxy on the service's virtual IP and port.
 *
 * Modes (`service.mode`):
 * - `passthrough` (default, the "SSL bridge"): TLS is not terminated; the ClientHello chooses
 *   the backend (TLS-session persistence learned from ServerHellos, source-IP fallback where
 *   TLS 1.3 tickets make sessions opaque), then octets flow unchanged to the server's 443.
 * - `offload`: TLS terminated here with `service.tls`; plain HTTP to the server's 80. RRAS must
 *   be told the front certificate's hash (`vpnlb sstp-offload-hash`).
 * - `reencrypt`: terminated here, TLS again to the server's 443; the server's certificate must
 *   be the front one ([MS-SSTP] crypto binding), checked at start, periodically and on every
 *   connection; a mismatch puts the backend in error (status, log, metric) unless
 *   `allowCertificateMismatch`.
 *
 * Limits (docs/security.md): per-service `maxConnections` (accepted sockets; `auto` derives it
 * from the open-file limit, keeping descriptors in reserve), per-source-address
 * `maxConnectionsPerSource` and `maxNewConnectionsPerSecondPerSource`, per-backend
 * `maxConnections` (tunnels), `handshakeTimeout` (from accept to the server's first octets: a
 * client must complete its hello — slowloris — and a server must answer), a memory budget for
 * hellos not yet complete, `connectTimeout`, `idleTimeout`, and graceful drain: a draining
 * backend gets no new client and its tunnels are closed only when `drainTimeout` passes.
 *
 * Passthrough tunnels, once established, are relayed by the native splice path when its addon
 * is built (sstp-splice.ts; `VPNLB_SSTP_SPLICE=0` disables it), else by two Node pipes. With
 * the splice path, passthrough connections are accepted by the native front
 * (sstp-native-front.ts; `VPNLB_SSTP_NATIVE_FRONT=0` keeps Node's `net` server): the same
 * limits, refusals and decisions, taken here in JavaScript, without a Node socket per connection.
 * Offload runs on the native front too when the addon is built: TLS terminated and tunnels
 * relayed by the OpenSSL inside Node, called from the addon (not in worker processes, whose
 * ticket keys are shared through Node's TLS).
 */
import { readFileSync } from 'node:fs';
import { DEFAULTS } from '../../config/defaults.js';
import net from 'node:net';
import tls from 'node:tls';
import type { ConnectionCounts } from '../../balancer/balancer.js';
import type { SstpService } from '../../config/types.js';
import type { RuntimeContext } from '../../control/runtime-context.js';
import type { ServiceSnapshot, SstpServiceSnapshot } from '../../control/snapshot.js';
import { VpnlbError } from '../../errors.js';
import type {
  BackendCounters,
  DataPlane,
  DataPlaneStatus,
} from '../../control/dataplane-interface.js';
import { certificateMismatch, fetchServerCertificate, pemToDer } from './sstp-certificate-check.js';
import {
  RateLimitedLog,
  sstpMetrics,
  type SstpCloseReason,
  type SstpMetrics,
} from './sstp-metrics.js';
import { PersistenceTable } from './sstp-persistence.js';
import {
  SPLICE_ENV,
  SPLICE_PIPE_SIZE,
  SpliceEngine,
  loadNativeSplice,
  spliceEnabledByEnv,
  spliceInLoop,
  type SpliceMode,
  type SplicePlacement,
} from './sstp-splice.js';
import {
  MAX_PENDING,
  normalizeAddress,
  SstpTunnel,
  TUNNEL_HIGH_WATER_MARK,
  type ProxyTunnel,
  type TunnelHost,
} from './sstp-tunnel.js';
import {
  NATIVE_FRONT_ENV,
  NativeFront,
  NativeTunnel,
  nativeFrontEnabledByEnv,
  type NativeFrontTls,
} from './sstp-native-front.js';
import { getSystemErrorName } from 'node:util';
import { openFileLimit } from '../../platform/open-file-limit.js';
import { SourceRateLimiter } from '../relay/source-rate-limiter.js';
import { listenError } from '../../platform/capabilities.js';

/** How often a re-encrypting proxy re-checks every backend's certificate. */
export const CERTIFICATE_CHECK_INTERVAL_MS = 60_000;
/**
 * How often open tunnels' octet counts reach `vpnlb_sstp_bytes_total` (also at every tunnel
 * close and every status read). Counting per chunk cost more CPU than the relaying itself.
 */
export const BYTES_REPORT_INTERVAL_MS = 5_000;
/** Spliced tunnels when the service sets no `maxConnections` (the addon's table is fixed). */
export const SPLICE_DEFAULT_MAX_TUNNELS = 65_536;
/**
 * A passthrough tunnel moves to the splice path once it has lived this long. SSTP tunnels live
 * for hours; connections that end within a second (probes, failed clients, scanners) would pay
 * the hand-off (~70 µs of CPU) for nothing.
 */
export const SPLICE_AFTER_MS = 1_000;

/**
 * Memory all connections of a service may hold for hellos not yet complete, beyond
 * `SMALL_HELLO_BYTES` each. Real ClientHellos are a few hundred octets to ~2 KiB: they always fit
 * under the small allowance and are never refused for memory; only connections sending large
 * hellos share this budget (a 64 KiB announced hello is legal, but 3,000 of them held at once
 * was 200 MB before this budget — issue 11).
 */
export const MAX_HELLO_BYTES_HELD = 32 * 1024 * 1024;
/** Held hello memory per connection that never counts against `MAX_HELLO_BYTES_HELD`. */
export const SMALL_HELLO_BYTES = 16 * 1024;
/** `maxConnections: auto` when the open-file limit cannot be read (not Linux) or is unlimited. */
export const AUTO_MAX_CONNECTIONS_FALLBACK = 10_000;

/** Options beside the service's configuration (tests, benchmarks). */
export interface SstpProxyOptions {
  /** `auto` (default): the native splice path when it loads, unless `VPNLB_SSTP_SPLICE=0`. */
  readonly splice?: SpliceMode;
  /**
   * `auto` (default): passthrough connections are accepted by the native front
   * (sstp-native-front.ts) when the splice path is on, unless `VPNLB_SSTP_NATIVE_FRONT=0`;
   * `node`: always Node's `net` server (worker processes: their listener is `cluster`'s).
   */
  readonly front?: 'auto' | 'node';
  /** Where the splice path relays (default `auto`: the event loop on one usable CPU, else its thread). */
  readonly splicePlacement?: SplicePlacement;
  /** Age at which a tunnel moves to the splice path (default `SPLICE_AFTER_MS`). */
  readonly spliceAfterMs?: number;
  /** The open-file limit `maxConnections: auto` is derived from (default: the process's). */
  readonly openFileLimit?: number;
  /** Hello memory budget of the service (default `MAX_HELLO_BYTES_HELD`; tests use a smaller one). */
  readonly helloBytesBudget?: number;
  /**
   * Told of each persistence entry learned here (worker processes: the others learn it too,
   * src/dataplane/workers/); `learnReplica` takes theirs.
   */
  readonly onPersistenceLearned?: (
    table: PersistenceTableName,
    key: string,
    backend: string,
  ) => void;
  /** TLS session-ticket keys (48 octets) for the front (offload, reencrypt); default: random per process. */
  readonly ticketKeys?: Buffer;
  /**
   * Worker processes: the native front (passthrough) listens with SO_REUSEPORT beside the other
   * workers' fronts, on `port` (the first worker's, when the service's is 0) or the service's;
   * the kernel spreads the connections. Node's front, where the native one cannot run, listens
   * through `cluster` (round robin in the main process) as before.
   */
  readonly reusePort?: { readonly port?: number };
}

/** The proxy's two persistence tables: TLS session ids and client addresses. */
export type PersistenceTableName = 'sessions' | 'clients';

/**
 * Front TLS settings (offload, reencrypt). AES-GCM first and the server's order honoured: with
 * AES-NI it is the cheapest AEAD per octet for the bulk of a tunnel, and clients (Windows
 * SChannel, OpenSSL) all offer it; X25519 first among key shares (cheapest ECDHE), P-256 for
 * clients without it. Session tickets stay on (Node's default, keys per process) so a
 * reconnecting SSTP client can resume without a full handshake.
 */
export const FRONT_TLS_OPTIONS = {
  honorCipherOrder: true,
  ciphers: [
    'TLS_AES_128_GCM_SHA256',
    'TLS_AES_256_GCM_SHA384',
    'TLS_CHACHA20_POLY1305_SHA256',
    'ECDHE-ECDSA-AES128-GCM-SHA256',
    'ECDHE-RSA-AES128-GCM-SHA256',
    'ECDHE-ECDSA-AES256-GCM-SHA384',
    'ECDHE-RSA-AES256-GCM-SHA384',
    'ECDHE-ECDSA-CHACHA20-POLY1305',
    'ECDHE-RSA-CHACHA20-POLY1305',
  ].join(':'),
  ecdhCurve: 'X25519:P-256:P-384',
  minVersion: 'TLSv1.2',
} as const satisfies tls.SecureContextOptions;

/** FRONT_TLS_OPTIONS in OpenSSL's own terms, for the native front (offload). */
function nativeFrontTls(pem: { cert: Buffer; key: Buffer }): NativeFrontTls {
  const names = FRONT_TLS_OPTIONS.ciphers.split(':');
  return {
    ...pem,
    suites: names.filter((n) => n.startsWith('TLS_')).join(':'),
    ciphers: names.filter((n) => !n.startsWith('TLS_')).join(':'),
    groups: FRONT_TLS_OPTIONS.ecdhCurve,
  };
}

export class SstpProxy implements DataPlane {
  readonly serviceName: string;
  // Immutable after construction.
  readonly #service: SstpService;
  readonly #ctx: RuntimeContext;
  readonly #metrics: SstpMetrics;
  readonly #log: RateLimitedLog;
  readonly #connections: ConnectionCounts;
  readonly #sessions: PersistenceTable;
  readonly #clients: PersistenceTable;
  // Mutable.
  #snapshot: SstpServiceSnapshot | undefined;
  #server: net.Server | undefined;
  #frontContext: tls.SecureContext | undefined;
  readonly #ticketKeys: Buffer | undefined;
  #frontDer: Buffer | undefined;
  /** The front certificate and key as read (the native front loads them into its own TLS). */
  #frontPem: { cert: Buffer; key: Buffer } | undefined;
  readonly #tunnels = new Set<ProxyTunnel>();
  readonly #drainTimers = new Map<string, NodeJS.Timeout>();
  readonly #bytes = new Map<string, { in: number; out: number }>();
  readonly #warnings = new Set<string>();
  #certTimer: NodeJS.Timeout | undefined;
  #bytesTimer: NodeJS.Timeout | undefined;
  /** What every tunnel of this proxy shares (built once at start, not per connection). */
  #host: TunnelHost | undefined;
  #isStopped = false;
  readonly #spliceMode: SpliceMode;
  readonly #frontMode: 'auto' | 'node';
  readonly #reusePort: SstpProxyOptions['reusePort'];
  readonly #splicePlacement: SplicePlacement;
  /** The native front (passthrough), when it accepts instead of `#server`. */
  #front: NativeFront | undefined;
  readonly #spliceAfterMs: number;
  #splice: SpliceEngine | undefined;
  #spliceTimer: NodeJS.Timeout | undefined;
  /** The service's connection limit in force (0: none), `auto` resolved at start. */
  #maxConnections = 0;
  readonly #openFileLimit: number | undefined;
  readonly #helloBytesBudget: number;
  /** Open connections per client address (entries removed at 0). */
  readonly #perSource = new Map<string, number>();
  readonly #sourceRate: SourceRateLimiter | undefined;
  /** Hello memory held beyond `SMALL_HELLO_BYTES` by connections still reading their hello. */
  #helloBytesHeld = 0;

  constructor(service: SstpService, ctx: RuntimeContext, options: SstpProxyOptions = {}) {
    this.#spliceMode = options.splice ?? 'auto';
    this.#frontMode = options.front ?? 'auto';
    this.#reusePort = options.reusePort;
    this.#splicePlacement = options.splicePlacement ?? 'auto';
    this.#spliceAfterMs = options.spliceAfterMs ?? SPLICE_AFTER_MS;
    this.#openFileLimit = 'openFileLimit' in options ? options.openFileLimit : openFileLimit();
    this.#helloBytesBudget = options.helloBytesBudget ?? MAX_HELLO_BYTES_HELD;
    this.#ticketKeys = options.ticketKeys;
    const rate = service.maxNewConnectionsPerSecondPerSource;
    this.#sourceRate =
      rate > 0
        ? new SourceRateLimiter({
            perSecond: rate,
            burst: Math.max(rate, DEFAULTS.sstp.newConnectionBurstPerSource),
          })
        : undefined;
    this.serviceName = service.name;
    this.#service = service;
    this.#ctx = ctx;
    this.#metrics = sstpMetrics(ctx.metrics);
    const logger = ctx.logger.child({ component: 'sstp', service: service.name });
    this.#log = new RateLimitedLog(logger);
    this.#connections = ctx.controller.connections(service.name);
    const learned = options.onPersistenceLearned;
    this.#sessions = new PersistenceTable({
      timeout: service.persistenceTimeout,
      ...(learned ? { onLearn: (k, b) => learned('sessions', k, b) } : {}),
    });
    this.#clients = new PersistenceTable({
      timeout: service.persistenceTimeout,
      ...(learned ? { onLearn: (k, b) => learned('clients', k, b) } : {}),
    });
  }

  /** Takes a persistence entry learned by another worker process. */
  learnReplica(table: PersistenceTableName, key: string, backend: string): void {
    (table === 'sessions' ? this.#sessions : this.#clients).learnReplica(key, backend);
  }

  /** Live persistence entries (a new worker process starts with them). */
  persistenceEntries(): [PersistenceTableName, string, string][] {
    return [
      ...this.#sessions
        .entries()
        .map(([k, b]) => ['sessions', k, b] as [PersistenceTableName, string, string]),
      ...this.#clients
        .entries()
        .map(([k, b]) => ['clients', k, b] as [PersistenceTableName, string, string]),
    ];
  }

  /** The bound port (after `start`); 0 before. */
  port(): number {
    return this.#front?.port() ?? (this.#server?.address() as net.AddressInfo | null)?.port ?? 0;
  }

  /** Open tunnels and connections still in their handshake. */
  openConnections(): number {
    return this.#tunnels.size;
  }

  async start(snapshot: ServiceSnapshot): Promise<void> {
    this.#snapshot = asSstp(snapshot);
    const svc = this.#service;
    if (svc.mode !== 'passthrough') {
      if (!svc.tls)
        throw new VpnlbError(
          'VPNLB_SSTP_TLS_CONFIG',
          `${svc.name}: mode ${svc.mode} needs tls.cert and tls.key`,
          'client',
        );
      try {
        const cert = readFileSync(svc.tls.cert);
        const key = readFileSync(svc.tls.key);
        this.#frontContext = tls.createSecureContext({
          cert,
          key,
          ...FRONT_TLS_OPTIONS,
          ...(this.#ticketKeys ? { ticketKeys: this.#ticketKeys } : {}),
        });
        this.#frontDer = pemToDer(cert);
        this.#frontPem = { cert, key };
      } catch (err) {
        throw new VpnlbError(
          'VPNLB_SSTP_TLS_CONFIG',
          `${svc.name}: cannot load tls.cert / tls.key: ${(err as Error).message}`,
          'client',
          { cause: err },
        );
      }
    }
    this.#maxConnections = this.#resolveMaxConnections();
    if (svc.mode === 'passthrough') this.#openSplice();
    this.#host = this.#tunnelHost();
    if (this.#openNativeFront()) return this.#started();
    // noDelay towards clients: SSTP carries PPP frames, many small and latency-bound, over WAN
    // round trips that Nagle would add to them (the server side keeps Nagle, see sstp-tunnel.ts).
    const server = net.createServer(
      {
        allowHalfOpen: true,
        pauseOnConnect: false,
        noDelay: true,
        highWaterMark: TUNNEL_HIGH_WATER_MARK,
      },
      (s) => this.#accept(s),
    );
    await new Promise<void>((resolve, reject) => {
      server.once('error', (err) =>
        reject(
          listenError(
            `${svc.name}: cannot listen on ${fmt(svc.virtualIp, svc.port)}`,
            svc.port,
            err,
          ),
        ),
      );
      server.listen({ host: svc.virtualIp, port: svc.port, ipv6Only: svc.family === 6 }, () =>
        resolve(),
      );
    });
    server.on('error', (err) =>
      this.#ctx.logger.error(
        { component: 'sstp', service: svc.name, err },
        `${svc.name}: listener error`,
      ),
    );
    this.#server = server;
    await this.#started();
  }

  /** What follows the listener's start, whichever front listens. */
  async #started(): Promise<void> {
    const svc = this.#service;
    this.#bytesTimer = setInterval(() => this.#reportBytes(), BYTES_REPORT_INTERVAL_MS);
    this.#bytesTimer.unref();
    if (this.#snapshot) this.#applyBackendStates(this.#snapshot);
    if (svc.mode === 'reencrypt') {
      await this.checkCertificates();
      this.#certTimer = setInterval(
        () => void this.checkCertificates(),
        CERTIFICATE_CHECK_INTERVAL_MS,
      );
      this.#certTimer.unref();
    }
  }

  async apply(snapshot: ServiceSnapshot): Promise<void> {
    this.#snapshot = asSstp(snapshot);
    this.#applyBackendStates(this.#snapshot);
  }

  async stop(_options: { keepState?: boolean } = {}): Promise<void> {
    this.#isStopped = true;
    if (this.#certTimer) clearInterval(this.#certTimer);
    if (this.#bytesTimer) clearInterval(this.#bytesTimer);
    for (const t of this.#drainTimers.values()) clearTimeout(t);
    this.#drainTimers.clear();
    const server = this.#server;
    if (this.#spliceTimer) clearInterval(this.#spliceTimer);
    for (const t of [...this.#tunnels]) t.close('stopped');
    this.#front?.stop();
    // Every tunnel left the addon above (close removes before closing): join its thread.
    this.#splice?.close();
    this.#metrics.spliced.set({ service: this.serviceName }, 0);
    if (server) await new Promise<void>((r) => server.close(() => r()));
  }

  /** The native front (passthrough): whether it accepts, and the connections still in it. */
  frontStats(): { active: boolean; tracked: number; held: number } {
    return {
      active: this.#front !== undefined,
      ...(this.#front?.counts() ?? { tracked: 0, held: 0 }),
    };
  }

  /** Whether the native splice path relays this proxy's established tunnels. */
  get isSpliceActive(): boolean {
    return this.#splice !== undefined && !this.#splice.isClosed;
  }

  /** The splice path's figures: tunnels in it now, and handed to it since start. */
  spliceStats(): { active: boolean; tunnels: number; handedOff: number } {
    return {
      active: this.isSpliceActive,
      tunnels: this.#splice?.size ?? 0,
      handedOff: this.#splice?.handedOff ?? 0,
    };
  }

  /** Starts the splice engine (passthrough), or says once why tunnels stay Node pipes. */
  #openSplice(): void {
    const svc = this.#service;
    const logger = this.#ctx.logger;
    if (this.#spliceMode === 'off' || !spliceEnabledByEnv()) {
      const why =
        this.#spliceMode === 'off'
          ? 'disabled by the proxy options'
          : `disabled by ${SPLICE_ENV}=${process.env[SPLICE_ENV]}`;
      logger.info(
        { component: 'sstp', service: svc.name, splice: false },
        `${svc.name}: native splice path ${why}; established tunnels are Node pipes`,
      );
      return;
    }
    const engine = SpliceEngine.open(
      this.#maxConnections > 0 ? this.#maxConnections : SPLICE_DEFAULT_MAX_TUNNELS,
      SPLICE_PIPE_SIZE,
      spliceInLoop(this.#splicePlacement),
    );
    if (!(engine instanceof SpliceEngine)) {
      const w = `native splice path unavailable (${engine.unavailable}); established tunnels are Node pipes`;
      this.#warnings.add(w);
      logger.warn({ component: 'sstp', service: svc.name, splice: false }, `${svc.name}: ${w}`);
      return;
    }
    this.#splice = engine;
    logger.info(
      { component: 'sstp', service: svc.name, splice: true, spliceInLoop: engine.inLoop },
      `${svc.name}: established passthrough tunnels are relayed by the native splice path (${engine.inLoop ? 'in the event loop: this process may use one CPU' : 'on its own thread'})`,
    );
    // Idle tunnels: the addon keeps each tunnel's last-activity time; a sweep closes those past
    // idleTimeout (a quarter of it between sweeps, so a tunnel is closed within 1.25 × idleTimeout).
    const every =
      svc.idleTimeout > 0 ? Math.min(1_000, Math.max(25, Math.floor(svc.idleTimeout / 4))) : 1_000;
    this.#spliceTimer = setInterval(() => {
      if (svc.idleTimeout > 0)
        for (const owner of engine.idleOwners(svc.idleTimeout))
          (owner as ProxyTunnel).close('idle-timeout');
      this.#metrics.spliced.set({ service: svc.name }, engine.size);
    }, every);
    this.#spliceTimer.unref();
  }

  /** The connection limit in force (`maxConnections`, `auto` resolved; 0: none). */
  get maxConnections(): number {
    return this.#maxConnections;
  }

  /**
   * `auto`: what the open-file limit allows after the reserve, at `descriptorsPerTunnel` each
   * (a spliced tunnel holds two sockets and two pipes), shared between the SSTP services. A
   * number above that gets a start-up warning: beyond it, accepts and backend connects fail
   * with EMFILE, for every service and for the admin API alike (measured before this limit: one
   * client held 18,024 of 20,000 descriptors and the admin API answered with empty replies).
   */
  #resolveMaxConnections(): number {
    const svc = this.#service;
    const D = DEFAULTS.sstp;
    const sstpServices = Math.max(1, this.#ctx.config.services.sstp.length);
    const soft = this.#openFileLimit;
    const affordable =
      soft === undefined
        ? undefined
        : Math.max(
            1,
            Math.floor((soft - D.reservedDescriptors) / D.descriptorsPerTunnel / sstpServices),
          );
    if (svc.maxConnections === 'auto') {
      const n = affordable ?? AUTO_MAX_CONNECTIONS_FALLBACK;
      this.#ctx.logger.info(
        { component: 'sstp', service: svc.name, maxConnections: n, openFileLimit: soft },
        `${svc.name}: maxConnections auto = ${n} (open-file limit ${soft ?? 'unknown'}, ${D.reservedDescriptors} descriptors reserved, ${D.descriptorsPerTunnel} per tunnel)`,
      );
      return n;
    }
    if (affordable !== undefined && (svc.maxConnections === 0 || svc.maxConnections > affordable)) {
      const text = `maxConnections ${svc.maxConnections === 0 ? '0 (no limit)' : svc.maxConnections} exceeds what the open-file limit ${soft} allows (${affordable}: ${D.descriptorsPerTunnel} descriptors per tunnel, ${D.reservedDescriptors} reserved): clients beyond it fail with EMFILE and can starve the admin API and health probes; raise LimitNOFILE or use maxConnections: auto`;
      this.#warnings.add(text);
      this.#ctx.logger.warn(
        {
          component: 'sstp',
          service: svc.name,
          maxConnections: svc.maxConnections,
          openFileLimit: soft,
        },
        `${svc.name}: ${text}`,
      );
    }
    return svc.maxConnections;
  }

  status(): DataPlaneStatus {
    this.#reportBytes();
    const backends: Record<string, BackendCounters> = {};
    for (const b of this.#snapshot?.backends ?? []) {
      const bytes = this.#bytes.get(b.name) ?? { in: 0, out: 0 };
      backends[b.name] = {
        connections: this.#connections.get(b.name),
        bytesIn: bytes.in,
        bytesOut: bytes.out,
      };
    }
    const addr = this.#front
      ? { address: this.#service.virtualIp, port: this.#front.port() }
      : (this.#server?.address() as net.AddressInfo | null);
    const paths = `${this.#front ? ', native front' : ''}${this.isSpliceActive ? ', splice' : ''}`;
    return {
      dataplane: `sstp-proxy (${this.#service.mode}${paths})`,
      listeners: addr ? [`tcp ${fmt(addr.address, addr.port)}`] : [],
      backends,
      warnings: [...this.#warnings],
    };
  }

  /**
   * Re-encryption: compares every backend's certificate with the front one, marking
   * mismatches in error (and clearing the error once a backend presents the right one).
   * Unreachable backends are left alone: reachability is the health monitor's job.
   */
  async checkCertificates(): Promise<void> {
    const snap = this.#snapshot;
    const front = this.#frontDer;
    if (!snap || !front || this.#service.mode !== 'reencrypt') return;
    await Promise.all(
      snap.backends.map(async (b) => {
        const r = await fetchServerCertificate(b.address, this.#backendPort(), {
          timeoutMs: this.#service.connectTimeout,
        });
        if (!r.ok || this.#isStopped) return;
        const mismatch = certificateMismatch(front, r.der);
        if (mismatch) this.#onCertificateMismatch(b.name, mismatch);
        else if (b.error?.startsWith('certificate differs'))
          this.#ctx.controller.setError(this.serviceName, b.name, undefined);
      }),
    );
  }

  #backendPort(): number {
    return this.#service.backendPort;
  }

  #onCertificateMismatch(backend: string, message: string): void {
    if (this.#service.allowCertificateMismatch) {
      const w = `${backend}: ${message} (allowed by allowCertificateMismatch)`;
      if (!this.#warnings.has(w))
        this.#ctx.logger.warn(
          { component: 'sstp', service: this.serviceName, backend },
          `${this.serviceName}: ${w}`,
        );
      this.#warnings.add(w);
      return;
    }
    const current = this.#snapshot?.backends.find((b) => b.name === backend)?.error;
    if (current !== message)
      this.#ctx.logger.error(
        { component: 'sstp', service: this.serviceName, backend },
        `${this.serviceName}: backend ${backend} refused: ${message}`,
      );
    this.#ctx.controller.setError(this.serviceName, backend, message);
  }

  #accept(socket: net.Socket): void {
    if (this.#isStopped) return void socket.destroy();
    const source = normalizeAddress(socket.remoteAddress ?? '');
    if (!this.#admit(source)) {
      socket.on('error', () => {});
      return void socket.destroy();
    }
    const tunnel = new SstpTunnel(this.#host ?? (this.#host = this.#tunnelHost()), socket);
    this.#tunnels.add(tunnel);
    tunnel.start();
  }

  /**
   * The limits at accept (maxConnections, maxConnectionsPerSource,
   * maxNewConnectionsPerSecondPerSource), for both fronts: true and the source counted, or
   * false with the refusal counted and logged (rate-limited).
   */
  #admit(source: string): boolean {
    const svc = this.#service;
    const max = this.#maxConnections;
    const fromSource = this.#perSource.get(source) ?? 0;
    const refusal: ['service-limit' | 'source-limit' | 'source-rate', string] | undefined =
      max > 0 && this.#tunnels.size >= max
        ? [
            'service-limit',
            `the service has ${this.#tunnels.size} connections (maxConnections ${max})`,
          ]
        : svc.maxConnectionsPerSource > 0 && fromSource >= svc.maxConnectionsPerSource
          ? [
              'source-limit',
              `${fromSource} connections from this address (maxConnectionsPerSource ${svc.maxConnectionsPerSource})`,
            ]
          : this.#sourceRate && !this.#sourceRate.take(source, Date.now())
            ? [
                'source-rate',
                `more than ${svc.maxNewConnectionsPerSecondPerSource} new connections a second from this address (maxNewConnectionsPerSecondPerSource)`,
              ]
            : undefined;
    if (refusal) {
      const [reason, detail] = refusal;
      this.#metrics.rejected.inc({ service: svc.name, reason });
      this.#log.warn(
        reason,
        { component: 'sstp', service: svc.name, client: source },
        `${svc.name}: refused ${source}: ${reason}: ${detail}`,
      );
      return false;
    }
    this.#perSource.set(source, fromSource + 1);
    return true;
  }

  /**
   * Passthrough with the splice path on: listens with the native front (sstp-native-front.ts).
   * False when the Node front listens instead (off, or the front cannot start: said once).
   * A listening error (EADDRINUSE...) is thrown as the Node front would.
   */
  #openNativeFront(): boolean {
    const svc = this.#service;
    const splice = this.#splice;
    const pem = this.#frontPem;
    // Passthrough hands tunnels to the splice engine; offload terminates and relays in the
    // front. Re-encryption, and offload in worker processes (shared ticket keys), stay with Node.
    const offload = svc.mode === 'offload' && pem !== undefined && !this.#ticketKeys;
    if ((!offload && (svc.mode !== 'passthrough' || !splice)) || this.#frontMode === 'node')
      return false;
    const logger = this.#ctx.logger;
    if (!nativeFrontEnabledByEnv()) {
      logger.info(
        { component: 'sstp', service: svc.name, nativeFront: false },
        `${svc.name}: native front disabled by ${NATIVE_FRONT_ENV}=${process.env[NATIVE_FRONT_ENV]}; Node accepts the connections`,
      );
      return false;
    }
    const loaded = splice ? { binding: splice.binding } : loadNativeSplice();
    if ('unavailable' in loaded) {
      const w = `native front unavailable (${loaded.unavailable}); Node accepts the connections and terminates TLS`;
      this.#warnings.add(w);
      logger.warn(
        { component: 'sstp', service: svc.name, nativeFront: false },
        `${svc.name}: ${w}`,
      );
      return false;
    }
    const host = this.#host ?? this.#tunnelHost();
    let front: NativeFront;
    try {
      front = new NativeFront(
        loaded.binding,
        splice,
        {
          address: svc.virtualIp,
          port: this.#reusePort?.port ?? svc.port,
          ...(this.#reusePort ? { reusePort: true } : {}),
          maxConnections: this.#maxConnections,
          maxHelloBytes: MAX_PENDING,
          smallHelloBytes: SMALL_HELLO_BYTES,
          helloBytesBudget: this.#helloBytesBudget,
          ...(offload ? { tls: nativeFrontTls(pem) } : {}),
        },
        {
          accepted: (f, id, address, port) => {
            if (this.#isStopped || !this.#admit(address)) return undefined;
            const t = new NativeTunnel(host, f, id, address, port);
            this.#tunnels.add(t);
            return t;
          },
          acceptFailed: (errno) =>
            this.#log.warn(
              'accept-failed',
              { component: 'sstp', service: svc.name },
              `${svc.name}: accept failed (${getSystemErrorName(-errno)}); listening again shortly`,
            ),
          overflow: () => {
            this.#metrics.rejected.inc({ service: svc.name, reason: 'service-limit' });
            this.#log.warn(
              'service-limit',
              { component: 'sstp', service: svc.name },
              `${svc.name}: refused a client: the native front holds its most connections`,
            );
          },
          helloBytes: (held) => this.#metrics.helloBytes.set({ service: svc.name }, held),
          idleTimeout: () => host.snapshot().service.idleTimeout,
        },
      );
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      if (e.syscall === 'bind' || e.syscall === 'listen')
        throw listenError(
          `${svc.name}: cannot listen on ${fmt(svc.virtualIp, svc.port)}`,
          svc.port,
          e,
        );
      const w = `native front unavailable (${e.message}); Node accepts the connections`;
      this.#warnings.add(w);
      logger.warn(
        { component: 'sstp', service: svc.name, nativeFront: false },
        `${svc.name}: ${w}`,
      );
      return false;
    }
    const shortest = Math.min(
      svc.handshakeTimeout,
      svc.connectTimeout,
      offload && svc.idleTimeout > 0 ? svc.idleTimeout : Number.POSITIVE_INFINITY,
    );
    front.startSweep(Math.min(250, Math.max(25, Math.floor(shortest / 4))));
    this.#front = front;
    logger.info(
      { component: 'sstp', service: svc.name, nativeFront: true },
      offload
        ? `${svc.name}: connections are accepted, TLS terminated and tunnels relayed by the native front`
        : `${svc.name}: connections are accepted, read and dialled by the native front`,
    );
    return true;
  }

  /** Hello memory accounting (see `MAX_HELLO_BYTES_HELD`): false when `to` does not fit. */
  #holdHelloBytes(from: number, to: number): boolean {
    const delta = Math.max(0, to - SMALL_HELLO_BYTES) - Math.max(0, from - SMALL_HELLO_BYTES);
    if (delta > 0 && this.#helloBytesHeld + delta > this.#helloBytesBudget) return false;
    this.#helloBytesHeld += delta;
    this.#metrics.helloBytes.set({ service: this.#service.name }, this.#helloBytesHeld);
    return true;
  }

  #tunnelHost(): TunnelHost {
    const svc = this.#service;
    return {
      serviceName: svc.name,
      snapshot: () => this.#snapshot as SstpServiceSnapshot,
      connections: this.#connections,
      sessions: this.#sessions,
      clients: this.#clients,
      metrics: this.#metrics,
      log: this.#log,
      logger: this.#ctx.logger,
      frontContext: this.#frontContext,
      frontDer: this.#frontDer,
      backendPort: this.#backendPort(),
      splice: this.#splice,
      spliceAfterMs: this.#spliceAfterMs,
      certificateMismatch: (b, m) => this.#onCertificateMismatch(b, m),
      addBytes: (b, toBackend, toClient) => {
        let e = this.#bytes.get(b);
        if (!e) this.#bytes.set(b, (e = { in: 0, out: 0 }));
        e.in += toBackend;
        e.out += toClient;
        if (toBackend > 0)
          this.#metrics.bytes.inc(
            { service: svc.name, backend: b, direction: 'to-backend' },
            toBackend,
          );
        if (toClient > 0)
          this.#metrics.bytes.inc(
            { service: svc.name, backend: b, direction: 'to-client' },
            toClient,
          );
      },
      holdHelloBytes: (from, to) => this.#holdHelloBytes(from, to),
      removed: (t) => {
        if (!this.#tunnels.delete(t)) return;
        const n = (this.#perSource.get(t.clientAddress) ?? 1) - 1;
        if (n > 0) this.#perSource.set(t.clientAddress, n);
        else this.#perSource.delete(t.clientAddress);
      },
    };
  }

  /** Brings the byte counters (status and metric) up to date with every open tunnel. */
  #reportBytes(): void {
    for (const t of this.#tunnels) t.reportBytes();
  }

  /** Drain deadlines, and tunnels of backends that left (down, disabled, removed). */
  #applyBackendStates(snap: SstpServiceSnapshot): void {
    const byName = new Map(snap.backends.map((b) => [b.name, b]));
    for (const b of snap.backends) {
      if (b.state === 'draining') {
        if (!this.#drainTimers.has(b.name)) {
          const timer = setTimeout(() => {
            this.#drainTimers.delete(b.name);
            this.#closeBackend(b.name, 'drain-timeout');
          }, this.#service.drainTimeout);
          timer.unref();
          this.#drainTimers.set(b.name, timer);
          this.#ctx.logger.info(
            {
              component: 'sstp',
              service: this.serviceName,
              backend: b.name,
              tunnels: this.#connections.get(b.name),
            },
            `${this.serviceName}: draining ${b.name}: ${this.#connections.get(b.name)} tunnels stay until they end or ${this.#service.drainTimeout} ms pass`,
          );
        }
      } else {
        const t = this.#drainTimers.get(b.name);
        if (t) clearTimeout(t);
        this.#drainTimers.delete(b.name);
      }
      if (b.state === 'disabled') this.#closeBackend(b.name, 'backend-disabled');
      else if (b.state === 'down') this.#closeBackend(b.name, 'backend-down');
    }
    for (const t of this.#tunnels)
      if (t.backend && !byName.has(t.backend)) t.close('backend-removed');
  }

  #closeBackend(name: string, reason: SstpCloseReason): void {
    for (const t of [...this.#tunnels])
      if (t.backend === name && (t.state === 'open' || t.state === 'connecting')) t.close(reason);
    if (reason !== 'drain-timeout') {
      this.#sessions.forgetBackend(name);
      this.#clients.forgetBackend(name);
    }
  }
}

function asSstp(s: ServiceSnapshot): SstpServiceSnapshot {
  if (s.kind !== 'sstp')
    throw new VpnlbError(
      'VPNLB_DATAPLANE_APPLY',
      `${s.name}: the SSTP proxy got a ${s.kind} snapshot`,
      'internal',
    );
  return s;
}

function fmt(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}
