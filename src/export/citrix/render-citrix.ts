/**
 * Citrix ADC (NetScaler), as CLI commands (paste into the CLI or run as a batch file; lines
 * starting with `#` are comments).
 *
 * Syntax from the NetScaler command reference (developer-docs.netscaler.com/en-us/
 * adc-command-reference-int/current-release/): basic/server (add server), basic/servicegroup
 * (add serviceGroup -usip, bind serviceGroup ... -weight / -state / -monitorName), lb/lb-vserver
 * (add lb vserver ... -lbMethod -persistenceType -timeout -cltTimeout -netProfile), lb/lb-group
 * (add lb group -persistenceType SOURCEIP -timeout, bind lb group), lb/lb-monitor (PING, TCP,
 * HTTP -respCode -httpRequest -secure, -interval -resptimeout -retries -successRetries
 * -destPort), ssl/ssl-certkey, ssl/ssl-vserver (bind ssl vserver -certkeyName), network/ipset,
 * network/netprofile (-srcIP); and the Always On VPN guides for Citrix ADC
 * (directaccess.richardhicks.com 2020-01-20 "Always On VPN IKEv2 Load Balancing with Citrix
 * NetScaler ADC": UDP service groups with Use Client IP, a SOURCEIP persistency group binding
 * the 500 and 4500 vservers; "... SSTP Load Balancing with Citrix NetScaler ADC": SSL_BRIDGE,
 * SSLSESSION persistence, LEASTCONNECTION, the HEAD /sra_{...}/ → 401 monitor).
 */
