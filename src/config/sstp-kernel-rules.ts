/**
 * What `vpnlb check` says about an SSTP service with `dataplane: kernel`: which settings need
 * the userspace proxy. The kernel plane DNATs the client's TCP connection without reading a
 * byte of it (src/dataplane/kernel/render-sstp.ts), so everything that needs the TLS stream or
 * per-connection state in vpnlb stays a proxy feature:
 * - mode offload / reencrypt (TLS is terminated by vpnlb);
 * - persistence tls-session (the session id is read from the ClientHello);
 * - methods other than maglev (least connections, round robin: per-client state);
 * - the proxy's connection limits and timeouts (the kernel counts no connections per source);
 * - `idleTimeout: 0` (never): here it is conntrack's timeout, which must be a duration.
 */
import { isIP } from 'node:net';
import type { ConfigIssue } from './types.js';
import { DEFAULTS } from './defaults.js';
import { safeDuration } from './duration.js';

type PathSeg = string | number;
type AddIssue = (
  severity: ConfigIssue['severity'],
  path: readonly PathSeg[],
  message: string,
  keyOnly?: boolean,
) => void;
type Claim = (key: string, where: PathSeg[], what: string) => void;

/** Settings only the userspace proxy applies. */
export const PROXY_ONLY_SETTINGS = [
  'maxConnections',
  'maxConnectionsPerSource',
  'maxNewConnectionsPerSecondPerSource',
  'handshakeTimeout',
  'connectTimeout',
  'drainTimeout',
] as const;

export function checkSstpKernel(
  s: Record<string, unknown>,
  base: PathSeg[],
  mode: string,
  add: AddIssue,
  claim: Claim,
): void {
  const proxy = 'needs the userspace proxy (dataplane: userspace)';
  if (mode !== 'passthrough') {
    add(
      'error',
      [...base, 'mode'],
      `mode ${mode} terminates TLS, which ${proxy}; the kernel data plane forwards passthrough only`,
    );
  }
  if (s.port === 0)
    add(
      'error',
      [...base, 'port'],
      'the kernel data plane DNATs a fixed port: port 0 (an ephemeral listener) needs the userspace proxy',
    );
  if (s.persistence === 'tls-session') {
    add(
      'error',
      [...base, 'persistence'],
      `tls-session persistence reads the TLS session id from each ClientHello, which ${proxy}; the kernel places by source-ip (default) or none (source address and port)`,
    );
  }
  if (s.method !== undefined && s.method !== 'maglev') {
    add(
      'error',
      [...base, 'method'],
      `method ${String(s.method)} keeps per-client state, which ${proxy}; the kernel data plane uses maglev (drop method)`,
    );
  }
  for (const k of PROXY_ONLY_SETTINGS) {
    if (s[k] !== undefined)
      add(
        'error',
        [...base, k],
        `"${k}" is applied by the userspace proxy only: the kernel data plane forwards connections without counting them (remove it, or use dataplane: userspace)`,
        true,
      );
  }
  if (s.idleTimeout !== undefined && safeDuration(s.idleTimeout) === 0)
    add(
      'error',
      [...base, 'idleTimeout'],
      `idleTimeout 0 (never) ${proxy}: with dataplane: kernel it is the conntrack timeout of established connections, which must be a duration (at least 1 s)`,
    );
  if (typeof s.virtualIp === 'string' && isIP(s.virtualIp) !== 0) {
    const table = typeof s.table === 'string' ? s.table : DEFAULTS.sstp.table;
    claim(
      `nft/${isIP(s.virtualIp)}/${table}`,
      [...base, ...(s.table === undefined ? [] : ['table'])],
      `nftables table "${table}" (IPv${isIP(s.virtualIp)}; give each kernel service of one address family its own "table")`,
    );
  }
}
