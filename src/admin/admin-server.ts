/**
 * The admin listener (127.0.0.1 by default, optionally HTTPS, optionally a Unix socket for the
 * CLI): status, metrics, operator actions, reload, and the "which server will this client get?"
 * simulator, behind a token. docs/operations.md, "Securing the admin API", explains the model.
 *
 *   GET  /api/v1/status                      services, backends (state, reason, counters), warnings
 *   GET  /metrics                            Prometheus exposition (no token with `admin.metrics: open`)
 *   GET  /api/v1/which?service=S&client=IP[&spi=HEX][&nattServers=NAME,...[&nattFlows=N]]
 *   GET  /api/v1/events                      the event timeline
 *   GET  /api/v1/history                     the last 15 minutes of rates, per backend
 *   GET  /api/v1/flow-state                  ike-spi pins, SPIs and peers (ECMP nodes, `bgp.flowSync`)
 *   POST /api/v1/backends/NAME/(drain|disable|enable)    NAME or POOL/NAME (URL-encoded)  [operator]
 *   POST /api/v1/reload                      re-read the configuration file             [operator]
 *   POST /api/v1/login {token} · POST /api/v1/logout · GET /api/v1/session   (dashboard)
 *   GET  /login?ticket=T                     one-time login link (`vpnlb demo`)
 *   GET  /healthz                            without a token when `admin.healthEndpoint`
 *   GET  /  and /assets/…                    the dashboard (a page without data: it logs in first)
 *
 * Who may do what (HAProxy's stats socket levels `user` / `operator`, Envoy's "admin is
 * localhost-only, mutations are POST"): a bearer token (RFC 6750) or a dashboard session
 * grants `read-only` or `operator`; a connection on the Unix socket is `operator` (its file
 * mode 0600 is the authentication, as for HAProxy's `stats socket … mode 600`).
 */
