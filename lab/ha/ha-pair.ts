/**
 * The `ha-pair` scenario: real tunnels through an active/standby pair, and each way of losing
 * the active node measured on its own — `kill -9` of vpnlb, the node's links going down,
 * keepalived stopped, a planned `vpnlb node drain` — each followed by a fail-back to the
 * preferred node. Pings run both ways through every tunnel (client → server and server →
 * client: a takeover without replicated state breaks tunnels that only server-side traffic
 * reveals, DESIGN §6).
 */
import { sleep } from '../../src/util/wait.js';
import { TUNNEL_TARGET_V4, TUNNEL_TARGET_V6 } from '../strongswan/swanctl-conf.js';
import type { Namespace } from '../netns.js';
import {
  HaLab,
  type HaLabClient,
  type HaLabNode,
  type HaLabOptions,
  type HaLabServer,
} from './ha-lab.js';

export type HaEvent =
  | 'kill-vpnlb'
  | 'node-down'
  | 'keepalived-stop'
  | 'planned-drain'
  | 'fail-back';

export interface FailoverReport {
  readonly event: HaEvent;
  readonly from: string;
  readonly to: string;
  /** From the trigger until the other node held the addresses. */
  readonly takeoverMs: number;
  readonly tunnelsBefore: number;
  readonly tunnelsAfter: number;
  readonly tunnelsLost: number;
  /** Tunnels whose IKE SA is not the one they had before (the servers kept none of the old SPIs). */
  readonly ikeSasReestablished: number;
  /** The longest silence of any tunnel in either direction around the event. */
  readonly maxPingGapMs: number;
  readonly packetsLost: number;
  /** IKE packets the active node's kernel sent to another server than their SA's (`ike_split`). */
  readonly splitHandshakes: number;
  /** Packets that left the pair with a server's own address (a reversed conntrack entry). */
  readonly leakedServerPackets: number;
  /** Server packets of flows the new node did not know, given the service address (reply NAT). */
  readonly replyNatPackets: number;
  readonly newClientsConnected: number;
  readonly newClientsTried: number;
  /** What the node that lost the addresses reported as the cause. */
  readonly cause: string | null;
}

export interface HaPairReport {
  readonly clients: number;
  readonly connected: number;
  readonly ipv6Clients: number;
  readonly cgnatClients: number;
  readonly servers: number;
  readonly failovers: readonly FailoverReport[];
  readonly seconds: number;
}

export interface HaPairOptions extends Partial<HaLabOptions> {
  readonly events?: readonly Exclude<HaEvent, 'fail-back'>[];
  readonly progress?: (line: string) => void;
  /**
   * Called once every tunnel is up and the standby has had time to sync, before the first
   * event (e.g. a look at both nodes' dashboards); the run fails when it throws.
   */
  readonly atSteadyState?: (lab: HaLab) => Promise<void>;
}

/** A continuous ping with per-reply timestamps (`ping -D`). */
export class PingTrace {
  readonly replies: { at: number; seq: number }[] = [];
  constructor(ns: Namespace, target: string, source: string | undefined, intervalSec: number) {
    const child = ns.spawn('ping', [
      '-n',
      '-D',
      '-i',
      String(intervalSec),
      ...(source ? ['-I', source] : []),
      target,
    ]);
    let buf = '';
    child.stdout?.on('data', (d: Buffer) => {
      buf += d.toString();
      const lines = buf.split('\n');
      buf = lines.pop() ?? '';
      for (const l of lines) {
        const m = /^\[(\d+\.\d+)\].*icmp_seq=(\d+)/.exec(l);
        if (m && !l.includes('Unreachable'))
          this.replies.push({ at: Number(m[1]) * 1000, seq: Number(m[2]) });
      }
    });
  }

  /** Longest silence within [t0, t1] (edges count), and sequence numbers missing in it. */
  window(t0: number, t1: number): { gapMs: number; lost: number } {
    const inside = this.replies.filter((r) => r.at >= t0 && r.at <= t1);
    let gap = 0;
    let prev = t0;
    let lost = 0;
    let prevSeq: number | undefined;
    for (const r of inside) {
      gap = Math.max(gap, r.at - prev);
      if (prevSeq !== undefined && r.seq > prevSeq + 1) lost += r.seq - prevSeq - 1;
      prev = r.at;
      prevSeq = r.seq;
    }
    return { gapMs: Math.round(Math.max(gap, t1 - prev)), lost };
  }

  aliveSince(t: number): boolean {
    return this.replies.some((r) => r.at >= t);
  }
}

/**
 * Pings both ways through a client's established tunnel: from the client to the servers' tunnel
 * target every 100 ms, and from its server (found by the virtual-IP pool the address came from)
 * to the client's virtual IP every 200 ms. Undefined when the client has no tunnel.
 */
