import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ShedLimit } from './relay-shed-limit.js';

test('no limit until the receive queues overflow; then the forwarded rate, cut', () => {
  const l = new ShedLimit({ floor: 1000 });
  assert.equal(l.update({ overflows: 0, forwardedPerSecond: 90_000 }), undefined);
  assert.equal(l.update({ overflows: 500, forwardedPerSecond: 100_000 }), 95_000);
});

test('an overflow never raises the limit, and never sets it under the floor', () => {
  const l = new ShedLimit({ floor: 20_000 });
  l.update({ overflows: 1, forwardedPerSecond: 100_000 });
  assert.equal(
    l.update({ overflows: 1, forwardedPerSecond: 150_000 }),
    95_000,
    'a burst queued before the limit does not raise it',
  );
  assert.equal(
    l.update({ overflows: 1, forwardedPerSecond: 5_000 }),
    71_250,
    'one starved tick cuts by a quarter at most',
  );
  for (let i = 0; i < 10; i++) l.update({ overflows: 1, forwardedPerSecond: 5_000 });
  assert.equal(l.limit, 20_000, 'repeated overflows reach the floor, never below');
});

test('a binding limit without overflow probes upwards; converges around capacity (simulated relay)', () => {
  // A relay that can forward 100 k/s with 200 k/s offered: above its capacity it overflows.
  const capacity = 100_000;
  const offered = 200_000;
  const l = new ShedLimit({ floor: 1000 });
  const limits: number[] = [];
  for (let i = 0; i < 200; i++) {
    const admitted = Math.min(offered, l.limit ?? Infinity);
    const forwarded = Math.min(admitted, capacity);
    l.update({
      overflows: admitted > capacity ? admitted - capacity : 0,
      forwardedPerSecond: forwarded,
    });
    limits.push(l.limit ?? Infinity);
  }
  const tail = limits.slice(100);
  assert.ok(Math.min(...tail) >= 0.9 * capacity, `never far below capacity: ${Math.min(...tail)}`);
  assert.ok(Math.max(...tail) <= 1.1 * capacity, `never far above capacity: ${Math.max(...tail)}`);
});

test('lifted after releaseTicks quiet ticks (the flood is over)', () => {
  const l = new ShedLimit({ floor: 1000, releaseTicks: 3 });
  l.update({ overflows: 10, forwardedPerSecond: 50_000 });
  assert.equal(l.update({ overflows: 0, forwardedPerSecond: 1_000 }), 47_500);
  assert.equal(l.update({ overflows: 0, forwardedPerSecond: 1_000 }), 47_500);
  assert.equal(l.update({ overflows: 0, forwardedPerSecond: 1_000 }), undefined);
});

test('refuses a floor that is not positive', () => {
  assert.throws(() => new ShedLimit({ floor: 0 }), RangeError);
});

test("a flood's first cut starts from the best rate forwarded before it, not from the starved tick", () => {
  const l = new ShedLimit({ floor: 1000, releaseTicks: 5 });
  for (const f of [80_000, 140_000, 120_000]) l.update({ overflows: 0, forwardedPerSecond: f });
  // The flood's first tick: everything admitted, the relay starved to 50 k/s.
  assert.equal(l.update({ overflows: 30_000, forwardedPerSecond: 50_000 }), 133_000);
  // Later cuts follow what is forwarded (at most a quarter per tick), as before.
  assert.equal(l.update({ overflows: 10, forwardedPerSecond: 120_000 }), 114_000);
  // Rates older than releaseTicks ticks are forgotten: a later flood starts from what is recent.
  const m = new ShedLimit({ floor: 1000, releaseTicks: 2 });
  for (const f of [150_000, 10_000, 20_000]) m.update({ overflows: 0, forwardedPerSecond: f });
  assert.equal(m.update({ overflows: 1, forwardedPerSecond: 5_000 }), 19_000);
});