import {
  createServer as createHttpServer,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { chmodSync, lstatSync, mkdirSync, readFileSync, unlinkSync } from 'node:fs';
import { dirname } from 'node:path';
import type { AddressInfo, Socket } from 'node:net';
import { isIP } from 'node:net';
import type { Counter } from 'prom-client';
import type { AdminConfig } from '../config/types.js';
import { DEFAULTS } from '../config/defaults.js';
import type { Controller } from '../control/controller.js';
import { whichAnswer } from '../control/decide.js';
import type { AdminState } from '../control/snapshot.js';
import type { DataPlane } from '../control/dataplane-interface.js';
import { VpnlbError, type ErrorCode } from '../errors.js';
import type { Logger } from '../log/logger.js';
import type { AdminCredentials, AdminRole } from './credentials.js';
import type { Metrics } from '../observability/metrics.js';
import { SessionStore, type Session } from './sessions.js';
import {
  bearerToken,
  cookieValue,
  crossSiteReason,
  isAllowedHost,
  setSecurityHeaders,
} from './request-guard.js';
import { buildStatus } from './status.js';
import { WebAssets } from './web-assets.js';

/** What `POST /api/v1/reload` reports. */
export interface ReloadOutcome {
  readonly ok: boolean;
  /** `file:line:col: error: path: message` lines when refused; warnings when applied. */
  readonly issues: readonly string[];
  /** What changed, one line per difference (empty when the file was unchanged). */
  readonly changes: readonly string[];
}

export interface AdminServerOptions {
  readonly controller: () => Controller;
  readonly metrics: Metrics;
  readonly logger: Logger;
  readonly credentials: AdminCredentials;
  /** Security settings of the listener (the configuration's `admin` section). */
  readonly security: Pick<
    AdminConfig,
    'allowedHosts' | 'metrics' | 'healthEndpoint' | 'maxConnections' | 'sessionTimeout' | 'tls'
  >;
  /** Data planes by service name (for counters and warnings in status). */
  readonly dataPlanes: () => ReadonlyMap<string, DataPlane>;
  /** Per service, the snapshot version its data plane has finished applying. */
  readonly appliedVersions?: () => ReadonlyMap<string, number>;
  /** The latest health probe per `service/backend`. */
  readonly lastProbes?: () => ReadonlyMap<string, unknown>;
  /** Process-wide warnings (configuration warnings, degraded modes). */
  readonly warnings: () => readonly string[];
  /** Re-reads and applies the configuration file (absent: reload is not possible, e.g. the demo). */
  readonly reload?: () => Promise<ReloadOutcome>;
  /** The event timeline, newest last. */
  readonly events?: () => readonly unknown[];
  /** Records an operator action in the timeline. */
  readonly onAction?: (action: {
    backend: string;
    action: string;
    via: string;
    message: string;
  }) => void;
  /** The rate history document. */
  readonly history?: () => unknown;
  readonly startedAt: Date;
  /** This node's role in an active/standby pair, when there is one. */
  readonly ha?: () => unknown;
  /** This node's announcements behind ECMP (`bgp:` configured). */
  readonly bgp?: () => unknown;
  /** This node's `ike-spi` flow state, for the other nodes of the farm (`bgp.flowSync`). */
  readonly flowState?: () => Promise<unknown>;
}

type Via = 'tcp' | 'socket';

interface Auth {
  readonly role: AdminRole;
  readonly how: 'bearer' | 'session' | 'socket';
  readonly session?: Session;
}

interface Request {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly via: Via;
  readonly isTls: boolean;
}

/** Why a request was refused: the `reason` label of `vpnlb_admin_requests_refused_total`. */
type RefusalReason =
  | 'host'
  | 'cross-site'
  | 'token'
  | 'role'
  | 'csrf'
  | 'login'
  | 'body'
  | 'url'
  | 'method'
  | 'connections';

const ACTIONS: Readonly<Record<string, AdminState>> = {
  drain: 'draining',
  disable: 'disabled',
  enable: 'enabled',
};

export class AdminServer {
  readonly #opts: AdminServerOptions;
  #credentials: AdminCredentials;
  readonly #sessions: SessionStore;
  readonly #refused: Counter<'reason'>;
  readonly #assets = new WebAssets();
  readonly #servers: Server[] = [];
  #socketPath: string | undefined;
  #cookieName = 'vpnlb_session';

  constructor(options: AdminServerOptions) {
    this.#opts = options;
    this.#credentials = options.credentials;
    this.#sessions = new SessionStore(options.security.sessionTimeout);
    this.#refused = options.metrics.counter({
      name: 'vpnlb_admin_requests_refused_total',
      help: 'Admin requests refused, by reason (host, cross-site, token, role, csrf, login, body, url, method, connections).',
      labelNames: ['reason'],
    });
  }

  /** Listens on TCP (HTTPS with `security.tls`); resolves with the bound address (port 0 picks one). */
  async listen(host: string, port: number): Promise<AddressInfo> {
    const tls = this.#opts.security.tls;
    const server = tls
      ? createHttpsServer(
          { ...this.#serverOptions(), cert: readFileSync(tls.cert), key: readFileSync(tls.key) },
          (req, res) => this.#dispatch({ req, res, via: 'tcp', isTls: true }),
        )
      : createHttpServer(this.#serverOptions(), (req, res) =>
          this.#dispatch({ req, res, via: 'tcp', isTls: false }),
        );
    this.#limit(server);
    await this.#bind(server, `${host}:${port}`, (cb) => server.listen(port, host, cb));
    const addr = server.address() as AddressInfo;
    // One cookie per listener: browsers share cookies across the ports of one host.
    this.#cookieName = `vpnlb_session_${addr.port}`;
    return addr;
  }

  /** Listens on a Unix socket, mode 0600 in a 0700 directory (the CLI on the balancer host). */
  async listenSocket(path: string): Promise<void> {
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    try {
      // A socket left by a killed vpnlb blocks bind(2); anything else at that path is kept.
      if (lstatSync(path).isSocket()) unlinkSync(path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    const server = createHttpServer(this.#serverOptions(), (req, res) =>
      this.#dispatch({ req, res, via: 'socket', isTls: false }),
    );
    this.#limit(server);
    // The umask makes bind(2) create the socket 0600 from the start (no window before chmod).
    const umask = process.umask(0o177);
    try {
      await this.#bind(server, path, (cb) => server.listen(path, cb));
    } finally {
      process.umask(umask);
    }
    chmodSync(path, 0o600);
    this.#socketPath = path;
  }

  /** New tokens (a reload re-reads the token files); dashboard sessions already open stay. */
  setCredentials(credentials: AdminCredentials): void {
    this.#credentials = credentials;
  }

  /** A one-time URL path that logs a browser in as `role` (`vpnlb demo` prints it). */
  loginPath(role: AdminRole = 'operator'): string {
    return `/login?ticket=${this.#sessions.issueTicket(role)}`;
  }

  async close(): Promise<void> {
    await Promise.all(
      this.#servers.map((server) => {
        server.closeAllConnections();
        return new Promise<void>((resolve) => server.close(() => resolve()));
      }),
    );
    this.#servers.length = 0;
    if (this.#socketPath) {
      try {
        unlinkSync(this.#socketPath);
      } catch {
        /* already gone */
      }
    }
  }

  #serverOptions() {
    const D = DEFAULTS.admin;
    // Node's defaults (60 s for headers, 300 s per request, no connection cap) let a few
    // thousand slow clients hold the listener; the checks run every second, not every 30 s.
    return {
      headersTimeout: D.headersTimeout,
      requestTimeout: D.requestTimeout,
      keepAliveTimeout: D.keepAliveTimeout,
      connectionsCheckingInterval: 1_000,
      maxHeaderSize: 8 * 1024,
    };
  }

  #limit(server: Server): void {
    server.maxConnections = this.#opts.security.maxConnections;
    server.maxHeadersCount = 64;
    server.setTimeout(DEFAULTS.admin.requestTimeout);
    // Node closes connections beyond `maxConnections` at once and tells us here (counted only:
    // a flood must not become a flood of log lines).
    server.on('drop', () => this.#refused.inc({ reason: 'connections' }));
    server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => {
      // As Node's default handler, but never with a body that echoes the input: 408 for a
      // request that was too slow, 431 for oversized headers, 400 for unparseable ones.
      const status =
        err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
          ? '408 Request Timeout'
          : err.code === 'HPE_HEADER_OVERFLOW'
            ? '431 Request Header Fields Too Large'
            : '400 Bad Request';
      this.#opts.logger.debug(
        { component: 'admin', code: err.code },
        `admin connection closed: ${status}`,
      );
      if (socket.writable && err.code !== 'ECONNRESET')
        socket.end(`HTTP/1.1 ${status}\r\nconnection: close\r\n\r\n`);
      else socket.destroy();
    });
    this.#servers.push(server);
  }

  async #bind(server: Server, where: string, listen: (cb: () => void) => void): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      server.once('error', (err) =>
        reject(
          new VpnlbError(
            'VPNLB_ADMIN_LISTEN',
            `admin listener ${where}: ${err.message}`,
            'internal',
            { cause: err },
          ),
        ),
      );
      listen(() => resolve());
    });
  }

  #dispatch(r: Request): void {
    setSecurityHeaders(r.res, r.isTls, r.req.headers.host);
    this.#handle(r).catch((err: unknown) => {
      this.#opts.logger.error({ component: 'admin', err }, 'admin request failed');
      if (!r.res.headersSent) send(r.res, 500, { error: 'internal error', code: 'VPNLB_INTERNAL' });
      else r.res.destroy();
    });
  }

  async #handle(r: Request): Promise<void> {
    const { req, res } = r;
    if (r.via === 'tcp' && !isAllowedHost(req.headers.host, this.#opts.security.allowedHosts)) {
      return this.#refuse(
        r,
        403,
        'VPNLB_ADMIN_FORBIDDEN',
        'host',
        `Host "${req.headers.host ?? ''}" is not an address of this listener (set admin.allowedHosts to use a name)`,
      );
    }
    let path: string;
    let url: URL;
    try {
      url = new URL(req.url ?? '/', 'http://admin');
      path = url.pathname;
    } catch {
      return this.#refuse(r, 400, 'VPNLB_ADMIN_BAD_REQUEST', 'url', 'malformed request target');
    }
    const method = req.method ?? 'GET';
    const isRead = method === 'GET' || method === 'HEAD';

    // Routes that need no credentials: the page shell and its assets hold no data.
    if (isRead && (path === '/' || path === '/dashboard')) return this.#asset(res, 'index.html');
    if (isRead && path.startsWith('/assets/'))
      return this.#asset(res, path.slice('/assets/'.length));
    if (isRead && path === '/healthz' && this.#opts.security.healthEndpoint)
      return send(res, 200, { status: 'ok' });
    if (isRead && path === '/login') return this.#ticketLogin(r, url);
    if (path === '/api/v1/login') {
      if (method !== 'POST')
        return this.#refuse(r, 405, 'VPNLB_ADMIN_BAD_REQUEST', 'method', 'use POST');
      return this.#login(r);
    }
    if (isRead && path === '/metrics' && this.#opts.security.metrics === 'open')
      return this.#metrics(res);
    // The dashboard asks whether it is logged in: "no" is an answer, not an error.
    if (isRead && path === '/api/v1/session' && !this.#authenticate(r))
      return send(res, 200, { role: null, csrf: null, expiresAt: null });

    const auth = this.#authenticate(r);
    if (!auth) {
      res.setHeader('www-authenticate', 'Bearer realm="vpnlb"');
      return this.#refuse(
        r,
        401,
        'VPNLB_ADMIN_UNAUTHORIZED',
        'token',
        req.headers.authorization
          ? 'wrong token'
          : 'no token (Authorization: Bearer TOKEN, or log in on the dashboard)',
      );
    }
    if (!isRead) {
      const crossSite = crossSiteReason(req, r.isTls);
      if (crossSite)
        return this.#refuse(
          r,
          403,
          'VPNLB_ADMIN_FORBIDDEN',
          'cross-site',
          `cross-site request refused (${crossSite})`,
        );
      // A browser's cookie rides along on any request to this host; the CSRF token in a header
      // proves the request came from the dashboard's own script.
      if (auth.how === 'session' && req.headers['x-csrf-token'] !== auth.session!.csrf) {
        return this.#refuse(
          r,
          403,
          'VPNLB_ADMIN_FORBIDDEN',
          'csrf',
          'missing or wrong X-CSRF-Token',
        );
      }
    }

    if (isRead && path === '/api/v1/session')
      return send(res, 200, {
        role: auth.role,
        csrf: auth.session?.csrf ?? null,
        expiresAt: auth.session ? new Date(auth.session.expiresAt).toISOString() : null,
      });
    if (isRead && path === '/api/v1/status') return send(res, 200, this.#status());
    if (isRead && path === '/metrics') return this.#metrics(res);
    if (isRead && path === '/api/v1/which') return this.#which(url, res);
    if (isRead && path === '/api/v1/flow-state' && this.#opts.flowState)
      return send(res, 200, await this.#opts.flowState());
    if (isRead && path === '/api/v1/events')
      return send(res, 200, { events: this.#opts.events?.() ?? [] });
    if (isRead && path === '/api/v1/history')
      return send(res, 200, this.#opts.history?.() ?? { series: [] });
    if (path === '/api/v1/logout' && method === 'POST') {
      if (auth.session) this.#sessions.delete(auth.session.id);
      res.setHeader('set-cookie', this.#cookie('', 0, r.isTls));
      return send(res, 200, { loggedOut: true });
    }

    const action = /^\/api\/v1\/backends\/([^/]+)\/(drain|disable|enable)$/.exec(path);
    if (action || path === '/api/v1/reload') {
      if (method !== 'POST')
        return this.#refuse(r, 405, 'VPNLB_ADMIN_BAD_REQUEST', 'method', 'use POST');
      if (auth.role !== 'operator')
        return this.#refuse(
          r,
          403,
          'VPNLB_ADMIN_FORBIDDEN',
          'role',
          `a ${auth.role} token cannot ${action ? action[2] : 'reload'}: use the operator token`,
        );
      // Actions take no body; one is read (bounded) and dropped so that keep-alive stays usable.
      await this.#readBody(r);
      if (res.writableEnded) return;
      if (!action) return this.#reload(r, auth);
      let ref: string;
      try {
        ref = decodeURIComponent(action[1]!);
      } catch {
        return this.#refuse(
          r,
          400,
          'VPNLB_ADMIN_BAD_REQUEST',
          'url',
          `malformed percent-encoding in backend name "${action[1]}"`,
        );
      }
      return this.#backendAction(r, auth, ref, action[2]!);
    }
    send(res, 404, { error: `no route ${method} ${path}`, code: 'VPNLB_ADMIN_BAD_REQUEST' });
  }

  #authenticate(r: Request): Auth | undefined {
    if (r.via === 'socket') return { role: 'operator', how: 'socket' };
    const header = r.req.headers.authorization;
    if (header !== undefined) {
      const token = bearerToken(header);
      const role = token === undefined ? undefined : this.#credentials.roleOf(token);
      return role ? { role, how: 'bearer' } : undefined;
    }
    const session = this.#sessions.get(cookieValue(r.req.headers.cookie, this.#cookieName));
    return session ? { role: session.role, how: 'session', session } : undefined;
  }

  async #login(r: Request): Promise<void> {
    const crossSite = crossSiteReason(r.req, r.isTls);
    if (crossSite)
      return this.#refuse(
        r,
        403,
        'VPNLB_ADMIN_FORBIDDEN',
        'cross-site',
        `cross-site login refused (${crossSite})`,
      );
    // JSON only: an HTML form on another site cannot send application/json without CORS.
    if (!/^application\/json\b/i.test(r.req.headers['content-type'] ?? '')) {
      return this.#refuse(
        r,
        415,
        'VPNLB_ADMIN_BAD_REQUEST',
        'login',
        'log in with a JSON body {"token": "..."}',
      );
    }
    const body = await this.#readBody(r);
    if (body === undefined) return;
    let token: unknown;
    try {
      token = (JSON.parse(body) as { token?: unknown }).token;
    } catch {
      return this.#refuse(r, 400, 'VPNLB_ADMIN_BAD_REQUEST', 'login', 'the body is not JSON');
    }
    const role = typeof token === 'string' ? this.#credentials.roleOf(token) : undefined;
    if (!role)
      return this.#refuse(r, 401, 'VPNLB_ADMIN_UNAUTHORIZED', 'login', 'login with a wrong token');
    const session = this.#sessions.create(role);
    this.#opts.logger.info(
      { component: 'admin', role, remote: remote(r) },
      `dashboard login (${role})`,
    );
    r.res.setHeader('set-cookie', this.#cookie(session.id, this.#sessions.ttlMs, r.isTls));
    send(r.res, 200, {
      role,
      csrf: session.csrf,
      expiresAt: new Date(session.expiresAt).toISOString(),
    });
  }

  #ticketLogin(r: Request, url: URL): void {
    const session = this.#sessions.redeemTicket(url.searchParams.get('ticket') ?? '');
    if (!session) {
      this.#refusedLog(r, 'login', 'unknown or used login ticket');
    } else {
      this.#opts.logger.info(
        { component: 'admin', role: session.role, remote: remote(r) },
        `dashboard login with a one-time ticket (${session.role})`,
      );
      r.res.setHeader('set-cookie', this.#cookie(session.id, this.#sessions.ttlMs, r.isTls));
    }
    r.res.writeHead(303, { location: '/' });
    r.res.end();
  }

  #cookie(value: string, ttlMs: number, isTls: boolean): string {
    return `${this.#cookieName}=${value}; Path=/; HttpOnly; SameSite=Strict; Max-Age=${Math.floor(ttlMs / 1000)}${isTls ? '; Secure' : ''}`;
  }

  #backendAction(r: Request, auth: Auth, ref: string, action: string): void {
    try {
      const backends = this.#opts.controller().setAdminState(ref, ACTIONS[action]!);
      this.#opts.logger.info(
        {
          component: 'admin',
          backend: ref,
          action,
          role: auth.role,
          via: auth.how,
          remote: remote(r),
        },
        `backend ${ref}: ${action} by the administrator`,
      );
      this.#opts.onAction?.({
        backend: ref,
        action,
        via: auth.how,
        message: `${action} ${ref} by the administrator (${auth.how === 'session' ? 'dashboard' : auth.how === 'socket' ? 'CLI on the socket' : 'API token'})`,
      });
      send(r.res, 200, { backend: ref, action, backends });
    } catch (err) {
      if (err instanceof VpnlbError)
        return send(r.res, 404, { error: err.message, code: err.code });
      throw err;
    }
  }

  async #reload(r: Request, auth: Auth): Promise<void> {
    if (!this.#opts.reload)
      return send(r.res, 409, {
        error: 'this balancer was not started from a configuration file: nothing to reload',
        code: 'VPNLB_ADMIN_BAD_REQUEST',
      });
    this.#opts.logger.info(
      { component: 'admin', via: auth.how, remote: remote(r) },
      'configuration reload requested',
    );
    const outcome = await this.#opts.reload();
    send(
      r.res,
      outcome.ok ? 200 : 422,
      outcome.ok
        ? outcome
        : {
            ...outcome,
            error: 'the configuration file has errors: the running configuration stays',
            code: 'VPNLB_CONFIG_INVALID',
          },
    );
  }

  #status() {
    const o = this.#opts;
    return buildStatus(
      o.controller(),
      o.dataPlanes(),
      o.warnings(),
      o.startedAt,
      o.appliedVersions?.(),
      o.lastProbes?.(),
      o.ha?.(),
      o.bgp?.(),
    );
  }

  async #metrics(res: ServerResponse): Promise<void> {
    res.writeHead(200, { 'content-type': this.#opts.metrics.registry.contentType });
    res.end(await this.#opts.metrics.text());
  }

  #asset(res: ServerResponse, name: string): void {
    const asset = this.#assets.get(name);
    if (!asset)
      return send(res, 404, { error: `no asset ${name}`, code: 'VPNLB_ADMIN_BAD_REQUEST' });
    res.writeHead(200, { 'content-type': asset.contentType, 'cache-control': 'no-cache' });
    res.end(asset.body);
  }

  /** Reads a request body of at most `maxBodyBytes`; answers 413 and resolves undefined beyond. */
  async #readBody(r: Request): Promise<string | undefined> {
    const limit = DEFAULTS.admin.maxBodyBytes;
    const declared = Number(r.req.headers['content-length'] ?? 0);
    if (declared > limit) {
      this.#refuse(
        r,
        413,
        'VPNLB_ADMIN_BAD_REQUEST',
        'body',
        `body of ${declared} bytes (limit ${limit})`,
      );
      r.req.resume();
      return undefined;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of r.req) {
      size += (chunk as Buffer).length;
      if (size > limit) {
        this.#refuse(r, 413, 'VPNLB_ADMIN_BAD_REQUEST', 'body', `body over ${limit} bytes`);
        r.req.destroy();
        return undefined;
      }
      chunks.push(chunk as Buffer);
    }
    return Buffer.concat(chunks).toString('utf8');
  }

  #which(url: URL, res: ServerResponse): void {
    const client = url.searchParams.get('client') ?? '';
    const spiHex = url.searchParams.get('spi');
    const serviceName = url.searchParams.get('service');
    if (isIP(client) === 0)
      return send(res, 400, {
        error: 'client must be an IP address',
        code: 'VPNLB_ADMIN_BAD_REQUEST',
      });
    if (spiHex !== null && spiHex !== '' && !/^(0x)?[0-9a-fA-F]{16}$/.test(spiHex)) {
      return send(res, 400, {
        error: 'spi must be 16 hex digits (the 8-byte IKE initiator SPI)',
        code: 'VPNLB_ADMIN_BAD_REQUEST',
      });
    }
    const spi = spiHex ? Buffer.from(spiHex.replace(/^0x/, ''), 'hex') : undefined;
    const services = this.#opts
      .controller()
      .snapshot()
      .services.filter((s) => !serviceName || s.name === serviceName);
    const natt = url.searchParams.get('nattServers');
    const natTServers = natt ? natt.split(',').filter(Boolean) : undefined;
    const flows = url.searchParams.get('nattFlows');
    if (flows !== null && !/^\d+$/.test(flows))
      return send(res, 400, {
        error: 'nattFlows must be a count of flows',
        code: 'VPNLB_ADMIN_BAD_REQUEST',
      });
    const answers = services.map((s) =>
      whichAnswer(s, client, spi, natTServers, flows === null ? undefined : Number(flows)),
    );
    send(res, 200, { client, spi: spiHex || null, answers });
  }

  #refuse(
    r: Request,
    status: number,
    code: ErrorCode,
    reason: RefusalReason,
    message: string,
  ): void {
    this.#refusedLog(r, reason, message);
    if (!r.res.headersSent) send(r.res, status, { error: message, code });
  }

  #refusedLog(r: Request, reason: RefusalReason, message: string): void {
    this.#refused.inc({ reason });
    const { req } = r;
    this.#opts.logger.warn(
      {
        component: 'admin',
        reason,
        method: req.method,
        path: (req.url ?? '').slice(0, 200),
        host: req.headers.host,
        origin: req.headers.origin,
        remote: remote(r),
      },
      `admin request refused: ${message}`,
    );
  }
}

function remote(r: Request): string {
  return r.via === 'socket'
    ? 'unix socket'
    : `${r.req.socket.remoteAddress ?? '?'}:${r.req.socket.remotePort ?? '?'}`;
}

function send(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body, null, 2) + '\n');
}
