/**
 * Building blocks shared by the labs of several balancer nodes (the ha-pair and ecmp labs):
 * L2 segments as bridges in namespaces of their own (the clients come from client-sites.ts), the leak counter on the clients' router, and the strongSwan
 * servers and clients they run.
 */
import { join } from 'node:path';
import { counterPackets, type Namespace, type Topology } from './netns.js';
import { Charon } from './strongswan/charon.js';
import { FAST_RETRANSMIT } from './strongswan/strongswan-conf.js';
import {
  renderInitiatorConf,
  renderResponderConf,
  TUNNEL_TARGET_V4,
  TUNNEL_TARGET_V6,
} from './strongswan/swanctl-conf.js';

const PSK = 'vpnlb-lab-pre-shared-key';
const SERVER_ID = 'server';

/** A strongSwan server of a farm lab: its namespace, inside addresses and virtual-IP pools. */
export interface FarmServer {
  readonly name: string;
  readonly ns: Namespace;
  readonly address4: string;
  readonly address6: string;
  readonly pool4: string;
  readonly pool6: string;
  charon?: Charon;
}

/**
 * A bridge in a namespace of its own, with `net.bridge.bridge-nf-call-*` = 0 there (DESIGN §6:
 * with br_netfilter, a bridge in a namespace would run the frames through its netfilter).
 */
export async function addBridge(topo: Topology, short: string): Promise<Namespace> {
  const ns = await topo.addNamespace(short, { forwarding: false });
  for (const k of ['iptables', 'ip6tables', 'arptables'])
    await ns.exec('sysctl', ['-qw', `net.bridge.bridge-nf-call-${k}=0`]).catch(() => undefined);
  await ns.exec('ip', ['link', 'add', 'br0', 'type', 'bridge']);
  await ns.exec('ip', ['link', 'set', 'br0', 'up']);
  return ns;
}

/** A veth from `a` (with addresses) into bridge namespace `sw`; returns a's interface name. */
export async function bridgePort(
  topo: Topology,
  sw: string,
  a: string,
  addresses: readonly string[],
): Promise<string> {
  const { aIf, bIf } = await topo.link({ a, b: sw, aAddresses: addresses, bAddresses: [] });
  await topo.ns(sw).exec('ip', ['link', 'set', bIf, 'master', 'br0']);
  return aIf;
}

/** Counts (and drops) what reaches the clients' router from `ifname` with a server's own address. */
export async function installLeakCounter(router: Namespace, ifname: string): Promise<void> {
  await router.exec(
    'nft',
    ['-f', '-'],
    `table inet leak {\n  counter leaked {\n  }\n  chain leakcheck {\n    type filter hook forward priority 0;\n    iifname "${ifname}" ip saddr 198.18.1.0/24 counter name leaked drop\n    iifname "${ifname}" ip6 saddr 2001:db8:b::/64 counter name leaked drop\n  }\n}\n`,
  );
}

export async function leakedPackets(router: Namespace): Promise<number> {
  return (await counterPackets(router, { family: 'inet', table: 'leak' })).leaked ?? 0;
}

/** The servers' strongSwan responders (PSK; tunnel targets on their loopback). */
export async function startFarmServers(servers: readonly FarmServer[], dir: string): Promise<void> {
  await Promise.all(
    servers.map(async (s) => {
      s.charon = await Charon.start({
        ns: s.ns,
        dir: join(dir, s.name),
        retransmit: FAST_RETRANSMIT,
        swanctlConf: renderResponderConf({
          id: SERVER_ID,
          auth: { kind: 'psk', secret: PSK },
          pools: [s.pool4, s.pool6],
          localTs: [`${TUNNEL_TARGET_V4}/32`, `${TUNNEL_TARGET_V6}/128`],
          fragmentation: true,
        }),
      });
    }),
  );
}

/** A client's strongSwan initiator (connection `home`) dialling `remote`. */
export function startFarmClient(
  c: { readonly name: string; readonly ns: Namespace; readonly family: 4 | 6 },
  dir: string,
  remote: string,
): Promise<Charon> {
  return Charon.start({
    ns: c.ns,
    dir: join(dir, c.name),
    retransmit: FAST_RETRANSMIT,
    swanctlConf: renderInitiatorConf({
      id: c.name,
      auth: { kind: 'psk', secret: PSK },
      remote,
      remoteId: SERVER_ID,
      remoteTs: [c.family === 4 ? `${TUNNEL_TARGET_V4}/32` : `${TUNNEL_TARGET_V6}/128`],
      vips: [c.family === 4 ? '0.0.0.0' : '::'],
      fragmentation: true,
    }),
  });
}
