/**
 * Progress Kemp LoadMaster, as a POSIX shell script of RESTful API calls (curl), since the
 * LoadMaster has no configuration file to paste: `LM=https://<management address>
 * KEMP_AUTH=<user>:<password> sh FILE`.
 *
 * Syntax from the LoadMaster RESTful API documentation (docs.progress.com/bundle/
 * loadmaster-technical-note-restful-api-programmer-guide-ga: "Add a Virtual Service and Set
 * Values" (/access/addvs?vs=&port=&prot=&nickname=&transparent=), "Modify a Virtual Service"
 * (/access/modvs), "List the Virtual Service Details" (the <Index> of a Virtual Service, and the
 * names FollowVSID, Schedule, PersistTimeout, CheckType, CheckPort, CheckUse1.1, Idletime,
 * Transparent), "Modify a Real Server"; loadmaster-configuration-guide-web-user-interface-wui:
 * "Real Servers" (/access/addrs?vs=&rs=&rsport=, a Virtual Service given by its index) and
 * "HTTP or HTTPS Protocol Health Checking" (URL, Status Codes)); the Kemp PowerShell module's
 * New-AdcVirtualService parameters, which are the API's (Persist src / ssl, Schedule rr / wrr /
 * lc / sh, CheckUrl, CheckCodes, VSType gen, SSLAcceleration, SSLReencrypt, CertFile); and
 * directaccess.richardhicks.com 2018-09-17 "Always On VPN IKEv2 Load Balancing with KEMP
 * LoadMaster" (port following between the UDP 500 and 4500 virtual services, transparency).
 */
import { SSTP_URI } from '../../protocol/sstp/sstp-constants.js';
import type { Backend, BalancingMethod, Ikev2Service, SstpService } from '../../config/types.js';
import {
  exportHeader,
  monitorOf,
  noEquivalent,
  poolOf,
  seconds,
  storeName,
  takesClients,
  type ExportFormat,
  type ExportInput,
  serviceConnectionLimit,
} from '../export-format.js';

const C = '#';
/** LoadMaster limits (API): PersistTimeout up to 7 days, Idletime up to 1 day. */
const MAX_PERSIST_TIMEOUT_S = 604_800;
const MAX_IDLE_TIME_S = 86_400;

export const kempFormat: ExportFormat = {
  name: 'kemp',
  summary: 'Kemp LoadMaster RESTful API calls (a shell script)',
  extension: 'sh',
  render(input) {
    const lines = [
      '#!/bin/sh',
      ...exportHeader(C, input, 'Progress Kemp LoadMaster (RESTful API)', [
        'docs.progress.com: LoadMaster RESTful API Programmer Guide (addvs, modvs, listvs, addrs, modrs),',
        '  Web User Interface guide (Real Servers; HTTP or HTTPS Protocol Health Checking)',
        'directaccess.richardhicks.com: Always On VPN IKEv2 Load Balancing with KEMP LoadMaster (port following)',
      ]),
      `${C}`,
      `${C} Run: LM=https://<LoadMaster management address> KEMP_AUTH=<API user>:<password> sh <this file>`,
      `${C} Health check interval, timeout and retries are global on a LoadMaster (Rules & Checking >`,
      `${C} Check Parameters), not per virtual service: set them there from the monitors noted below.`,
      'set -eu',
      // biome-ignore lint/suspicious/noTemplateCurlyInString: shell parameter expansion in the script
      ': "${LM:?set LM to the LoadMaster management URL}"',
      // biome-ignore lint/suspicious/noTemplateCurlyInString: shell parameter expansion in the script
      ': "${KEMP_AUTH:?set KEMP_AUTH to user:password of a LoadMaster API user}"',
      '',
      `${C} kemp COMMAND QUERY: one API call; stops the script unless the LoadMaster answers code="ok".`,
      `${C} -k: the management certificate is self-signed by default (use --cacert FILE for a trusted one);`,
      `${C} -g: the SSTP check URL contains braces, which curl would otherwise read as a URL pattern.`,
      'kemp() {',
      '  response=$(curl -fsS -g -k -u "$KEMP_AUTH" "$LM/access/$1?$2")',
      '  case "$response" in',
      `    *'code="ok"'*) printf '%s\\n' "$response" ;;`,
      `    *) printf 'LoadMaster refused %s: %s\\n' "$1" "$response" >&2; exit 1 ;;`,
      '  esac',
      '}',
      `${C} vs_index: the <Index> of the virtual service an addvs call answered with.`,
      `vs_index() { printf '%s' "$1" | sed -n 's:.*<Index>\\([0-9]*\\)</Index>.*:\\1:p' | head -n 1; }`,
    ];
    for (const s of input.ikev2) lines.push('', ...ikev2(input, s));
    for (const s of input.sstp) lines.push('', ...sstp(input, s));
    return `${lines.join('\n')}\n`;
  },
};

