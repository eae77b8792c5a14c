/**
 * The `ecmp` scenario: real tunnels through N active vpnlb nodes behind a BIRD router's ECMP
 * route, and each way the node set changes measured on its own — a planned `vpnlb node drain`,
 * a node added, `kill -9` of a node's vpnlb and BIRD together, and a node that loses every
 * server. Pings run both ways through every tunnel (client → server and server → client).
 * Each event is reported per affinity: `source-ip` (every node computes the same server from the
 * packet alone) and `ike-spi` (pins and SPI sets are node-local, exchanged between the nodes by
 * `bgp.flowSync`), docs/scale-out.md.
 */
import { sleep, waitUntil } from '../../src/util/wait.js';
import { pingTunnel, type PingTrace } from '../ha/ha-pair.js';
import { CGNAT_ADDRESS } from '../client-sites.js';
import { counterPackets } from '../netns.js';
import {
  EcmpLab,
  VIP6,
  VIP_IKE_SPI,
  VIP_SOURCE_IP,
  type Affinity,
  type EcmpClient,
  type EcmpLabOptions,
  type EcmpNode,
} from './ecmp-lab.js';

export type EcmpEvent = 'planned-drain' | 'add-node' | 'kill-node' | 'all-backends-down';

export interface EcmpEventReport {
  readonly event: EcmpEvent;
  readonly affinity: Affinity;
  readonly node: string;
  /** From the trigger until the router's route changed for every VIP (announced, for add-node). */
  readonly withdrawSeconds: number | null;
  readonly tunnelsBefore: number;
  readonly tunnelsAfter: number;
  readonly tunnelsLost: number;
  /** The longest silence of a surviving tunnel in either direction around the event. */
  readonly maxPingGapMs: number;
  /** Pings lost by the surviving tunnels (lost tunnels are counted in `tunnelsLost`). */
  readonly packetsLost: number;
  readonly splitHandshakes: number;
  readonly leakedServerPackets: number;
  /** Event-specific facts: the drain command's report, whether BIRD outlived a kill, the monitor fall period. */
  readonly detail: Record<string, unknown>;
}

export interface EcmpReport {
  readonly nodes: number;
  readonly initialNodes: number;
  readonly clients: number;
  readonly connected: number;
  readonly ipv6Clients: number;
  readonly cgnatClients: number;
  readonly servers: number;
  readonly multipathHashPolicy: string;
  readonly splitHandshakes: number;
  /** Distinct client addresses the servers' IKE SAs show (real addresses: no node address among them). */
  readonly clientAddressesSeenByServers: number;
  readonly expectedClientAddresses: number;
  readonly nodeAddressesSeenByServers: number;
  /** Clients whose NAT-T flow each node carries after the initial connections. */
  readonly newClientsPerNode: Readonly<Record<string, number>>;
  readonly events: readonly EcmpEventReport[];
  readonly seconds: number;
}

export interface EcmpOptions extends Partial<EcmpLabOptions> {
  readonly events?: readonly EcmpEvent[];
  readonly progress?: (line: string) => void;
  /** How long after each trigger the tunnels are watched (default 10 s). */
  readonly settleMs?: number;
  /**
   * Called once every tunnel is up and before the first event (e.g. a look at a node's
   * dashboard); the run fails when it throws.
   */
  readonly atSteadyState?: (lab: EcmpLab, active: readonly EcmpNode[]) => Promise<void>;
}

interface Tunnel {
  readonly client: EcmpClient;
  readonly toServer: PingTrace;
  readonly fromServer: PingTrace;
}

const VIPS = [VIP_SOURCE_IP, VIP_IKE_SPI, VIP6];
/** The lab's monitor: 1 s interval, fall 3 (ecmp-lab.ts). */
const MONITOR_FALL_SECONDS = 3;

