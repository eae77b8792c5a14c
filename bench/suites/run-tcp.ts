/**
 * Suite `tcp`: SSTP passthrough on TCP 443 (see tcp-passthrough.ts): direct (baseline) · vpnlb
 * passthrough · HAProxy mode tcp · nginx stream. Each kind of traffic (1 stream, 16 streams,
 * new connections) is first run uncounted for the warm-up time on the freshly started contender,
 * then measured `repeats` times.
 */
import { startHaproxy } from '../contenders/haproxy.js';
import { startNginx } from '../contenders/nginx.js';
import { startVpnlb, vpnlbAvailable } from '../contenders/vpnlb.js';
import { warmupPlan, withContender, type BenchContext, type SuiteOutput } from '../lib/context.js';
import type { Daemon } from '../lib/proc.js';
import type { Row } from '../lib/report.js';
import { ratio } from '../lib/stats.js';
import { BALANCER_CPU, SERVER_ADDRS, VIP } from '../lib/topology.js';
import { measureConnRate, measureStream, medianOf } from './tcp-passthrough.js';

export async function runTcp(ctx: BenchContext): Promise<SuiteOutput> {
  const { t, tools, opts, log, work } = ctx;
  log('TCP passthrough');
  const cases: Array<[string, () => Promise<Daemon | undefined>, string]> = [
    ['direct (baseline)', async () => undefined, SERVER_ADDRS[0]],
    [
      'vpnlb passthrough',
      async () => {
        const c = { kind: 'sstp', mode: 'passthrough', vip: VIP, port: 443, backends: SERVER_ADDRS, backendPort: 443 } as const;
        const a = vpnlbAvailable(c);
        if (!a.ok) throw new Error(a.reason);
        return startVpnlb(t.lb, BALANCER_CPU, c, `${work}/sp`);
      },
      VIP,
    ],
    ['HAProxy mode tcp', () => startHaproxy(t.lb, BALANCER_CPU, { vip: VIP, port: 443, backends: SERVER_ADDRS, backendPort: 443 }, `${work}/hp`), VIP],
    ['nginx stream', () => startNginx(t.lb, BALANCER_CPU, { kind: 'tcp', vip: VIP, port: 443, backends: SERVER_ADDRS, backendPort: 443 }, `${work}/np`), VIP],
  ];
  const rows: Row[] = [];
  const raw: Record<string, unknown> = {};
  for (const [name, start, dst] of cases) {
    log(`  ${name}`);
    const o = await withContender(log, name, start, async () => {
      // Warm-up: each kind of traffic once, uncounted (2 s for the first, the settle time after).
      const warm = warmupPlan({ warmupSeconds: opts.warmupSeconds, settleSeconds: Math.max(1, opts.settleSeconds) });
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
            gen: medianOf(o.value.conn, (s) => s.generatorCpu * 100),
          }
        : {},
      ...(o.ok ? {} : { error: o.error }),
    });
  }
  const f = (n: string, k: string) => rows.find((r) => r.contender === n)?.figures[k] ?? null;
  const e = (n: string) => rows.find((r) => r.contender === n)?.error;
  return {
    sections: [
      {
        title: 'SSTP passthrough (TCP 443)',
        suite: 'tcp',
        columns: { one: 'Gbit/s, 1 stream', many: 'Gbit/s, 16 streams', cpuMany: 'balancer core % (16 streams)', conn: 'new connections/s', connFailed: 'failed', cpuConn: 'balancer core % (connections)', gen: 'generator CPU % (connections)' },
        rows,
        baseline: { contender: 'direct (baseline)', figure: 'many' },
      },
    ],
    ratios: {
      sstpVsHaproxyThroughput: ratio(f('vpnlb passthrough', 'many'), f('HAProxy mode tcp', 'many'), { numerator: e('vpnlb passthrough') ?? 'n/a', denominator: e('HAProxy mode tcp') ?? 'n/a' }),
      sstpVsHaproxyConnRate: ratio(f('vpnlb passthrough', 'conn'), f('HAProxy mode tcp', 'conn'), { numerator: e('vpnlb passthrough') ?? 'n/a', denominator: e('HAProxy mode tcp') ?? 'n/a' }),
    },
    findings: [],
    raw,
  };
}
