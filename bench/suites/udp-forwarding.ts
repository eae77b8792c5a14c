/**
 * Suite 1: IKEv2 / ESP-in-UDP forwarding (DESIGN §4), ≈100 B and ≈1400 B datagrams.
 *
 * Contenders: plain kernel routing (baseline: the generator sends to a server directly through
 * lb) · vpnlb kernel data plane (transparent DNAT, ike-spi, Maglev 65537) · vpnlb userspace
 * relay · nginx stream UDP (`hash $remote_addr consistent`).
 *
 * Kernel-class contenders are measured at the generator's flood (the same offered load for
 * both; on 2 vCPUs the generator's core saturates before the balancer's, so the balancer CPU per
 * Mpps is the discriminating figure). Userspace contenders are swept over offered rates to find
 * their peak (the best delivered rate), measured again at the peak's offered load (median of
 * N), then at twice that offered load (flood retention = delivered at 2× / peak).
 */
import { readCoreTimes, coreBusy, processCpuSeconds } from '../lib/cpu.js';
import { startTool, type CTools } from '../lib/proc.js';
import { sleep } from '../../src/util/wait.js';
import { median } from '../lib/stats.js';
import { BALANCER_CPU, FLOW_SRC_BASE, GENERATOR_CPU, type BenchTopology } from '../lib/topology.js';
import type { NftUdpSink } from './udp-sink.js';

export interface UdpSample {
  readonly offeredPps: number;
  readonly sentPps: number;
  readonly deliveredPps: number;
  readonly loss: number;
  /** Busy fraction of the balancer core (process + softirq). */
  readonly balancerCpu: number;
  /** Busy fraction of the generator core (generator + sink-side delivery). */
  readonly generatorCoreCpu: number;
  /** The generator process's own CPU, in cores. */
  readonly generatorCpu: number;
}

export interface UdpFigure {
  readonly deliveredPps: number;
  readonly offeredPps: number;
  /** What the generator actually sent per second (≤ offered when it could not keep up). */
  readonly sentPps: number;
  readonly loss: number;
  readonly balancerCpu: number;
  readonly generatorCpu: number;
  readonly generatorCoreCpu: number;
  /** Balancer core-seconds per million packets forwarded. */
  readonly balancerCpuPerMpps: number | null;
  readonly samples: readonly UdpSample[];
}

export interface UdpRunOptions {
  readonly dst: string;
  readonly size: number;
  readonly rate: number; // 0 = flood
  readonly seconds: number;
  readonly flows: number;
  /** Uncounted ESP traffic (same rate, same packets) before the window, seconds. */
  readonly warmupSeconds: number;
}

interface GenReport {
  warmupSent: number;
  espWarmupSent: number;
  sent: number;
  errors: number;
  seconds: number;
  cpuUser: number;
  cpuSys: number;
}

/**
 * One measurement: the generator sends IKE per flow, then `warmupSeconds` of the same ESP
 * traffic uncounted, then signals the measured phase; counters, core times and the generator's
 * own CPU are sampled inside that phase only.
 */
export async function measureUdp(
  t: BenchTopology,
  tools: CTools,
  sink: NftUdpSink,
  o: UdpRunOptions,
): Promise<UdpSample> {
  const args = [
    '-d',
    o.dst,
    '-s',
    FLOW_SRC_BASE,
    '-l',
    String(o.size),
    '-r',
    String(o.rate),
    '-t',
    String(o.seconds),
    '-f',
    String(o.flows),
    '-P',
    '50000',
    '-u',
    String(o.warmupSeconds),
  ];
  const gen = startTool<GenReport>(
    t.snd,
    GENERATOR_CPU,
    tools.udpgen,
    args,
    (o.seconds + o.warmupSeconds + 30) * 1000,
  );
  await gen.waitForLine((l) => l.includes('"phase":"measure"'), (o.warmupSeconds + 20) * 1000);
  const c0 = readCoreTimes();
  const p0 = processCpuSeconds(gen.pid);
  const s0 = await sink.read();
  const t0 = process.hrtime.bigint();
  // The window closes before the generator stops (sink reads take a few ms).
  await sleep(Math.max(300, o.seconds * 1000 - 150));
  const c1 = readCoreTimes();
  const p1 = processCpuSeconds(gen.pid);
  const s1 = await sink.read();
  const dt = Number(process.hrtime.bigint() - t0) / 1e9;
  const r = await gen.done;
  await sleep(200);
  const busy = coreBusy(c0, c1);
  const sentPps = r.sent / r.seconds;
  const deliveredPps = (s1.esp - s0.esp) / dt;
  return {
    offeredPps: o.rate > 0 ? o.rate : sentPps,
    sentPps,
    deliveredPps,
    loss: sentPps > 0 ? Math.max(0, 1 - deliveredPps / sentPps) : 0,
    balancerCpu: busy[BALANCER_CPU] ?? NaN,
    generatorCoreCpu: busy[GENERATOR_CPU] ?? NaN,
    generatorCpu: p0 !== undefined && p1 !== undefined ? (p1 - p0) / dt : NaN,
  };
}