export async function runEcmp(options: EcmpOptions = {}): Promise<EcmpReport> {
  const t0 = Date.now();
  const report = options.progress ?? (() => undefined);
  // Every line carries the seconds since the start: where a run's time goes is part of its report.
  const progress = (line: string) => report(`[${Math.round((Date.now() - t0) / 1000)} s] ${line}`);
  const events = options.events ?? ['planned-drain', 'add-node', 'kill-node', 'all-backends-down'];
  const settleMs = options.settleMs ?? 10_000;
  const initialNodes = options.nodes ?? 3;
  const lab = await EcmpLab.create({
    label: options.label ?? 'ecmp',
    nodes: initialNodes,
    clients4: options.clients4 ?? 20,
    clients6: options.clients6 ?? 4,
    cgnatClients: options.cgnatClients ?? 6,
  });
  try {
    const active = lab.nodes.slice(0, initialNodes);
    const spare = lab.nodes[initialNodes]!;
    progress(
      `ecmp: lab built; ${lab.clients.length} clients, 3 servers, nodes ${active.map((n) => n.name).join(', ')} (+ ${spare.name} to add)`,
    );
    await lab.startRouter();
    await lab.startServers();
    progress('ecmp: router and servers started');
    // One after the other: each loads three 65537-slot maps (a busy host stretches concurrent loads).
    for (const n of active) await n.vpnlbNode.startVpnlb();
    progress('ecmp: vpnlb running on every node');
    for (const n of active) await n.startBgp();
    await waitRoutes(lab, (hops) => hops.length === initialNodes, 60_000);
    progress(`ecmp: the router has ${initialNodes} next hops for ${VIPS.join(', ')}`);

    let connected = 0;
    for (let i = 0; i < lab.clients.length; i += 6) {
      await Promise.all(
        lab.clients.slice(i, i + 6).map(async (c) => {
          await lab.startClient(c);
          if ((await c.charon!.initiate('home', 20)).ok) connected++;
        }),
      );
    }
    progress(`ecmp: ${connected}/${lab.clients.length} tunnels up`);

    const tunnels: Tunnel[] = [];
    for (const c of lab.clients) {
      const t = await pingTunnel(c, lab.servers);
      if (t) tunnels.push({ client: c, ...t });
    }
    progress(`ecmp: ${tunnels.length} tunnels carry pings`);

    const seen = new Set<string>();
    for (const s of lab.servers)
      for (const sa of (await s.charon?.listSas()) ?? [])
        if (sa.state === 'ESTABLISHED') seen.add(sa.remoteHost);
    const expected = new Set(lab.clients.filter((c) => !c.behindCgnat).map((c) => c.address));
    if (lab.clients.some((c) => c.behindCgnat)) expected.add(CGNAT_ADDRESS);
    const nodeAddresses = new Set(
      lab.nodes.flatMap((n) => [n.address4, n.insideAddress4, n.address6]),
    );
    const newClientsPerNode: Record<string, number> = {};
    for (const n of active) newClientsPerNode[n.name] = (await n.natTClients()).length;
    const splitAtStart = await splitHandshakes(lab);
    progress(
      `ecmp: servers see ${[...seen].filter((a) => expected.has(a)).length}/${expected.size} client addresses; NAT-T clients per node ${JSON.stringify(newClientsPerNode)}`,
    );
    if (options.atSteadyState) {
      await options.atSteadyState(lab, active);
      progress('ecmp: steady-state check done');
    }
    await sleep(3000);

    const reports: EcmpEventReport[] = [];
    const measure = async (
      event: EcmpEvent,
      node: EcmpNode,
      expectAnnounced: boolean,
      trigger: () => Promise<Record<string, unknown>>,
    ): Promise<void> => {
      const start = Date.now();
      const alive = (t: Tunnel, since: number) =>
        t.toServer.aliveSince(since) && t.fromServer.aliveSince(since);
      const okBefore = tunnels.filter((t) => alive(t, start - 2000));
      const splitBefore = await splitHandshakes(lab);
      const leakedBefore = await lab.leakedPackets();
      const spiFlowsBefore = await ikeSpiFlows(lab);
      const unroutedBefore = await nattUnrouted(lab);
      const t1 = Date.now();
      const routeChange = waitRoutes(
        lab,
        (hops) => hops.includes(node.name) === expectAnnounced,
        60_000,
      ).then(
        () => (Date.now() - t1) / 1000,
        () => null,
      );
      const detail = await trigger();
      const withdrawSeconds = await routeChange;
      await sleep(Math.max(0, settleMs - (Date.now() - t1)));
      const end = Date.now();
      const split = (await splitHandshakes(lab)) - splitBefore;
      const leaked = (await lab.leakedPackets()) - leakedBefore;
      // ike-spi clients whose NAT-T flow now also crosses a node it did not cross before (the
      // routers moved it), and ESP that a node dropped for want of a pin.
      const spiFlowsAfter = await ikeSpiFlows(lab);
      detail.ikeSpiFlowsMoved = [...spiFlowsAfter].filter(([address, nodes]) =>
        [...nodes].some((n) => !spiFlowsBefore.get(address)?.has(n)),
      ).length;
      detail.nattUnroutedPackets = (await nattUnrouted(lab)) - unroutedBefore;
      for (const affinity of ['source-ip', 'ike-spi'] as const) {
        const before = okBefore.filter((t) => t.client.affinity === affinity);
        const after = before.filter((t) => alive(t, end - 2000));
        let maxGap = 0;
        let lost = 0;
        for (const t of after) {
          for (const trace of [t.toServer, t.fromServer]) {
            const w = trace.window(t1 - 500, end);
            maxGap = Math.max(maxGap, w.gapMs);
            lost += w.lost;
          }
        }
        reports.push({
          event,
          affinity,
          node: node.name,
          withdrawSeconds:
            withdrawSeconds === null ? null : Math.round(withdrawSeconds * 100) / 100,
          tunnelsBefore: before.length,
          tunnelsAfter: after.length,
          tunnelsLost: before.length - after.length,
          maxPingGapMs: maxGap,
          packetsLost: lost,
          splitHandshakes: split,
          leakedServerPackets: leaked,
          detail,
        });
      }
      const [a, b] = reports.slice(-2) as [EcmpEventReport, EcmpEventReport];
      progress(
        `ecmp: ${event} ${node.name}: route change ${withdrawSeconds ?? 'none'} s; source-ip lost ${a.tunnelsLost}/${a.tunnelsBefore} (gap ${a.maxPingGapMs} ms), ike-spi lost ${b.tunnelsLost}/${b.tunnelsBefore} (gap ${b.maxPingGapMs} ms, ${String(detail.ikeSpiFlowsMoved)} flows moved, ${String(detail.nattUnroutedPackets)} ESP packets unrouted); split ${split}, leaked ${leaked}`,
      );
    };

    for (const event of events) {
      if (event === 'planned-drain') {
        const node = active[0]!;
        await measure(event, node, false, async () => {
          const out = await node.vpnlbNode.vpnlb(['node', 'drain', '--json']);
          return { drain: JSON.parse(out.trim().split('\n').at(-1) ?? '{}') as unknown };
        });
      } else if (event === 'add-node') {
        // Its vpnlb first (three 65537-slot maps to load); the event is its announcement.
        await spare.vpnlbNode.startVpnlb();
        await measure(event, spare, true, async () => {
          await spare.startBgp();
          return {};
        });
      } else if (event === 'kill-node') {
        const node = active[1] ?? active[0]!;
        await measure(event, node, false, async () => {
          await node.killAll();
          await sleep(200);
          return { birdSurvived: (await node.birdPids()).length > 0 };
        });
      } else if (event === 'all-backends-down') {
        const node = active[2] ?? active[0]!;
        // The node's own monitor probes (its output path) no longer reach any server; the
        // traffic it forwards is untouched: only its view of the servers fails.
        await measure(event, node, false, async () => {
          await node.ns.exec(
            'nft',
            ['-f', '-'],
            'table inet lab_block {\n  chain out {\n    type filter hook output priority 0;\n    ip daddr 198.18.1.0/24 drop\n    ip6 daddr 2001:db8:b::/64 drop\n  }\n}\n',
          );
          return { monitorFallSeconds: MONITOR_FALL_SECONDS };
        });
        await node.ns.exec('nft', ['delete', 'table', 'inet', 'lab_block']).catch(() => undefined);
      }
    }
    return {
      nodes: lab.nodes.length,
      initialNodes,
      clients: lab.clients.length,
      connected,
      ipv6Clients: lab.clients.filter((c) => c.family === 6).length,
      cgnatClients: lab.clients.filter((c) => c.behindCgnat).length,
      servers: lab.servers.length,
      multipathHashPolicy: 'L3 (fib_multipath_hash_policy=0)',
      splitHandshakes: splitAtStart,
      clientAddressesSeenByServers: [...seen].filter((a) => expected.has(a)).length,
      expectedClientAddresses: expected.size,
      nodeAddressesSeenByServers: [...seen].filter((a) => nodeAddresses.has(a)).length,
      newClientsPerNode,
      events: reports,
      seconds: Math.round((Date.now() - t0) / 1000),
    };
  } catch (err) {
    for (const n of lab.nodes)
      process.stderr.write(`--- ${n.name} log (tail)\n${n.vpnlbNode.log.slice(-5000)}\n`);
    process.stderr.write(`--- router\n${lab.routerLog.slice(-3000)}\n`);
    throw err;
  } finally {
    progress('ecmp: tearing the lab down');
    await lab.destroy();
    progress('ecmp: lab removed');
  }
}

