/**
 * The admin HTTP listener (127.0.0.1 by default): status, metrics, operator actions, and the
 * "which server will this client get?" simulator.
 *
 *   GET  /api/v1/status                      services, backends (state, reason, counters), warnings
 *   GET  /metrics                            Prometheus exposition
 *   GET  /api/v1/which?service=S&client=IP[&spi=HEX][&nattServers=NAME,...]
 *   POST /api/v1/backends/NAME/(drain|disable|enable)    NAME or POOL/NAME (URL-encoded)
 *   GET  /                                   the live dashboard
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { isIP } from 'node:net';
import type { Controller } from '../control/controller.js';
import { whichAnswer } from '../control/decide.js';
import type { AdminState } from '../control/snapshot.js';
import type { DataPlane } from '../dataplane/dataplane.js';
import { VpnlbError } from '../errors.js';
import type { Logger } from '../log/logger.js';
import type { Metrics } from './metrics.js';
import { buildStatus } from './status.js';
import { DASHBOARD_HTML } from './dashboard.js';

export interface AdminServerOptions {
  readonly controller: Controller;
  readonly metrics: Metrics;
  readonly logger: Logger;
  /** Data planes by service name (for counters and warnings in status). */
  readonly dataPlanes: () => ReadonlyMap<string, DataPlane>;
  /** Per service, the snapshot version its data plane has finished applying. */
  readonly appliedVersions?: () => ReadonlyMap<string, number>;
  /** The latest health probe per `service/backend`. */
  readonly lastProbes?: () => ReadonlyMap<string, unknown>;
  /** Process-wide warnings (configuration warnings, degraded modes). */
  readonly warnings: () => readonly string[];
  readonly startedAt: Date;
  /** This node's role in an active/standby pair, when there is one. */
  readonly ha?: () => unknown;
}

export class AdminServer {
  readonly #opts: AdminServerOptions;
  #server: Server | undefined;

  constructor(options: AdminServerOptions) {
    this.#opts = options;
  }

  /** Listens; resolves with the bound address (port 0 picks a free port). */
  async listen(host: string, port: number): Promise<AddressInfo> {
    const server = createServer((req, res) => {
      this.#handle(req, res).catch((err: unknown) => {
        this.#opts.logger.error({ err }, 'admin request failed');
        send(res, 500, { error: 'internal error', code: 'VPNLB_INTERNAL' });
      });
    });
    this.#server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', (err) =>
        reject(new VpnlbError('VPNLB_ADMIN_LISTEN', `admin listener ${host}:${port}: ${err.message}`, 'internal', { cause: err })),
      );
      server.listen(port, host, () => resolve());
    });
    return server.address() as AddressInfo;
  }

  async close(): Promise<void> {
    const server = this.#server;
    if (!server) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://admin');
    const { controller } = this.#opts;
    if (req.method === 'GET' && url.pathname === '/api/v1/status') {
      return send(res, 200, buildStatus(controller, this.#opts.dataPlanes(), this.#opts.warnings(), this.#opts.startedAt, this.#opts.appliedVersions?.(), this.#opts.lastProbes?.(), this.#opts.ha?.()));
    }
    if (req.method === 'GET' && url.pathname === '/metrics') {
      res.writeHead(200, { 'content-type': this.#opts.metrics.registry.contentType });
      res.end(await this.#opts.metrics.text());
      return;
    }
    if (req.method === 'GET' && url.pathname === '/api/v1/which') {
      return this.#which(url, res);
    }
    const action = /^\/api\/v1\/backends\/([^/]+)\/(drain|disable|enable)$/.exec(url.pathname);
    if (action) {
      if (req.method !== 'POST') return send(res, 405, { error: 'use POST', code: 'VPNLB_CLI_USAGE' });
      const ref = decodeURIComponent(action[1]!);
      const admin: AdminState = action[2] === 'drain' ? 'draining' : action[2] === 'disable' ? 'disabled' : 'enabled';
      try {
        const backends = controller.setAdminState(ref, admin);
        this.#opts.logger.info({ component: 'admin', backend: ref, action: action[2] }, `backend ${ref}: ${action[2]} by the administrator`);
        return send(res, 200, { backend: ref, action: action[2], backends });
      } catch (err) {
        if (err instanceof VpnlbError) return send(res, 404, { error: err.message, code: err.code });
        throw err;
      }
    }
    if (req.method === 'GET' && (url.pathname === '/' || url.pathname === '/dashboard')) {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      res.end(DASHBOARD_HTML);
      return;
    }
    send(res, 404, { error: `no route ${req.method} ${url.pathname}`, code: 'VPNLB_CLI_USAGE' });
  }

  #which(url: URL, res: ServerResponse): void {
    const client = url.searchParams.get('client') ?? '';
    const spiHex = url.searchParams.get('spi');
    const serviceName = url.searchParams.get('service');
    if (isIP(client) === 0) return send(res, 400, { error: 'client must be an IP address', code: 'VPNLB_CLI_USAGE' });
    if (spiHex !== null && !/^(0x)?[0-9a-fA-F]{16}$/.test(spiHex)) {
      return send(res, 400, { error: 'spi must be 16 hex digits (the 8-byte IKE initiator SPI)', code: 'VPNLB_CLI_USAGE' });
    }
    const spi = spiHex ? Buffer.from(spiHex.replace(/^0x/, ''), 'hex') : undefined;
    const services = this.#opts.controller.snapshot().services.filter((s) => !serviceName || s.name === serviceName);
    const natt = url.searchParams.get('nattServers');
    const natTServers = natt ? natt.split(',').filter(Boolean) : undefined;
    const answers = services.map((s) => whichAnswer(s, client, spi, natTServers));
    send(res, 200, { client, spi: spiHex, answers });
  }
}

function send(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body, null, 2) + '\n');
}
