/**
 * `vpnlb rras`: the PowerShell each RRAS server behind vpnlb needs, from the configuration.
 *
 * One script per server: it checks, and with `-Apply` sets, only what that server's services
 * require — the route back through the balancer for transparent IKEv2, the SSTP offload
 * certificate hash for offload, IkeNumEstablishedForInitialQuery (and an IKEEXT restart) for
 * full NAT — then runs a self-test (listening ports, the SSTP certificate). A dry run by
 * default; each step compares before it changes, so a second run changes nothing.
 *
 * Cmdlets (learn.microsoft.com/powershell/module/): NetTCPIP (Get-NetRoute, New-NetRoute,
 * Remove-NetRoute, Find-NetRoute, Get-NetUDPEndpoint, Get-NetTCPConnection),
 * Microsoft.PowerShell.Management (Get-ItemProperty, New-ItemProperty, Get-Service,
 * Restart-Service), RemoteAccess (Get-RemoteAccess: SslCertificate, the certificate SSTP binds).
 */
import { isIP } from 'node:net';
import { basename } from 'node:path';
import type { Backend, Config, Ikev2Service, SstpService } from '../config/types.js';
import { VpnlbError } from '../errors.js';
import {
  IKE_NUM_ESTABLISHED_FOR_INITIAL_QUERY,
  IKEEXT_PARAMETERS_KEY,
  powershellBytes,
  SSTP_PARAMETERS_KEY,
  type CertificateHashes,
} from './rras-registry.js';

export interface RrasScriptOptions {
  /**
   * The balancer's addresses on the servers' network (at most one IPv4 and one IPv6): the next
   * hop for replies to VPN clients.
   */
  readonly gateways?: readonly string[];
  /** Client networks to route through the balancer instead of changing the default route. */
  readonly clientNetworks?: readonly string[];
  /** Front certificate of each offload / reencrypt SSTP service, by service name. */
  readonly certificates?: Readonly<Record<string, CertificateHashes>>;
}

/** One RRAS server of the configuration and the services that send it clients. */
export interface RrasServer {
  readonly name: string;
  readonly addresses: readonly string[];
  readonly ikev2: readonly Ikev2Service[];
  readonly sstp: readonly SstpService[];
}

/** Every backend name of the configuration (in pool order) with its services. */
export function rrasServers(config: Config): RrasServer[] {
  const byName = new Map<
    string,
    { addresses: Set<string>; ikev2: Ikev2Service[]; sstp: SstpService[] }
  >();
  const entry = (b: Backend) => {
    let e = byName.get(b.name);
    if (!e) byName.set(b.name, (e = { addresses: new Set(), ikev2: [], sstp: [] }));
    e.addresses.add(b.address);
    return e;
  };
  for (const pool of Object.values(config.pools)) for (const b of pool.backends) entry(b);
  for (const s of config.services.ikev2)
    for (const b of config.pools[s.pool]?.backends ?? []) entry(b).ikev2.push(s);
  for (const s of config.services.sstp)
    for (const b of config.pools[s.pool]?.backends ?? []) entry(b).sstp.push(s);
  return [...byName].map(([name, e]) => ({
    name,
    addresses: [...e.addresses],
    ikev2: e.ikev2,
    sstp: e.sstp,
  }));
}

