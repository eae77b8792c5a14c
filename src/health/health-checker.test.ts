import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Metrics } from '../observability/metrics.js';
import { loadConfigText } from '../config/load-config.js';
import { Controller, type Transition } from '../control/controller.js';
import type { RuntimeContext } from '../control/runtime-context.js';
import { silentLogger } from '../log/logger.js';
import type { Probe, ProbeResult, ProbeTarget } from './monitor.js';
import { HealthChecker, type Clock } from './health-checker.js';

const CONFIG = `
monitors:
  ike: { type: ikev2, interval: 5s, timeout: 2s, rise: 2, fall: 3, jitter: 0.1 }
pools:
  farm:
    backends:
      - { name: a, address: 198.18.0.10 }
      - { name: b, address: 198.18.0.11 }
      - { name: c, address: 198.18.0.12, enabled: false }
  other:
    backends:
      - { name: x, address: 198.18.0.20 }
services:
  ikev2:
    - { name: vpn, virtualIp: 198.18.0.1, pool: farm, monitor: ike, dataplane: userspace }
    - { name: plain, virtualIp: 198.18.0.2, pool: other, dataplane: userspace }
`;

/** A manual clock: timers run only inside `advance`, in time order, with promises flushed between. */
class FakeClock implements Clock {
  t = 0;
  #next = 1;
  readonly timers = new Map<number, { at: number; fn: () => void }>();
  now(): number {
    return this.t;
  }
  setTimeout(fn: () => void, ms: number): unknown {
    const id = this.#next++;
    this.timers.set(id, { at: this.t + ms, fn });
    return id;
  }
  clearTimeout(h: unknown): void {
    this.timers.delete(h as number);
  }
  async advance(ms: number): Promise<void> {
    const end = this.t + ms;
    for (;;) {
      await flush();
      let first: [number, { at: number; fn: () => void }] | undefined;
      for (const e of this.timers)
        if (e[1].at <= end && (!first || e[1].at < first[1].at)) first = e;
      if (!first) break;
      this.timers.delete(first[0]);
      this.t = first[1].at;
      first[1].fn();
    }
    this.t = end;
    await flush();
  }
}

async function flush(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
}

/** A probe whose answers are scripted per address; records when each probe started. */
class ScriptedProbe implements Probe {
  readonly type = 'ikev2' as const;
  readonly calls: { address: string; at: number; port: number | undefined }[] = [];
  readonly script = new Map<string, (n: number) => boolean | 'throw' | 'hang'>();
  constructor(private readonly clock: FakeClock) {}
  probe(target: ProbeTarget, signal: AbortSignal): Promise<ProbeResult> {
    const n = this.calls.filter((c) => c.address === target.address).length;
    this.calls.push({ address: target.address, at: this.clock.now(), port: target.port });
    const answer = this.script.get(target.address)?.(n) ?? true;
    if (answer === 'throw') return Promise.reject(new Error('boom'));
    if (answer === 'hang') {
      return new Promise((resolve) =>
        signal.addEventListener('abort', () =>
          resolve({ ok: false, detail: 'probe aborted', latencyMs: 0 }),
        ),
      );
    }
    return Promise.resolve({
      ok: answer,
      detail: answer
        ? 'IKE_SA_INIT answered with NO_PROPOSAL_CHOSEN'
        : 'ikev2 probe: no answer within 2000 ms',
      latencyMs: 1.5,
    });
  }
}

function setup(random: () => number = Math.random) {
  const config = loadConfigText(CONFIG);
  const controller = new Controller(config);
  const metrics = new Metrics();
  const ctx: RuntimeContext = { config, controller, logger: silentLogger(), metrics };
  const clock = new FakeClock();
  const probe = new ScriptedProbe(clock);
  const checker = new HealthChecker(ctx, {
    clock,
    random,
    createProbe: () => ({ probe, port: 500 }),
  });
  const transitions: Transition[] = [];
  controller.on('transition', (t) => transitions.push(t));
  const backend = (name: string) =>
    controller.service('vpn')!.backends.find((b) => b.name === name)!;
  return { controller, metrics, clock, probe, checker, transitions, backend };
}