export async function pingTunnel(
  c: HaLabClient,
  servers: readonly HaLabServer[],
): Promise<{ toServer: PingTrace; fromServer: PingTrace } | undefined> {
  const sas = (await c.charon?.listSas()) ?? [];
  const vip = sas.find((s) => s.state === 'ESTABLISHED')?.localVips[0];
  if (!vip) return undefined;
  const server = servers.find((s) =>
    c.family === 4
      ? vip.startsWith(s.pool4.replace(/0\/24$/, ''))
      : vip.startsWith(s.pool6.replace(/::\/\d+$/, ':')),
  );
  if (!server) return undefined;
  return {
    toServer: new PingTrace(
      c.ns,
      c.family === 4 ? TUNNEL_TARGET_V4 : TUNNEL_TARGET_V6,
      undefined,
      0.1,
    ),
    fromServer: new PingTrace(
      server.ns,
      vip,
      c.family === 4 ? TUNNEL_TARGET_V4 : TUNNEL_TARGET_V6,
      0.2,
    ),
  };
}

interface Tunnel {
  readonly client: HaLabClient;
  readonly toServer: PingTrace;
  readonly fromServer: PingTrace;
}

/** The client's current IKE SA (`SPIi_SPIr`), or undefined. */
async function ikeSaOf(c: HaLabClient): Promise<string | undefined> {
  const sas = (await c.charon?.listSas().catch(() => [])) ?? [];
  const sa = sas.find((s) => s.state === 'ESTABLISHED');
  return sa ? `${sa.initiatorSpi}_${sa.responderSpi}` : undefined;
}

