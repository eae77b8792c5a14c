/**
 * The benchmark results document (bench/results/*.json) and its rendering as
 * docs/benchmarks.md. Pure: the run fills a `BenchResults`, `renderMarkdown` turns it into text.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fmt, meets, type Ratio, type Spread } from './stats.js';
import type { SuiteId } from './options.js';

/**
 * The ratios the issues define, with their targets (issues 7 and 17); null: reported without a
 * target (workers scaling: what N workers add depends on the machine's cores).
 */
export const TARGETS: Readonly<
  Record<
    | 'kernelVsRouting'
    | 'relayVsNginx'
    | 'relayFloodRetention'
    | 'sstpVsHaproxyThroughput'
    | 'sstpVsHaproxyConnRate'
    | 'sstpKernelVsHaproxyThroughput'
    | 'sstpKernelVsHaproxyConnRate'
    | 'offloadVsNginxHandshakes'
    | 'sstpWorkersScaling',
    number | null
  >
> = {
  kernelVsRouting: 0.95,
  relayVsNginx: 1.0,
  relayFloodRetention: 0.8,
  sstpVsHaproxyThroughput: 1.1,
  sstpVsHaproxyConnRate: 0.8,
  sstpKernelVsHaproxyThroughput: 1.2,
  sstpKernelVsHaproxyConnRate: 1.2,
  offloadVsNginxHandshakes: 0.8,
  sstpWorkersScaling: null,
};
export type RatioName = keyof typeof TARGETS;

/** The suite whose figures each ratio is computed from (a partial run recomputes only its own). */
export const RATIO_SUITE: Readonly<Record<RatioName, SuiteId>> = {
  kernelVsRouting: 'udp',
  relayVsNginx: 'udp',
  relayFloodRetention: 'udp',
  sstpVsHaproxyThroughput: 'tcp',
  sstpVsHaproxyConnRate: 'tcp',
  sstpKernelVsHaproxyThroughput: 'tcp',
  sstpKernelVsHaproxyConnRate: 'tcp',
  offloadVsNginxHandshakes: 'tls',
  sstpWorkersScaling: 'tcp',
};

/**
 * A ratio as stored in the results: the date of the run it comes from and, when the figure is
 * not what it seems (e.g. the generator, not the contender, was the limit), a caveat.
 */
export type ResultRatio = Ratio & {
  readonly date?: string;
  readonly caveat?: string;
  /** Lowest and highest per-repeat ratio (stats.ts `ratioOfRepeats`). */
  readonly spread?: Spread;
  /**
   * Set when the machine was busy at the start of the run that measured it (the 1-minute load
   * average then, above BUSY_LOAD): the figure is kept but not compared with its target.
   */
  readonly busyLoad?: number;
};

/** 1-minute load average at the start of a run above which the run is marked busy. */
export const BUSY_LOAD = 1;

/** Whether a run that started at this load average is marked busy (pure). */
export function isBusy(loadAverage1m: number): boolean {
  return Number.isFinite(loadAverage1m) && loadAverage1m > BUSY_LOAD;
}

/** A finding, tagged with the run (and suite) it is about; plain strings are from older files. */
export type Finding =
  | string
  | { readonly text: string; readonly date: string; readonly suite?: SuiteId };

/** One run that contributed figures to a (merged) results file. */
export interface RunInfo {
  readonly date: string;
  readonly durationSeconds: number;
  readonly suites: readonly SuiteId[];
  readonly repeats: number;
  readonly quick: boolean;
  readonly machine: Readonly<Record<string, string | number>>;
}

/** One row of a results table: a contender and its figures (null = did not run, see `error`). */
export interface Row {
  readonly contender: string;
  readonly figures: Record<string, number | null>;
  readonly error?: string;
  /** Column key → a short qualifier printed after the figure (e.g. "generator-bound"). */
  readonly marks?: Readonly<Record<string, string>>;
}

export interface Section {
  readonly title: string;
  /** Column key → header (with unit). */
  readonly columns: Readonly<Record<string, string>>;
  readonly rows: readonly Row[];
  /** Which row is the baseline of the "× baseline" column, and on which figure. */
  readonly baseline?: { contender: string; figure: string };
  readonly notes?: readonly string[];
  /** The suite that produced it and the date of that run (absent in files before partial runs). */
  readonly suite?: SuiteId;
  readonly date?: string;
}

export interface BenchResults {
  readonly date: string;
  readonly durationSeconds: number;
  readonly machine: Readonly<Record<string, string | number>>;
  readonly method: readonly string[];
  readonly sections: readonly Section[];
  readonly ratios: Readonly<Record<RatioName, ResultRatio>>;
  readonly findings: readonly Finding[];
  /** Raw samples and anything else worth keeping, by suite. */
  readonly raw: unknown;
  /** The runs whose figures the file holds, newest first (one entry after a full run). */
  readonly runs?: readonly RunInfo[];
  /** Development run (--quick): not comparable with full runs. */
  readonly quick?: boolean;
}

function ratioCell(r: ResultRatio, target: number | null): string {
  if (r.value === null) return `— (${r.reason})`;
  const m = target === null ? null : meets(r, target);
  const spread = r.spread ? ` (repeats ${r.spread.min.toFixed(2)}–${r.spread.max.toFixed(2)})` : '';
  const verdict =
    r.busyLoad !== undefined
      ? `busy machine (load ${r.busyLoad} at start): not compared`
      : target === null
        ? '(reported, no target)'
        : m
          ? '**met**'
          : '**missed**';
  return `${r.value.toFixed(2)}${spread} ${verdict}${r.caveat ? ` (${r.caveat})` : ''}`;
}