/** Median figure over samples (each field's median). */
export function summarise(samples: readonly UdpSample[]): UdpFigure {
  const m = (f: (s: UdpSample) => number) => median(samples.map(f));
  const delivered = m((s) => s.deliveredPps);
  const cpu = m((s) => s.balancerCpu);
  return {
    deliveredPps: delivered,
    offeredPps: m((s) => s.offeredPps),
    sentPps: m((s) => s.sentPps),
    loss: m((s) => s.loss),
    balancerCpu: cpu,
    generatorCpu: m((s) => s.generatorCpu),
    generatorCoreCpu: m((s) => s.generatorCoreCpu),
    balancerCpuPerMpps:
      delivered > 0
        ? m((s) => (s.deliveredPps > 0 ? s.balancerCpu / (s.deliveredPps / 1e6) : NaN))
        : null,
    samples,
  };
}

export async function repeat(n: number, fn: () => Promise<UdpSample>): Promise<UdpFigure> {
  const samples: UdpSample[] = [];
  for (let i = 0; i < n; i++) samples.push(await fn());
  return summarise(samples);
}

export interface PeakResult {
  readonly sweep: readonly UdpSample[];
  /**
   * Whether the sweep found the contender's limit (it ended on two rates it could not
   * deliver). False when the rates ran out or the generator could not send the next one: the
   * peak is then a lower bound, and the load at "twice the peak" is not a flood for it.
   */
  readonly saturated: boolean;
  readonly peak: UdpFigure;
  readonly flood2x: UdpFigure;
  /** Unpaced flood, one sample (for the record: what a DoS does to it). */
  readonly floodMax: UdpSample;
}

/**
 * Finds a userspace contender's peak: offered rates rise until delivery falls under 90 % of
 * the offered load twice in a row (or the rate passes what the generator can send).
 */
export async function findPeak(
  run: (rate: number, seconds: number) => Promise<UdpSample>,
  opts: { rates: readonly number[]; sweepSeconds: number; seconds: number; repeats: number },
  log: (msg: string) => void,
): Promise<PeakResult> {
  const sweep: UdpSample[] = [];
  let misses = 0;
  let saturated = false;
  for (const rate of opts.rates) {
    const s = await run(rate, opts.sweepSeconds);
    sweep.push(s);
    log(
      `    sweep ${Math.round(rate / 1000)} kpps offered → ${Math.round(s.deliveredPps / 1000)} kpps delivered (cpu ${(s.balancerCpu * 100).toFixed(0)} %)`,
    );
    if (s.sentPps < 0.9 * rate) break;
    if (s.deliveredPps < 0.9 * rate) misses++;
    else misses = 0;
    if (misses >= 2) {
      saturated = true;
      break;
    }
  }
  const best = sweep.reduce((a, b) => (b.deliveredPps > a.deliveredPps ? b : a));
  const peakRate = best.offeredPps;
  const peak = await repeat(opts.repeats, () => run(peakRate, opts.seconds));
  const flood2x = await repeat(opts.repeats, () => run(peakRate * 2, opts.seconds));
  const floodMax = await run(0, opts.seconds);
  return { sweep, saturated, peak, flood2x, floodMax };
}
