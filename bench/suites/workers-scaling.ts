/**
 * Part of suite `tcp`: how the userspace SSTP passthrough scales with `workers` — new
 * connections/s with N worker processes ÷ with one process, each pinned to its cores, driven by
 * one generator process per generator core (measureConnRate).
 *
 * Measurable only with at least 4 cores: the N workers need N cores of their own, and the
 * generators about as many (one generator core is already the limit at one worker's rate, see
 * "generator-bound" in the TCP section). Below that the figure is reported as not measurable,
 * with the reason. `--force-workers-scaling` runs it anyway on a smaller machine (every worker
 * then shares the balancer core): that checks the measurement, it is not a scaling figure.
 */
import { startVpnlb, vpnlbAvailable } from '../contenders/vpnlb.js';
import { withContender, type BenchContext } from '../lib/context.js';
import type { Row, Section } from '../lib/report.js';
import { ratioOfRepeats, type Ratio, type Spread } from '../lib/stats.js';
import { BALANCER_CPU, GENERATOR_CPU, VIP } from '../lib/topology.js';
import {
  PASSTHROUGH_CASE,
  measureConnRate,
  medianOf,
  type ConnRatePlacement,
  type RateSample,
} from './tcp-passthrough.js';

/** Fewest cores on which the figure means something. */
export const MIN_SCALING_CORES = 4;

export type ScalingPlan =
  | {
      readonly workers: number;
      /** One worker: the main process on BALANCER_CPU. N workers: every process on `balancer`. */
      readonly balancer: readonly number[];
      readonly placement: ConnRatePlacement;
      /** Set when run below MIN_SCALING_CORES on request: what the figure then is. */
      readonly forced?: string;
    }
  | { readonly reason: string };

/**
 * How the cores are split (pure): half for the balancer's workers (BALANCER_CPU first), the
 * rest for the generators and the servers (GENERATOR_CPU first), so the bench's usual two
 * cores keep their roles.
 */
export function workersScalingPlan(cores: number, force = false): ScalingPlan {
  const others = Array.from({ length: cores }, (_, i) => i).filter(
    (c) => c !== BALANCER_CPU && c !== GENERATOR_CPU,
  );
  if (cores < MIN_SCALING_CORES && !force)
    return {
      reason: `not measurable here: ${cores} cores; N workers need N cores and the generators about as many (one generator core is the limit at one worker's rate), so at least ${MIN_SCALING_CORES}`,
    };
  if (cores < 2) return { reason: 'not measurable: one core' };
  const workers = Math.max(2, Math.floor(cores / 2));
  const balancer = [BALANCER_CPU, ...others.slice(0, Math.max(0, workers - 1))];
  const generators = [GENERATOR_CPU, ...others.slice(Math.max(0, workers - 1))];
  return {
    workers,
    balancer,
    placement: { balancer, generators, servers: generators.join(',') },
    ...(cores < MIN_SCALING_CORES
      ? {
          forced: `forced on ${cores} cores: the ${workers} workers share ${balancer.length} core(s), so this checks the measurement and is not a scaling figure`,
        }
      : {}),
  };
}

export interface ScalingOutput {
  readonly section: Section;
  readonly ratio: Ratio & { spread?: Spread };
  readonly finding: string;
  readonly raw: unknown;
}

/** Measures (or explains why not) `sstpWorkersScaling`. */
export async function measureWorkersScaling(
  ctx: BenchContext,
  cores: number,
  force: boolean,
): Promise<ScalingOutput> {
  const { t, tools, opts, log, work } = ctx;
  const plan = workersScalingPlan(cores, force);
  const title = 'Workers scaling: SSTP passthrough (userspace), new connections/s';
  const columns = {
    conn: 'new connections/s',
    connFailed: 'failed',
    cpu: 'balancer cores busy (sum, %)',
  };
  if ('reason' in plan) {
    return {
      section: { title, suite: 'tcp', columns, rows: [], notes: [plan.reason] },
      ratio: { value: null, reason: plan.reason },
      finding: `Workers scaling (SSTP passthrough, N workers ÷ 1): ${plan.reason}.`,
      raw: { reason: plan.reason },
    };
  }
  log(`  workers scaling: 1 and ${plan.workers} workers`);
  const base = PASSTHROUGH_CASE;
  const a = vpnlbAvailable(base);
  const runs: Array<[string, number, string]> = [
    ['vpnlb passthrough, 1 process', 1, String(BALANCER_CPU)],
    [`vpnlb passthrough, ${plan.workers} workers`, plan.workers, plan.balancer.join(',')],
  ];
  const rows: Row[] = [];
  const samples: RateSample[][] = [];
  for (const [name, workers, cpus] of runs) {
    const o = await withContender(
      log,
      name,
      async () => {
        if (!a.ok) throw new Error(a.reason);
        return startVpnlb(t.lb, cpus, { ...base, workers }, `${work}/ws${workers}`);
      },
      async () => {
        const once = (s: number) => measureConnRate(t, tools, VIP, 443, 443, 64, s, plan.placement);
        await once(Math.max(1, opts.warmupSeconds));
        const out: RateSample[] = [];
        for (let i = 0; i < opts.repeats; i++) out.push(await once(opts.shortSeconds));
        return out;
      },
    );
    samples.push(o.ok ? o.value : []);
    rows.push({
      contender: name,
      figures: o.ok
        ? {
            conn: medianOf(o.value, (s) => s.perSecond),
            connFailed: medianOf(o.value, (s) => s.failed),
            cpu: medianOf(o.value, (s) => s.balancerCpu * 100),
          }
        : {},
      ...(o.ok ? {} : { error: o.error }),
    });
  }
  const pick = (i: number) =>
    samples[i]!.length > 0 ? samples[i]!.map((s) => s.perSecond) : undefined;
  const ratio = ratioOfRepeats(pick(1), pick(0), {
    numerator: rows[1]?.error ?? 'not measured',
    denominator: rows[0]?.error ?? 'not measured',
  });
  const where = `balancer cores ${plan.balancer.join(',')}, generators and servers on ${plan.placement.generators.join(',')}`;
  const value =
    ratio.value === null
      ? `— (${ratio.reason})`
      : `${ratio.value.toFixed(2)}${ratio.spread ? ` (repeats ${ratio.spread.min.toFixed(2)}–${ratio.spread.max.toFixed(2)})` : ''}`;
  return {
    section: {
      title,
      suite: 'tcp',
      columns,
      rows,
      notes: [where, ...(plan.forced ? [plan.forced] : [])],
    },
    ratio,
    finding: `Workers scaling (SSTP passthrough, ${plan.workers} workers ÷ 1 process): ${value}${plan.forced ? `; ${plan.forced}` : ''}.`,
    raw: { plan, samples },
  };
}