describe('HealthChecker', () => {
  it('watches every backend of monitored services only, disabled ones included, on the monitor port', async () => {
    const { checker, clock, probe } = setup();
    checker.start();
    await clock.advance(1_000);
    assert.deepEqual(
      checker
        .watches()
        .map((w) => `${w.service}/${w.backend}`)
        .sort(),
      ['vpn/a', 'vpn/b', 'vpn/c'],
    );
    assert.deepEqual(
      new Set(probe.calls.map((c) => c.address)),
      new Set(['198.18.0.10', '198.18.0.11', '198.18.0.12']),
    );
    assert.ok(probe.calls.every((c) => c.port === 500));
    await checker.stop();
  });

  it('takes the first verdict from a single result, then needs fall consecutive failures', async () => {
    const { checker, clock, probe, backend, transitions } = setup();
    // a: ok, ok, fail, fail, fail...
    probe.script.set('198.18.0.10', (n) => n < 2);
    // b: fails from the first probe.
    probe.script.set('198.18.0.11', () => false);
    checker.start();
    await clock.advance(1_000);
    assert.equal(backend('b').state, 'down', 'one failure decides the first verdict');
    assert.match(backend('b').reason, /^ikev2 probe: no answer within 2000 ms \(first probe\)$/);
    assert.equal(backend('a').health, 'up');
    await clock.advance(5_500 * 2); // probes 2 and 3: one failure so far
    assert.equal(backend('a').state, 'up');
    await clock.advance(5_500); // 2 failures
    assert.equal(backend('a').state, 'up', 'two failures are not enough with fall 3');
    await clock.advance(5_500); // 3 failures
    assert.equal(backend('a').state, 'down');
    assert.equal(
      backend('a').reason,
      'ikev2 probe: no answer within 2000 ms (3 consecutive failures)',
    );
    assert.deepEqual(
      transitions.map((t) => `${t.backend}:${t.to}`),
      ['b:down', 'a:down'],
    );
    await checker.stop();
  });

  it('exposes the latest probe of each backend, with its streak, for the status document', async () => {
    const { checker, clock, probe } = setup();
    probe.script.set('198.18.0.11', () => false);
    checker.start();
    await clock.advance(1_000);
    await clock.advance(5_500);
    const last = checker.lastProbes();
    assert.equal(last.get('vpn/a')?.ok, true);
    assert.equal(last.get('vpn/a')?.monitor, 'ike');
    assert.equal(last.get('vpn/b')?.ok, false);
    assert.equal(last.get('vpn/b')?.streak, 2);
    assert.match(last.get('vpn/b')?.detail ?? '', /no answer/);
    assert.equal(last.has('plain/x'), false, 'unmonitored services have no probe');
    await checker.stop();
  });

  it('needs rise consecutive successes to come back up', async () => {
    const { checker, clock, probe, backend } = setup();
    probe.script.set('198.18.0.10', (n) => n >= 1); // fail, ok, ok
    checker.start();
    await clock.advance(1_000);
    assert.equal(backend('a').state, 'down');
    await clock.advance(5_500);
    assert.equal(backend('a').state, 'down', 'one success is not enough with rise 2');
    await clock.advance(5_500);
    assert.equal(backend('a').state, 'up');
    assert.equal(
      backend('a').reason,
      'ikev2 probe: IKE_SA_INIT answered with NO_PROPOSAL_CHOSEN (2 consecutive successes)',
    );
    await checker.stop();
  });

  it('damps a flapping server: alternating results change nothing', async () => {
    const { checker, clock, probe, transitions, controller } = setup();
    probe.script.set('198.18.0.10', (n) => n % 2 === 0);
    checker.start();
    await clock.advance(1_000);
    const version = controller.snapshot().version;
    await clock.advance(5_500 * 40);
    assert.ok(probe.calls.filter((c) => c.address === '198.18.0.10').length >= 40);
    assert.deepEqual(transitions, []);
    assert.equal(
      controller.snapshot().version,
      version,
      'no snapshot rebuilt while the verdict holds',
    );
  });

  it('keeps probe starts within interval × (1 ± jitter), the first within the first second', async () => {
    let seed = 7;
    const random = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    const { checker, clock, probe } = setup(random);
    checker.start();
    await clock.advance(100_000);
    await checker.stop();
    const byAddress = new Map<string, number[]>();
    for (const c of probe.calls)
      byAddress.set(c.address, [...(byAddress.get(c.address) ?? []), c.at]);
    const firsts = [...byAddress.values()].map((ts) => ts[0]!);
    for (const f of firsts) assert.ok(f >= 0 && f < 1_000, `first probe at ${f}`);
    assert.equal(new Set(firsts).size, firsts.length, 'backends start at different offsets');
    const gaps = [...byAddress.values()].flatMap((ts) => ts.slice(1).map((t, i) => t - ts[i]!));
    assert.ok(gaps.length > 40);
    for (const g of gaps) assert.ok(g >= 4_500 && g <= 5_500, `gap ${g}`);
    assert.ok(Math.max(...gaps) - Math.min(...gaps) > 100, 'jitter actually varies the gaps');
  });

  it('counts every probe in vpnlb_health_probes_total and the latency histogram', async () => {
    const { checker, clock, probe, metrics } = setup();
    probe.script.set('198.18.0.11', () => false);
    checker.start();
    await clock.advance(1_000 + 5_500 * 2);
    await checker.stop();
    const text = await metrics.text();
    assert.match(
      text,
      /vpnlb_health_probes_total\{service="vpn",backend="b",monitor="ike",result="failure"\} 3/,
    );
    assert.match(
      text,
      /vpnlb_health_probes_total\{service="vpn",backend="a",monitor="ike",result="success"\} 3/,
    );
    assert.match(
      text,
      /vpnlb_health_probe_duration_seconds_count\{service="vpn",backend="a",monitor="ike"\} 3/,
    );
  });

  it('treats a probe that throws as a failure, not a crash', async () => {
    const { checker, clock, probe, backend } = setup();
    probe.script.set('198.18.0.10', () => 'throw');
    checker.start();
    await clock.advance(1_000);
    assert.equal(backend('a').state, 'down');
    assert.match(backend('a').reason, /probe error: boom/);
    await checker.stop();
  });

  it('stop() aborts probes in flight and schedules nothing more', async () => {
    const { checker, clock, probe } = setup();
    for (const a of ['198.18.0.10', '198.18.0.11', '198.18.0.12'])
      probe.script.set(a, () => 'hang');
    checker.start();
    await clock.advance(1_000);
    assert.equal(probe.calls.length, 3);
    await checker.stop(); // resolves only once the hanging probes saw the abort
    assert.equal(clock.timers.size, 0);
    await clock.advance(60_000);
    assert.equal(probe.calls.length, 3);
    assert.ok(
      checker.watches().every((w) => w.verdict === 'unknown'),
      'an aborted probe is no verdict',
    );
  });

  it('finds a disabled server dead without changing its state', async () => {
    const { checker, clock, probe, backend, transitions } = setup();
    probe.script.set('198.18.0.12', () => false);
    checker.start();
    await clock.advance(1_000);
    assert.equal(backend('c').state, 'disabled');
    assert.equal(backend('c').health, 'down');
    assert.deepEqual(transitions, []);
    await checker.stop();
  });
});
