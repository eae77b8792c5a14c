/**
 * Merging a partial run (`--only …`) into the previous results (pure). A suite that did not run
 * keeps its sections, ratios, findings and raw samples from the previous file, each still
 * carrying the date of the run that measured it, so docs/benchmarks.md never shows a figure as
 * newer than it is, and never replaces a measured figure with a null because it was not re-run.
 * A full run replaces everything.
 */
import { SUITES, type SuiteId } from './options.js';
import {
  RATIO_SUITE,
  TARGETS,
  type BenchResults,
  type Finding,
  type RatioName,
  type ResultRatio,
  type RunInfo,
  type Section,
} from './report.js';

/** The suite of a section from a results file written before sections carried one. */
export function inferSuite(title: string): SuiteId | undefined {
  if (/^IKEv2 \/ ESP-in-UDP/i.test(title)) return 'udp';
  if (/^SSTP passthrough/i.test(title)) return 'tcp';
  if (/^TLS offload/i.test(title)) return 'tls';
  if (/^Failover/i.test(title)) return 'failover';
  if (/memory per tracked flow/i.test(title)) return 'memory';
  if (/^Control plane/i.test(title)) return 'control';
  return undefined;
}

/** Every section with its suite and date filled in (older files lack them). */
export function normalizeSections(r: BenchResults): Section[] {
  return r.sections.map((s) => ({
    ...s,
    suite: s.suite ?? inferSuite(s.title),
    date: s.date ?? r.date,
  }));
}

function runInfoOf(r: BenchResults): RunInfo {
  return (
    r.runs?.find((x) => x.date === r.date) ?? {
      date: r.date,
      durationSeconds: r.durationSeconds,
      suites: [
        ...new Set(
          normalizeSections(r)
            .map((s) => s.suite)
            .filter((s): s is SuiteId => s !== undefined),
        ),
      ],
      repeats: 3,
      quick: r.quick ?? false,
      machine: r.machine,
    }
  );
}

/**
 * `current` holds only the suites in `ran`; the result holds those, plus everything of
 * `previous` about the other suites. Raw samples are kept per suite (`raw[suite]`).
 */
export function mergeResults(
  previous: BenchResults | undefined,
  current: BenchResults,
  ran: readonly SuiteId[],
): BenchResults {
  const ranSet = new Set(ran);
  const cur = normalizeSections(current).map((s) => ({ ...s, date: current.date }));
  if (!previous) return { ...current, sections: cur, runs: [runInfoOf(current)] };
  const prev = normalizeSections(previous);
  const sections: Section[] = [];
  for (const suite of SUITES) {
    const from = ranSet.has(suite) ? cur : prev;
    sections.push(...from.filter((s) => s.suite === suite));
  }
  // Sections of neither a known suite nor this run (hand-made, older layouts) are kept last.
  sections.push(...prev.filter((s) => s.suite === undefined));

  const ratios = {} as Record<RatioName, ResultRatio>;
  for (const k of Object.keys(TARGETS) as RatioName[]) {
    const c = current.ratios[k];
    const p = previous.ratios[k];
    if (ranSet.has(RATIO_SUITE[k]) && c) ratios[k] = { ...c, date: current.date };
    else if (p) ratios[k] = { ...p, date: p.date ?? previous.date };
    else ratios[k] = { value: null, reason: 'not measured yet' };
  }

  const tag = (f: Finding, date: string): Finding =>
    typeof f === 'string' ? { text: f, date } : f;
  const findings: Finding[] = [
    ...current.findings.map((f) => tag(f, current.date)),
    // Previous findings about a suite that was re-run are stale; untagged ones (older files,
    // whole-run remarks) are kept with their date until a full run replaces them.
    ...previous.findings
      .map((f) => tag(f, previous.date))
      .filter((f) => typeof f !== 'string' && (f.suite === undefined || !ranSet.has(f.suite))),
  ];

  const prevRaw = (previous.raw && typeof previous.raw === 'object' ? previous.raw : {}) as Record<
    string,
    unknown
  >;
  const curRaw = (current.raw && typeof current.raw === 'object' ? current.raw : {}) as Record<
    string,
    unknown
  >;
  const raw: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(prevRaw)) if (!ranSet.has(k as SuiteId)) raw[k] = v;
  Object.assign(raw, curRaw);

  const used = new Set(
    [...sections.map((s) => s.date), ...Object.values(ratios).map((x) => x.date)].filter(
      (d): d is string => d !== undefined,
    ),
  );
  const previousRuns = previous.runs ?? [runInfoOf(previous)];
  const runs = [
    runInfoOf(current),
    ...previousRuns.filter((x) => x.date !== current.date && used.has(x.date)),
  ];
  return { ...current, sections, ratios, findings, raw, runs };
}