/** Waits until the router's next hops satisfy `ok` for every VIP. */
async function waitRoutes(
  lab: EcmpLab,
  ok: (hops: string[]) => boolean,
  timeoutMs: number,
): Promise<void> {
  await waitUntil(
    "the router's routes to change",
    async () => (await Promise.all(VIPS.map((v) => lab.nextHops(v)))).every(ok),
    timeoutMs,
    50,
  );
}

/** Per ike-spi client address, the nodes whose conntrack carries its NAT-T flow. */
async function ikeSpiFlows(lab: EcmpLab): Promise<Map<string, Set<string>>> {
  const out = new Map<string, Set<string>>();
  for (const node of lab.nodes)
    for (const a of await node.natTClients([VIP_IKE_SPI]))
      out.set(a, new Set([...(out.get(a) ?? []), node.name]));
  return out;
}

/** ESP (and IKE) on the ike-spi service's NAT-T port that a node could not place: no pin, no entry. */
async function nattUnrouted(lab: EcmpLab): Promise<number> {
  let n = 0;
  for (const node of lab.nodes)
    n += (await counterPackets(node.ns, { family: 'ip', table: 'vpnlb_spi' })).natt_unrouted ?? 0;
  return n;
}

async function splitHandshakes(lab: EcmpLab): Promise<number> {
  let n = 0;
  for (const node of lab.nodes) {
    for (const [family, table] of [
      ['ip', 'vpnlb_spi'],
      ['ip', 'vpnlb_sip'],
      ['ip6', 'vpnlb6'],
    ] as const) {
      n += (await counterPackets(node.ns, { family, table })).ike_split ?? 0;
    }
  }
  return n;
}

export function formatEcmp(r: EcmpReport): string {
  const lines = [
    `ecmp: ${r.connected}/${r.clients} tunnels (${r.ipv6Clients} IPv6, ${r.cgnatClients} behind CGNAT), ${r.initialNodes} nodes + 1 added, ${r.servers} servers, ${r.seconds} s`,
    `  servers saw ${r.clientAddressesSeenByServers}/${r.expectedClientAddresses} real client addresses (${r.nodeAddressesSeenByServers} node addresses); split handshakes ${r.splitHandshakes}; NAT-T clients per node ${JSON.stringify(r.newClientsPerNode)}`,
  ];
  for (const e of r.events) {
    lines.push(
      `  ${e.event.padEnd(18)} ${e.node} ${e.affinity.padEnd(9)} route ${e.withdrawSeconds ?? '-'} s  tunnels ${e.tunnelsBefore}->${e.tunnelsAfter} lost ${e.tunnelsLost}  max gap ${e.maxPingGapMs} ms  packets lost ${e.packetsLost}  split ${e.splitHandshakes}  leaked ${e.leakedServerPackets}`,
    );
  }
  return lines.join('\n');
}