/** A query string with every value percent-encoded (`$var` references stay shell expansions). */
function query(params: readonly (readonly [string, string | number])[]): string {
  return params
    .map(
      ([k, v]) =>
        `${k}=${typeof v === 'string' && v.startsWith('$') ? v : encodeURIComponent(String(v))}`,
    )
    .join('&');
}

function ikev2(input: ExportInput, s: Ikev2Service): string[] {
  const out = [
    `${C} ---- IKEv2 service ${s.name}: UDP ${s.ikePort} + ${s.natTPort} on ${s.virtualIp}, port following between them ----`,
  ];
  if (s.nat === 'transparent') {
    out.push(
      `${C} nat: transparent — Transparent=1: RRAS sees each client's address; its replies must route back through the LoadMaster (default gateway).`,
    );
  } else {
    out.push(
      `${C} nat: full — Transparent=0: every client reaches RRAS from the LoadMaster's address: raise IkeNumEstablishedForInitialQuery on RRAS (vpnlb rras) or expect error 809 under load.`,
    );
    if (s.snat)
      out.push(
        noEquivalent(
          C,
          `the SNAT pool (${s.snat.addresses.join(', ')}; at most ${s.snat.maxSasPerAddress} IKE SAs per address and server)`,
          "the LoadMaster's own address",
        ),
      );
  }
  if (s.affinity === 'ike-spi') {
    out.push(
      noEquivalent(
        C,
        'IKE-SPI affinity (clients behind one carrier-grade NAT spread by their IKE SPI; the LoadMaster persists on addresses)',
        'source IP persistence with port following',
      ),
    );
  }
  const check = checkParams(input, s, 'ikev2', out);
  const schedule = scheduleOf(s.method, out);
  const backends = poolOf(input, s).backends;
  const vars: string[] = [];
  for (const [port, backendPort] of [
    [s.ikePort, s.backendIkePort],
    [s.natTPort, s.backendNatTPort],
  ] as const) {
    const v = shellVar(s.name, port);
    vars.push(v);
    const q = query([
      ['vs', s.virtualIp],
      ['port', port],
      ['prot', 'udp'],
      ['nickname', `${s.name}-${port}`],
      ['Transparent', s.nat === 'transparent' ? 1 : 0],
      ['Schedule', schedule],
      ['Persist', 'src'],
      ['PersistTimeout', Math.min(MAX_PERSIST_TIMEOUT_S, seconds(s.persistenceTimeout))],
      ['Idletime', Math.min(MAX_IDLE_TIME_S, seconds(s.flowTimeout))],
      ...check,
    ]);
    out.push(`${v}=$(vs_index "$(kemp addvs "${q}")")`, ...realServers(v, backends, backendPort));
  }
  // Port following: a client's UDP 4500 flow goes to the server its UDP 500 flow persists on (and back).
  out.push(
    `kemp modvs "vs=$${vars[0]}&FollowVSID=$${vars[1]}"`,
    `kemp modvs "vs=$${vars[1]}&FollowVSID=$${vars[0]}"`,
  );
  return out;
}

