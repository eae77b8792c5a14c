/**
 * nginx stream (Debian nginx + libnginx-mod-stream) as a contender: one worker pinned to the
 * balancer core, the configuration an administrator would write for each case.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Namespace } from '../../lab/netns.js';
import { startDaemon, waitForListen, type Daemon } from '../lib/proc.js';
import { TLS_PROFILE } from './tls-profile.js';

const STREAM_MODULE = '/usr/lib/nginx/modules/ngx_stream_module.so';

export type NginxCase =
  | { kind: 'udp'; vip: string; port: number; backends: readonly string[]; backendPort: number }
  | { kind: 'tcp'; vip: string; port: number; backends: readonly string[]; backendPort: number }
  | {
      kind: 'tls';
      vip: string;
      port: number;
      backends: readonly string[];
      backendPort: number;
      cert: string;
      key: string;
    };

/** The nginx.conf for one case (pure: unit-tested for shape). */
export function nginxConfig(c: NginxCase, dir: string): string {
  const servers = c.backends.map((b) => `    server ${b}:${c.backendPort};`).join('\n');
  // UDP: IKE affinity the way nginx can do it (DESIGN §1: source-IP persistence).
  const balance = c.kind === 'udp' ? '    hash $remote_addr consistent;\n' : '    least_conn;\n';
  const listen =
    c.kind === 'udp'
      ? `listen ${c.vip}:${c.port} udp;\n    proxy_timeout 60s;`
      : c.kind === 'tcp'
        ? `listen ${c.vip}:${c.port} backlog=4096;`
        : // TLS_PROFILE (tls-profile.ts): same protocols, order and groups as every contender;
          // session tickets and cache left at nginx's defaults (tickets on, no server cache).
          [
            `listen ${c.vip}:${c.port} ssl backlog=4096;`,
            `ssl_certificate ${c.cert};`,
            `ssl_certificate_key ${c.key};`,
            `ssl_protocols TLSv1.2 TLSv1.3;`,
            `ssl_prefer_server_ciphers on;`,
            `ssl_ciphers ${TLS_PROFILE.tls12Ciphers};`,
            `ssl_conf_command Ciphersuites ${TLS_PROFILE.tls13Suites};`,
            `ssl_ecdh_curve ${TLS_PROFILE.groups};`,
          ].join('\n    ');
  return `load_module ${STREAM_MODULE};
daemon off;
master_process on;
worker_processes 1;
worker_rlimit_nofile 200000;
pid ${join(dir, 'nginx.pid')};
error_log ${join(dir, 'error.log')} warn;
events { worker_connections 100000; multi_accept on; }
stream {
  upstream farm {
${balance}${servers}
  }
  server {
    ${listen}
    proxy_pass farm;
  }
}
`;
}

/** Starts nginx in `ns` on `cpu` and waits until it listens. */
export async function startNginx(
  ns: Namespace,
  cpu: number,
  c: NginxCase,
  dir: string,
): Promise<Daemon> {
  mkdirSync(dir, { recursive: true });
  const conf = join(dir, 'nginx.conf');
  writeFileSync(conf, nginxConfig(c, dir));
  const d = startDaemon(
    ns,
    cpu,
    'nginx',
    ['-c', conf, '-p', dir, '-e', join(dir, 'error.log')],
    'nginx',
  );
  await waitForListen(ns, c.kind === 'udp' ? 'udp' : 'tcp', c.port, 10_000, d);
  return d;
}
