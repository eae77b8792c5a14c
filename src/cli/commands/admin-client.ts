/**
 * How the CLI reaches a running balancer's admin API, and with which credentials, without the
 * administrator typing either on the balancer host:
 * 1. `--admin URL` (or `--admin unix:/PATH`): that listener;
 * 2. else the configuration (`--config FILE`, else /etc/vpnlb/vpnlb.yaml when it exists): its
 *    Unix socket when one is configured and present (no token needed: the socket's mode 0600 is
 *    the authentication), else its TCP listener (https with `admin.tls`, trusting that certificate);
 * 3. else the default listener http://127.0.0.1:8088.
 * The token for TCP: `VPNLB_ADMIN_TOKEN`, else `--token-file`, else the configuration's
 * `admin.tokenFile` (default /var/lib/vpnlb/admin.token) when this user can read it.
 */
import { existsSync, readFileSync } from 'node:fs';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { loadConfigFile } from '../../config/load-config.js';
import { DEFAULTS } from '../../config/defaults.js';
import type { AdminConfig } from '../../config/types.js';
import { VpnlbError } from '../../errors.js';

/** Where the balancer's configuration usually lives (the CLI looks there when not told). */
export const DEFAULT_CONFIG_FILE = '/etc/vpnlb/vpnlb.yaml';

export interface AdminEndpoint {
  /** `http(s)://host:port` or `unix:/path` (for messages). */
  readonly label: string;
  readonly url?: URL;
  readonly socketPath?: string;
  readonly token?: string;
  /** PEM to trust for https (the configured admin certificate). */
  readonly ca?: Buffer;
}

export interface AdminTarget {
  readonly admin?: string | undefined;
  readonly config?: string | undefined;
  readonly tokenFile?: string | undefined;
}

/** The CLI options every admin command accepts. */
export const ADMIN_OPTIONS = {
  admin: { type: 'string' },
  config: { type: 'string', short: 'c' },
  'token-file': { type: 'string' },
} as const;
export const ADMIN_USAGE = '[--admin URL|unix:PATH] [--config FILE] [--token-file FILE]';

export function resolveAdminEndpoint(
  t: AdminTarget,
  env: NodeJS.ProcessEnv = process.env,
): AdminEndpoint {
  const configFile =
    t.config ??
    (t.admin === undefined && existsSync(DEFAULT_CONFIG_FILE) ? DEFAULT_CONFIG_FILE : undefined);
  const admin: AdminConfig | undefined = configFile ? loadConfigFile(configFile).admin : undefined;
  const token = () =>
    env.VPNLB_ADMIN_TOKEN ||
    readTokenFile(
      t.tokenFile ?? admin?.tokenFile ?? DEFAULTS.admin.tokenFile,
      t.tokenFile !== undefined,
    );
  if (t.admin !== undefined) {
    if (t.admin.startsWith('unix:'))
      return { label: t.admin, socketPath: t.admin.slice('unix:'.length) };
    const url = new URL(t.admin.includes('://') ? t.admin : `http://${t.admin}`);
    const tok = token();
    return { label: url.origin, url, ...(tok ? { token: tok } : {}) };
  }
  if (admin?.socket && existsSync(admin.socket))
    return { label: `unix:${admin.socket}`, socketPath: admin.socket };
  const a = admin ?? DEFAULTS.admin;
  const host = a.listen === '0.0.0.0' ? '127.0.0.1' : a.listen === '::' ? '::1' : a.listen;
  const scheme = admin?.tls ? 'https' : 'http';
  const url = new URL(`${scheme}://${host.includes(':') ? `[${host}]` : host}:${a.port}`);
  const tok = token();
  const ca = admin?.tls ? readFileSync(admin.tls.cert) : undefined;
  return { label: url.origin, url, ...(tok ? { token: tok } : {}), ...(ca ? { ca } : {}) };
}

function readTokenFile(file: string, mustExist: boolean): string | undefined {
  try {
    return readFileSync(file, 'utf8').trim();
  } catch (err) {
    if (mustExist)
      throw new VpnlbError(
        'VPNLB_CLI_USAGE',
        `--token-file ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
        'client',
      );
    return undefined;
  }
}

/** Calls the admin API; connection failures and refusals become clear errors. */
export async function callAdmin(
  ep: AdminEndpoint,
  path: string,
  init: { method?: 'GET' | 'POST' } = {},
): Promise<{ status: number; body: unknown }> {
  const method = init.method ?? 'GET';
  const headers: Record<string, string> = { accept: 'application/json' };
  if (ep.token && !ep.socketPath) headers.authorization = `Bearer ${ep.token}`;
  if (method === 'POST') headers['content-length'] = '0';
  let res: IncomingMessage;
  try {
    res = await new Promise<IncomingMessage>((resolve, reject) => {
      const req = ep.socketPath
        ? httpRequest(
            { socketPath: ep.socketPath, path, method, headers: { ...headers, host: 'localhost' } },
            resolve,
          )
        : (ep.url!.protocol === 'https:' ? httpsRequest : httpRequest)(
            new URL(path, ep.url),
            { method, headers, ...(ep.ca ? { ca: ep.ca } : {}) },
            resolve,
          );
      req.on('error', reject);
      req.setTimeout(60_000, () => req.destroy(new Error('no answer within 60 s')));
      req.end();
    });
  } catch (err) {
    throw new VpnlbError(
      'VPNLB_CLI_USAGE',
      `cannot reach the admin API at ${ep.label}: ${(err as Error).message} (is vpnlb running? use --admin URL or --config FILE)`,
      'client',
    );
  }
  const chunks: Buffer[] = [];
  for await (const c of res) chunks.push(c as Buffer);
  const text = Buffer.concat(chunks).toString('utf8');
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    body = { error: text.slice(0, 500) };
  }
  const status = res.statusCode ?? 0;
  if (status === 401) {
    const hint = ep.token ? 'the token was refused' : 'no token found';
    throw new VpnlbError(
      'VPNLB_ADMIN_UNAUTHORIZED',
      `${ep.label}: ${hint} (run on the balancer host as root, or pass --token-file FILE, or set VPNLB_ADMIN_TOKEN)`,
      'client',
    );
  }
  if (status === 403)
    throw new VpnlbError(
      'VPNLB_ADMIN_FORBIDDEN',
      `${ep.label}: ${(body as { error?: string }).error ?? 'refused'}`,
      'client',
    );
  return { status, body };
}

/**
 * Reads this node's `/api/v1/status` (what the `ha` and `bgp` supervisors check their vpnlb by);
 * rejects on any answer but 200.
 */
export function adminStatusReader(ep: AdminEndpoint): () => Promise<unknown> {
  return async () => {
    const res = await callAdmin(ep, '/api/v1/status');
    if (res.status !== 200) throw new Error(`the admin API answered ${res.status}`);
    return res.body;
  };
}

/** Resolves at the first SIGINT or SIGTERM (a supervisor command's life). */
export function untilStopSignal(): Promise<void> {
  return new Promise<void>((resolve) => {
    process.once('SIGINT', () => resolve());
    process.once('SIGTERM', () => resolve());
  });
}