/** The PowerShell script for `server`. Pure: the same input gives the same text. */
export function renderRrasScript(
  config: Config,
  server: RrasServer,
  options: RrasScriptOptions = {},
): string {
  const transparent = server.ikev2.filter((s) => s.nat === 'transparent');
  const fullNat = server.ikev2.filter((s) => s.nat === 'full');
  const offload = server.sstp.filter((s) => s.mode === 'offload');
  const needsGateway = transparent.length > 0;
  const steps: string[] = [];
  const plan: string[] = [];
  if (needsGateway) {
    plan.push(
      `route replies to VPN clients through the balancer (transparent IKEv2: ${names(transparent)})`,
    );
    steps.push(...routeStep(transparent, options));
  }
  if (offload.length > 0) {
    plan.push(
      `SSTP offload: the front certificate's SHA-256 hash and plain HTTP (${names(offload)})`,
    );
    steps.push(...offloadStep(offload, options));
  }
  if (fullNat.length > 0) {
    plan.push(
      `IkeNumEstablishedForInitialQuery = ${IKE_NUM_ESTABLISHED_FOR_INITIAL_QUERY} and an IKEEXT restart (full NAT: ${names(fullNat)})`,
    );
    steps.push(...ikeextStep(fullNat, server));
  }
  if (plan.length === 0)
    plan.push(
      'nothing to change for its services (SSTP passthrough / re-encryption need no RRAS setting)',
    );
  const gatewayParam = needsGateway
    ? routeFamilies(transparent, options).flatMap((f) => gatewayParameter(f, options))
    : [];
  const lines = [
    '<#',
    '.SYNOPSIS',
    `    RRAS settings for ${server.name} (${server.addresses.join(', ')}) behind vpnlb, from ${basename(config.source)}.`,
    '.DESCRIPTION',
    '    Written by `vpnlb rras`. Checks, and with -Apply makes, what this server needs:',
    ...plan.map((p, i) => `      ${i + 1}. ${p}`),
    '    then a self-test of the server as it is (listening ports, the SSTP certificate, the balancer).',
    '    Without -Apply nothing is changed:',
    '    each step says OK, or WOULD and what it would do. Run it again after -Apply: every step says OK.',
    '    Run it in an elevated PowerShell on the server.',
    '.PARAMETER Apply',
    '    Make the changes (without it: a dry run).',
    '#>',
    '[CmdletBinding()]',
    'param(',
    ...gatewayParam,
    '    [switch]$Apply',
    ')',
    'Set-StrictMode -Version 3.0',
    "$ErrorActionPreference = 'Stop'",
    '$script:Failures = 0',
    '',
    '# Step: report OK, or WOULD (dry run) / CHANGE (with -Apply) and run the change.',
    'function Invoke-Step([bool]$Done, [string]$What, [scriptblock]$Change) {',
    '    if ($Done) { Write-Host "OK      $What"; return }',
    '    if (-not $Apply) { Write-Host "WOULD   $What"; return }',
    '    Write-Host "CHANGE  $What"',
    '    & $Change',
    '}',
    '# Check: one line of the self-test; a failed check makes the script exit 1.',
    'function Test-Check([bool]$Passed, [string]$What) {',
    '    if ($Passed) { Write-Host "PASS    $What" } else { Write-Host "FAIL    $What"; $script:Failures++ }',
    '}',
    ...(offload.length + fullNat.length > 0 ? REGISTRY_HELPER : []),
    ...steps,
    '',
    ...selfTest(server, options),
    '',
    'if ($script:Failures -gt 0) { Write-Host "$script:Failures self-test check(s) failed"; exit 1 }',
    "Write-Host 'self-test passed'",
  ];
  return `${lines.join('\n')}\n`;
}

/** A registry value, or $null when the key or the value does not exist (`,` keeps a byte[] whole). */
const REGISTRY_HELPER = [
  '# Registry value, or $null when the key or the value does not exist.',
  'function Get-RegistryValue([string]$Key, [string]$Name) {',
  '    $props = Get-ItemProperty -Path $Key -ErrorAction SilentlyContinue',
  '    if ($null -eq $props) { return $null }',
  '    $property = $props.PSObject.Properties[$Name]',
  '    if ($null -eq $property) { return $null }',
  '    return ,$property.Value',
  '}',
];

function names(services: readonly { name: string }[]): string {
  return services.map((s) => s.name).join(', ');
}

/** Families that need a route back: the transparent services', or the client networks'. */
function routeFamilies(services: readonly Ikev2Service[], options: RrasScriptOptions): (4 | 6)[] {
  const families = options.clientNetworks?.length
    ? options.clientNetworks.map((p) => (isIP(p.split('/')[0] ?? '') === 6 ? 6 : 4))
    : services.map((s) => s.family);
  return [...new Set(families)].sort();
}

/** `$Gateway` (IPv4) or `$Gateway6` (IPv6). */
function gatewayVariable(family: 4 | 6): string {
  return family === 6 ? '$Gateway6' : '$Gateway';
}

function gatewayParameter(family: 4 | 6, options: RrasScriptOptions): string[] {
  const given = options.gateways?.find((g) => isIP(g) === family);
  return [
    `    # The balancer's IPv${family} address on this server's network: the next hop for replies to VPN clients.`,
    ...(given
      ? [`    [string]${gatewayVariable(family)} = '${given}',`]
      : ['    [Parameter(Mandatory = $true)]', `    [string]${gatewayVariable(family)},`]),
  ];
}

