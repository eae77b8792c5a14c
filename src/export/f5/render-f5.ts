/**
 * F5 BIG-IP LTM, as `tmsh` commands (paste into `tmsh`, or run `tmsh -q -c '...'` per line;
 * lines starting with `#` are comments).
 *
 * Syntax from the tmsh reference (clouddocs.f5.com/cli/tmsh-reference/latest/modules/ltm/):
 * ltm_node, ltm_pool (members, load-balancing-mode, monitor, ratio, session user-disabled,
 * connection-limit), ltm_virtual (destination, ip-protocol, mask, persist, profiles,
 * source-address-translation { type none | automap | snat pool }), ltm_persistence_source-addr
 * (match-across-services, timeout, hash-algorithm carp), ltm_persistence_ssl,
 * ltm_monitor_gateway-icmp / _http / _https / _tcp (interval, timeout, time-until-up, send,
 * recv), ltm_snatpool, ltm_profile_udp / _tcp (idle-timeout), ltm_profile_client-ssl
 * (cert-key-chain), ltm_profile_server-ssl; and the Always On VPN guides for BIG-IP
 * (directaccess.richardhicks.com 2019-06-17 "Always On VPN SSTP Load Balancing with F5 BIG-IP":
 * the SSTP monitor send string; "Always On VPN IKEv2 Load Balancing with F5 BIG-IP": two UDP
 * virtual servers, Source Address Translation None, source address persistence matching across
 * services).
 */
import { SSTP_URI } from '../../protocol/sstp/sstp-constants.js';
import type { Backend, Ikev2Service, SstpService } from '../../config/types.js';
import {
  exportHeader,
  monitorOf,
  noEquivalent,
  poolOf,
  serversOf,
  seconds,
  storeName,
  takesClients,
  type ExportFormat,
  type ExportInput,
  serviceConnectionLimit,
} from '../export-format.js';

const C = '#';

export const f5Format: ExportFormat = {
  name: 'f5',
  summary: 'F5 BIG-IP LTM tmsh commands',
  extension: 'tmsh',
  render(input) {
    const lines = exportHeader(C, input, 'F5 BIG-IP LTM (tmsh)', [
      'clouddocs.f5.com/cli/tmsh-reference/latest/modules/ltm/ (ltm node, pool, virtual, persistence source-addr / ssl,',
      '  monitor gateway-icmp / http / https / tcp, snatpool, profile udp / tcp / client-ssl / server-ssl)',
      'directaccess.richardhicks.com: Always On VPN IKEv2 / SSTP Load Balancing with F5 BIG-IP',
    ]);
    lines.push('', `${C} ---- nodes: one per RRAS server ----`);
    for (const b of serversOf(input))
      lines.push(`create ltm node ${b.name} { address ${b.address} }`);
    for (const s of input.ikev2) lines.push('', ...ikev2(input, s));
    for (const s of input.sstp) lines.push('', ...sstp(input, s));
    return `${lines.join('\n')}\n`;
  },
};

function ikev2(input: ExportInput, s: Ikev2Service): string[] {
  const out = [
    `${C} ---- IKEv2 service ${s.name}: UDP ${s.ikePort} + ${s.natTPort} on ${s.virtualIp}, one persistence record for both ----`,
  ];
  const monitor = monitorDefinition(input, s, `${s.name}_monitor`, 'ikev2');
  out.push(...monitor.lines);
  const method = loadBalancingMode(s.method);
  out.push(
    `create ltm profile udp ${s.name}_udp { defaults-from udp idle-timeout ${seconds(s.flowTimeout)} }`,
  );
  // match-across-services: "all persistent connections from a client IP address that go to the
  // same virtual IP address also go to the same node" — UDP 500 and 4500 share one record.
  if (s.affinity === 'ike-spi') {
    out.push(
      noEquivalent(
        C,
        'IKE-SPI affinity (clients behind one carrier-grade NAT spread by their IKE SPI; BIG-IP persists on addresses)',
        'source address persistence matching across services',
      ),
    );
  }
  const carp = s.method === 'maglev' ? ' hash-algorithm carp' : '';
  if (carp)
    out.push(
      noEquivalent(
        C,
        'Maglev (65537-slot consistent hashing shared by every vpnlb node)',
        'source address persistence with the CARP hash, which needs no persistence table',
      ),
    );
  out.push(
    `create ltm persistence source-addr ${s.name}_persist { defaults-from source_addr match-across-services enabled timeout ${seconds(s.persistenceTimeout)}${carp} }`,
  );
  const snat = sourceTranslation(s, out);
  const pool = poolOf(input, s);
  for (const [port, backendPort] of [
    [s.ikePort, s.backendIkePort],
    [s.natTPort, s.backendNatTPort],
  ] as const) {
    const poolName = `${s.name}_${port}`;
    out.push(
      `create ltm pool ${poolName} { load-balancing-mode ${method}${monitor.name ? ` monitor ${monitor.name}` : ''} members replace-all-with { ${members(pool.backends, backendPort, s.method)} } }`,
      `create ltm virtual ${poolName} { destination ${destination(s.virtualIp, port)} ip-protocol udp mask ${hostMask(s.family)} pool ${poolName} profiles replace-all-with { ${s.name}_udp { } } persist replace-all-with { ${s.name}_persist { default yes } } source-address-translation { ${snat} } }`,
    );
  }
  return out;
}

