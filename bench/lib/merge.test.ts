import { test } from 'node:test';
import assert from 'node:assert/strict';
import { inferSuite, mergeResults } from './merge.js';
import { parseOptions, SUITES } from './options.js';
import {
  renderMarkdown,
  TARGETS,
  type BenchResults,
  type RatioName,
  type ResultRatio,
} from './report.js';

const allNull = () =>
  Object.fromEntries(
    Object.keys(TARGETS).map((k) => [k, { value: null, reason: 'n/a' }]),
  ) as Record<RatioName, ResultRatio>;

/** A results file as written before sections carried their suite and date (the 2026-11-27 layout). */
const legacy: BenchResults = {
  date: '2026-11-27T15:33:20.898Z',
  durationSeconds: 434,
  machine: { cores: 2, 'load average at start (1/5/15 min)': '7.71 4.21 1.90' },
  method: ['old method'],
  sections: [
    {
      title: 'IKEv2 / ESP-in-UDP forwarding, 100 B payload',
      columns: { pps: 'pkt/s' },
      rows: [{ contender: 'nginx', figures: { pps: 19759 } }],
    },
    {
      title: 'SSTP passthrough (TCP 443)',
      columns: { many: 'Gbit/s' },
      rows: [{ contender: 'HAProxy mode tcp', figures: { many: 4.22 } }],
    },
    {
      title: 'TLS offload (terminate, forward plain TCP to :80)',
      columns: { p256: 'hs/s' },
      rows: [{ contender: 'nginx stream ssl', figures: { p256: 349 } }],
    },
    {
      title: 'Control plane',
      columns: { value: 'value' },
      rows: [{ contender: 'nft map full rewrite (ms)', figures: { value: 276 } }],
    },
  ],
  ratios: {
    ...allNull(),
    relayVsNginx: { value: 0.46 },
    sstpVsHaproxyThroughput: { value: 0.63 },
    offloadVsNginxHandshakes: { value: 0.71 },
  },
  findings: ['The machine was loaded.'],
  raw: { udp: { old: 1 }, tcp: { old: 2 }, tls: { old: 3 }, control: { old: 4 } },
};

/** A partial run of the TLS suite only. */
const tlsOnly: BenchResults = {
  date: '2026-11-28T09:00:00.000Z',
  durationSeconds: 60,
  machine: { cores: 2, 'load average at start (1/5/15 min)': '0.05 0.10 0.20' },
  method: ['new method'],
  sections: [
    {
      title: 'TLS offload (terminate, forward plain TCP to :80)',
      suite: 'tls',
      columns: { p256: 'hs/s' },
      rows: [
        {
          contender: 'nginx stream ssl',
          figures: { p256: 1600 },
          marks: { p256: 'generator-bound' },
        },
      ],
    },
  ],
  ratios: {
    ...allNull(),
    offloadVsNginxHandshakes: { value: 0.9, caveat: 'P-256 generator-bound' },
  },
  findings: [{ text: 'TLS finding', date: '2026-11-28T09:00:00.000Z', suite: 'tls' }],
  raw: { tls: { fresh: true } },
  runs: [
    {
      date: '2026-11-28T09:00:00.000Z',
      durationSeconds: 60,
      suites: ['tls'],
      repeats: 3,
      quick: false,
      machine: { cores: 2 },
    },
  ],
};

test('inferSuite maps the titles of older files to suites', () => {
  assert.equal(inferSuite('IKEv2 / ESP-in-UDP forwarding, 1400 B payload'), 'udp');
  assert.equal(inferSuite('SSTP passthrough (TCP 443)'), 'tcp');
  assert.equal(inferSuite('TLS offload (x)'), 'tls');
  assert.equal(inferSuite('Control plane'), 'control');
  assert.equal(inferSuite('Failover: server killed → first new client elsewhere'), 'failover');
  assert.equal(inferSuite('Userspace relay memory per tracked flow'), 'memory');
  assert.equal(inferSuite('Something else'), undefined);
});

test('a partial run replaces only its suite and keeps the others with their date', () => {
  const m = mergeResults(legacy, tlsOnly, ['tls']);
  assert.deepEqual(
    m.sections.map((s) => [s.suite, s.date]),
    [
      ['udp', legacy.date],
      ['tcp', legacy.date],
      ['tls', tlsOnly.date],
      ['control', legacy.date],
    ],
  );
  assert.equal(m.sections[2]!.rows[0]!.figures.p256, 1600);
  // Ratios: the TLS one is new, the others keep the old value (not null) with the old date.
  assert.deepEqual(m.ratios.offloadVsNginxHandshakes, {
    value: 0.9,
    caveat: 'P-256 generator-bound',
    date: tlsOnly.date,
  });
  assert.deepEqual(m.ratios.relayVsNginx, { value: 0.46, date: legacy.date });
  assert.deepEqual(m.ratios.kernelVsRouting, { value: null, reason: 'n/a', date: legacy.date });
  assert.deepEqual(m.raw, {
    udp: { old: 1 },
    tcp: { old: 2 },
    tls: { fresh: true },
    control: { old: 4 },
  });
  assert.deepEqual(
    m.runs?.map((r) => r.date),
    [tlsOnly.date, legacy.date],
  );
  assert.deepEqual(m.runs?.[1]?.suites, ['udp', 'tcp', 'tls', 'control']);
  // The old untagged finding survives, tagged with its run; the new one is first.
  assert.deepEqual(m.findings, [
    tlsOnly.findings[0],
    { text: 'The machine was loaded.', date: legacy.date },
  ]);
});

