import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fmt, lowerRatio, median, meets, ratio, ratioOfRepeats } from './stats.js';
import { isBusy, renderSection, renderMarkdown, TARGETS } from './report.js';

test('median: odd, even, ignores non-finite, NaN when empty', () => {
  assert.equal(median([3, 1, 2]), 2);
  assert.equal(median([4, 1, 3, 2]), 2.5);
  assert.equal(median([5, Number.NaN, 1, Infinity, 3]), 3);
  assert.ok(Number.isNaN(median([])));
});

test('ratio carries the reason when a side is missing', () => {
  assert.deepEqual(ratio(2, 4), { value: 0.5 });
  assert.deepEqual(ratio(null, 4, { numerator: 'vpnlb did not start' }), {
    value: null,
    reason: 'vpnlb did not start',
  });
  assert.deepEqual(ratio(1, 0), { value: null, reason: 'denominator is zero' });
  assert.equal(ratio(1, Number.NaN).value, null);
});

test('lowerRatio picks the lower, and unknown wins', () => {
  assert.deepEqual(lowerRatio({ value: 0.9 }, { value: 0.7 }), { value: 0.7 });
  assert.equal(lowerRatio({ value: 0.9 }, { value: null, reason: 'x' }).value, null);
  assert.equal(meets({ value: 0.95 }, 0.95), true);
  assert.equal(meets({ value: 0.94 }, 0.95), false);
  assert.equal(meets({ value: null, reason: 'x' }, 0.95), null);
});

test('fmt groups large numbers and keeps 3 significant digits', () => {
  assert.equal(fmt(123456.7), '123,457');
  assert.equal(fmt(0.012345), '0.0123');
  assert.equal(fmt(null), '—');
});

test('renderSection adds a baseline column and lists contenders that did not run', () => {
  const md = renderSection({
    title: 'UDP',
    columns: { pps: 'packets/s' },
    baseline: { contender: 'routing', figure: 'pps' },
    rows: [
      { contender: 'routing', figures: { pps: 200000 } },
      { contender: 'kernel', figures: { pps: 190000 } },
      { contender: 'relay', figures: { pps: null }, error: 'not built' },
    ],
  });
  assert.match(md, /\| kernel \| 190,000 \| 0\.95 \|/);
  assert.match(md, /relay did not run: not built/);
});

test('renderMarkdown marks targets met and missed', () => {
  const ratios = Object.fromEntries(
    Object.keys(TARGETS).map((k) => [k, { value: null, reason: 'n/a' }]),
  ) as never;
  const md = renderMarkdown({
    date: '2025-01-01',
    durationSeconds: 1,
    machine: { cores: 2 },
    method: ['m'],
    sections: [],
    ratios: {
      ...(ratios as object),
      kernelVsRouting: { value: 0.99 },
      relayVsNginx: { value: 0.5 },
      sstpWorkersScaling: { value: 1.8, spread: { min: 1.7, max: 1.9 } },
    } as never,
    findings: [],
    raw: {},
  });
  assert.match(md, /kernelVsRouting \| ≥ 0.95 \| 0.99 \*\*met\*\*/);
  assert.match(md, /relayVsNginx \| ≥ 1 \| 0.50 \*\*missed\*\*/);
  assert.match(md, /sstpWorkersScaling \| — \| 1.80 \(repeats 1.70–1.90\) \(reported, no target\)/);
  assert.match(md, /offloadVsNginxHandshakes \| ≥ 0.8 \| — \(n\/a\)/);
});

test('ratioOfRepeats: ratio of medians, spread over paired repeats, reasons when a side is missing', () => {
  const r = ratioOfRepeats([10, 12, 11], [10, 8, 11]);
  assert.equal(r.value, 11 / 10);
  assert.deepEqual(r.spread, { min: 1, max: 1.5 });
  assert.deepEqual(ratioOfRepeats(undefined, [1], { numerator: 'did not run' }), {
    value: null,
    reason: 'did not run',
  });
  // A repeat with a zero or missing side is left out of the spread, not of the median.
  assert.deepEqual(ratioOfRepeats([2, 4], [0, 2]).spread, { min: 2, max: 2 });
});

test('a busy run shows its ratios with their spread, not compared with the target', () => {
  assert.equal(isBusy(1.5), true);
  assert.equal(isBusy(0.4), false);
  assert.equal(isBusy(Number.NaN), false);
  const md = renderMarkdown({
    date: '2026-12-02T12:00:00.000Z',
    durationSeconds: 60,
    machine: {},
    method: [],
    sections: [],
    ratios: {
      sstpKernelVsHaproxyConnRate: { value: 1.4, spread: { min: 1.2, max: 1.6 }, busyLoad: 7.5 },
      sstpKernelVsHaproxyThroughput: { value: 1.3, spread: { min: 1.25, max: 1.35 } },
    } as never,
    findings: [],
    raw: {},
  });
  assert.match(
    md,
    /\| sstpKernelVsHaproxyConnRate \| ≥ 1\.2 \| 1\.40 \(repeats 1\.20–1\.60\) busy machine \(load 7\.5 at start\): not compared \|/,
  );
  assert.match(
    md,
    /\| sstpKernelVsHaproxyThroughput \| ≥ 1\.2 \| 1\.30 \(repeats 1\.25–1\.35\) \*\*met\*\* \|/,
  );
});
