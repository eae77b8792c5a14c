/**
 * HAProxy, as a configuration file (`haproxy -c -f FILE` checks it).
 *
 * Syntax from the HAProxy 2.6 configuration manual (docs.haproxy.org/2.6/configuration.html):
 * bind (ssl crt), balance (leastconn, roundrobin, source), hash-type consistent, server (check,
 * check-ssl, verify, inter, fall, rise, weight, maxconn, disabled, ssl), source ... usesrc
 * clientip (4.2), stick-table, stick on / stick store-response, payload_lv, req_ssl_hello_type,
 * rep_ssl_hello_type (7.3.5), tcp-request inspect-delay / content, tcp-response content,
 * option httpchk, http-check send / expect status, timeout connect / client / server / check,
 * ssl-load-extra-del-ext (3.1). The TLS-session stickiness pattern (session ID at payload
 * offset 43 of a ClientHello / ServerHello) is the one the manual's "stick store-response"
 * example gives for SSL session ID persistence.
 */
import { SSTP_URI } from '../../protocol/sstp/sstp-constants.js';
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

export const haproxyFormat: ExportFormat = {
  name: 'haproxy',
  summary: 'HAProxy configuration (SSTP; HAProxy has no UDP proxy for IKEv2)',
  extension: 'cfg',
  render(input) {
    const lines = exportHeader(C, input, 'HAProxy 2.6+ configuration', [
      'docs.haproxy.org/2.6/configuration.html (bind, balance, server, stick-table, stick on / store-response,',
      '  payload_lv, req_ssl_hello_type, tcp-request / tcp-response content, http-check, source usesrc)',
    ]);
    const terminates = input.sstp.some((s) => s.mode !== 'passthrough');
    lines.push('', 'global');
    if (terminates)
      lines.push(
        `${I}${C} load "NAME.key" beside "NAME.crt" (the certificate and key are two files in vpnlb)`,
        `${I}ssl-load-extra-del-ext`,
      );
    lines.push(
      '',
      'defaults',
      `${I}mode tcp`,
      `${I}timeout connect 5s`,
      `${I}timeout client 15m`,
      `${I}timeout server 15m`,
    );
    for (const s of input.ikev2) lines.push('', ...ikev2(input, s));
    for (const s of input.sstp) lines.push('', ...sstp(input, s));
    return `${lines.join('\n')}\n`;
  },
};

function ikev2(input: ExportInput, s: Ikev2Service): string[] {
  const m = monitorOf(input, s);
  const features = [
    `IKEv2 service ${s.name} on UDP ${s.ikePort}/${s.natTPort} of ${s.virtualIp} (HAProxy proxies TCP, not UDP)`,
    ...(s.affinity === 'ike-spi' ? ['with its IKE-SPI affinity'] : []),
    ...(s.method === 'maglev' ? ['Maglev'] : []),
    ...(m?.type === 'ikev2' ? ['and the stateless IKEv2 probe'] : []),
  ];
  return [
    `${C} ---- IKEv2 service ${s.name} ----`,
    noEquivalent(
      C,
      features.join(', '),
      'none in HAProxy: keep IKEv2 on vpnlb (kernel DNAT) or nginx stream',
    ),
    `${C} Its pool: ${poolOf(input, s)
      .backends.map((b) => `${b.name} ${b.address}`)
      .join(', ')}.`,
  ];
}