test('re-running a suite drops the previous findings about it, and a run no longer referenced', () => {
  const first = mergeResults(legacy, tlsOnly, ['tls']);
  const again = {
    ...tlsOnly,
    date: '2026-11-29T10:00:00.000Z',
    findings: [],
    runs: [{ ...tlsOnly.runs![0]!, date: '2026-11-29T10:00:00.000Z' }],
  };
  const m = mergeResults(first, again, ['tls']);
  assert.deepEqual(m.findings, [{ text: 'The machine was loaded.', date: legacy.date }]);
  assert.deepEqual(
    m.runs?.map((r) => r.date),
    ['2026-11-29T10:00:00.000Z', legacy.date],
  );
});

test('a full run (no previous file given) keeps only its own figures', () => {
  const full = { ...tlsOnly, runs: undefined };
  const m = mergeResults(undefined, full, SUITES);
  assert.equal(m.sections.length, 1);
  assert.equal(m.sections[0]!.date, tlsOnly.date);
  assert.equal(m.runs?.length, 1);
});

test('rendering mixed dates names each section and ratio run, and marks qualified figures', () => {
  const md = renderMarkdown(mergeResults(legacy, tlsOnly, ['tls']));
  assert.match(
    md,
    /### TLS offload \(terminate, forward plain TCP to :80\) — run of 2026-11-28 09:00 UTC/,
  );
  assert.match(md, /### SSTP passthrough \(TCP 443\) — run of 2026-11-27 15:33 UTC/);
  assert.match(md, /\| relayVsNginx \| ≥ 1 \| 0\.46 \*\*missed\*\* \| 2026-11-27 15:33 UTC \|/);
  assert.match(
    md,
    /\| offloadVsNginxHandshakes \| ≥ 0\.8 \| 0\.90 \*\*met\*\* \(P-256 generator-bound\) \| 2026-11-28 09:00 UTC \|/,
  );
  assert.match(md, /\| nginx stream ssl \| 1,600 \(generator-bound\) \|/);
  assert.match(
    md,
    /\| 2026-11-27 15:33 UTC \| udp, tcp, tls, control \| 3 \| 434 s \| 7\.71 4\.21 1\.90 \|/,
  );
  assert.match(md, /- \(run, 2026-11-27 15:33 UTC\) The machine was loaded\./);
  assert.match(md, /- \(tls, 2026-11-28 09:00 UTC\) TLS finding/);
});

test('rendering a single run shows no run column', () => {
  const md = renderMarkdown(mergeResults(undefined, tlsOnly, SUITES));
  assert.doesNotMatch(md, /run of/);
  assert.match(md, /\| ratio \| target \| this run \|/);
});

test('options: default is the full run, --only expands control, --quick shortens', () => {
  const d = parseOptions([]);
  assert.ok(d.ok);
  assert.deepEqual(d.options.suites, SUITES);
  assert.equal(d.options.full, true);
  assert.equal(d.options.repeats, 3);
  assert.equal(d.options.forceWorkersScaling, false);
  const f = parseOptions(['--only', 'tcp', '--force-workers-scaling']);
  assert.ok(f.ok);
  assert.equal(f.options.forceWorkersScaling, true);
  const o = parseOptions(['--only', 'tls,control', '--quick']);
  assert.ok(o.ok);
  assert.deepEqual(o.options.suites, ['tls', 'control', 'failover', 'memory']);
  assert.equal(o.options.full, false);
  assert.equal(o.options.repeats, 1);
  const n = parseOptions(['--only=nft', '--repeats=5']);
  assert.ok(n.ok);
  assert.deepEqual(n.options.suites, ['control']);
  assert.equal(n.options.repeats, 5);
  assert.equal(parseOptions(['--only', 'bogus']).ok, false);
  assert.equal(parseOptions(['--repeats', '0']).ok, false);
  assert.equal(parseOptions(['--frobnicate']).ok, false);
  const e = parseOptions([], { BENCH_QUICK: '1', BENCH_REPEATS: '2' });
  assert.ok(e.ok);
  assert.equal(e.options.quick, true);
  assert.equal(e.options.repeats, 2);
});
