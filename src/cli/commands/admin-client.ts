import { loadConfigFile } from '../../config/load-config.js';
import { DEFAULTS } from '../../config/defaults.js';
import { VpnlbError } from '../../errors.js';

/** The admin API base URL: `--admin URL`, else the config's admin listener, else the default. */
export function adminUrl(admin: string | undefined, configFile: string | undefined): string {
  if (admin) return admin.includes('://') ? admin : `http://${admin}`;
  const a = configFile ? loadConfigFile(configFile).admin : DEFAULTS.admin;
  const host = a.listen === '0.0.0.0' ? '127.0.0.1' : a.listen === '::' ? '::1' : a.listen;
  return `http://${host.includes(':') ? `[${host}]` : host}:${a.port}`;
}

/** Calls the admin API; connection failures become a clear error. */
export async function callAdmin(base: string, path: string, init?: RequestInit): Promise<{ status: number; body: unknown }> {
  let res: Response;
  try {
    res = await fetch(new URL(path, base), init);
  } catch (err) {
    throw new VpnlbError('VPNLB_CLI_USAGE', `cannot reach the admin API at ${base}: ${(err as Error & { cause?: Error }).cause?.message ?? (err as Error).message} (is vpnlb running? use --admin URL)`, 'client');
  }
  return { status: res.status, body: await res.json() };
}
