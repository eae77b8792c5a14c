/**
 * HAProxy (Debian 2.6) as a contender: `mode tcp`, one thread pinned to the balancer core;
 * passthrough, or TLS termination with `bind … ssl crt` forwarding plain TCP.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Namespace } from '../../lab/netns.js';
import { startDaemon, waitForListen, type Daemon } from '../lib/proc.js';
import { TLS_PROFILE } from './tls-profile.js';

export interface HaproxyCase {
  readonly vip: string;
  readonly port: number;
  readonly backends: readonly string[];
  readonly backendPort: number;
  /** A PEM with certificate and key: terminate TLS (offload); absent: passthrough. */
  readonly pem?: string;
}

/** haproxy.cfg for one case (pure). */
export function haproxyConfig(c: HaproxyCase): string {
  const servers = c.backends.map((b, i) => `  server s${i + 1} ${b}:${c.backendPort}`).join('\n');
  // TLS_PROFILE (tls-profile.ts); HAProxy honours its own cipher order by default. Session
  // tickets and the session cache stay at HAProxy's defaults (tickets on, 20000-entry cache).
  const tlsBind = `ssl-min-ver TLSv1.2 ssl-max-ver TLSv1.3 ciphers ${TLS_PROFILE.tls12Ciphers} ciphersuites ${TLS_PROFILE.tls13Suites} curves ${TLS_PROFILE.groups}`;
  return `global
  nbthread 1
  maxconn 9000
  log stderr format raw local0 warning
defaults
  mode tcp
  log global
  timeout connect 5s
  timeout client 120s
  timeout server 120s
frontend fe
  bind ${c.vip}:${c.port}${c.pem ? ` ssl crt ${c.pem} ${tlsBind}` : ''}
  maxconn 9000
  default_backend farm
backend farm
  balance leastconn
${servers}
`;
}

/** Starts HAProxy in the foreground in `ns` on `cpu`. */
export async function startHaproxy(
  ns: Namespace,
  cpu: number,
  c: HaproxyCase,
  dir: string,
): Promise<Daemon> {
  mkdirSync(dir, { recursive: true });
  const cfg = join(dir, 'haproxy.cfg');
  writeFileSync(cfg, haproxyConfig(c));
  const d = startDaemon(ns, cpu, 'haproxy', ['-db', '-f', cfg], 'haproxy');
  await waitForListen(ns, 'tcp', c.port, 10_000, d);
  return d;
}
