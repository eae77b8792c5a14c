/**
 * nginx `stream` (open-source nginx), as a complete nginx.conf (`nginx -t -c FILE` checks it).
 *
 * Syntax from nginx.org/en/docs/stream/: ngx_stream_core_module (listen ... udp reuseport, ssl),
 * ngx_stream_upstream_module (upstream, server weight= max_fails= fail_timeout= max_conns= down,
 * hash KEY [consistent], least_conn), ngx_stream_proxy_module (proxy_pass, proxy_bind ADDRESS
 * [transparent], proxy_timeout, proxy_connect_timeout, proxy_ssl, proxy_ssl_verify),
 * ngx_stream_ssl_module (ssl_certificate, ssl_certificate_key, ssl_handshake_timeout),
 * ngx_stream_ssl_preread_module (ssl_preread; preread_timeout of the core module),
 * ngx_stream_split_clients_module, ngx_stream_limit_conn_module; and core's load_module.
 *
 * The IKEv2 pair uses `hash $remote_addr` WITHOUT `consistent` on purpose: nginx builds the
 * consistent (ketama) ring from each server's "host\0port" (ngx_stream_upstream_update_chash),
 * so the :500 and :4500 upstreams would get different rings and could split a client's
 * handshake, while the plain hash depends on the key and the weights only and picks the same
 * position in both upstreams.
 */
import type { Backend, Ikev2Service, Monitor, SstpService } from '../../config/types.js';
import {
  displayPath,
  exportHeader,
  monitorOf,
  noEquivalent,
  poolOf,
  seconds,
  type ExportFormat,
  type ExportInput,
  serviceConnectionLimit,
} from '../export-format.js';

const C = '#';
const I = '    ';

export const nginxFormat: ExportFormat = {
  name: 'nginx',
  summary: 'nginx stream configuration (a complete nginx.conf)',
  extension: 'conf',
  render(input) {
    const lines = exportHeader(C, input, 'nginx stream (open-source nginx 1.22+)', [
      'nginx.org/en/docs/stream/ (ngx_stream_core_module, ngx_stream_upstream_module, ngx_stream_proxy_module,',
      '  ngx_stream_ssl_module, ngx_stream_ssl_preread_module, ngx_stream_split_clients_module, ngx_stream_limit_conn_module)',
    ]);
    lines.push(
      '',
      `${C} Debian's libnginx-mod-stream ships the stream module as a dynamic module.`,
      'load_module /usr/lib/nginx/modules/ngx_stream_module.so;',
      'worker_processes auto;',
      'events {',
      `${I}worker_connections 4096;`,
      '}',
      '',
      'stream {',
    );
    const body: string[] = [];
    for (const s of input.ikev2) body.push('', ...ikev2(input, s));
    for (const s of input.sstp) body.push('', ...sstp(input, s));
    lines.push(...body.slice(1).map((l) => (l ? `${I}${l}` : l)), '}');
    return `${lines.join('\n')}\n`;
  },
};

function ikev2(input: ExportInput, s: Ikev2Service): string[] {
  const out = [
    `${C} ---- IKEv2 service ${s.name}: UDP ${s.ikePort} + ${s.natTPort} on ${s.virtualIp} ----`,
  ];
  if (s.affinity === 'ike-spi')
    out.push(
      noEquivalent(
        C,
        'IKE-SPI affinity (clients behind one carrier-grade NAT spread by their IKE SPI)',
        'a hash of the client address, the same in both upstreams',
      ),
    );
  if (s.method === 'maglev')
    out.push(
      noEquivalent(
        C,
        'Maglev (65537-slot consistent hashing shared by every vpnlb node)',
        'the plain hash (a backend change moves more clients than Maglev does)',
      ),
    );
  else
    out.push(
      noEquivalent(
        C,
        `${s.method} for IKEv2 (it would split a client's UDP 500 and 4500)`,
        'a hash of the client address, the same in both upstreams',
      ),
    );
  const m = monitorOf(input, s);
  out.push(...monitorComment(m));
  let bind: string[];
  if (s.nat === 'transparent') {
    out.push(
      `${C} nat: transparent — RRAS sees each client's address. The replies must route back through this host and be`,
      `${C} delivered to nginx (policy routing of packets from the servers' ports 500/4500), as for any transparent proxy.`,
    );
    bind = ['proxy_bind $remote_addr transparent;'];
  } else if (s.snat) {
    const v = `$${s.name.replaceAll('-', '_')}_snat`;
    out.push(
      `${C} nat: full — RRAS sees only these addresses: raise IkeNumEstablishedForInitialQuery on RRAS (vpnlb rras) or expect error 809.`,
      noEquivalent(
        C,
        `snat.maxSasPerAddress (${s.snat.maxSasPerAddress} IKE SAs per SNAT address and server)`,
        'clients spread over the addresses by a hash of their address (both ports get the same one)',
      ),
      `split_clients $remote_addr ${v} {`,
      ...splitClients(s.snat.addresses).map((l) => `${I}${l}`),
      '}',
    );
    bind = [`proxy_bind ${v};`];
  } else {
    out.push(
      `${C} nat: full — RRAS sees only this host's address: raise IkeNumEstablishedForInitialQuery on RRAS (vpnlb rras) or expect error 809.`,
    );
    bind = [];
  }
  const backends = poolOf(input, s).backends;
  for (const [port, backendPort] of [
    [s.ikePort, s.backendIkePort],
    [s.natTPort, s.backendNatTPort],
  ] as const) {
    const name = `${s.name}_${port}`;
    out.push(
      `upstream ${name} {`,
      `${I}hash $remote_addr;`,
      ...servers(backends, backendPort, m),
      '}',
    );
    out.push(
      'server {',
      `${I}listen ${listenAddress(s.virtualIp, port)} udp reuseport;`,
      `${I}proxy_pass ${name};`,
      ...bind.map((b) => `${I}${b}`),
      `${I}proxy_timeout ${seconds(s.flowTimeout)}s;`,
      '}',
    );
  }
  return out;
}

