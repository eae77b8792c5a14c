/**
 * Suite `memory`: memory per tracked flow in the userspace relay. Distinct clients (address:port,
 * SPI) each send one IKE packet through the relay, paced under its new-flow budget; the relay
 * holds one connected upstream socket per flow, so the number of flows one process can track is
 * bounded by its open-file limit (Node raises the soft limit to the hard one at start; a
 * container may cap the hard limit, ~20 000 here, and refuse to raise it). The suite offers as
 * many flows as that limit allows, counts those the servers saw (each new flow is forwarded
 * once), and reports per flow: RSS delta, JavaScript heap delta (from a Node diagnostic report,
 * `--report-on-signal`) and descriptors; the figure for the 100 000 flows is an explicit
 * extrapolation.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { startVpnlb, vpnlbAvailable, type VpnlbCase } from '../contenders/vpnlb.js';
import type { BenchContext, SuiteOutput } from '../lib/context.js';
import { processRssBytes } from '../lib/cpu.js';
import { runTool, safeKill, type Daemon } from '../lib/proc.js';
import { sleep } from '../../src/util/wait.js';
import { BALANCER_CPU, FLOW_SRC_BASE, GENERATOR_CPU, SERVER_ADDRS, VIP } from '../lib/topology.js';

/** The flows the issue asks about. */
export const TARGET_FLOWS = 100_000;
/** Descriptors kept free for everything else in the process (listeners, admin, libuv, stdio). */
const FD_MARGIN = 1024;
/** New flows per second offered: well under what one core can set up (≈ 50 µs per flow). */
const PACE = 8_000;

/** The hard open-file limit of this process (inherited by what it starts), from /proc. */
export function hardFileLimit(limits: string): number | undefined {
  const m = /^Max open files\s+\S+\s+(\S+)/m.exec(limits);
  if (!m) return undefined;
  return m[1] === 'unlimited' ? Number.POSITIVE_INFINITY : Number(m[1]);
}

const openFds = (pid: number): number => {
  try {
    return readdirSync(`/proc/${pid}/fd`).length;
  } catch {
    return Number.NaN;
  }
};

/** Heap used according to a fresh Node diagnostic report (SIGUSR2), or NaN. */
async function reportHeap(d: Daemon, dir: string): Promise<number> {
  const before = new Set(readdirSync(dir));
  safeKill(d.pid, 'SIGUSR2');
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline) {
    await sleep(200);
    const f = readdirSync(dir).find(
      (x) => x.startsWith('report') && x.endsWith('.json') && !before.has(x),
    );
    if (!f) continue;
    try {
      const r = JSON.parse(readFileSync(join(dir, f), 'utf8')) as {
        javascriptHeap?: { usedMemory?: number };
      };
      return r.javascriptHeap?.usedMemory ?? Number.NaN;
    } catch {
      /* still being written */
    }
  }
  return Number.NaN;
}

