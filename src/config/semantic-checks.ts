/**
 * Semantic checks: what needs more than one value and so the schema cannot say (references,
 * address syntax and families, uniqueness, listeners claimed twice, mode-specific requirements).
 */
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { resolve as resolvePath } from 'node:path';
import { arr, isObj } from './raw-shape.js';
import { canonicalAddress, checkUnicastAddress } from './address-rules.js';
import { quoteValue } from './config-issues.js';
import { DEFAULTS } from './defaults.js';
import { safeDuration } from './duration.js';
import { checkSstpKernel } from './sstp-kernel-rules.js';
import type { ConfigIssue } from './types.js';
import { formatPath, type PathSeg } from './yaml-paths.js';

export type AddIssue = (
  severity: ConfigIssue['severity'],
  path: readonly PathSeg[],
  message: string,
  keyOnly?: boolean,
) => void;

/**
 * Checks that need more than one value: references, address syntax and families, uniqueness,
 * mode-specific requirements. Defensive about types, since it also runs on schema-invalid input.
 */
export function semanticChecks(raw: unknown, add: AddIssue, baseDir: string): void {
  if (!isObj(raw)) return;
  const pools = isObj(raw.pools) ? raw.pools : {};
  const monitors = isObj(raw.monitors) ? raw.monitors : {};
  const poolFamilies = new Map<string, Set<number>>();

  if (isObj(raw.admin)) {
    const a = raw.admin;
    if (isObj(a.tls)) {
      for (const k of ['cert', 'key'] as const) {
        const f = a.tls[k];
        if (typeof f !== 'string') continue;
        try {
          readFileSync(resolvePath(baseDir, f));
        } catch (err) {
          add(
            'warning',
            ['admin', 'tls', k],
            `cannot read ${f}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message} (vpnlb run needs it on the balancer host)`,
          );
        }
      }
    }
  }

  for (const [poolName, pool] of Object.entries(pools)) {
    if (!isObj(pool)) continue;
    const seen = new Map<string, number>();
    const addresses = new Map<string, number>();
    const families = new Set<number>();
    arr(pool.backends).forEach((b, i) => {
      if (!isObj(b)) return;
      const base: PathSeg[] = ['pools', poolName, 'backends', i];
      if (typeof b.name === 'string') {
        if (seen.has(b.name))
          add(
            'error',
            [...base, 'name'],
            `duplicate backend name "${b.name}" (also backends[${seen.get(b.name)}])`,
          );
        else seen.set(b.name, i);
      }
      if (typeof b.address === 'string') {
        const checked = checkUnicastAddress(b.address);
        if ('problem' in checked) add('error', [...base, 'address'], checked.problem);
        else {
          families.add(checked.family);
          // Compared in canonical form: ::ffff:198.18.1.10 and 198.18.1.10 are one server.
          const prev = addresses.get(checked.canonical);
          if (prev !== undefined)
            add(
              'error',
              [...base, 'address'],
              `address ${b.address} is the same host as backends[${prev}] (${checked.canonical})`,
            );
          else addresses.set(checked.canonical, i);
        }
      }
    });
    poolFamilies.set(poolName, families);
    const weights = arr(pool.backends).map((b) =>
      isObj(b) && typeof b.weight === 'number' ? b.weight : 1,
    );
    if (weights.length > 0 && weights.every((w) => w === 0))
      add(
        'error',
        ['pools', poolName, 'backends'],
        'every backend has weight 0: the pool can serve nobody',
      );
  }

  for (const [name, m] of Object.entries(monitors)) {
    if (!isObj(m)) continue;
    const interval = safeDuration(m.interval) ?? DEFAULTS.monitor.interval;
    const timeout = safeDuration(m.timeout) ?? DEFAULTS.monitor.timeout;
    if (timeout >= interval)
      add(
        'error',
        ['monitors', name, 'timeout'],
        `timeout (${timeout} ms) must be shorter than interval (${interval} ms)`,
      );
    if (m.type === 'tcp' && m.port === undefined)
      add('error', ['monitors', name], 'a tcp monitor needs a "port"');
    if (m.type !== 'sstp') {
      for (const k of ['sni', 'verifyCertificate', 'ca', 'expectStatus']) {
        if (k in m)
          add('error', ['monitors', name, k], `"${k}" applies to sstp monitors only`, true);
      }
    }
  }

  // The admin listener may be the unspecified address (every address of the host), but it must
  // be an address: `vpnlb run` would otherwise fail only at start (issue 11).
  if (isObj(raw.admin) && typeof raw.admin.listen === 'string') {
    const listen = raw.admin.listen;
    if (listen.includes('%') || isIP(listen) === 0)
      add(
        'error',
        ['admin', 'listen'],
        `${quoteValue(listen)} is not an IPv4 or IPv6 address (without zone ID)`,
      );
  }

  const services = isObj(raw.services) ? raw.services : {};
  const names = new Map<string, string>();
  const listeners = new Map<string, string>();
  const claim = (key: string, where: PathSeg[], what: string) => {
    const prev = listeners.get(key);
    if (prev) add('error', where, `${what} is already used by ${prev}`);
    else listeners.set(key, formatPath(where));
  };
  const checkCommon = (kind: 'ikev2' | 'sstp', s: Record<string, unknown>, i: number) => {
    const base: PathSeg[] = ['services', kind, i];
    if (typeof s.name === 'string') {
      if (names.has(s.name))
        add(
          'error',
          [...base, 'name'],
          `duplicate service name "${s.name}" (also ${names.get(s.name)})`,
        );
      else names.set(s.name, formatPath(base));
    }
    let vipFamily = 0;
    if (typeof s.virtualIp === 'string') {
      const checked = checkUnicastAddress(s.virtualIp);
      if ('problem' in checked) add('error', [...base, 'virtualIp'], checked.problem);
      else vipFamily = checked.family;
    }
    if (typeof s.pool === 'string') {
      if (!(s.pool in pools))
        add(
          'error',
          [...base, 'pool'],
          `unknown pool "${s.pool}" (defined: ${Object.keys(pools).join(', ') || 'none'})`,
        );
      else if (
        vipFamily &&
        (kind === 'ikev2' ? s.dataplane !== 'userspace' : s.dataplane === 'kernel')
      ) {
        const fams = poolFamilies.get(s.pool) ?? new Set();
        if (fams.size > 0 && !fams.has(vipFamily)) {
          add(
            'error',
            [...base, 'pool'],
            `pool "${s.pool}" has no IPv${vipFamily} backend: the kernel data plane translates destinations within one address family (use an IPv${vipFamily} pool or dataplane: userspace)`,
          );
        }
      }
    }
    if (typeof s.monitor === 'string' && !(s.monitor in monitors)) {
      add(
        'error',
        [...base, 'monitor'],
        `unknown monitor "${s.monitor}" (defined: ${Object.keys(monitors).join(', ') || 'none'})`,
      );
    }
    return vipFamily;
  };

  arr(services.ikev2).forEach((s, i) => {
    if (!isObj(s)) return;
    const base: PathSeg[] = ['services', 'ikev2', i];
    checkCommon('ikev2', s, i);
    const ikePort = typeof s.ikePort === 'number' ? s.ikePort : DEFAULTS.ikev2.ikePort;
    const natTPort = typeof s.natTPort === 'number' ? s.natTPort : DEFAULTS.ikev2.natTPort;
    if (typeof s.virtualIp === 'string' && isIP(s.virtualIp) !== 0) {
      const vip = canonicalAddress(s.virtualIp);
      if (ikePort !== 0)
        claim(
          `udp/${vip}/${ikePort}`,
          [...base, 'virtualIp'],
          `UDP ${s.virtualIp} port ${ikePort}`,
        );
      if (natTPort !== 0)
        claim(
          `udp/${vip}/${natTPort}`,
          [...base, 'virtualIp'],
          `UDP ${s.virtualIp} port ${natTPort}`,
        );
    }
    if (ikePort !== 0 && ikePort === natTPort)
      add('error', [...base, 'natTPort'], 'ikePort and natTPort must differ');
    if (s.kernelShed === 'xdp' && s.kernelShedInterfaces === undefined)
      add(
        'error',
        [...base, 'kernelShed'],
        "kernelShed: xdp needs kernelShedInterfaces: the interfaces the clients' datagrams arrive on (e.g. [eth0])",
      );
    // One XDP program per interface: a second service's would be refused at start.
    if (s.kernelShed === 'xdp')
      arr(s.kernelShedInterfaces).forEach((name, j) => {
        if (typeof name === 'string')
          claim(`xdp/${name}`, [...base, 'kernelShedInterfaces', j], `XDP on ${name}`);
      });
    if (s.kernelShedInterfaces !== undefined && s.kernelShed !== 'xdp')
      add(
        'warning',
        [...base, 'kernelShedInterfaces'],
        'kernelShedInterfaces is used only with kernelShed: xdp',
      );
    if (s.kernelShed === 'xdp' && s.dataplane === 'kernel')
      add(
        'warning',
        [...base, 'kernelShed'],
        'kernelShed applies to the userspace relay only; the kernel data plane forwards without it',
      );
    if (isObj(s.snat)) {
      if (s.nat !== 'full')
        add(
          'error',
          [...base, 'snat'],
          'an SNAT pool applies to nat: full only (transparent mode keeps the client address)',
          true,
        );
      const seen = new Set<string>();
      arr(s.snat.addresses).forEach((a, j) => {
        if (typeof a !== 'string') return;
        const checked = checkUnicastAddress(a);
        if ('problem' in checked) add('error', [...base, 'snat', 'addresses', j], checked.problem);
        else if (seen.has(checked.canonical))
          add('error', [...base, 'snat', 'addresses', j], `duplicate SNAT address ${a}`);
        else seen.add(checked.canonical);
      });
    }
    if (s.dataplane !== 'userspace' && typeof s.virtualIp === 'string' && isIP(s.virtualIp) !== 0) {
      // The kernel plane owns one nftables table per (family, table name).
      const table = typeof s.table === 'string' ? s.table : DEFAULTS.ikev2.table;
      claim(
        `nft/${isIP(s.virtualIp)}/${table}`,
        [...base, ...(s.table === undefined ? [] : ['table'])],
        `nftables table "${table}" (IPv${isIP(s.virtualIp)}; set a distinct "table" on each IKEv2 service of one address family)`,
      );
    }
    if (s.method !== undefined && s.method !== 'maglev' && s.dataplane !== 'userspace') {
      add(
        'error',
        [...base, 'method'],
        `method ${String(s.method)} needs per-client state in userspace; the kernel data plane uses maglev (set dataplane: userspace, or drop method)`,
      );
    }
  });

  arr(services.sstp).forEach((s, i) => {
    if (!isObj(s)) return;
    const base: PathSeg[] = ['services', 'sstp', i];
    checkCommon('sstp', s, i);
    const port = typeof s.port === 'number' ? s.port : DEFAULTS.sstp.port;
    if (typeof s.virtualIp === 'string' && isIP(s.virtualIp) !== 0 && port !== 0)
      claim(
        `tcp/${canonicalAddress(s.virtualIp)}/${port}`,
        [...base, 'virtualIp'],
        `TCP ${s.virtualIp} port ${port}`,
      );
    const mode = typeof s.mode === 'string' ? s.mode : DEFAULTS.sstp.mode;
    if ((mode === 'offload' || mode === 'reencrypt') && !isObj(s.tls)) {
      add(
        'error',
        base,
        `mode ${mode} terminates TLS: it needs "tls" with the certificate and key clients will see`,
      );
    }
    if (mode === 'passthrough' && isObj(s.tls)) {
      add(
        'error',
        [...base, 'tls'],
        'passthrough does not terminate TLS: remove "tls" or choose mode offload or reencrypt',
        true,
      );
    }
    if (s.allowCertificateMismatch !== undefined && mode !== 'reencrypt') {
      add('error', [...base, 'allowCertificateMismatch'], 'applies to mode reencrypt only', true);
    }
    if (mode !== 'passthrough' && s.persistence === 'tls-session') {
      add(
        'error',
        [...base, 'persistence'],
        `tls-session persistence needs passthrough (in ${mode} mode the balancer owns the client's TLS session): use source-ip or none`,
      );
    }
    if (s.dataplane === 'kernel') checkSstpKernel(s, base, mode, add, claim);
    if (isObj(s.tls)) {
      for (const k of ['cert', 'key'] as const) {
        const f = s.tls[k];
        if (typeof f === 'string') {
          // A warning, not an error: `check` often runs elsewhere than the balancer host (CI,
          // a workstation); `run` fails with a clear error if the file is still missing.
          try {
            readFileSync(resolvePath(baseDir, f));
          } catch (err) {
            add(
              'warning',
              [...base, 'tls', k],
              `cannot read ${f}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message} (vpnlb run needs it on the balancer host)`,
            );
          }
        }
      }
    }
  });
  if (arr(services.ikev2).length === 0 && arr(services.sstp).length === 0 && isObj(raw.services)) {
    add('error', ['services'], 'no service defined: add services.ikev2 and/or services.sstp');
  }
}
