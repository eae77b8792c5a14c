/**
 * What every suite runner gets from bench/run.ts (the topology, the tools, the options) and
 * what it gives back (sections, ratios, findings, raw samples), plus the contender lifecycle
 * shared by the suites: start, measure, always stop.
 */
import type { ToolResult } from '../../src/platform/command-runner.js';
import type { BenchOptions } from './options.js';
import type { CTools, Daemon } from './proc.js';
import type { RatioName, ResultRatio, Section } from './report.js';
import type { BenchTopology } from './topology.js';
import type { NftUdpSink } from '../suites/udp-sink.js';

export interface CertFiles {
  readonly cert: string;
  readonly key: string;
  /** Certificate and key in one file (HAProxy's `crt`). */
  readonly pem: string;
}

export interface BenchContext {
  readonly t: BenchTopology;
  readonly tools: CTools;
  readonly sink: NftUdpSink;
  /** Scratch directory of this run (removed at the end). */
  readonly work: string;
  readonly certs: { readonly ec: CertFiles; readonly rsa: CertFiles };
  readonly opts: BenchOptions;
  readonly log: (msg: string) => void;
}

export interface SuiteOutput {
  readonly sections: Section[];
  readonly ratios: Partial<Record<RatioName, ResultRatio>>;
  readonly findings: string[];
  readonly raw: unknown;
}

export type Outcome<T> = ToolResult<T>;

/** Runs `body` with a contender started by `start` (undefined = none: a baseline), always stopping it. */
export async function withContender<T>(
  log: (m: string) => void,
  name: string,
  start: () => Promise<Daemon | undefined>,
  body: (d: Daemon | undefined) => Promise<T>,
): Promise<Outcome<T>> {
  let d: Daemon | undefined;
  try {
    d = await start();
    const value = await body(d);
    if (d && !d.alive)
      throw new Error(`${name} died during the measurement: ${(d.stderr || d.stdout).slice(-400)}`);
    return { ok: true, value };
  } catch (err) {
    const msg = (err as Error).message.replace(/\s+/g, ' ').slice(0, 400);
    log(`  ${name}: FAILED: ${msg}`);
    return { ok: false, error: msg };
  } finally {
    await d?.stop().catch(() => undefined);
  }
}

/**
 * Warm-up durations for one contender's measurements: the first window after it started gets
 * `opts.warmupSeconds` of the same traffic uncounted, later ones `opts.settleSeconds` (the
 * process is warm; a rate change only needs queues to settle). Every contender, baselines
 * included, goes through the same plan.
 */
export function warmupPlan(
  opts: Pick<BenchOptions, 'warmupSeconds' | 'settleSeconds'>,
): () => number {
  let first = true;
  return () => {
    const w = first ? opts.warmupSeconds : opts.settleSeconds;
    first = false;
    return w;
  };
}

export const errorOf = (o: Outcome<unknown> | undefined): string | undefined =>
  o && !o.ok ? o.error : undefined;