export async function runFlowMemory(ctx: BenchContext): Promise<SuiteOutput> {
  const { t, tools, sink, work, log } = ctx;
  log('userspace relay memory per flow');
  const hard = hardFileLimit(readFileSync('/proc/self/limits', 'utf8')) ?? Number.NaN;
  const offered = Math.max(
    1000,
    Math.min(TARGET_FLOWS, (Number.isFinite(hard) ? hard : TARGET_FLOWS + FD_MARGIN) - FD_MARGIN),
  );
  const c: VpnlbCase = {
    kind: 'ikev2',
    dataplane: 'userspace',
    vip: VIP,
    backends: SERVER_ADDRS,
    table: 'unused',
    maxFlows: TARGET_FLOWS * 2,
    maxNewFlowsPerSecond: 1_000_000,
  };
  const dir = join(work, 'mem');
  const reports = join(dir, 'reports');
  mkdirSync(reports, { recursive: true });
  let d: Daemon | undefined;
  const figures: Record<string, number | null> = {};
  let error: string | undefined;
  try {
    const a = vpnlbAvailable(c);
    if (!a.ok) throw new Error(a.reason);
    d = await startVpnlb(t.lb, BALANCER_CPU, c, dir, [
      '--report-on-signal',
      '--report-signal=SIGUSR2',
      `--report-directory=${reports}`,
      '--report-compact',
    ]);
    await sleep(1000);
    const heapBefore = await reportHeap(d, reports);
    const rssBefore = processRssBytes(d.pid) ?? Number.NaN;
    const fdsBefore = openFds(d.pid);
    const s0 = await sink.read();
    log(`  offering ${offered} flows (open-file hard limit ${hard}) at ${PACE}/s`);
    await runTool(
      t.snd,
      GENERATOR_CPU,
      tools.udpgen,
      [
        '-d',
        VIP,
        '-s',
        FLOW_SRC_BASE,
        '-f',
        String(offered),
        '-P',
        '50000',
        '-w',
        '1',
        '-W',
        String(PACE),
        '-i',
        '-l',
        '100',
      ],
      (offered / PACE + 60) * 1000,
    );
    await sleep(2000);
    const s1 = await sink.read();
    const rssAfter = processRssBytes(d.pid) ?? Number.NaN;
    const fdsAfter = openFds(d.pid);
    const heapAfter = await reportHeap(d, reports);
    if (!d.alive) throw new Error(`vpnlb exited: ${d.stderr.slice(-300)}`);
    const flows = s1.ike - s0.ike;
    if (flows <= 0) throw new Error('no flow reached the servers');
    log(
      `  ${flows} flows: RSS ${Math.round(rssBefore / 1e6)} → ${Math.round(rssAfter / 1e6)} MB, heap ${Math.round(heapBefore / 1e6)} → ${Math.round(heapAfter / 1e6)} MB, fds ${fdsBefore} → ${fdsAfter}`,
    );
    const rssPer = (rssAfter - rssBefore) / flows;
    Object.assign(figures, {
      limit: hard,
      offered,
      flows,
      rssPerFlow: rssPer,
      heapPerFlow: (heapAfter - heapBefore) / flows,
      fdsPerFlow: (fdsAfter - fdsBefore) / flows,
      rssAt100k: (rssBefore + rssPer * TARGET_FLOWS) / 1e6,
      fdsAt100k: fdsBefore + ((fdsAfter - fdsBefore) / flows) * TARGET_FLOWS,
    });
  } catch (err) {
    error = (err as Error).message.replace(/\s+/g, ' ').slice(0, 300);
    log(`  FAILED: ${error}`);
  } finally {
    await d?.stop();
  }
  const row = (contender: string, key: string) => ({
    contender,
    figures: { value: figures[key] ?? null },
    ...(error ? { error } : {}),
  });
  const measuredAll =
    figures.flows !== undefined && figures.flows !== null && figures.flows >= TARGET_FLOWS;
  return {
    sections: [
      {
        title: 'Userspace relay memory per tracked flow',
        suite: 'memory',
        columns: { value: 'value' },
        rows: [
          row('open-file hard limit of the run (descriptors)', 'limit'),
          row('flows offered (limit − 1024, at most 100 000)', 'offered'),
          row('flows tracked (forwarded to a server)', 'flows'),
          row('RSS per flow (bytes)', 'rssPerFlow'),
          row('JavaScript heap per flow (bytes)', 'heapPerFlow'),
          row('descriptors per flow', 'fdsPerFlow'),
          row(
            `RSS at ${TARGET_FLOWS.toLocaleString('en-US')} flows (MB, ${measuredAll ? 'measured' : 'extrapolated'})`,
            'rssAt100k',
          ),
          row(
            `descriptors at ${TARGET_FLOWS.toLocaleString('en-US')} flows (${measuredAll ? 'measured' : 'extrapolated'})`,
            'fdsAt100k',
          ),
        ],
        notes: [
          'The relay keeps one connected upstream socket per tracked flow (a client uses two flows: its IKE and NAT-T source ports), so one process tracks at most as many flows as its open-file limit allows: run it with `LimitNOFILE` above 2 × maxFlows (the packaged unit, packaging/vpnlb.service, sets 1048576). Where the limit is below 100 000, the 100 000-flow figures are extrapolated linearly from the flows measured.',
          'Per-flow bytes = (after − before) / flows tracked, RSS from /proc, heap from a Node diagnostic report (`--report-on-signal`); the heap figure includes garbage not yet collected.',
        ],
      },
    ],
    ratios: {},
    findings: [],
    raw: { figures, error, reportsKept: existsSync(reports) },
  };
}
