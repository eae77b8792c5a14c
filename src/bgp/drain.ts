/**
 * `vpnlb node drain` on a node behind ECMP: withdraw every announcement, then wait until
 * clients' packets stop arriving (the routers moved their flows to the other nodes), and report.
 *
 * "Stopped" is read from the kernel data plane's own per-server counters (`b_<server>_in`,
 * client → server packets, render-ruleset.ts): no new packet for `quietMs` means the routers
 * no longer send this node anything. Conntrack entries stay until they time out; with every
 * node computing the same server for a flow (docs/scale-out.md) the node that receives the
 * flow now needs none of them.
 */
import { writeFileSync } from 'node:fs';
import type { CommandRunner } from '../platform/command-runner.js';
import { readCounterObjects } from '../dataplane/kernel/nft-counters.js';
import { sleep } from '../util/wait.js';
import { readBgpStatus } from './bgp-state.js';
import type { BgpPaths } from './paths.js';

export interface DrainReport {
  /** From the drain flag to every announcement withdrawn (as the supervisor reports it). */
  readonly withdrawMs: number | null;
  /** From the drain flag to the last client packet seen here (the flows moved). */
  readonly quietAfterMs: number | null;
  /** Client packets this node still forwarded after its withdrawal. */
  readonly packetsAfterWithdraw: number;
  readonly timedOut: boolean;
}

const CLIENT_COUNTER = /^b_.+_in$/;

/**
 * Sum of the client → server packet counters of every vpnlb table: through the netlink addon
 * (nft-counters.ts) when it is there, else `nft -j list counters`, which fetches every set
 * element too (seconds per poll with a few 65537-slot maps on a busy node).
 */
export async function clientPackets(run: CommandRunner): Promise<number> {
  const counters = await readCounterObjects({}, async (args) => {
    const r = await run('nft', args);
    return r.ok ? r.stdout : undefined;
  });
  return counters.reduce((n, c) => (CLIENT_COUNTER.test(c.name) ? n + c.packets : n), 0);
}

export interface DrainOptions {
  readonly paths: BgpPaths;
  readonly run: CommandRunner;
  readonly timeoutMs: number;
  /** How long without a client packet counts as "moved" (default 3 s: above a ping interval, below a NAT-T keepalive). */
  readonly quietMs?: number;
  readonly sleep?: (ms: number) => Promise<void>;
}

export async function drainNode(o: DrainOptions): Promise<DrainReport> {
  const pause = o.sleep ?? sleep;
  const quietMs = o.quietMs ?? 3000;
  const t0 = Date.now();
  writeFileSync(o.paths.drainFile, '1\n');
  let withdrawMs: number | null = null;
  let atWithdraw = 0;
  let last = await clientPackets(o.run);
  let lastChange = Date.now();
  while (Date.now() - t0 < o.timeoutMs) {
    await pause(100);
    const now = Date.now();
    const packets = await clientPackets(o.run);
    if (packets !== last) {
      last = packets;
      lastChange = now;
    }
    if (withdrawMs === null) {
      const s = readBgpStatus(o.paths.stateFile, now);
      if (
        s.supervisor !== 'absent' &&
        s.drained &&
        s.announcements.every((a) => !a.announced) &&
        Date.parse(s.updatedAt) >= t0
      ) {
        withdrawMs = now - t0;
        atWithdraw = packets;
      }
      continue;
    }
    if (now - lastChange >= quietMs)
      return {
        withdrawMs,
        quietAfterMs: Math.max(0, lastChange - t0),
        packetsAfterWithdraw: last - atWithdraw,
        timedOut: false,
      };
  }
  return {
    withdrawMs,
    quietAfterMs: null,
    packetsAfterWithdraw: withdrawMs === null ? 0 : last - atWithdraw,
    timedOut: true,
  };
}
