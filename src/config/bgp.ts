/**
 * The `bgp:` section beyond its schema: the checks that need several values, its defaults, and
 * which node of the farm this host is (docs/scale-out.md).
 *
 * One file serves every node: all must render identical nftables tables (same seed, same
 * backend names, hence the same Maglev slots, DESIGN §6) so that a client's packets reach the
 * same server whichever node the router's ECMP hash picks. Each node finds itself by the
 * router id it holds as an address, or by `bgp.node` / `--node`.
 */
import { isIP } from 'node:net';
import { resolve as resolvePath } from 'node:path';
import { arr, isObj } from './raw-shape.js';
import { canonicalAddress, checkUnicastAddress } from './address-rules.js';
import { parseDuration, safeDuration } from './duration.js';
import { LOCAL_HOST, type HostView } from './ha.js';
import { checkReplyNatAmbiguity } from './reply-nat-check.js';
import type { BgpInput } from './schema.js';
import type { ConfigIssue } from './types.js';

export interface BgpPeer {
  readonly name: string;
  readonly address: string;
  readonly asn: number;
  readonly family: 4 | 6;
}

export interface BgpNode {
  readonly name: string;
  readonly routerId: string;
  /** Its admin API as the other nodes reach it (flow-state exchange). */
  readonly adminUrl?: string;
  /** `bgp.peers` followed by the node's own. */
  readonly peers: readonly BgpPeer[];
}

export interface BgpAnnouncement {
  /** Canonical address of the virtual IP. */
  readonly address: string;
  readonly family: 4 | 6;
  /** With its host prefix length: `198.19.0.1/32`, `2001:db8::1/128`. */
  readonly prefix: string;
  /** The services on this address (a VIP is announced while any of them can serve). */
  readonly services: readonly string[];
}

/** The resolved `bgp:` section (durations in milliseconds). */
export interface BgpConfig {
  readonly asn: number;
  readonly nodes: readonly BgpNode[];
  readonly node?: string;
  readonly announce: readonly BgpAnnouncement[];
  readonly holdTime: number;
  readonly keepaliveTime: number;
  readonly bfd: boolean;
  readonly bfdInterval: number;
  readonly bfdMultiplier: number;
  readonly checkInterval: number;
  readonly checkFall: number;
  readonly drainTimeout: number;
  readonly runDir: string;
  readonly replyNat: boolean;
  /** Present when the nodes have `adminUrl`s: they exchange their `ike-spi` flow state. */
  readonly flowSync?: BgpFlowSync;
}

/** The resolved `bgp.flowSync` (durations in milliseconds, paths absolute). */
export interface BgpFlowSync {
  readonly interval: number;
  readonly tokenFile: string;
  readonly ca?: string;
  readonly startupWait: number;
}

export const BGP_DEFAULTS = Object.freeze({
  // RFC 4271 §4.2: a hold time is 0 or at least 3 s; 3 s with 1 s keepalives is BIRD's floor
  // and what BFD-less sessions need to notice a dead node in seconds.
  holdTime: 3_000,
  keepaliveTime: 1_000,
  bfd: true,
  // RFC 5880 §6.8.7: detection time = multiplier × interval; 100 ms × 3 notices a dead link in 0.3 s.
  bfdInterval: 100,
  bfdMultiplier: 3,
  checkInterval: 1_000,
  checkFall: 2,
  drainTimeout: 60_000,
  runDir: '/run/vpnlb-bgp',
  replyNat: true,
  flowSyncInterval: 1_000,
  flowSyncStartupWait: 10_000,
});

type PathSeg = string | number;
type AddIssue = (
  severity: ConfigIssue['severity'],
  path: readonly PathSeg[],
  message: string,
  keyOnly?: boolean,
) => void;

/** Every service virtual IP of the (maybe schema-invalid) document: canonical address → service names. */
function serviceVips(raw: Record<string, unknown>): Map<string, string[]> {
  const vips = new Map<string, string[]>();
  const services = isObj(raw.services) ? raw.services : {};
  for (const kind of ['ikev2', 'sstp'] as const) {
    for (const s of arr(services[kind])) {
      if (!isObj(s) || typeof s.virtualIp !== 'string' || isIP(s.virtualIp) === 0) continue;
      const key = canonicalAddress(s.virtualIp);
      vips.set(key, [...(vips.get(key) ?? []), String(s.name)]);
    }
  }
  return vips;
}