import { SSTP_URI } from '../../protocol/sstp/sstp-constants.js';
import type { Backend, BalancingMethod, Ikev2Service, SstpService } from '../../config/types.js';
import {
  exportHeader,
  minutes,
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

export const citrixFormat: ExportFormat = {
  name: 'citrix',
  summary: 'Citrix ADC (NetScaler) CLI commands',
  extension: 'conf',
  render(input) {
    const lines = exportHeader(C, input, 'Citrix ADC / NetScaler (CLI)', [
      'developer-docs.netscaler.com/en-us/adc-command-reference-int/current-release/ (server, serviceGroup,',
      '  lb vserver, lb group, lb monitor, ssl certKey, ssl vserver, ipset, netProfile)',
      'directaccess.richardhicks.com: Always On VPN IKEv2 / SSTP Load Balancing with Citrix NetScaler ADC',
    ]);
    lines.push('', `${C} ---- servers: one per RRAS server ----`);
    for (const b of serversOf(input)) lines.push(`add server ${b.name} ${b.address}`);
    for (const s of input.ikev2) lines.push('', ...ikev2(input, s));
    for (const s of input.sstp) lines.push('', ...sstp(input, s));
    return `${lines.join('\n')}\n`;
  },
};

function ikev2(input: ExportInput, s: Ikev2Service): string[] {
  const out = [
    `${C} ---- IKEv2 service ${s.name}: UDP ${s.ikePort} + ${s.natTPort} on ${s.virtualIp}, bound into one persistency group ----`,
  ];
  const monitor = monitorCommand(input, s, 'ikev2');
  out.push(...monitor.lines);
  const usip = s.nat === 'transparent' ? 'YES' : 'NO';
  let netProfile = '';
  if (s.nat === 'transparent') {
    out.push(
      `${C} nat: transparent — Use Client IP: RRAS sees each client's address; its replies must route back through the ADC (default gateway).`,
    );
  } else {
    out.push(
      `${C} nat: full — every client reaches RRAS from the ADC's addresses: raise IkeNumEstablishedForInitialQuery on RRAS (vpnlb rras) or expect error 809 under load.`,
    );
    if (s.snat) {
      out.push(
        noEquivalent(
          C,
          `snat.maxSasPerAddress (${s.snat.maxSasPerAddress} IKE SAs per SNAT address and server)`,
          'an IP set of source addresses without a per-address cap',
        ),
        `${C} The addresses must be SNIPs of this ADC on the servers' network.`,
        `add ipset ${s.name}_snat`,
        ...s.snat.addresses.map((a) => `bind ipset ${s.name}_snat ${a}`),
        `add netProfile ${s.name}_snat -srcIP ${s.name}_snat`,
      );
      netProfile = ` -netProfile ${s.name}_snat`;
    }
  }
  if (s.affinity === 'ike-spi') {
    out.push(
      noEquivalent(
        C,
        'IKE-SPI affinity (clients behind one carrier-grade NAT spread by their IKE SPI; the ADC persists on addresses)',
        'a SOURCEIP persistency group over both vservers',
      ),
    );
  }
  const method = lbMethod(s.method, out);
  const backends = poolOf(input, s).backends;
  const names: string[] = [];
  for (const [port, backendPort] of [
    [s.ikePort, s.backendIkePort],
    [s.natTPort, s.backendNatTPort],
  ] as const) {
    const name = `${s.name}_${port}`;
    names.push(name);
    out.push(
      `add serviceGroup ${name} UDP -usip ${usip}`,
      ...bindMembers(name, backends, backendPort),
    );
    if (monitor.name) out.push(`bind serviceGroup ${name} -monitorName ${monitor.name}`);
    out.push(
      `add lb vserver ${name} UDP ${s.virtualIp} ${port} -lbMethod ${method} -cltTimeout ${seconds(s.flowTimeout)}${netProfile}`,
      `bind lb vserver ${name} ${name}`,
    );
  }
  // The persistency group makes UDP 500 and 4500 of one client one persistence session.
  out.push(
    `add lb group ${s.name} -persistenceType SOURCEIP -timeout ${minutes(s.persistenceTimeout)}`,
    `bind lb group ${s.name} ${names.join(' ')}`,
  );
  return out;
}

function sstp(input: ExportInput, s: SstpService): string[] {
  const out = [`${C} ---- SSTP service ${s.name}: TCP ${s.port} on ${s.virtualIp}, ${s.mode} ----`];
  const monitor = monitorCommand(input, s, s.mode === 'offload' ? 'http' : 'https');
  out.push(...monitor.lines);
  // SSL_BRIDGE passes TLS through; offload and re-encryption terminate it as SSL_TCP (no HTTP
  // parsing: SSTP's request carries a 2^64−1 Content-Length that HTTP-mode proxies reject).
  const [vserverType, groupType] =
    s.mode === 'passthrough'
      ? ['SSL_BRIDGE', 'SSL_BRIDGE']
      : s.mode === 'offload'
        ? ['SSL_TCP', 'TCP']
        : ['SSL_TCP', 'SSL_TCP'];
  const method = lbMethod(s.method, out);
  const persistence =
    s.persistence === 'tls-session'
      ? 'SSLSESSION'
      : s.persistence === 'source-ip'
        ? 'SOURCEIP'
        : 'NONE';
  const timeout = persistence === 'NONE' ? '' : ` -timeout ${minutes(s.persistenceTimeout)}`;
  if (
    serviceConnectionLimit(s) > 0 ||
    poolOf(input, s).backends.some((b) => b.maxConnections > 0)
  ) {
    out.push(
      noEquivalent(
        C,
        'maxConnections (a cap on SSTP tunnels per service or per server)',
        'none rendered: set -maxClient on the service group by hand if needed',
      ),
    );
  }
  // vpnlb's SSTP proxy connects from the balancer's own address (Use Client IP off).
  out.push(
    `add serviceGroup ${s.name} ${groupType} -usip NO`,
    ...bindMembers(s.name, poolOf(input, s).backends, s.backendPort),
  );
  if (monitor.name) out.push(`bind serviceGroup ${s.name} -monitorName ${monitor.name}`);
  out.push(
    `add lb vserver ${s.name} ${vserverType} ${s.virtualIp} ${s.port} -persistenceType ${persistence}${timeout} -lbMethod ${method} -cltTimeout ${seconds(s.idleTimeout)}`,
    `bind lb vserver ${s.name} ${s.name}`,
  );
  if (s.mode !== 'passthrough' && s.tls) {
    const name = storeName(s.tls.cert);
    out.push(
      `${C} Copy the front certificate and key to /nsconfig/ssl/ first.`,
      `add ssl certKey ${name} -cert ${storeName(s.tls.cert)}${extension(s.tls.cert)} -key ${storeName(s.tls.key)}${extension(s.tls.key)}`,
      `bind ssl vserver ${s.name} -certkeyName ${name}`,
    );
  }
  if (s.mode === 'reencrypt')
    out.push(
      `${C} Re-encryption: RRAS must present the same certificate as the front (vpnlb refuses a server whose certificate differs; the ADC does not check it).`,
    );
  return out;
}

function extension(path: string): string {
  const m = /\.[^./]+$/.exec(path);
  return m ? m[0] : '';
}

function monitorCommand(
  input: ExportInput,
  s: Ikev2Service | SstpService,
  kind: 'http' | 'https' | 'ikev2',
): { name?: string; lines: string[] } {
  const m = monitorOf(input, s);
  if (!m)
    return {
      lines: [`${C} No monitor in vpnlb for ${s.name}: none here either (members count as up).`],
    };
  const name = `${s.name}_monitor`;
  // -retries: failed probes before DOWN (vpnlb fall); -successRetries: successes before UP (rise).
  const timing = `-interval ${seconds(m.interval)} -resptimeout ${seconds(m.timeout)} -retries ${m.fall} -successRetries ${m.rise}${m.port ? ` -destPort ${m.port}` : ''}`;
  const lines: string[] = [];
  switch (m.type) {
    case 'icmp':
      lines.push(`add lb monitor ${name} PING ${timing}`);
      break;
    case 'ikev2':
      lines.push(
        noEquivalent(
          C,
          'the stateless IKEv2 probe (an IKE_SA_INIT the server answers, leaving no SA)',
          'PING, as the Always On VPN guides use: it proves the host, not IKEEXT',
        ),
      );
      lines.push(`add lb monitor ${name} PING ${timing}`);
      break;
    case 'tcp':
      lines.push(`add lb monitor ${name} TCP ${timing}`);
      break;
    case 'sstp':
      lines.push(
        `${C} SSTP monitor: RRAS answers an anonymous HEAD /sra_{...}/ with ${m.expectStatus} (not 200).`,
      );
      lines.push(
        `add lb monitor ${name} HTTP -respCode ${m.expectStatus} -httpRequest "HEAD ${SSTP_URI}" -secure ${kind === 'http' ? 'NO' : 'YES'} ${timing}`,
      );
      break;
  }
  return { name, lines };
}

function lbMethod(method: BalancingMethod, out: string[]): string {
  if (method === 'least-connections') return 'LEASTCONNECTION';
  if (method === 'weighted-round-robin') return 'ROUNDROBIN';
  out.push(
    noEquivalent(
      C,
      'Maglev (65537-slot consistent hashing shared by every vpnlb node)',
      'SOURCEIPHASH',
    ),
  );
  return 'SOURCEIPHASH';
}

function bindMembers(group: string, backends: readonly Backend[], port: number): string[] {
  return backends.map((b) => {
    // Citrix weights run 1–100; vpnlb weight 0 (no new clients) becomes a disabled member.
    const state = takesClients(b) ? '' : ' -state DISABLED';
    return `bind serviceGroup ${group} ${b.name} ${port} -weight ${Math.min(100, Math.max(1, b.weight))}${state}`;
  });
}