function sstp(input: ExportInput, s: SstpService): string[] {
  const out = [`${C} ---- SSTP service ${s.name}: TCP ${s.port} on ${s.virtualIp}, ${s.mode} ----`];
  const monitor = monitorDefinition(
    input,
    s,
    `${s.name}_monitor`,
    s.mode === 'offload' ? 'http' : 'https',
  );
  out.push(...monitor.lines);
  const method = loadBalancingMode(s.method);
  if (s.method === 'maglev')
    out.push(
      noEquivalent(
        C,
        'Maglev (65537-slot consistent hashing shared by every vpnlb node)',
        'round robin',
      ),
    );
  out.push(
    `create ltm profile tcp ${s.name}_tcp { defaults-from tcp idle-timeout ${seconds(s.idleTimeout)} }`,
  );
  const profiles = [`${s.name}_tcp { }`];
  if (s.mode !== 'passthrough' && s.tls) {
    const name = storeName(s.tls.cert);
    out.push(
      `${C} Import the front certificate and key first (tmsh install sys crypto cert ${name} from-local-file ... / key ${name} ...).`,
      `create ltm profile client-ssl ${s.name}_clientssl { defaults-from clientssl cert-key-chain replace-all-with { ${name} { cert ${name} key ${name} } } }`,
    );
    profiles.push(`${s.name}_clientssl { context clientside }`);
  }
  if (s.mode === 'reencrypt') {
    out.push(
      `${C} Re-encryption: RRAS must present the same certificate as the front (vpnlb refuses a server whose certificate differs; BIG-IP does not check it).`,
    );
    out.push(`create ltm profile server-ssl ${s.name}_serverssl { defaults-from serverssl }`);
    profiles.push(`${s.name}_serverssl { context serverside }`);
  }
  let persist = '';
  if (s.persistence === 'tls-session') {
    out.push(
      `${C} TLS-session persistence: the built-in "ssl" profile persists on the TLS session ID (vpnlb also falls back to the client address for TLS 1.3 / ticket resumptions).`,
    );
    persist = ' persist replace-all-with { ssl { default yes } }';
  } else if (s.persistence === 'source-ip') {
    out.push(
      `create ltm persistence source-addr ${s.name}_persist { defaults-from source_addr timeout ${seconds(s.persistenceTimeout)} }`,
    );
    persist = ` persist replace-all-with { ${s.name}_persist { default yes } }`;
  }
  const limit =
    serviceConnectionLimit(s) > 0 ? ` connection-limit ${serviceConnectionLimit(s)}` : '';
  // vpnlb's SSTP proxy connects to the servers from the balancer's own address, as automap does:
  // the servers need no route back for SSTP, and SSTP has no per-address limit like IKEEXT's.
  out.push(
    `create ltm pool ${s.name} { load-balancing-mode ${method}${monitor.name ? ` monitor ${monitor.name}` : ''} members replace-all-with { ${members(poolOf(input, s).backends, s.backendPort, s.method)} } }`,
    `create ltm virtual ${s.name} { destination ${destination(s.virtualIp, s.port)} ip-protocol tcp mask ${hostMask(s.family)} pool ${s.name} profiles replace-all-with { ${profiles.join(' ')} }${persist}${limit} source-address-translation { type automap } }`,
  );
  return out;
}