/**
 * The semantic checks of `bgp:`: peer addresses and their families, router ids (IPv4 form,
 * unique), node names, announced addresses (each a service's VIP, each with a peer of its family
 * on every node), timers.
 */
export function checkBgp(raw: Record<string, unknown>, add: AddIssue): void {
  const bgp = raw.bgp;
  if (!isObj(bgp)) return;
  const nodes = arr(bgp.nodes);
  const names = new Map<string, number>();
  const routerIds = new Map<string, number>();
  const checkPeers = (list: unknown, base: PathSeg[]): Set<4 | 6> => {
    const families = new Set<4 | 6>();
    const seen = new Map<string, number>();
    arr(list).forEach((p, j) => {
      if (!isObj(p) || typeof p.address !== 'string') return;
      const info = checkUnicastAddress(p.address);
      if ('problem' in info) {
        // BIRD speaks BGP over IPv4 or IPv6 only: anything else has no address family to carry a VIP.
        add(
          'error',
          [...base, j, 'address'],
          `${info.problem}: a BGP peer needs an IPv4 or IPv6 address (its family decides which VIPs it carries)`,
        );
        return;
      }
      families.add(info.family);
      const prev = seen.get(info.canonical);
      if (prev !== undefined)
        add('error', [...base, j, 'address'], `peer ${p.address} is listed twice (also [${prev}])`);
      else seen.set(info.canonical, j);
      if (typeof p.asn === 'number' && p.asn === bgp.asn) {
        add(
          'error',
          [...base, j, 'asn'],
          `peer AS ${p.asn} is the nodes' own AS: vpnlb speaks eBGP to its routers (an iBGP router would not multipath the nodes' equal routes without extra configuration)`,
        );
      }
    });
    return families;
  };
  const shared = checkPeers(bgp.peers, ['bgp', 'peers']);
  const nodeFamilies: { i: number; families: Set<4 | 6> }[] = [];
  nodes.forEach((n, i) => {
    if (!isObj(n)) return;
    if (typeof n.name === 'string') {
      const prev = names.get(n.name);
      if (prev !== undefined)
        add(
          'error',
          ['bgp', 'nodes', i, 'name'],
          `duplicate node name "${n.name}" (also bgp.nodes[${prev}])`,
        );
      else names.set(n.name, i);
    }
    if (typeof n.routerId === 'string') {
      // RFC 4271 §4.2 / RFC 6286: a 4-octet identifier, written as an IPv4 address, unique in the AS.
      if (isIP(n.routerId) !== 4)
        add(
          'error',
          ['bgp', 'nodes', i, 'routerId'],
          `"${n.routerId}" is not a router id: write it as an IPv4 address (RFC 4271 §4.2), usually the node's address towards its router`,
        );
      else {
        const prev = routerIds.get(n.routerId);
        if (prev !== undefined)
          add(
            'error',
            ['bgp', 'nodes', i, 'routerId'],
            `router id ${n.routerId} is also bgp.nodes[${prev}]'s: every node needs its own (a router drops a session from an identifier it already has)`,
          );
        else routerIds.set(n.routerId, i);
      }
    }
    const own = checkPeers(n.peers, ['bgp', 'nodes', i, 'peers']);
    nodeFamilies.push({ i, families: new Set([...shared, ...own]) });
  });
  if (typeof bgp.node === 'string' && !names.has(bgp.node)) {
    add(
      'error',
      ['bgp', 'node'],
      `"${bgp.node}" is not one of bgp.nodes (${[...names.keys()].join(', ')})`,
    );
  }

  const vips = serviceVips(raw);
  const announced: { address: string; family: 4 | 6; path: PathSeg[] }[] = [];
  if (bgp.announce === undefined) {
    for (const a of vips.keys())
      announced.push({ address: a, family: isIP(a) === 6 ? 6 : 4, path: ['bgp'] });
  } else {
    for (const [j, a] of arr(bgp.announce).entries()) {
      if (typeof a !== 'string') continue;
      const info = checkUnicastAddress(a);
      if ('problem' in info) {
        add('error', ['bgp', 'announce', j], info.problem);
        continue;
      }
      // A VIP that no service listens on would draw traffic that every node drops.
      if (!vips.has(info.canonical)) {
        add(
          'error',
          ['bgp', 'announce', j],
          `${a} is not the virtual IP of any service (${[...vips.keys()].join(', ') || 'none configured'})`,
        );
        continue;
      }
      announced.push({
        address: info.canonical,
        family: info.family,
        path: ['bgp', 'announce', j],
      });
    }
  }
  for (const a of announced) {
    for (const { i, families } of nodeFamilies) {
      if (!families.has(a.family)) {
        const n = nodes[i] as Record<string, unknown>;
        add(
          'error',
          a.path,
          `${a.address} is IPv${a.family} but node ${String(n.name)} has no IPv${a.family} peer to announce it to (add one to bgp.peers or bgp.nodes[${i}].peers)`,
        );
      }
    }
  }

  if (bgp.replyNat !== false) checkReplyNatAmbiguity(raw, add, 'bgp.replyNat');
  checkFlowSync(raw, bgp, nodes, add);

  const hold = safeDuration(bgp.holdTime);
  const keepalive = safeDuration(bgp.keepaliveTime);
  // RFC 4271 §4.2: the hold time is zero or at least three seconds; BIRD counts in whole seconds.
  if (hold !== undefined && (hold % 1000 !== 0 || hold < 3000 || hold > 65_535_000))
    add(
      'error',
      ['bgp', 'holdTime'],
      `holdTime must be whole seconds from 3s to 65535s (RFC 4271 §4.2; got ${hold} ms)`,
    );
  if (keepalive !== undefined && (keepalive % 1000 !== 0 || keepalive < 1000))
    add(
      'error',
      ['bgp', 'keepaliveTime'],
      `keepaliveTime must be whole seconds from 1s (got ${keepalive} ms)`,
    );
  if (keepalive !== undefined && keepalive >= (hold ?? BGP_DEFAULTS.holdTime))
    add(
      'error',
      ['bgp', 'keepaliveTime'],
      `keepaliveTime (${keepalive} ms) must be shorter than holdTime (${hold ?? BGP_DEFAULTS.holdTime} ms)`,
    );
  const bfdInterval = safeDuration(bgp.bfdInterval);
  if (bfdInterval !== undefined && (bfdInterval < 10 || bfdInterval > 60_000))
    add(
      'error',
      ['bgp', 'bfdInterval'],
      `bfdInterval must be from 10ms to 60s (got ${bfdInterval} ms)`,
    );
  const check = safeDuration(bgp.checkInterval);
  if (check !== undefined && check < 100)
    add(
      'error',
      ['bgp', 'checkInterval'],
      `checkInterval must be at least 100ms (got ${check} ms)`,
    );
}