function sstp(input: ExportInput, s: SstpService): string[] {
  const out = [`${C} ---- SSTP service ${s.name}: TCP ${s.port} on ${s.virtualIp}, ${s.mode} ----`];
  const m = monitorOf(input, s);
  out.push(...monitorComment(m));
  let balance: string[];
  if (s.persistence === 'tls-session') {
    out.push(
      noEquivalent(
        C,
        'TLS-session persistence (ssl_preread exposes SNI, ALPN and version, not the session ID)',
        'source-address persistence: a consistent hash of the client address, which replaces the balancing method',
      ),
    );
    balance = ['hash $remote_addr consistent;'];
  } else if (s.persistence === 'source-ip') {
    out.push(
      `${C} Source-address persistence: a consistent hash of the client address (it replaces the balancing method).`,
    );
    balance = ['hash $remote_addr consistent;'];
  } else if (s.method === 'least-connections') {
    balance = ['least_conn;'];
  } else if (s.method === 'maglev') {
    out.push(
      noEquivalent(
        C,
        'Maglev (65537-slot consistent hashing shared by every vpnlb node)',
        'a consistent (ketama) hash of the client address',
      ),
    );
    balance = ['hash $remote_addr consistent;'];
  } else {
    balance = [];
  }
  const zone = `${s.name.replaceAll('-', '_')}_conns`;
  if (serviceConnectionLimit(s) > 0) out.push(`limit_conn_zone $server_addr zone=${zone}:1m;`);
  out.push(
    `upstream ${s.name} {`,
    ...balance.map((b) => `${I}${b}`),
    ...servers(poolOf(input, s).backends, s.backendPort, m),
    '}',
  );
  const server = ['server {'];
  if (s.mode === 'passthrough') {
    server.push(
      `${I}listen ${listenAddress(s.virtualIp, s.port)};`,
      `${I}${C} Read the ClientHello first, within vpnlb's handshakeTimeout (a client that never sends one is closed).`,
      `${I}ssl_preread on;`,
      `${I}preread_timeout ${seconds(s.handshakeTimeout)}s;`,
    );
  } else if (s.tls) {
    server.push(
      `${I}listen ${listenAddress(s.virtualIp, s.port)} ssl;`,
      `${I}${C} Relative paths are relative to the directory of this file.`,
      `${I}ssl_certificate ${displayPath(input, s.tls.cert)};`,
      `${I}ssl_certificate_key ${displayPath(input, s.tls.key)};`,
      `${I}ssl_handshake_timeout ${seconds(s.handshakeTimeout)}s;`,
    );
  }
  if (s.mode === 'reencrypt') {
    server.push(
      `${I}${C} Re-encryption: RRAS must present the same certificate as the front (vpnlb refuses a server whose certificate differs; nginx does not compare them).`,
      `${I}proxy_ssl on;`,
      `${I}proxy_ssl_verify off;`,
    );
  }
  // vpnlb's SSTP proxy connects from the balancer's own address, as nginx does without proxy_bind.
  server.push(
    `${I}proxy_pass ${s.name};`,
    `${I}proxy_connect_timeout ${seconds(s.connectTimeout)}s;`,
    `${I}proxy_timeout ${seconds(s.idleTimeout)}s;`,
  );
  if (serviceConnectionLimit(s) > 0)
    server.push(`${I}limit_conn ${zone} ${serviceConnectionLimit(s)};`);
  out.push(...server, '}');
  return out;
}

/** Open-source nginx checks servers passively only (failed connections or answers). */
function monitorComment(m: Monitor | undefined): string[] {
  if (!m) return [];
  const what =
    m.type === 'ikev2'
      ? 'the stateless IKEv2 probe'
      : m.type === 'sstp'
        ? `the SSTP monitor (HEAD /sra_{...}/ expecting ${m.expectStatus})`
        : `the ${m.type} monitor`;
  return [
    noEquivalent(
      C,
      `${what}: active health checks are in NGINX Plus only`,
      `passive checks, max_fails=${m.fall} within fail_timeout=${m.fall * seconds(m.interval)}s`,
    ),
  ];
}

function servers(backends: readonly Backend[], port: number, m: Monitor | undefined): string[] {
  return backends.map((b) => {
    const opts = [`weight=${Math.max(1, b.weight)}`];
    if (m) opts.push(`max_fails=${m.fall}`, `fail_timeout=${m.fall * seconds(m.interval)}s`);
    if (b.maxConnections > 0) opts.push(`max_conns=${b.maxConnections}`);
    // weight 0 or disabled in vpnlb: no new clients.
    if (!b.enabled || b.weight === 0) opts.push('down');
    return `${I}server ${listenAddress(b.address, port)} ${opts.join(' ')};`;
  });
}

/** split_clients lines: equal shares, the last one taking the remainder. */
function splitClients(addresses: readonly string[]): string[] {
  const share = Math.floor(10_000 / addresses.length) / 100;
  return addresses.map((a, i) => (i === addresses.length - 1 ? `* ${a};` : `${share}% ${a};`));
}

function listenAddress(ip: string, port: number): string {
  return ip.includes(':') ? `[${ip}]:${port}` : `${ip}:${port}`;
}
