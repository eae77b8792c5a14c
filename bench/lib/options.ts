/**
 * The bench's suites and its command line (pure). `npm run bench` with no flags runs every
 * suite; `--only a,b` runs some of them (their figures are merged into the previous
 * latest.json, see merge.ts); `--quick` is for development: one repeat, short windows, and its
 * results go to bench/results/quick-latest.json instead of latest.json and docs/benchmarks.md.
 */

/** Suites in the order they run (and appear in docs/benchmarks.md). */
export const SUITES = ['udp', 'tcp', 'tls', 'control', 'failover', 'memory'] as const;
export type SuiteId = (typeof SUITES)[number];

/**
 * `--only` names: each suite by its id, and `control` for the whole control-plane group
 * (map/Maglev figures, failover time, memory per flow). `nft` runs the map/Maglev part alone.
 */
const ALIASES: Readonly<Record<string, readonly SuiteId[]>> = {
  udp: ['udp'],
  tcp: ['tcp'],
  tls: ['tls'],
  control: ['control', 'failover', 'memory'],
  nft: ['control'],
  failover: ['failover'],
  memory: ['memory'],
};

export interface BenchOptions {
  /** Suites to run, in run order. */
  readonly suites: readonly SuiteId[];
  /** True when every suite runs (a full run replaces latest.json instead of merging). */
  readonly full: boolean;
  readonly quick: boolean;
  readonly repeats: number;
  /** Measured window of one sample (UDP forwarding, control plane), seconds. */
  readonly seconds: number;
  /** Measured window of TCP/TLS samples (bulk and handshake rates settle faster), seconds. */
  readonly shortSeconds: number;
  /** Window of one point of a UDP rate sweep, seconds. */
  readonly sweepSeconds: number;
  /** Uncounted traffic before the first window after a contender starts, seconds. */
  readonly warmupSeconds: number;
  /** Uncounted traffic before later windows (rate changes settle), seconds. */
  readonly settleSeconds: number;
  /** Where results go: bench/results by default. */
  readonly outDir?: string;
  /** Where the markdown goes: docs/benchmarks.md by default. */
  readonly docsPath?: string;
  /** Measure workers scaling below its 4 cores (checks the measurement; not a scaling figure). */
  readonly forceWorkersScaling: boolean;
}

export type ParsedOptions = { ok: true; options: BenchOptions } | { ok: false; error: string };

export const USAGE = `usage: node dist/bench/run.js [--only ${Object.keys(ALIASES).join(',')}] [--quick] [--repeats N] [--out DIR] [--docs FILE] [--force-workers-scaling]
  (no flags)  every suite, 3 repeats: writes bench/results/<date>.json, latest.json, docs/benchmarks.md
  --only L    comma list; the other suites' figures are kept from the previous latest.json (marked with their run's date)
  --quick     development: 1 repeat, short windows; writes bench/results/quick-latest.json only
  --repeats N repeats per figure (default 3; env BENCH_REPEATS)
  --out DIR   results directory instead of bench/results (latest.json there is the one merged)
  --docs FILE markdown output instead of docs/benchmarks.md
  --force-workers-scaling  measure workers scaling on fewer than 4 cores too (the workers then
              share the balancer core: checks the measurement, not a scaling figure)`;

/** Parses argv (without node and the script) and the environment. */
export function parseOptions(
  argv: readonly string[],
  env: Readonly<Record<string, string | undefined>> = {},
): ParsedOptions {
  let only: SuiteId[] | undefined;
  let quick = env.BENCH_QUICK === '1';
  let repeats: number | undefined = env.BENCH_REPEATS ? Number(env.BENCH_REPEATS) : undefined;
  let outDir: string | undefined;
  let docsPath: string | undefined;
  let forceWorkersScaling = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const value = (): string | undefined => {
      const eq = a.indexOf('=');
      if (eq >= 0) return a.slice(eq + 1);
      i++;
      return argv[i];
    };
    const name = a.split('=')[0];
    if (name === '--quick') quick = true;
    else if (name === '--only') {
      const list = value();
      if (!list) return { ok: false, error: '--only needs a comma list' };
      const picked = new Set<SuiteId>();
      for (const n of list
        .split(',')
        .map((x) => x.trim())
        .filter(Boolean)) {
        const ids = ALIASES[n];
        if (!ids)
          return {
            ok: false,
            error: `unknown suite "${n}" (known: ${Object.keys(ALIASES).join(', ')})`,
          };
        for (const id of ids) picked.add(id);
      }
      if (picked.size === 0) return { ok: false, error: '--only needs at least one suite' };
      only = SUITES.filter((s) => picked.has(s));
    } else if (name === '--repeats') repeats = Number(value());
    else if (name === '--out') outDir = value();
    else if (name === '--docs') docsPath = value();
    else if (a === '--force-workers-scaling') forceWorkersScaling = true;
    else if (a === '--help' || a === '-h') return { ok: false, error: USAGE };
    else return { ok: false, error: `unknown argument "${a}"\n${USAGE}` };
  }
  const r = repeats ?? (quick ? 1 : 3);
  if (!Number.isInteger(r) || r < 1 || r > 20)
    return { ok: false, error: `--repeats must be an integer 1..20 (got ${String(repeats)})` };
  const suites = only ?? [...SUITES];
  return {
    ok: true,
    options: {
      suites,
      full: suites.length === SUITES.length,
      quick,
      repeats: r,
      seconds: quick ? 1.5 : 3,
      shortSeconds: quick ? 1.5 : 2,
      sweepSeconds: 1,
      warmupSeconds: quick ? 1 : 2,
      settleSeconds: 0.5,
      forceWorkersScaling,
      ...(outDir ? { outDir } : {}),
      ...(docsPath ? { docsPath } : {}),
    },
  };
}