/** `bgp.nodes[].adminUrl` and `bgp.flowSync`: URLs, all or none, a token to present. */
function checkFlowSync(
  raw: Record<string, unknown>,
  bgp: Record<string, unknown>,
  nodes: unknown[],
  add: AddIssue,
): void {
  const withUrl: number[] = [];
  nodes.forEach((n, i) => {
    if (!isObj(n) || n.adminUrl === undefined) return;
    withUrl.push(i);
    const problem = adminUrlProblem(String(n.adminUrl));
    if (problem) add('error', ['bgp', 'nodes', i, 'adminUrl'], problem);
  });
  const flowSync = isObj(bgp.flowSync) ? bgp.flowSync : undefined;
  if (withUrl.length === 0) {
    if (flowSync)
      add(
        'error',
        ['bgp', 'flowSync'],
        "flowSync needs every node's admin API: set bgp.nodes[].adminUrl on each node",
        true,
      );
    return;
  }
  nodes.forEach((n, i) => {
    if (isObj(n) && !withUrl.includes(i))
      add(
        'error',
        ['bgp', 'nodes', i],
        `node ${String(n.name)} has no adminUrl while bgp.nodes[${withUrl[0]}] has one: set it on every node (a node without one cannot share its flows, and ike-spi tunnels moved to or from it are lost)`,
        true,
      );
  });
  const admin = isObj(raw.admin) ? raw.admin : {};
  if (flowSync?.tokenFile === undefined && admin.readOnlyTokenFile === undefined)
    add(
      'error',
      ['bgp'],
      "the nodes pull one another's flow state with a token: set admin.readOnlyTokenFile (the same token on every node) or bgp.flowSync.tokenFile",
      true,
    );
  if (typeof admin.listen !== 'string' || /^127\.|^::1$/.test(admin.listen))
    add(
      'warning',
      ['admin', 'listen'],
      `bgp.nodes[].adminUrl is set but the admin API listens on ${typeof admin.listen === 'string' ? admin.listen : '127.0.0.1'} only: the other nodes cannot pull this node's flow state (listen on the address of adminUrl, or on 0.0.0.0 / ::, with admin.tls)`,
    );
  const interval = safeDuration(flowSync?.interval);
  if (interval !== undefined && (interval < 100 || interval > 60_000))
    add(
      'error',
      ['bgp', 'flowSync', 'interval'],
      `interval must be from 100ms to 60s (got ${interval} ms)`,
    );
}

