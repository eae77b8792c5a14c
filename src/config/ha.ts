/**
 * The `ha:` section beyond its schema: the checks that need several values (and, where it can
 * tell, the host), its defaults, and which of the two nodes this host is.
 *
 * One file serves both nodes of a pair: both must render identical nftables tables (same seed,
 * same backend names, hence the same Maglev slots — DESIGN §6), so the pair shares one
 * configuration and each node finds itself by the sync address it holds.
 */
import { existsSync, readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { networkInterfaces } from 'node:os';
import { arr, isObj } from './raw-shape.js';
import { DEFAULTS } from './defaults.js';
import { parseDuration, safeDuration } from './duration.js';
import { checkReplyNatAmbiguity } from './reply-nat-check.js';
import type { HaInput } from './schema.js';
import type { ConfigIssue, HaConfig, HaNode, VrrpInstance } from './types.js';

/** What the checks may ask of the host they run on (a fake in unit tests). */
export interface HostView {
  hasInterface(name: string): boolean;
  isLocalAddress(address: string): boolean;
  /**
   * Whether the interface keeps its IPv6 addresses when its link goes down
   * (`keep_addr_on_down` of `all` or of the interface above 0); undefined when unknown.
   */
  keepsIpv6OnLinkDown?(name: string): boolean | undefined;
}

function sysctlNumber(path: string): number | undefined {
  try {
    const v = Number(readFileSync(path, 'utf8').trim());
    return Number.isFinite(v) ? v : undefined;
  } catch {
    return undefined;
  }
}

/** The host this process runs on (its network namespace). */
export const LOCAL_HOST: HostView = {
  hasInterface: (name) => existsSync(`/sys/class/net/${name}`),
  keepsIpv6OnLinkDown: (name) => {
    const all = sysctlNumber('/proc/sys/net/ipv6/conf/all/keep_addr_on_down');
    const own = sysctlNumber(`/proc/sys/net/ipv6/conf/${name}/keep_addr_on_down`);
    if (all === undefined && own === undefined) return undefined;
    // The kernel: the `all` value when it is set, else the interface's; above 0 keeps them.
    return (all || own || 0) > 0;
  },
  isLocalAddress: (address) =>
    Object.values(networkInterfaces()).some((list) =>
      (list ?? []).some((a) => sameAddress(a.address, address)),
    ),
};

type PathSeg = string | number;
type AddIssue = (
  severity: ConfigIssue['severity'],
  path: readonly PathSeg[],
  message: string,
  keyOnly?: boolean,
) => void;

/** `198.19.0.1/32` → `{ address, prefix, family }`, or undefined when malformed. */
export function parseCidr(
  text: string,
): { address: string; prefix: number; family: 4 | 6 } | undefined {
  const m = /^([^/]+)\/(\d{1,3})$/.exec(text);
  if (!m) return undefined;
  const family = isIP(m[1]!);
  const prefix = Number(m[2]);
  if (family === 0 || prefix > (family === 4 ? 32 : 128)) return undefined;
  return { address: m[1]!, prefix, family: family === 6 ? 6 : 4 };
}

/** Whether two textual addresses are the same address (IPv6 has many spellings). */
function sameAddress(a: string, b: string): boolean {
  if (a === b) return true;
  if (isIP(a) !== 6 || isIP(b) !== 6) return false;
  return expand6(a) === expand6(b);
}

function expand6(a: string): string {
  const [head, tail] = a.toLowerCase().split('::') as [string, string | undefined];
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const fill = tail === undefined ? [] : Array(8 - h.length - t.length).fill('0');
  return [...h, ...fill, ...t].map((x) => x.padStart(4, '0')).join(':');
}

/**
 * The semantic checks of `ha:`. `raw` is the whole (maybe schema-invalid) document; the
 * section's own values are checked against the services and pools they must not collide with.
 */
export function checkHa(raw: Record<string, unknown>, add: AddIssue, host: HostView): void {
  const ha = raw.ha;
  if (!isObj(ha)) return;
  const nodes = arr(ha.nodes).filter(isObj);
  const names = nodes.map((n) => n.name);
  if (nodes.length === 2) {
    const [a, b] = nodes as [Record<string, unknown>, Record<string, unknown>];
    if (a.name === b.name && typeof a.name === 'string')
      add('error', ['ha', 'nodes', 1, 'name'], `both nodes are named "${a.name}"`);
    if (typeof a.priority === 'number' && a.priority === b.priority) {
      // RFC 5798 §6.4.3: equal priorities fall back to comparing primary addresses, so which
      // node is active would depend on interface addressing, not on the administrator.
      add(
        'error',
        ['ha', 'nodes', 1, 'priority'],
        `both nodes have priority ${a.priority}: give the node that should normally be active the higher one`,
      );
    }
    if (
      typeof a.syncAddress === 'string' &&
      typeof b.syncAddress === 'string' &&
      isIP(a.syncAddress) &&
      isIP(b.syncAddress)
    ) {
      if (sameAddress(a.syncAddress, b.syncAddress))
        add(
          'error',
          ['ha', 'nodes', 1, 'syncAddress'],
          `both nodes use sync address ${a.syncAddress}`,
        );
      else if (isIP(a.syncAddress) !== isIP(b.syncAddress))
        add(
          'error',
          ['ha', 'nodes', 1, 'syncAddress'],
          'the two sync addresses must be of one address family (conntrackd speaks one on its link)',
        );
    }
  }
  nodes.forEach((n, i) => {
    if (typeof n.syncAddress === 'string' && isIP(n.syncAddress) === 0)
      add(
        'error',
        ['ha', 'nodes', i, 'syncAddress'],
        `"${n.syncAddress}" is not an IPv4 or IPv6 address`,
      );
  });
  if (typeof ha.node === 'string' && !names.includes(ha.node)) {
    add(
      'error',
      ['ha', 'node'],
      `"${ha.node}" is not one of ha.nodes (${names.filter((n) => typeof n === 'string').join(', ')})`,
    );
  }

  const vrrp = isObj(ha.vrrp) ? ha.vrrp : {};
  const outside = isObj(vrrp.outside) ? vrrp.outside : undefined;
  const inside = isObj(vrrp.inside) ? vrrp.inside : undefined;
  for (const d of ['advertInterval', 'preemptDelay'] as const) {
    const ms = safeDuration(vrrp[d]);
    // keepalived (VRRPv2) advertises in whole seconds, 1 to 255 (RFC 3768 §5.3.7).
    if (
      ms !== undefined &&
      (ms % 1000 !== 0 || ms > 255_000 || (d === 'advertInterval' && ms < 1000))
    ) {
      add(
        'error',
        ['ha', 'vrrp', d],
        `${d} must be whole seconds${d === 'advertInterval' ? ' from 1s' : ''} to 255s (got ${ms} ms)`,
      );
    }
  }
  if (
    outside &&
    inside &&
    typeof outside.virtualRouterId === 'number' &&
    outside.virtualRouterId === inside.virtualRouterId
  ) {
    add(
      'error',
      ['ha', 'vrrp', 'inside', 'virtualRouterId'],
      `the inside instance reuses virtual router id ${inside.virtualRouterId} of the outside one`,
    );
  }

  // Every address of the service side, to keep the sync link and VRRP addresses apart from it.
  const services = isObj(raw.services) ? raw.services : {};
  const vips: { address: string; path: PathSeg[] }[] = [];
  for (const kind of ['ikev2', 'sstp'] as const) {
    arr(services[kind]).forEach((s, i) => {
      if (isObj(s) && typeof s.virtualIp === 'string' && isIP(s.virtualIp))
        vips.push({ address: s.virtualIp, path: ['services', kind, i, 'virtualIp'] });
    });
  }
  const backendAddresses = new Set<string>();
  const pools = isObj(raw.pools) ? raw.pools : {};
  for (const p of Object.values(pools))
    if (isObj(p))
      for (const b of arr(p.backends))
        if (isObj(b) && typeof b.address === 'string') backendAddresses.add(b.address);

  const parsed = (inst: Record<string, unknown> | undefined, which: 'outside' | 'inside') =>
    arr(inst?.addresses).flatMap((a, j) => {
      if (typeof a !== 'string') return [];
      const c = parseCidr(a);
      if (!c) {
        add(
          'error',
          ['ha', 'vrrp', which, 'addresses', j],
          `"${a}" is not an address with prefix length (198.19.0.1/32, 2001:db8::1/64)`,
        );
        return [];
      }
      return [{ ...c, j }];
    });
  const outsideAddrs = parsed(outside, 'outside');
  const insideAddrs = parsed(inside, 'inside');
  if (outside?.addresses !== undefined) {
    for (const v of vips) {
      if (!outsideAddrs.some((o) => sameAddress(o.address, v.address))) {
        add(
          'error',
          ['ha', 'vrrp', 'outside', 'addresses'],
          `service virtual IP ${v.address} (${pathText(v.path)}) is not among the outside VRRP addresses: both nodes would claim it, or neither`,
        );
      }
    }
  }
  if (inside && inside.addresses === undefined) {
    add(
      'error',
      ['ha', 'vrrp', 'inside'],
      'missing "addresses": the inside gateway address(es) the VPN servers route through (transparent mode needs the return path to follow the active node)',
    );
  }
  for (const a of insideAddrs) {
    if (vips.some((v) => sameAddress(v.address, a.address)))
      add(
        'error',
        ['ha', 'vrrp', 'inside', 'addresses', a.j],
        `${a.address} is a service virtual IP: the inside gateway must be another address`,
      );
  }
  if (
    outside &&
    inside &&
    typeof outside.interface === 'string' &&
    outside.interface === inside.interface
  ) {
    add(
      'error',
      ['ha', 'vrrp', 'inside', 'interface'],
      `the outside and inside instances share interface ${outside.interface}: a transparent balancer routes between two segments`,
    );
  }

  const sync = isObj(ha.sync) ? ha.sync : {};
  if (typeof sync.interface === 'string') {
    for (const [which, inst] of [
      ['outside', outside],
      ['inside', inside],
    ] as const) {
      if (inst && inst.interface === sync.interface) {
        add(
          'error',
          ['ha', 'sync', 'interface'],
          `the sync link must be dedicated, not the ${which} interface ${sync.interface} (conntrackd's state and the VPN traffic would share one queue)`,
        );
      }
    }
  }
  nodes.forEach((n, i) => {
    if (typeof n.syncAddress !== 'string' || !isIP(n.syncAddress)) return;
    const clash =
      vips.find((v) => sameAddress(v.address, n.syncAddress as string))?.address ??
      [...outsideAddrs, ...insideAddrs].find((o) => sameAddress(o.address, n.syncAddress as string))
        ?.address ??
      [...backendAddresses].find((b) => sameAddress(b, n.syncAddress as string));
    if (clash !== undefined)
      add(
        'error',
        ['ha', 'nodes', i, 'syncAddress'],
        `sync address ${n.syncAddress} overlaps a service, VRRP or server address: the sync link needs addresses of its own`,
      );
  });

  // Interfaces exist only on the nodes themselves: checked when this host is one of them.
  const self = nodes.find(
    (n) =>
      typeof n.syncAddress === 'string' &&
      isIP(n.syncAddress) &&
      host.isLocalAddress(n.syncAddress),
  );
  if (self) {
    const ifaces: [PathSeg[], unknown][] = [
      [['ha', 'sync', 'interface'], sync.interface],
      [['ha', 'vrrp', 'outside', 'interface'], outside?.interface],
      [['ha', 'vrrp', 'inside', 'interface'], inside?.interface],
    ];
    for (const [path, name] of ifaces) {
      if (typeof name === 'string' && !host.hasInterface(name))
        add('error', path, `no interface "${name}" on this host (node ${String(self.name)})`);
    }
    // With the kernel's default (keep_addr_on_down = 0) a link that goes down loses its IPv6
    // addresses for good under ifupdown: after a switch-port flap or a cable pull the node's
    // monitors cannot reach IPv6 servers, so its tracker keeps it below the peer for ever.
    for (const [which, inst] of [
      ['outside', outside],
      ['inside', inside],
    ] as const) {
      const name = inst?.interface;
      const hasV6 = arr(inst?.addresses).some((a) => typeof a === 'string' && a.includes(':'));
      if (
        typeof name === 'string' &&
        hasV6 &&
        host.hasInterface(name) &&
        host.keepsIpv6OnLinkDown?.(name) === false
      )
        add(
          'warning',
          ['ha', 'vrrp', which, 'interface'],
          `${name} drops its IPv6 addresses when its link goes down (net.ipv6.conf.all.keep_addr_on_down = 0, the kernel's default): after a link flap this node could not reach IPv6 servers nor take the addresses back; set net.ipv6.conf.all.keep_addr_on_down = 1 (in /etc/sysctl.d/)`,
        );
    }
  }

  // Once for both sections: the bgp check reports it when it applies too.
  const bgpReplyNat = isObj(raw.bgp) && raw.bgp.replyNat !== false;
  if (ha.replyNat !== false && !bgpReplyNat) checkReplyNatAmbiguity(raw, add, 'ha.replyNat');
}

function pathText(path: readonly PathSeg[]): string {
  return path.map((s, i) => (typeof s === 'number' ? `[${s}]` : i ? `.${s}` : s)).join('');
}

/** keepalived sends one address family per advert: IPv4 first, IPv6 after. */
function byFamily(addresses: readonly string[]): string[] {
  return [
    ...addresses.filter((a) => !a.includes(':')),
    ...addresses.filter((a) => a.includes(':')),
  ];
}

/** The resolved `ha:` section; `vips` are the service virtual IPs (the outside default). */
export function resolveHa(input: HaInput, vips: readonly string[]): HaConfig {
  const D = DEFAULTS.ha;
  const instance = (i: HaInput['vrrp']['outside'], fallback: readonly string[]): VrrpInstance => ({
    interface: i.interface,
    virtualRouterId: i.virtualRouterId,
    addresses: byFamily(i.addresses ?? fallback),
  });
  const defaultOutside = [...new Set(vips)].map((v) => `${v}/${isIP(v) === 6 ? 128 : 32}`);
  const node = (n: HaInput['nodes'][number]): HaNode => ({
    name: n.name,
    priority: n.priority,
    syncAddress: n.syncAddress,
  });
  return {
    nodes: [node(input.nodes[0]!), node(input.nodes[1]!)],
    ...(input.node !== undefined ? { node: input.node } : {}),
    sync: { interface: input.sync.interface, port: input.sync.port ?? D.syncPort },
    vrrp: {
      advertInterval: parseDuration(input.vrrp.advertInterval ?? D.advertInterval / 1000),
      preemptDelay: parseDuration(input.vrrp.preemptDelay ?? D.preemptDelay / 1000),
      outside: instance(input.vrrp.outside, defaultOutside),
      inside: instance(input.vrrp.inside, []),
    },
    runDir: input.runDir ?? D.runDir,
    conntrackUdpTimeout: parseDuration(input.conntrackUdpTimeout ?? D.conntrackUdpTimeout / 1000),
    replyNat: input.replyNat ?? D.replyNat,
    checkInterval: parseDuration(input.checkInterval ?? D.checkInterval / 1000),
    checkFall: input.checkFall ?? D.checkFall,
  };
}

/**
 * Which node of the pair this host is: `override` (`--node`), else `ha.node`, else the node
 * whose sync address is configured here. Undefined when none applies.
 */
export function localNode(
  ha: HaConfig,
  override?: string,
  host: HostView = LOCAL_HOST,
): { self: HaNode; peer: HaNode } | undefined {
  const [a, b] = ha.nodes;
  const name = override ?? ha.node;
  const self =
    name !== undefined
      ? ha.nodes.find((n) => n.name === name)
      : ha.nodes.find((n) => host.isLocalAddress(n.syncAddress));
  if (!self) return undefined;
  return { self, peer: self === a ? b : a };
}
