/**
 * Suite `tcp`: SSTP passthrough on TCP 443 (see tcp-passthrough.ts): direct (baseline) · vpnlb
 * passthrough (the userspace proxy) · vpnlb kernel passthrough (`dataplane: kernel`: nftables
 * DNAT, the servers see the client) · HAProxy mode tcp · nginx stream. Each kind of traffic (1 stream, 16 streams,
 * new connections) is first run uncounted for the warm-up time on the freshly started contender,
 * then measured `repeats` times.
 */
import { startHaproxy } from '../contenders/haproxy.js';
import { startNginx } from '../contenders/nginx.js';
import { startVpnlb, vpnlbAvailable } from '../contenders/vpnlb.js';
import { warmupPlan, withContender, type BenchContext, type SuiteOutput } from '../lib/context.js';
import type { Daemon } from '../lib/proc.js';
import type { Row } from '../lib/report.js';
import { ratioOfRepeats } from '../lib/stats.js';
import { BALANCER_CPU, GENERATOR_BOUND, SERVER_ADDRS, VIP } from '../lib/topology.js';
import { cpus } from 'node:os';
import {
  PASSTHROUGH_CASE,
  measureConnRate,
  measureStream,
  medianOf,
  type RateSample,
} from './tcp-passthrough.js';
import { measureWorkersScaling } from './workers-scaling.js';

/** Connections per second of the balancer core. */
const perCore = (s: RateSample) => (s.balancerCpu > 0 ? s.perSecond / s.balancerCpu : NaN);

/**
 * The generator core saturated while the contender's own did not (medians of the repeats), and
 * no connection failed (a contender that made the generator wait out failures would look
 * generator-bound too).
 */
function connBound(conn: readonly RateSample[]): boolean {
  return (
    medianOf(conn, (s) => s.generatorCore) >= GENERATOR_BOUND &&
    medianOf(conn, (s) => s.balancerCpu) < GENERATOR_BOUND &&
    conn.every((s) => s.failed === 0)
  );
}

