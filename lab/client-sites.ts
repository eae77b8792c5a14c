/**
 * Where the lab's VPN clients sit, shared by every lab topology (the IKE lab, topology-ike.ts,
 * and the pair lab, ha/ha-lab.ts): each client in a namespace of its own, linked to a router
 * namespace (the balancer itself, or the pair's wan router) directly, behind one carrier-grade
 * NAT, or behind a home router of its own.
 *
 * ```
 *  router ─┬─ c<n>   198.18.(10+n).2 / 2001:db8:2:(10+n)::2   (direct: clientSubnet4)
 *          ├─ cgn 198.18.99.2 (masquerade) ─┬─ n1 198.18.201.2
 *          │                                └─ n2 198.18.202.2 …
 *          └─ r<k> 198.18.(120+k).2 (masquerade) ── h<k> 198.18.(140+k).2
 * ```
 */
import type { Namespace, Topology } from './netns.js';

/** The CGNAT router's public address, as the balancer sees CGNAT clients. */
export const CGNAT_ADDRESS = '198.18.99.2';

/** At most this many clients behind the CGNAT (one 198.18.(200+k).0/24 each). */
export const MAX_CGNAT_CLIENTS = 55;

export interface ClientSite {
  readonly name: string;
  readonly ns: Namespace;
  /** The client's own address (before any NAT). */
  readonly address: string;
  readonly family: 4 | 6;
  readonly behindCgnat: boolean;
  /** Behind a home router of its own (its NAT address is its router's). */
  readonly behindHomeNat: boolean;
  /** The client's interface towards its router. */
  readonly ifName: string;
}

/**
 * The IPv4 subnet of direct client number `n` (1-based) and the router's side of it. The first
 * 87 keep the historical `198.18.(10+n).0/24` (below the flooder's 198.18.98.0/24, the CGNAT
 * link's 198.18.99.0/24 and the servers' 198.18.101+); larger labs continue with /30s in
 * 198.19.128.0/17, which nothing else uses (8192 more clients).
 */
export function clientSubnet4(n: number): {
  gateway: string;
  client: string;
  prefixLength: number;
} {
  if (n <= 87)
    return { gateway: `198.18.${10 + n}.1`, client: `198.18.${10 + n}.2`, prefixLength: 24 };
  const m = n - 88;
  if (m >= 8192) throw new Error(`lab: at most ${87 + 8192} direct IPv4 clients`);
  const third = 128 + Math.floor(m / 64);
  const base = (m % 64) * 4;
  return {
    gateway: `198.19.${third}.${base + 1}`,
    client: `198.19.${third}.${base + 2}`,
    prefixLength: 30,
  };
}

/** Source NAT of everything leaving `ns` through `oif` (a CGNAT or a home router). */
export async function masquerade(ns: Namespace, table: string, oif: string): Promise<void> {
  await ns.exec(
    'nft',
    ['-f', '-'],
    `table ip ${table} {\n  chain post {\n    type nat hook postrouting priority srcnat;\n    oifname "${oif}" masquerade\n  }\n}\n`,
  );
}

/** Client `c<n>` on a link of its own to `router`, which holds the gateway address. */
export async function addDirectClient(
  t: Topology,
  router: string,
  n: number,
  family: 4 | 6,
): Promise<ClientSite> {
  const name = `c${n}`;
  const ns = await t.addNamespace(name, { forwarding: false });
  const v4 = clientSubnet4(n);
  const v6 = {
    gateway: `2001:db8:2:${10 + n}::1`,
    client: `2001:db8:2:${10 + n}::2`,
    prefixLength: 64,
  };
  const s = family === 4 ? v4 : v6;
  const { bIf } = await t.link({
    a: router,
    b: name,
    aAddresses: [`${s.gateway}/${s.prefixLength}`],
    bAddresses: [`${s.client}/${s.prefixLength}`],
  });
  await t.route(name, 'default', s.gateway);
  return {
    name,
    ns,
    address: s.client,
    family,
    behindCgnat: false,
    behindHomeNat: false,
    ifName: bIf,
  };
}

/** `count` clients `n1…` behind one masquerading router `cgn` (CGNAT_ADDRESS) hanging off `router`. */
export async function addCgnatClients(
  t: Topology,
  router: string,
  count: number,
): Promise<ClientSite[]> {
  if (count > MAX_CGNAT_CLIENTS)
    throw new Error(
      `lab: at most ${MAX_CGNAT_CLIENTS} CGNAT clients (one 198.18.(200+k).0/24 each)`,
    );
  if (count <= 0) return [];
  const cgn = await t.addNamespace('cgn');
  const { aIf } = await t.link({
    a: 'cgn',
    b: router,
    aAddresses: [`${CGNAT_ADDRESS}/24`],
    bAddresses: ['198.18.99.1/24'],
  });
  await t.route('cgn', 'default', '198.18.99.1');
  await masquerade(cgn, 'cgnat', aIf);
  const out: ClientSite[] = [];
  for (let k = 1; k <= count; k++) {
    const name = `n${k}`;
    const ns = await t.addNamespace(name, { forwarding: false });
    const net = 200 + k;
    const { bIf } = await t.link({
      a: 'cgn',
      b: name,
      aAddresses: [`198.18.${net}.1/24`],
      bAddresses: [`198.18.${net}.2/24`],
    });
    await t.route(name, 'default', `198.18.${net}.1`);
    out.push({
      name,
      ns,
      address: `198.18.${net}.2`,
      family: 4,
      behindCgnat: true,
      behindHomeNat: false,
      ifName: bIf,
    });
  }
  return out;
}

/** Client `h<k>` behind a masquerading home router `r<k>` of its own, hanging off `router`. */
export async function addHomeNatClient(
  t: Topology,
  router: string,
  k: number,
): Promise<ClientSite> {
  const home = `r${k}`;
  await t.addNamespace(home);
  const wan = 120 + k;
  const { aIf } = await t.link({
    a: home,
    b: router,
    aAddresses: [`198.18.${wan}.2/24`],
    bAddresses: [`198.18.${wan}.1/24`],
  });
  await t.route(home, 'default', `198.18.${wan}.1`);
  await masquerade(t.ns(home), 'homenat', aIf);
  const name = `h${k}`;
  const ns = await t.addNamespace(name, { forwarding: false });
  const lan = 140 + k;
  const { bIf } = await t.link({
    a: home,
    b: name,
    aAddresses: [`198.18.${lan}.1/24`],
    bAddresses: [`198.18.${lan}.2/24`],
  });
  await t.route(name, 'default', `198.18.${lan}.1`);
  return {
    name,
    ns,
    address: `198.18.${lan}.2`,
    family: 4,
    behindCgnat: false,
    behindHomeNat: true,
    ifName: bIf,
  };
}
