/**
 * The shared conformance suite every probe implementation passes (the monitor.ts contract):
 * up against a live target, down against a dead one, the timeout honoured, abort honoured,
 * garbage answers counted as down, and no rejection ever. Each implementation's own test file
 * calls `describeProbeConformance` with its targets; the suite is the same for all.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import type { Probe, ProbeResult, ProbeTarget } from '../../src/health/monitor.js';
import type { TestTarget } from './loopback-targets.js';

/** Targets for one implementation. A missing optional factory must say why in `skip`. */
export interface ConformanceSubject {
  /** Suite title, e.g. `tcp probe`. */
  readonly name: string;
  readonly createProbe: () => Probe;
  /** Targets where the service works (e.g. one IPv4, one IPv6). */
  readonly live: ReadonlyArray<{
    readonly label: string;
    readonly start: () => Promise<TestTarget>;
  }>;
  /** A target where nothing serves (closed port, stopped daemon). */
  readonly dead: () => Promise<TestTarget>;
  /** A target that receives the probe but never answers (for timeout and abort). */
  readonly silent: () => Promise<TestTarget>;
  /** Targets that answer with something that is not a valid answer. */
  readonly garbage?: ReadonlyArray<{
    readonly label: string;
    readonly start: () => Promise<TestTarget>;
  }>;
  /** Why `garbage` is absent (e.g. "tcp has no answer to judge"). */
  readonly skip?: { readonly garbage?: string };
  /** Skip the whole suite, with the reason printed (e.g. "needs root"). */
  readonly skipAll?: string;
  /** Targets the suite may not send to (e.g. icmp has no port to make unusable). */
  readonly portless?: boolean;
  /** Timeout used for live/dead probes; defaults to 2000 ms. */
  readonly timeoutMs?: number;
}

// A functional bound, not a performance claim: a probe that outlives its timeout by this much
// is broken (a missed timer or a forgotten socket), whatever the machine's speed.
const SLACK_MS = 2_000;

async function withTarget<T>(
  start: () => Promise<TestTarget>,
  fn: (target: ProbeTarget) => Promise<T>,
): Promise<T> {
  const t = await start();
  try {
    return await fn(t.target);
  } finally {
    await t.close();
  }
}

async function timed(p: Promise<ProbeResult>): Promise<[ProbeResult, number]> {
  const t0 = performance.now();
  const r = await p;
  return [r, performance.now() - t0];
}

function assertShape(r: ProbeResult): void {
  assert.equal(typeof r.ok, 'boolean');
  assert.equal(typeof r.detail, 'string');
  assert.ok(r.detail.length > 0, 'a result always says what was seen');
  assert.ok(Number.isFinite(r.latencyMs) && r.latencyMs >= 0, `latencyMs ${r.latencyMs}`);
}

/** Registers the conformance tests for one probe implementation. */
export function describeProbeConformance(subject: ConformanceSubject): void {
  const timeoutMs = subject.timeoutMs ?? 2_000;
  describe(`${subject.name}: probe conformance`, { skip: subject.skipAll ?? false }, () => {
    for (const live of subject.live) {
      it(`is up against a live target (${live.label})`, async () => {
        await withTarget(live.start, async (target) => {
          const r = await subject
            .createProbe()
            .probe(target, new AbortController().signal, timeoutMs);
          assertShape(r);
          assert.equal(r.ok, true, r.detail);
        });
      });
    }

    it('is down against a dead target', async () => {
      await withTarget(subject.dead, async (target) => {
        const [r, elapsed] = await timed(
          subject.createProbe().probe(target, new AbortController().signal, timeoutMs),
        );
        assertShape(r);
        assert.equal(r.ok, false, r.detail);
        assert.ok(elapsed < timeoutMs + SLACK_MS, `settled after ${elapsed} ms`);
      });
    });

    it('honours the timeout against a target that never answers', async () => {
      const shortTimeout = 300;
      await withTarget(subject.silent, async (target) => {
        const [r, elapsed] = await timed(
          subject.createProbe().probe(target, new AbortController().signal, shortTimeout),
        );
        assertShape(r);
        assert.equal(r.ok, false, r.detail);
        assert.match(r.detail, /within 300 ms/);
        assert.ok(elapsed < shortTimeout + SLACK_MS, `settled after ${elapsed} ms`);
      });
    });

    it('honours an abort while waiting', async () => {
      await withTarget(subject.silent, async (target) => {
        const ac = new AbortController();
        const pending = timed(subject.createProbe().probe(target, ac.signal, 60_000));
        setTimeout(() => ac.abort(), 50);
        const [r, elapsed] = await pending;
        assertShape(r);
        assert.equal(r.ok, false);
        assert.match(r.detail, /aborted/);
        assert.ok(elapsed < SLACK_MS, `settled ${elapsed} ms after start`);
      });
    });

    it('does nothing when the signal is already aborted', async () => {
      const ac = new AbortController();
      ac.abort();
      await withTarget(subject.dead, async (target) => {
        const r = await subject.createProbe().probe(target, ac.signal, timeoutMs);
        assertShape(r);
        assert.equal(r.ok, false);
        assert.match(r.detail, /aborted/);
      });
    });

    if (subject.garbage && subject.garbage.length > 0) {
      for (const g of subject.garbage) {
        it(`is down against a target answering garbage (${g.label})`, async () => {
          await withTarget(g.start, async (target) => {
            const r = await subject.createProbe().probe(target, new AbortController().signal, 500);
            assertShape(r);
            assert.equal(r.ok, false, r.detail);
          });
        });
      }
    } else {
      it(
        'garbage answers',
        { skip: subject.skip?.garbage ?? 'no garbage target given' },
        () => undefined,
      );
    }

    it('never rejects, even for an unusable target', async () => {
      const p = subject.createProbe();
      const bad: ProbeTarget[] = [
        { address: 'not-an-address', family: 4, port: 1 },
        { address: '::1', family: 4, port: 1 },
        ...(subject.portless ? [] : [{ address: '127.0.0.1', family: 4 as const, port: 0 }]),
      ];
      for (const target of bad) {
        const r = await p.probe(target, new AbortController().signal, 500);
        assertShape(r);
        assert.equal(r.ok, false, `${target.address}:${target.port}: ${r.detail}`);
      }
    });

    it('runs concurrent probes independently', async () => {
      const first = subject.live[0];
      assert.ok(first, 'at least one live target');
      await withTarget(first.start, async (target) => {
        const p = subject.createProbe();
        const results = await Promise.all(
          Array.from({ length: 20 }, () =>
            p.probe(target, new AbortController().signal, timeoutMs),
          ),
        );
        for (const r of results) assert.equal(r.ok, true, r.detail);
      });
    });
  });
}
