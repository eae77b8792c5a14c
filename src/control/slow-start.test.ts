/**
 * Slow start (issue 11, finding 7): a backend that comes back up under a stream of new clients
 * ramps up to its share instead of taking them all at once. Driven clock; the balancers of the
 * snapshots are the ones every data plane uses (SSTP proxy and relay pick with them, the kernel
 * plane renders the Maglev table).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { loadConfigText } from '../config/load-config.js';
import type { MaglevBalancer } from '../balancer/maglev/maglev.js';
import { Controller, SLOW_START_STEPS, slowStartShare } from './controller.js';

function setup(kind: 'sstp' | 'ikev2', slowStart: string | undefined) {
  let clock = Date.parse('2024-01-01T00:00:00Z');
  const svc =
    kind === 'sstp'
      ? `sstp: [ { name: svc, virtualIp: 198.18.0.1, pool: farm, method: least-connections, monitor: m } ]`
      : `ikev2: [ { name: svc, virtualIp: 198.18.0.1, pool: farm, monitor: m } ]`;
  const controller = new Controller(
    loadConfigText(`
monitors: { m: { type: tcp, port: 443 } }
pools:
  farm:
    ${slowStart ? `slowStart: ${slowStart}` : ''}
    backends:
      - { name: a, address: 198.18.0.10 }
      - { name: b, address: 198.18.0.11 }
services:
  ${svc}
`),
    { now: () => new Date(clock) },
  );
  const advance = (ms: number) => {
    clock += ms;
    controller.refreshSlowStart();
  };
  const snap = () => controller.service('svc')!;
  return { controller, advance, snap, counts: controller.connections('svc') };
}

/** `n` new clients, each placed by the current snapshot's balancer and counted as open. */
function stream(s: ReturnType<typeof setup>, n: number): Map<string, number> {
  const got = new Map<string, number>();
  for (let i = 0; i < n; i++) {
    const c = s.snap().balancer.pick(new Uint8Array([i & 0xff, i >> 8, 1, 2]));
    assert.ok(c);
    s.counts.increment(c.name);
    got.set(c.name, (got.get(c.name) ?? 0) + 1);
  }
  return got;
}

describe('slow start', () => {
  it('the share steps up from 1/10 to 1 over the duration', () => {
    assert.equal(slowStartShare(0, 10_000), 0.1);
    assert.equal(slowStartShare(999, 10_000), 0.1);
    assert.equal(slowStartShare(1_000, 10_000), 0.2);
    assert.equal(slowStartShare(9_999, 10_000), 1);
    assert.equal(slowStartShare(10_000, 10_000), 1);
    assert.equal(slowStartShare(5, 0), 1);
  });

  for (const slowStart of [undefined, '10s']) {
    it(`least connections, a server back under a stream of new clients (${slowStart ? 'slowStart 10s' : 'no slow start: the herd'})`, () => {
      const s = setup('sstp', slowStart);
      s.controller.setHealth('svc', 'b', 'down', 'probe failed');
      stream(s, 40); // all on a
      s.controller.setHealth('svc', 'b', 'up', 'probe answered');
      // 20 new clients within the first second after b came back.
      const first = stream(s, 20).get('b') ?? 0;
      if (!slowStart) {
        assert.equal(first, 20, 'without slow start the recovered server takes every new client');
        assert.equal(s.snap().backends.find((b) => b.name === 'b')!.slowStart, undefined);
        return;
      }
      assert.ok(
        first <= 6,
        `b took ${first} of the first 20 new clients (a tenth of a's load, not all)`,
      );
      const status = s.snap().backends.find((b) => b.name === 'b')!;
      assert.deepEqual(status.slowStart, { share: 0.1, until: '2024-01-01T00:00:10.000Z' });
      // Each later second: b's load stays within its share of a's, and the share grows.
      let previous = 0.1;
      for (let step = 2; step <= SLOW_START_STEPS; step++) {
        s.advance(1_000);
        stream(s, 10);
        const share = s.snap().backends.find((b) => b.name === 'b')!.slowStart?.share ?? 1;
        assert.ok(share > previous, `step ${step}: share ${share}`);
        previous = share;
        assert.ok(
          s.counts.get('b') <= Math.ceil(share * s.counts.get('a')) + 1,
          `step ${step}: b ${s.counts.get('b')} vs a ${s.counts.get('a')} at share ${share}`,
        );
      }
      s.advance(1_000);
      assert.equal(
        s.snap().backends.find((b) => b.name === 'b')!.slowStart,
        undefined,
        'ramp over',
      );
      assert.equal(s.snap().candidates.find((c) => c.name === 'b')!.weight, 1, 'full weight');
    });
  }

  it('Maglev (relay and kernel plane): the recovered server gets its slots handed over in steps, not in one rewrite', () => {
    const s = setup('ikev2', '10s');
    const slotsOfB = () => {
      const table = (s.snap().balancer as MaglevBalancer).table;
      const b = table.backends.findIndex((c) => c.name === 'b');
      return table.slots.reduce((n, x) => n + (x === b ? 1 : 0), 0);
    };
    const full = slotsOfB();
    s.controller.setHealth('svc', 'b', 'down', 'probe failed');
    assert.equal(slotsOfB(), 0);
    s.controller.setHealth('svc', 'b', 'up', 'probe answered');
    const steps = [slotsOfB()];
    for (let i = 1; i < SLOW_START_STEPS; i++) {
      s.advance(1_000);
      steps.push(slotsOfB());
    }
    s.advance(1_000);
    assert.ok(steps[0]! > 0 && steps[0]! < full / 4, `first step: ${steps[0]} of ${full} slots`);
    for (let i = 1; i < steps.length; i++)
      assert.ok(steps[i]! > steps[i - 1]!, `slots per step: ${steps.join(', ')}`);
    assert.equal(slotsOfB(), full, 'the whole share after the ramp');
  });

  it('a draining server put back in service does not ramp (it kept its tunnels); a disabled one does', () => {
    const s = setup('sstp', '10s');
    s.controller.setAdminState('b', 'draining');
    s.controller.setAdminState('b', 'enabled');
    assert.equal(s.snap().backends.find((b) => b.name === 'b')!.slowStart, undefined);
    s.controller.setAdminState('b', 'disabled');
    s.controller.setAdminState('b', 'enabled');
    assert.equal(s.snap().backends.find((b) => b.name === 'b')!.slowStart?.share, 0.1);
    s.controller.dispose();
  });
});