export async function runTcp(ctx: BenchContext): Promise<SuiteOutput> {
  const { t, tools, opts, log, work } = ctx;
  log('TCP passthrough');
  const cases: Array<[string, () => Promise<Daemon | undefined>, string]> = [
    ['direct (baseline)', async () => undefined, SERVER_ADDRS[0]],
    [
      'vpnlb passthrough',
      async () => {
        const a = vpnlbAvailable(PASSTHROUGH_CASE);
        if (!a.ok) throw new Error(a.reason);
        return startVpnlb(t.lb, BALANCER_CPU, PASSTHROUGH_CASE, `${work}/sp`);
      },
      VIP,
    ],
    [
      'vpnlb kernel passthrough',
      async () => {
        const c = { ...PASSTHROUGH_CASE, dataplane: 'kernel' } as const;
        const a = vpnlbAvailable(c);
        if (!a.ok) throw new Error(a.reason);
        return startVpnlb(t.lb, BALANCER_CPU, c, `${work}/sk`);
      },
      VIP,
    ],
    [
      'HAProxy mode tcp',
      () =>
        startHaproxy(
          t.lb,
          BALANCER_CPU,
          { vip: VIP, port: 443, backends: SERVER_ADDRS, backendPort: 443 },
          `${work}/hp`,
        ),
      VIP,
    ],
    [
      'nginx stream',
      () =>
        startNginx(
          t.lb,
          BALANCER_CPU,
          { kind: 'tcp', vip: VIP, port: 443, backends: SERVER_ADDRS, backendPort: 443 },
          `${work}/np`,
        ),
      VIP,
    ],
  ];
  const rows: Row[] = [];
  const raw: Record<string, unknown> = {};
  for (const [name, start, dst] of cases) {
    log(`  ${name}`);
    const o = await withContender(log, name, start, async () => {
      // Warm-up: each kind of traffic once, uncounted (2 s for the first, the settle time after).
      const warm = warmupPlan({
        warmupSeconds: opts.warmupSeconds,
        settleSeconds: Math.max(1, opts.settleSeconds),
      });
      const measured = async <T>(fn: (seconds: number) => Promise<T>): Promise<T[]> => {
        await fn(warm());
        const out: T[] = [];
        for (let i = 0; i < opts.repeats; i++) out.push(await fn(opts.shortSeconds));
        return out;
      };
      const one = await measured((s) => measureStream(t, tools, dst, 443, 443, 1, s));
      const many = await measured((s) => measureStream(t, tools, dst, 443, 443, 16, s));
      const conn = await measured((s) => measureConnRate(t, tools, dst, 443, 443, 64, s));
      return { one, many, conn };
    });
    raw[name] = o;
    rows.push({
      contender: name,
      figures: o.ok
        ? {
            one: medianOf(o.value.one, (s) => s.gbps),
            many: medianOf(o.value.many, (s) => s.gbps),
            cpuMany: medianOf(o.value.many, (s) => s.balancerCpu * 100),
            conn: medianOf(o.value.conn, (s) => s.perSecond),
            connFailed: medianOf(o.value.conn, (s) => s.failed),
            cpuConn: medianOf(o.value.conn, (s) => s.balancerCpu * 100),
            connPerCore: medianOf(o.value.conn, perCore),
            gen: medianOf(o.value.conn, (s) => s.generatorCpu * 100),
            genCore: medianOf(o.value.conn, (s) => s.generatorCore * 100),
          }
        : {},
      ...(o.ok && connBound(o.value.conn) ? { marks: { conn: 'generator-bound' } } : {}),
      ...(o.ok ? {} : { error: o.error }),
    });
  }
  type Samples = {
    one: { gbps: number }[];
    many: { gbps: number }[];
    conn: RateSample[];
  };
  const samples = (n: string): Samples | undefined => {
    const o = raw[n] as { ok: boolean; value?: Samples } | undefined;
    return o?.ok ? o.value : undefined;
  };
  const e = (n: string) => rows.find((r) => r.contender === n)?.error;
  const bound = (n: string) => {
    const c = samples(n)?.conn;
    return c !== undefined && connBound(c);
  };
  /**
   * A ratio of two contenders' medians with its spread over the repeats. Connection rates of
   * a contender that left the generator core saturated measure the generator: both are then
   * compared by connections per second of their own core (as offloadVsNginxHandshakes does).
   */
  const vsHaproxy = (n: string, what: 'many' | 'conn') => {
    const byCore = what === 'conn' && (bound(n) || bound('HAProxy mode tcp'));
    const pick = (x: string) =>
      what === 'many'
        ? samples(x)?.many.map((v) => v.gbps)
        : samples(x)?.conn.map((v) => (byCore ? perCore(v) : v.perSecond));
    const reasons = {
      numerator: e(n) ?? (byCore ? 'balancer core not measured' : 'n/a'),
      denominator: e('HAProxy mode tcp') ?? (byCore ? 'balancer core not measured' : 'n/a'),
    };
    const r = ratioOfRepeats(pick(n), pick('HAProxy mode tcp'), reasons);
    if (!byCore || r.value === null) return r;
    const raw = ratioOfRepeats(
      samples(n)?.conn.map((v) => v.perSecond),
      samples('HAProxy mode tcp')?.conn.map((v) => v.perSecond),
      reasons,
    ).value;
    return {
      ...r,
      caveat: `generator-bound connections/s: ratio of connections per balancer core-second, an estimate from the core's busy share; raw connections/s ratio ${raw === null ? '—' : raw.toFixed(2)}`,
    };
  };
  const boundNames = rows
    .map((r) => r.contender)
    .filter((n) => n !== 'direct (baseline)' && bound(n));
  const findings = boundNames.length
    ? [
        `New connections: the generator core was ≥ ${GENERATOR_BOUND * 100} % busy while ${boundNames.join(' and ')} left ${boundNames.length > 1 ? 'their' : 'its'} own core below that (marked "generator-bound"): those connections/s are what one client core and the servers on it can drive, a lower bound of the contender's capacity, so a ratio to HAProxy involving it compares connections per balancer core-second (everything the balancer core did per connection, its kernel work included; an estimate that assumes the core's cost per connection stays the same up to a full core).`,
      ]
    : [];
  const scaling = await measureWorkersScaling(ctx, cpus().length, opts.forceWorkersScaling);
  if (scaling.ratio.value !== null) findings.push(scaling.finding);
  return {
    sections: [
      {
        title: 'SSTP passthrough (TCP 443)',
        suite: 'tcp',
        columns: {
          one: 'Gbit/s, 1 stream',
          many: 'Gbit/s, 16 streams',
          cpuMany: 'balancer core % (16 streams)',
          conn: 'new connections/s',
          connFailed: 'failed',
          cpuConn: 'balancer core % (connections)',
          connPerCore: 'connections per balancer core-s',
          gen: 'generator CPU % (connections)',
          genCore: 'generator core % (connections)',
        },
        rows,
        baseline: { contender: 'direct (baseline)', figure: 'many' },
      },
      scaling.section,
    ],
    ratios: {
      sstpVsHaproxyThroughput: vsHaproxy('vpnlb passthrough', 'many'),
      sstpVsHaproxyConnRate: vsHaproxy('vpnlb passthrough', 'conn'),
      sstpKernelVsHaproxyThroughput: vsHaproxy('vpnlb kernel passthrough', 'many'),
      sstpKernelVsHaproxyConnRate: vsHaproxy('vpnlb kernel passthrough', 'conn'),
      sstpWorkersScaling: scaling.ratio,
    },
    findings,
    raw: { ...raw, workersScaling: scaling.raw },
  };
}