function sstp(input: ExportInput, s: SstpService): string[] {
  const out = [`${C} ---- SSTP service ${s.name}: TCP ${s.port} on ${s.virtualIp}, ${s.mode} ----`];
  const family6 = s.family === 6;
  const front = [`frontend ${s.name}`];
  if (s.mode === 'passthrough') {
    front.push(`${I}bind ${address(s.virtualIp, s.port)}`);
    // vpnlb reads the ClientHello within handshakeTimeout and refuses what is not TLS.
    front.push(
      `${I}tcp-request inspect-delay ${seconds(s.handshakeTimeout)}s`,
      `${I}tcp-request content reject unless { req_ssl_hello_type 1 }`,
    );
  } else if (s.tls) {
    front.push(
      `${I}${C} ${displayPath(input, s.tls.cert)} and ${displayPath(input, s.tls.key)}: relative paths are relative to where haproxy starts`,
    );
    front.push(
      `${I}bind ${address(s.virtualIp, s.port)} ssl crt ${displayPath(input, s.tls.cert)}`,
    );
  }
  front.push(`${I}timeout client ${seconds(s.idleTimeout)}s`);
  if (serviceConnectionLimit(s) > 0) front.push(`${I}maxconn ${serviceConnectionLimit(s)}`);
  front.push(`${I}default_backend ${s.name}`);
  out.push(...front, '');

  const back = [
    `backend ${s.name}`,
    `${I}timeout connect ${seconds(s.connectTimeout)}s`,
    `${I}timeout server ${seconds(s.idleTimeout)}s`,
  ];
  if (s.method === 'least-connections') back.push(`${I}balance leastconn`);
  else if (s.method === 'weighted-round-robin') back.push(`${I}balance roundrobin`);
  else
    back.push(
      `${I}${noEquivalent(C, 'Maglev (65537-slot consistent hashing shared by every vpnlb node)', 'a consistent hash of the source address')}`,
      `${I}balance source`,
      `${I}hash-type consistent`,
    );
  if (s.persistence === 'tls-session') {
    back.push(
      `${I}${C} TLS-session persistence: the session ID a server gives in its ServerHello is stored, and a`,
      `${I}${C} ClientHello that offers it again goes to that server (TLS 1.3 and ticket resumptions carry no`,
      `${I}${C} usable ID: vpnlb then falls back to the client address, HAProxy to the balance algorithm).`,
      `${I}stick-table type binary len 32 size 100k expire ${seconds(s.persistenceTimeout)}s`,
      `${I}acl clienthello req_ssl_hello_type 1`,
      `${I}acl serverhello rep_ssl_hello_type 2`,
      `${I}tcp-request inspect-delay ${seconds(s.handshakeTimeout)}s`,
      `${I}tcp-request content accept if clienthello`,
      `${I}tcp-response content accept if serverhello`,
      `${I}stick on payload_lv(43,1) if clienthello`,
      `${I}stick store-response payload_lv(43,1) if serverhello`,
    );
  } else if (s.persistence === 'source-ip') {
    back.push(
      `${I}stick-table type ${family6 ? 'ipv6' : 'ip'} size 100k expire ${seconds(s.persistenceTimeout)}s`,
      `${I}stick on src`,
    );
  }
  if (s.mode === 'reencrypt')
    back.push(
      `${I}${C} Re-encryption: RRAS must present the same certificate as the front (vpnlb refuses a server whose certificate differs; HAProxy does not compare them).`,
    );
  // vpnlb's SSTP proxy connects from the balancer's own address, as HAProxy does by default.
  back.push(
    `${I}${C} To show RRAS the client addresses instead (TPROXY, replies routed back through this host): source 0.0.0.0 usesrc clientip`,
  );
  const m = monitorOf(input, s);
  back.push(...checkLines(s, m));
  const serverOpts = serverOptions(s, m);
  for (const b of poolOf(input, s).backends)
    back.push(
      `${I}server ${b.name} ${address(b.address, s.backendPort)}${serverOpts}${memberOptions(b)}`,
    );
  out.push(...back);
  return out;
}

function checkLines(s: SstpService, m: Monitor | undefined): string[] {
  if (!m) return [`${I}${C} No monitor in vpnlb for ${s.name}: no health checks here either.`];
  const lines = [`${I}timeout check ${seconds(m.timeout)}s`];
  if (m.type === 'sstp') {
    lines.push(
      `${I}${C} SSTP monitor: RRAS answers an anonymous HEAD /sra_{...}/ with ${m.expectStatus} (not 200).`,
      `${I}option httpchk`,
      `${I}http-check send meth HEAD uri ${SSTP_URI} ver HTTP/1.1 hdr Host r`,
      `${I}http-check expect status ${m.expectStatus}`,
    );
  } else if (m.type !== 'tcp') {
    lines.push(
      `${I}${noEquivalent(C, `a ${m.type === 'ikev2' ? 'stateless IKEv2 probe' : 'ICMP'} monitor on an SSTP service`, 'a TCP connect check')}`,
    );
  }
  return lines;
}

function serverOptions(s: SstpService, m: Monitor | undefined): string {
  const opts: string[] = [];
  if (s.mode === 'reencrypt') opts.push('ssl verify none');
  if (m) {
    const port = m.port ? ` port ${m.port}` : '';
    // Checks speak TLS unless the server side is plain HTTP (offload).
    const tls =
      m.type === 'sstp' && s.mode === 'passthrough'
        ? ` check-ssl ${m.verifyCertificate ? `verify required ca-file ${m.ca ?? '@system-ca'}` : 'verify none'}`
        : '';
    opts.push(`check${tls}${port} inter ${seconds(m.interval)}s fall ${m.fall} rise ${m.rise}`);
  }
  return opts.length ? ` ${opts.join(' ')}` : '';
}

function memberOptions(b: Backend): string {
  // HAProxy weights run 0–256; weight 0 takes no new clients, as in vpnlb.
  const opts = [`weight ${Math.min(256, b.weight)}`];
  if (b.maxConnections > 0) opts.push(`maxconn ${b.maxConnections}`);
  if (!b.enabled) opts.push('disabled');
  return ` ${opts.join(' ')}`;
}

function address(ip: string, port: number): string {
  return ip.includes(':') ? `ipv6@${ip}:${port}` : `${ip}:${port}`;
}