function routeStep(services: readonly Ikev2Service[], options: RrasScriptOptions): string[] {
  const out = [
    '',
    '# ---- Route back through the balancer ----',
    "# vpnlb forwards IKEv2 with destination NAT only: this server sees each client's real address and",
    '# answers it directly. Unless the answer goes back through the balancer, it leaves with this',
    "# server's own address instead of the virtual IP and the client drops it (IKE never completes).",
    '# vpnlb status reports such a server ("set the default gateway of ... to ...").',
  ];
  if (options.clientNetworks && options.clientNetworks.length > 0) {
    out.push(
      '# Persistent routes for the client networks only (the default route stays as it is).',
    );
    for (const prefix of options.clientNetworks) {
      const gw = gatewayVariable(isIP(prefix.split('/')[0] ?? '') === 6 ? 6 : 4);
      out.push(
        `$route = @(Get-NetRoute -DestinationPrefix '${prefix}' -ErrorAction SilentlyContinue | Where-Object { $_.NextHop -eq ${gw} })`,
        `Invoke-Step ($route.Count -gt 0) "route ${prefix} via ${gw}" {`,
        `    $ifIndex = (Find-NetRoute -RemoteIPAddress ${gw} | Select-Object -First 1).InterfaceIndex`,
        `    New-NetRoute -DestinationPrefix '${prefix}' -NextHop ${gw} -InterfaceIndex $ifIndex | Out-Null`,
        '}',
      );
    }
    return out;
  }
  for (const family of routeFamilies(services, options)) {
    const prefix = family === 6 ? '::/0' : '0.0.0.0/0';
    const gw = gatewayVariable(family);
    out.push(
      `# The default route (${prefix}) via the balancer: persistent (New-NetRoute writes the active and the persistent store).`,
      `$old = @(Get-NetRoute -DestinationPrefix '${prefix}' -ErrorAction SilentlyContinue)`,
      `$done = ($old.Count -eq 1) -and ($old[0].NextHop -eq ${gw})`,
      `Invoke-Step $done "default route ${prefix} via ${gw} (now: $(($old | ForEach-Object { $_.NextHop }) -join ', '))" {`,
      `    $ifIndex = (Find-NetRoute -RemoteIPAddress ${gw} | Select-Object -First 1).InterfaceIndex`,
      '    $old | Remove-NetRoute -Confirm:$false',
      `    Get-NetRoute -DestinationPrefix '${prefix}' -PolicyStore PersistentStore -ErrorAction SilentlyContinue | Remove-NetRoute -Confirm:$false`,
      `    New-NetRoute -DestinationPrefix '${prefix}' -NextHop ${gw} -InterfaceIndex $ifIndex | Out-Null`,
      '}',
    );
  }
  return out;
}

function offloadStep(services: readonly SstpService[], options: RrasScriptOptions): string[] {
  const hashes = [...new Set(services.map((s) => certificateOf(s, options).sha256))];
  if (hashes.length > 1) {
    throw new VpnlbError(
      'VPNLB_SSTP_TLS_CONFIG',
      `SSTP services ${names(services)} send this server clients with different front certificates: RRAS holds one SHA256CertificateHash`,
      'client',
    );
  }
  const cert = certificateOf(services[0] as SstpService, options);
  return [
    '',
    '# ---- SSTP offload ----',
    "# vpnlb terminates TLS and forwards SSTP in plain HTTP to port 80. SSTP's crypto binding covers",
    '# the hash of the certificate the client saw ([MS-SSTP] 3.3.3), so RRAS must know it:',
    `#   ${cert.subject}, expires ${cert.notAfter}, SHA-1 thumbprint ${cert.sha1}.`,
    '# Renewing the certificate on the balancer means running `vpnlb rras` and this script again.',
    `$Path = '${SSTP_PARAMETERS_KEY}'`,
    `$Hash = ${powershellBytes(cert.sha256)}`,
    "$current = Get-RegistryValue $Path 'SHA256CertificateHash'",
    '$hashDone = ($null -ne $current) -and ([BitConverter]::ToString([byte[]]$current) -eq [BitConverter]::ToString($Hash))',
    `Invoke-Step $hashDone 'SHA256CertificateHash = ${cert.sha256}' {`,
    "    New-ItemProperty -Path $Path -Name 'SHA256CertificateHash' -PropertyType Binary -Value $Hash -Force | Out-Null",
    '}',
    "$current = Get-RegistryValue $Path 'UseHttps'",
    '$httpDone = ($null -ne $current) -and ($current -eq 0)',
    "Invoke-Step $httpDone 'UseHttps = 0 (SSTP in plain HTTP on port 80)' {",
    "    New-ItemProperty -Path $Path -Name 'UseHttps' -PropertyType DWord -Value 0 -Force | Out-Null",
    '}',
    '# RemoteAccess reads both values when it starts.',
    'if (-not ($hashDone -and $httpDone)) {',
    "    Invoke-Step $false 'restart RemoteAccess for the SSTP settings' { Restart-Service -Name RemoteAccess }",
    '}',
  ];
}

