/**
 * Warnings: settings that are valid but risky. The administrator is told; the file still loads.
 */
import { MAGLEV_TABLE_SIZE } from '../balancer/maglev/table-size.js';
import { canonicalAddress, checkUnicastAddress } from './address-rules.js';
import type { Config } from './types.js';
import type { PathSeg } from './yaml-paths.js';

/** Valid but risky settings: the administrator is told, the file still loads. */
export function warningsFor(config: Config): { path: PathSeg[]; message: string }[] {
  const out: { path: PathSeg[]; message: string }[] = [];
  if (!isLoopback(config.admin.listen) && !config.admin.tls) {
    out.push({
      path: ['admin', 'listen'],
      message: `the admin listener on ${config.admin.listen} is reachable from the network without TLS: tokens and session cookies travel in clear (set admin.tls, or listen on 127.0.0.1 and use admin.socket)`,
    });
  }
  if (config.admin.metrics === 'open' && !isLoopback(config.admin.listen)) {
    out.push({
      path: ['admin', 'metrics'],
      message:
        'metrics: open lets anyone who reaches the admin listener read /metrics (backend names, addresses, counters)',
    });
  }
  config.services.ikev2.forEach((s, i) => {
    if (s.nat === 'full') {
      const from = s.snat ? s.snat.addresses.join(', ') : "the balancer's own address";
      const what =
        s.snat && s.snat.addresses.length > 1
          ? `one of only ${s.snat.addresses.length} addresses (${from})`
          : from;
      out.push({
        path: ['services', 'ikev2', i, 'nat'],
        message: `full NAT: the VPN servers will see every client as coming from ${what}: expect IKEv2 error 809 under load; see docs/operations.md ("Transparent vs full NAT")`,
      });
    }
    if (s.monitor === undefined) {
      out.push({
        path: ['services', 'ikev2', i],
        message: 'no monitor: a dead server keeps receiving clients (add an ikev2 monitor)',
      });
    } else if (config.monitors[s.monitor]?.type === 'icmp') {
      out.push({
        path: ['services', 'ikev2', i, 'monitor'],
        message:
          'an icmp monitor only proves the host is up, not its IKE service: prefer type ikev2',
      });
    }
    if (config.workers > 1 && s.dataplane !== 'kernel' && s.kernelShed !== 'off') {
      out.push({
        path: ['services', 'ikev2', i, 'kernelShed'],
        message: `kernelShed ${s.kernelShed} is not used while the relay runs in ${config.workers} worker processes (workers: ${config.workers}): each worker sheds by its share of maxNewFlowsPerSecond only; set workers: 1 to shed a flood in the kernel; see docs/operations.md ("The relay on every core")`,
      });
    }
    if (s.flowTimeout < 30_000) {
      out.push({
        path: ['services', 'ikev2', i, 'flowTimeout'],
        message: `flowTimeout ${s.flowTimeout} ms is close to the NAT-T keepalive interval (20 s): idle tunnels may lose their flow`,
      });
    }
  });
  config.services.sstp.forEach((s, i) => {
    if (s.monitor === undefined)
      out.push({
        path: ['services', 'sstp', i],
        message: 'no monitor: a dead server keeps receiving clients (add an sstp monitor)',
      });
    if (s.mode === 'reencrypt' && s.allowCertificateMismatch) {
      out.push({
        path: ['services', 'sstp', i, 'allowCertificateMismatch'],
        message:
          'RRAS does not support a server certificate that differs from the front one: SSTP crypto binding will fail',
      });
    }
  });
  const vipWarnings = (
    kind: 'ikev2' | 'sstp',
    s: { virtualIp: string; pool: string },
    i: number,
  ) => {
    const vip = canonicalAddress(s.virtualIp);
    const same = config.pools[s.pool]?.backends.find((b) => canonicalAddress(b.address) === vip);
    if (same)
      out.push({
        path: ['services', kind, i, 'virtualIp'],
        message: `the virtual IP ${s.virtualIp} is also the address of backend ${same.name}: clients would be sent to the balancer itself`,
      });
  };
  for (const [i, s] of config.services.ikev2.entries()) vipWarnings('ikev2', s, i);
  for (const [i, s] of config.services.sstp.entries()) vipWarnings('sstp', s, i);
  for (const [name, pool] of Object.entries(config.pools)) {
    pool.backends.forEach((b, i) => {
      const checked = checkUnicastAddress(b.address);
      if (!('problem' in checked) && checked.isLoopback) {
        out.push({
          path: ['pools', name, 'backends', i, 'address'],
          message: `${b.address} is a loopback address: only a server on the balancer host itself can answer there (fine for a demo or a test, not for a farm)`,
        });
      }
    });
    // Maglev §3.4: a backend's share of the 65537 slots follows its weight; below one slot it
    // gets no client at all from the hash (the kernel plane, maglev method).
    const total = pool.backends.reduce((n, b) => n + (b.enabled ? b.weight : 0), 0);
    pool.backends.forEach((b, i) => {
      if (b.enabled && b.weight > 0 && total > 0 && (b.weight / total) * MAGLEV_TABLE_SIZE < 1) {
        out.push({
          path: ['pools', name, 'backends', i, 'weight'],
          message: `weight ${b.weight} of ${total} in all gives ${b.name} less than one of the ${MAGLEV_TABLE_SIZE} Maglev slots: it would get no client by hash`,
        });
      }
    });
    if (
      !config.services.ikev2.some((s) => s.pool === name) &&
      !config.services.sstp.some((s) => s.pool === name)
    ) {
      out.push({ path: ['pools', name], message: `pool "${name}" is not used by any service` });
    }
    if (pool.backends.every((b) => !b.enabled))
      out.push({ path: ['pools', name], message: `every backend of pool "${name}" is disabled` });
  }
  return out;
}

function isLoopback(address: string): boolean {
  return address === '::1' || address.startsWith('127.');
}