export async function runHaPair(options: HaPairOptions = {}): Promise<HaPairReport> {
  const progress = options.progress ?? (() => undefined);
  const events = options.events ?? ['kill-vpnlb', 'node-down', 'keepalived-stop', 'planned-drain'];
  const t0 = Date.now();
  const lab = await HaLab.create({
    label: options.label ?? 'hap',
    clients4: options.clients4 ?? 14,
    clients6: options.clients6 ?? 3,
    cgnatClients: options.cgnatClients ?? 3,
    spareClients: options.spareClients ?? events.length * 4, // two per event, two per fail-back
  });
  try {
    const [lb1, lb2] = lab.nodes as [HaLabNode, HaLabNode];
    progress(
      `ha-pair: ${lab.clients.length} clients, 3 servers, nodes lb1 (priority 150) and lb2 (100)`,
    );
    await lab.startServers();
    // One after the other: each loads a 65537-slot map per service, and two at once on a busy
    // host can stretch a concurrent `nft list tables` past vpnlb's start-up check.
    for (const n of lab.nodes) await n.startVpnlb();
    await lb1.startHa();
    await lab.waitActive('lb1');
    await lb2.startHa();
    progress('ha-pair: lb1 active, lb2 standby');

    const base = lab.clients.filter((c) => !c.spare);
    let connected = 0;
    for (let i = 0; i < base.length; i += 6) {
      await Promise.all(
        base.slice(i, i + 6).map(async (c) => {
          await lab.startClient(c);
          if ((await c.charon!.initiate('home', 20)).ok) connected++;
        }),
      );
    }
    progress(`ha-pair: ${connected}/${base.length} tunnels up`);

    const tunnels: Tunnel[] = [];
    for (const c of base) {
      const t = await pingTunnel(c, lab.servers);
      if (t) tunnels.push({ client: c, ...t });
    }
    // Let the pings start and the standby receive every entry.
    await sleep(3000);
    if (options.atSteadyState) {
      await options.atSteadyState(lab);
      progress('ha-pair: steady-state check done');
    }

    const spares = lab.clients.filter((c) => c.spare);
    const failovers: FailoverReport[] = [];
    const measure = async (
      event: HaEvent,
      from: HaLabNode,
      to: HaLabNode,
      trigger: () => Promise<unknown>,
    ): Promise<void> => {
      const start = Date.now();
      const okBefore = tunnels.filter(
        (t) => t.toServer.aliveSince(start - 2000) && t.fromServer.aliveSince(start - 2000),
      );
      const sasBefore = new Map(
        await Promise.all(
          tunnels.map(async (t) => [t.client.name, await ikeSaOf(t.client)] as const),
        ),
      );
      const splitBefore = (await lb1.ikeSplitPackets()) + (await lb2.ikeSplitPackets());
      const leakedBefore = await lab.leakedPackets();
      const replyNatBefore = (await lb1.replyNatPackets()) + (await lb2.replyNatPackets());
      const t1 = Date.now();
      // New clients: one while the addresses move, one right after.
      const newClients = spares.splice(0, 2);
      const during = (async () => {
        await sleep(500);
        const c = newClients[0];
        if (!c) return false;
        await lab.startClient(c);
        return (await c.charon!.initiate('home', 20)).ok;
      })();
      await trigger();
      const takeoverMs = Date.now() - t1 + (await lab.waitActive(to.name));
      const after = (async () => {
        const c = newClients[1];
        if (!c) return false;
        await lab.startClient(c);
        return (await c.charon!.initiate('home', 20)).ok;
      })();
      await sleep(6000);
      const newOk = (await Promise.all([during, after])).filter(Boolean).length;
      const end = Date.now();
      let maxGap = 0;
      let lost = 0;
      for (const t of okBefore) {
        for (const trace of [t.toServer, t.fromServer]) {
          const w = trace.window(t1 - 500, end);
          maxGap = Math.max(maxGap, w.gapMs);
          lost += w.lost;
        }
      }
      const okAfter = tunnels.filter(
        (t) => t.toServer.aliveSince(end - 2000) && t.fromServer.aliveSince(end - 2000),
      );
      const lostTunnels = okBefore.filter((t) => !okAfter.includes(t)).length;
      let reestablished = 0;
      for (const t of okBefore)
        if ((await ikeSaOf(t.client)) !== sasBefore.get(t.client.name)) reestablished++;
      const status = await from.haStatus().catch(() => undefined);
      const report: FailoverReport = {
        event,
        from: from.name,
        to: to.name,
        takeoverMs,
        tunnelsBefore: okBefore.length,
        tunnelsAfter: okAfter.length,
        tunnelsLost: lostTunnels,
        ikeSasReestablished: reestablished,
        maxPingGapMs: maxGap,
        packetsLost: lost,
        splitHandshakes:
          (await lb1.ikeSplitPackets()) + (await lb2.ikeSplitPackets()) - splitBefore,
        leakedServerPackets: (await lab.leakedPackets()) - leakedBefore,
        replyNatPackets:
          (await lb1.replyNatPackets()) + (await lb2.replyNatPackets()) - replyNatBefore,
        newClientsConnected: newOk,
        newClientsTried: newClients.length,
        cause: status?.lastFailover?.cause ?? null,
      };
      failovers.push(report);
      progress(
        `ha-pair: ${event} ${from.name} -> ${to.name}: takeover ${takeoverMs} ms, lost ${lostTunnels}/${okBefore.length} tunnels, max gap ${maxGap} ms, ${lost} packets lost, ${report.leakedServerPackets} leaked, ${report.replyNatPackets} reply-NAT, cause "${report.cause ?? '?'}"`,
      );
    };
    /** Brings lb1 back as a drained standby, then resumes it: the fail-back is measured. */
    const failBack = async (restore: () => Promise<void>) => {
      await lb1.vpnlb(['node', 'drain', '--no-wait']);
      await restore();
      const deadline = Date.now() + 30_000;
      while (Date.now() < deadline) {
        const s = await lb1.haStatus().catch(() => undefined);
        if (s?.role === 'standby' && (await lb1.vpnlb(['ha', 'status'])).includes('health: ok'))
          break;
        await sleep(200);
      }
      // conntrackd's resync (-n at BACKUP, StartupResync) fills lb1's table from lb2: what an
      // operator checks before `vpnlb node resume` (docs/high-availability.md). A flow lb1 does
      // not know when it takes over sends its server's packets out un-NATed.
      const synced = Date.now() + 30_000;
      while (Date.now() < synced && (await lb1.vipFlows()) < (await lb2.vipFlows()))
        await sleep(500);
      await sleep(1000);
      await measure('fail-back', lb2, lb1, () => lb1.vpnlb(['node', 'resume']));
    };

    for (const event of events) {
      if (event === 'kill-vpnlb') {
        await measure(event, lb1, lb2, () => lb1.killVpnlb());
        await failBack(() => lb1.startVpnlb());
      } else if (event === 'node-down') {
        await measure(event, lb1, lb2, () => lb1.setLinks(false));
        await failBack(() => lb1.setLinks(true));
      } else if (event === 'keepalived-stop') {
        await measure(event, lb1, lb2, () => lb1.stopHa());
        await failBack(() => lb1.startHa());
      } else if (event === 'planned-drain') {
        await measure(event, lb1, lb2, () => lb1.vpnlb(['node', 'drain']));
        await failBack(async () => undefined);
      }
    }
    return {
      clients: base.length,
      connected,
      ipv6Clients: base.filter((c) => c.family === 6).length,
      cgnatClients: base.filter((c) => c.behindCgnat).length,
      servers: lab.servers.length,
      failovers,
      seconds: Math.round((Date.now() - t0) / 1000),
    };
  } catch (err) {
    for (const n of lab.nodes)
      process.stderr.write(`--- ${n.name} log (tail)\n${n.log.slice(-4000)}\n`);
    throw err;
  } finally {
    await lab.destroy();
  }
}

export function formatHaPair(r: HaPairReport): string {
  const lines = [
    `ha-pair: ${r.connected}/${r.clients} tunnels (${r.ipv6Clients} IPv6, ${r.cgnatClients} behind CGNAT), ${r.servers} servers, ${r.seconds} s`,
  ];
  for (const f of r.failovers) {
    lines.push(
      `  ${f.event.padEnd(16)} ${f.from}->${f.to} takeover ${String(f.takeoverMs).padStart(5)} ms  tunnels ${f.tunnelsBefore}->${f.tunnelsAfter} lost ${f.tunnelsLost}  IKE re-established ${f.ikeSasReestablished}  max gap ${f.maxPingGapMs} ms  packets lost ${f.packetsLost}  split ${f.splitHandshakes}  leaked ${f.leakedServerPackets}  reply-NAT ${f.replyNatPackets}  new clients ${f.newClientsConnected}/${f.newClientsTried}`,
    );
  }
  return lines.join('\n');
}