function ikeextStep(services: readonly Ikev2Service[], server: RrasServer): string[] {
  return [
    '',
    '# ---- Full NAT: the per-address IKE SA limit ----',
    `# ${names(services)} use nat: full: every client reaches this server from a few balancer addresses, and`,
    '# IKEEXT limits the IKE SAs it establishes per source address: new clients then fail with error 809',
    '# while connected ones keep working. Raising the limit is a partial workaround (nat: transparent is',
    "# the fix). Restarting IKEEXT drops this server's IKEv2 tunnels: drain it first",
    `# (vpnlb backend drain ${server.name}), wait for its tunnels to end, run this, then vpnlb backend enable ${server.name}.`,
    `$Ike = '${IKEEXT_PARAMETERS_KEY}'`,
    "$current = Get-RegistryValue $Ike 'IkeNumEstablishedForInitialQuery'",
    `$done = ($null -ne $current) -and ($current -ge ${IKE_NUM_ESTABLISHED_FOR_INITIAL_QUERY})`,
    `Invoke-Step $done 'IkeNumEstablishedForInitialQuery = ${IKE_NUM_ESTABLISHED_FOR_INITIAL_QUERY}, then restart IKEEXT' {`,
    `    New-ItemProperty -Path $Ike -Name 'IkeNumEstablishedForInitialQuery' -PropertyType DWord -Value ${IKE_NUM_ESTABLISHED_FOR_INITIAL_QUERY} -Force | Out-Null`,
    '    Restart-Service -Name IKEEXT -Force',
    '}',
  ];
}

function selfTest(server: RrasServer, options: RrasScriptOptions): string[] {
  const out = [
    '# ---- Self-test ----',
    "Test-Check ((Get-Service -Name RemoteAccess).Status -eq 'Running') 'RemoteAccess service running'",
  ];
  const udpPorts = [
    ...new Set(server.ikev2.flatMap((s) => [s.backendIkePort, s.backendNatTPort])),
  ].sort((a, b) => a - b);
  for (const port of udpPorts) {
    out.push(
      `Test-Check (@(Get-NetUDPEndpoint -LocalPort ${port} -ErrorAction SilentlyContinue).Count -gt 0) 'IKEv2: listening on UDP ${port}'`,
    );
  }
  const tcpPorts = [...new Set(server.sstp.map((s) => s.backendPort))].sort((a, b) => a - b);
  for (const port of tcpPorts) {
    out.push(
      `Test-Check (@(Get-NetTCPConnection -State Listen -LocalPort ${port} -ErrorAction SilentlyContinue).Count -gt 0) 'SSTP: listening on TCP ${port}'`,
    );
  }
  const tlsOnServer = server.sstp.filter((s) => s.mode !== 'offload');
  if (tlsOnServer.length > 0) {
    out.push(
      '$sstpCert = (Get-RemoteAccess).SslCertificate',
      "Test-Check ($null -ne $sstpCert) 'SSTP: a certificate is bound'",
    );
    for (const s of tlsOnServer.filter((x) => x.mode === 'reencrypt')) {
      const cert = certificateOf(s, options);
      out.push(
        `# ${s.name} re-encrypts: vpnlb refuses a server whose certificate differs from its front certificate.`,
        `Test-Check (($null -ne $sstpCert) -and ($sstpCert.Thumbprint -eq '${cert.sha1}')) 'SSTP: the certificate is the balancer''s front certificate (${s.name})'`,
      );
    }
  }
  const transparent = server.ikev2.filter((s) => s.nat === 'transparent');
  if (transparent.length > 0) {
    for (const gw of routeFamilies(transparent, options).map(gatewayVariable)) {
      out.push(
        `Test-Check (@(Find-NetRoute -RemoteIPAddress ${gw} -ErrorAction SilentlyContinue).Count -gt 0) "the balancer ${gw} is reachable on a connected network"`,
      );
    }
  }
  return out;
}

function certificateOf(s: SstpService, options: RrasScriptOptions): CertificateHashes {
  const cert = options.certificates?.[s.name];
  if (!cert)
    throw new VpnlbError(
      'VPNLB_SSTP_TLS_CONFIG',
      `SSTP service ${s.name} (${s.mode}): its front certificate (tls.cert) is needed for RRAS: pass --cert FILE`,
      'client',
    );
  return cert;
}

/** Checks the options an administrator typed; usage errors name the option. */
export function validateRrasOptions(options: RrasScriptOptions): void {
  for (const g of options.gateways ?? []) {
    if (isIP(g) === 0)
      throw new VpnlbError('VPNLB_CLI_USAGE', `--gateway: "${g}" is not an IP address`, 'client');
  }
  const families = (options.gateways ?? []).map((g) => isIP(g));
  if (new Set(families).size !== families.length) {
    throw new VpnlbError(
      'VPNLB_CLI_USAGE',
      '--gateway: at most one IPv4 and one IPv6 address',
      'client',
    );
  }
  for (const n of options.clientNetworks ?? []) {
    const [addr, len, extra] = n.split('/');
    const family = isIP(addr ?? '');
    const bits = Number(len);
    if (
      extra !== undefined ||
      family === 0 ||
      !/^[0-9]{1,3}$/.test(len ?? '') ||
      bits > (family === 6 ? 128 : 32)
    ) {
      throw new VpnlbError(
        'VPNLB_CLI_USAGE',
        `--client-network: "${n}" is not a prefix such as 203.0.113.0/24`,
        'client',
      );
    }
  }
}