/** `2026-11-27T15:33:20.898Z` → `2026-11-27 15:33 UTC`. */
export function shortDate(iso: string): string {
  const m = /^(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2})/.exec(iso);
  return m ? `${m[1]} ${m[2]} UTC` : iso;
}

/** Renders one section as a markdown table with a "× baseline" column when it has a baseline. */
export function renderSection(s: Section, showDate = false): string {
  const keys = Object.keys(s.columns);
  const head = ['contender', ...keys.map((k) => s.columns[k]!)];
  if (s.baseline)
    head.push(`× ${s.baseline.contender} (${s.columns[s.baseline.figure] ?? s.baseline.figure})`);
  const base = s.baseline
    ? s.rows.find((r) => r.contender === s.baseline!.contender)?.figures[s.baseline.figure]
    : undefined;
  const title = showDate && s.date ? `${s.title} — run of ${shortDate(s.date)}` : s.title;
  const lines = [
    `### ${title}`,
    '',
    `| ${head.join(' | ')} |`,
    `|${head.map(() => '---').join('|')}|`,
  ];
  for (const r of s.rows) {
    const cell = (k: string) => {
      if (r.error) return '—';
      const v = fmt(r.figures[k]);
      const mark = r.marks?.[k];
      return mark && v !== '—' ? `${v} (${mark})` : v;
    };
    const cells = [r.contender, ...keys.map(cell)];
    if (s.baseline) {
      const v = r.figures[s.baseline.figure];
      cells.push(!r.error && v !== null && v !== undefined && base ? (v / base).toFixed(2) : '—');
    }
    lines.push(`| ${cells.join(' | ')} |`);
  }
  const errs = s.rows.filter((r) => r.error);
  if (errs.length) lines.push('', ...errs.map((r) => `- ${r.contender} did not run: ${r.error}`));
  if (s.notes?.length) lines.push('', ...s.notes.map((n) => `- ${n}`));
  return lines.join('\n');
}

/** The whole docs/benchmarks.md. */
/**
 * The benchmarks page. `analysis` (bench/analysis.md, written by hand: profiles and what would
 * close a missed target) is appended after the findings, since the figures alone do not say why.
 */
export function renderMarkdown(r: BenchResults, analysis?: string): string {
  const dates = new Set([
    ...r.sections.map((s) => s.date ?? r.date),
    ...Object.values(r.ratios).map((x) => x.date ?? r.date),
  ]);
  const mixed = dates.size > 1;
  const machine = Object.entries(r.machine).map(([k, v]) => `- ${k}: ${v}`);
  const ratios = (Object.keys(TARGETS) as RatioName[]).map((k) => {
    const v: ResultRatio = r.ratios[k] ?? { value: null, reason: 'not measured yet' };
    const target = TARGETS[k];
    return `| ${k} | ${target === null ? '—' : `≥ ${target}`} | ${ratioCell(v, target)} |${mixed ? ` ${shortDate(v.date ?? r.date)} |` : ''}`;
  });
  const runs = r.runs ?? [];
  const runLines =
    runs.length > 1 || mixed
      ? [
          '',
          'The figures below come from more than one run (`npm run bench -- --only …` re-measures some suites and keeps the others): each section and ratio names its run.',
          '',
          '| run | suites | repeats | duration | load average at start | CPU speed at start → end (SHA-256 MiB/s per core) |',
          '|---|---|---|---|---|---|',
          ...runs.map(
            (x) =>
              `| ${shortDate(x.date)}${x.quick ? ' (quick)' : ''} | ${x.suites.join(', ')} | ${x.repeats} | ${Math.round(x.durationSeconds)} s | ${x.machine['load average at start (1/5/15 min)'] ?? '?'} | ${x.machine['CPU speed at start (SHA-256 MiB/s per core)'] ?? '?'} → ${x.machine['CPU speed at end'] ?? '?'} |`,
          ),
        ]
      : [];
  const finding = (f: Finding) =>
    typeof f === 'string'
      ? f
      : mixed || f.date !== r.date
        ? `(${f.suite ?? 'run'}, ${shortDate(f.date)}) ${f.text}`
        : f.text;
  return [
    '# Benchmarks',
    '',
    `Generated by \`npm run bench\` (bench/run.ts); latest run ${r.date} (${Math.round(r.durationSeconds)} s${r.quick ? ', --quick: development figures' : ''}). ` +
      'Every figure is the median of repeated measurements in the same run; ratios compare contenders of the same run. ' +
      'Raw samples: `bench/results/latest.json`.',
    ...runLines,
    '',
    '## Targets',
    '',
    mixed ? '| ratio | target | value | run |' : '| ratio | target | this run |',
    mixed ? '|---|---|---|---|' : '|---|---|---|',
    ...ratios,
    '',
    '## Machine',
    '',
    ...(mixed ? ['Latest run:', ''] : []),
    ...machine,
    '',
    '## Results',
    '',
    ...r.sections.flatMap((s) => [renderSection(s, mixed), '']),
    '## Findings',
    '',
    ...(r.findings.length ? r.findings.map((f) => `- ${finding(f)}`) : ['- (none)']),
    '',
    ...(analysis ? [analysis.trim(), ''] : []),
    '## Method',
    '',
    ...r.method.map((m) => `- ${m}`),
    '',
  ].join('\n');
}

/** bench/analysis.md, when present (see renderMarkdown). */
export function readAnalysis(repo: string): string | undefined {
  const path = join(repo, 'bench/analysis.md');
  return existsSync(path) ? readFileSync(path, 'utf8') : undefined;
}