/** Why an admin URL cannot be used, or undefined. */
export function adminUrlProblem(value: string): string | undefined {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return `"${value}" is not a URL (write http://ADDRESS:PORT or https://ADDRESS:PORT)`;
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    return `"${value}": the admin API speaks http or https, not ${url.protocol.slice(0, -1)}`;
  if (
    url.username ||
    url.password ||
    url.search ||
    url.hash ||
    (url.pathname !== '/' && url.pathname !== '')
  )
    return `"${value}": give the scheme, host and port only (no path, query or credentials)`;
  return undefined;
}

/** The resolved section. `vips` are the services' virtual IPs with the service names. */
export function resolveBgp(
  input: BgpInput,
  services: readonly { name: string; virtualIp: string }[],
  baseDir = process.cwd(),
  readOnlyTokenFile?: string,
): BgpConfig {
  const D = BGP_DEFAULTS;
  const peer = (p: NonNullable<BgpInput['peers']>[number]): BgpPeer => ({
    name: p.name,
    address: canonicalAddress(p.address),
    asn: p.asn,
    family: isIP(p.address) === 6 ? 6 : 4,
  });
  const shared = (input.peers ?? []).map(peer);
  const byVip = new Map<string, string[]>();
  for (const s of services) {
    const key = canonicalAddress(s.virtualIp);
    byVip.set(key, [...(byVip.get(key) ?? []), s.name]);
  }
  const addresses = input.announce
    ? [...new Set(input.announce.map(canonicalAddress))]
    : [...byVip.keys()];
  const announce = addresses.map((address): BgpAnnouncement => {
    const family = isIP(address) === 6 ? 6 : 4;
    return {
      address,
      family,
      prefix: `${address}/${family === 6 ? 128 : 32}`,
      services: byVip.get(address) ?? [],
    };
  });
  const dur = (v: number | string | undefined, fallback: number) =>
    v === undefined ? fallback : parseDuration(v);
  return {
    asn: input.asn,
    nodes: input.nodes.map((n) => ({
      name: n.name,
      routerId: n.routerId,
      peers: [...shared, ...(n.peers ?? []).map(peer)],
      ...(n.adminUrl !== undefined ? { adminUrl: n.adminUrl } : {}),
    })),
    ...(input.node !== undefined ? { node: input.node } : {}),
    // IPv4 first: BIRD's static protocols and the state file list them in this order.
    announce: [
      ...announce.filter((a) => a.family === 4),
      ...announce.filter((a) => a.family === 6),
    ],
    holdTime: dur(input.holdTime, D.holdTime),
    keepaliveTime: dur(input.keepaliveTime, D.keepaliveTime),
    bfd: input.bfd ?? D.bfd,
    bfdInterval: dur(input.bfdInterval, D.bfdInterval),
    bfdMultiplier: input.bfdMultiplier ?? D.bfdMultiplier,
    checkInterval: dur(input.checkInterval, D.checkInterval),
    checkFall: input.checkFall ?? D.checkFall,
    drainTimeout: dur(input.drainTimeout, D.drainTimeout),
    runDir: input.runDir ?? D.runDir,
    replyNat: input.replyNat ?? D.replyNat,
    ...(input.nodes.some((n) => n.adminUrl !== undefined)
      ? {
          flowSync: {
            interval: dur(input.flowSync?.interval, D.flowSyncInterval),
            tokenFile: resolvePath(
              baseDir,
              input.flowSync?.tokenFile ?? readOnlyTokenFile ?? 'flow-sync.token',
            ),
            ...(input.flowSync?.ca !== undefined
              ? { ca: resolvePath(baseDir, input.flowSync.ca) }
              : {}),
            startupWait: dur(input.flowSync?.startupWait, D.flowSyncStartupWait),
          },
        }
      : {}),
  };
}

/** Which node this is: `override` (`--node`), else `bgp.node`, else the node whose router id is configured here. */
export function localBgpNode(
  bgp: BgpConfig,
  override?: string,
  host: HostView = LOCAL_HOST,
): BgpNode | undefined {
  const name = override ?? bgp.node;
  if (name !== undefined) return bgp.nodes.find((n) => n.name === name);
  return bgp.nodes.find((n) => host.isLocalAddress(n.routerId));
}