/** A monitor for the service, or none; the BIG-IP type follows the vpnlb type and the SSTP mode. */
function monitorDefinition(
  input: ExportInput,
  s: Ikev2Service | SstpService,
  name: string,
  sstpKind: 'http' | 'https' | 'ikev2',
): { name?: string; lines: string[] } {
  const m = monitorOf(input, s);
  if (!m)
    return {
      lines: [`${C} No monitor in vpnlb for ${s.name}: none here either (members count as up).`],
    };
  const lines: string[] = [];
  // BIG-IP marks a member down when no probe succeeded for `timeout` seconds: vpnlb's `fall`
  // consecutive failures at `interval` is that with timeout = fall × interval + 1 (F5's own
  // 3 × interval + 1 rule); `time-until-up` is the wait after the first success, (rise − 1) × interval.
  const timing = `interval ${seconds(m.interval)} timeout ${m.fall * seconds(m.interval) + 1} time-until-up ${(m.rise - 1) * seconds(m.interval)}`;
  const dest = m.port ? ` destination *:${m.port}` : '';
  switch (m.type) {
    case 'icmp':
      lines.push(
        `create ltm monitor gateway-icmp ${name} { defaults-from gateway_icmp ${timing} }`,
      );
      break;
    case 'ikev2':
      lines.push(
        noEquivalent(
          C,
          'the stateless IKEv2 probe (an IKE_SA_INIT the server answers, leaving no SA)',
          'gateway ICMP, as the Always On VPN guides use: it proves the host, not IKEEXT',
        ),
      );
      lines.push(
        `create ltm monitor gateway-icmp ${name} { defaults-from gateway_icmp ${timing} }`,
      );
      break;
    case 'tcp':
      lines.push(`create ltm monitor tcp ${name} { defaults-from tcp ${timing}${dest} }`);
      break;
    case 'sstp': {
      const kind = sstpKind === 'ikev2' ? 'https' : sstpKind;
      lines.push(
        `${C} SSTP monitor: RRAS answers an anonymous HEAD /sra_{...}/ with ${m.expectStatus} (not 200).`,
      );
      lines.push(
        `create ltm monitor ${kind} ${name} { defaults-from ${kind} ${timing}${dest} send "HEAD ${SSTP_URI} HTTP/1.1\\r\\nHost: r\\r\\nConnection: Close\\r\\n\\r\\n" recv "${m.expectStatus}" }`,
      );
      break;
    }
  }
  return { name, lines };
}

function loadBalancingMode(method: Ikev2Service['method']): string {
  if (method === 'least-connections') return 'least-connections-member';
  if (method === 'weighted-round-robin') return 'ratio-member';
  return 'round-robin';
}

function members(
  backends: readonly Backend[],
  port: number,
  method: Ikev2Service['method'],
): string {
  return backends
    .map((b) => {
      const opts: string[] = [];
      if (method === 'weighted-round-robin' && b.weight > 0) opts.push(`ratio ${b.weight}`);
      if (b.maxConnections > 0) opts.push(`connection-limit ${b.maxConnections}`);
      // weight 0 in vpnlb: no new clients, as a user-disabled member (ratio cannot be 0).
      if (!takesClients(b)) opts.push('session user-disabled');
      return `${b.name}:${port} { ${opts.join(' ')}${opts.length ? ' ' : ''}}`;
    })
    .join(' ');
}

/** Source address translation per `nat:` — the setting behind IKEv2 error 809 on a full-NAT balancer. */
function sourceTranslation(s: Ikev2Service, out: string[]): string {
  if (s.nat === 'transparent') {
    out.push(
      `${C} nat: transparent — SNAT none: RRAS sees each client's address; its replies must route back through the BIG-IP (default gateway).`,
    );
    return 'type none';
  }
  out.push(
    `${C} nat: full — every client reaches RRAS from the BIG-IP's addresses: raise IkeNumEstablishedForInitialQuery on RRAS (vpnlb rras) or expect error 809 under load.`,
  );
  if (!s.snat) return 'type automap';
  out.push(
    noEquivalent(
      C,
      `snat.maxSasPerAddress (${s.snat.maxSasPerAddress} IKE SAs per SNAT address and server)`,
      'a SNAT pool without a per-address cap',
    ),
  );
  out.push(
    `create ltm snatpool ${s.name}_snat { members replace-all-with { ${s.snat.addresses.join(' ')} } }`,
  );
  return `type snat pool ${s.name}_snat`;
}

/** BIG-IP writes an IPv6 destination's port after a dot. */
function destination(address: string, port: number): string {
  return address.includes(':') ? `${address}.${port}` : `${address}:${port}`;
}

function hostMask(family: 4 | 6): string {
  return family === 6 ? 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff' : '255.255.255.255';
}