function sstp(input: ExportInput, s: SstpService): string[] {
  const out = [`${C} ---- SSTP service ${s.name}: TCP ${s.port} on ${s.virtualIp}, ${s.mode} ----`];
  // VSType gen (generic): the LoadMaster must not parse SSTP's HTTP request (its 2^64−1 Content-Length).
  const params: [string, string | number][] = [
    ['vs', s.virtualIp],
    ['port', s.port],
    ['prot', 'tcp'],
    ['nickname', s.name],
    ['VSType', 'gen'],
    ['Transparent', 0],
    ['Schedule', scheduleOf(s.method, out)],
    ['Idletime', Math.min(MAX_IDLE_TIME_S, seconds(s.idleTimeout))],
  ];
  if (s.persistence === 'tls-session')
    params.push(
      ['Persist', 'ssl'],
      ['PersistTimeout', Math.min(MAX_PERSIST_TIMEOUT_S, seconds(s.persistenceTimeout))],
    );
  if (s.persistence === 'source-ip')
    params.push(
      ['Persist', 'src'],
      ['PersistTimeout', Math.min(MAX_PERSIST_TIMEOUT_S, seconds(s.persistenceTimeout))],
    );
  if (s.mode !== 'passthrough' && s.tls) {
    const name = storeName(s.tls.cert);
    out.push(
      `${C} Upload the front certificate and its key first, as one PEM: kemp addcert "cert=${name}" with the PEM as the request body (curl --data-binary @FILE).`,
    );
    params.push(['SSLAcceleration', 1], ['CertFile', name]);
    if (s.mode === 'reencrypt') {
      params.push(['SSLReencrypt', 1]);
      out.push(
        `${C} Re-encryption: RRAS must present the same certificate as the front (vpnlb refuses a server whose certificate differs; the LoadMaster does not check it).`,
      );
    }
  }
  if (serviceConnectionLimit(s) > 0)
    out.push(
      noEquivalent(
        C,
        `maxConnections ${serviceConnectionLimit(s)} for the whole service`,
        'per-server limits only',
      ),
    );
  params.push(...checkParams(input, s, s.mode === 'offload' ? 'http' : 'https', out));
  const v = shellVar(s.name, s.port);
  out.push(
    `${v}=$(vs_index "$(kemp addvs "${query(params)}")")`,
    ...realServers(v, poolOf(input, s).backends, s.backendPort),
  );
  return out;
}

/** A shell variable name for a virtual service's index (service names may contain '-'). */
function shellVar(service: string, port: number): string {
  return `vs_${service.replaceAll('-', '_')}_${port}`;
}

function checkParams(
  input: ExportInput,
  s: Ikev2Service | SstpService,
  kind: 'http' | 'https' | 'ikev2',
  out: string[],
): [string, string | number][] {
  const m = monitorOf(input, s);
  if (!m) {
    out.push(`${C} No monitor in vpnlb for ${s.name}: CheckType=none.`);
    return [['CheckType', 'none']];
  }
  out.push(
    `${C} vpnlb monitor ${s.monitor}: every ${seconds(m.interval)} s, timeout ${seconds(m.timeout)} s, down after ${m.fall} failures, up after ${m.rise} successes (global Check Parameters).`,
  );
  const port: [string, number][] = m.port ? [['CheckPort', m.port]] : [];
  switch (m.type) {
    case 'icmp':
      return [['CheckType', 'icmp']];
    case 'ikev2':
      out.push(
        noEquivalent(
          C,
          'the stateless IKEv2 probe (an IKE_SA_INIT the server answers, leaving no SA)',
          'ICMP, as the Always On VPN guides use: it proves the host, not IKEEXT',
        ),
      );
      return [['CheckType', 'icmp']];
    case 'tcp':
      return [['CheckType', 'tcp'], ...port];
    case 'sstp':
      // HEAD is the LoadMaster's default HTTP check method; RRAS answers it with 401.
      out.push(
        `${C} SSTP check: HEAD ${SSTP_URI} over ${kind === 'http' ? 'HTTP' : 'TLS'}, up on ${m.expectStatus} (RRAS answers 401, not 200).`,
      );
      return [
        ['CheckType', kind === 'http' ? 'http' : 'https'],
        ['CheckUrl', SSTP_URI],
        ['CheckCodes', m.expectStatus],
        ['CheckUse1.1', 1],
        ...port,
      ];
  }
}

function scheduleOf(method: BalancingMethod, out: string[]): string {
  if (method === 'least-connections') return 'lc';
  if (method === 'weighted-round-robin') return 'wrr';
  out.push(
    noEquivalent(
      C,
      'Maglev (65537-slot consistent hashing shared by every vpnlb node)',
      'source IP hash scheduling (sh)',
    ),
  );
  return 'sh';
}

function realServers(vsVar: string, backends: readonly Backend[], port: number): string[] {
  const out: string[] = [];
  for (const b of backends) {
    const limit = b.maxConnections > 0 ? `&limit=${b.maxConnections}` : '';
    out.push(
      `kemp addrs "vs=$${vsVar}&rs=${b.address}&rsport=${port}&weight=${Math.max(1, b.weight)}${limit}"`,
    );
    // vpnlb weight 0 or enabled: false — no new clients: a disabled real server.
    if (!takesClients(b))
      out.push(`kemp modrs "vs=$${vsVar}&rs=${b.address}&rsport=${port}&enable=N"`);
  }
  return out;
}
