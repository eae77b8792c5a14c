import { test } from 'node:test';
import assert from 'node:assert/strict';
import { NewFlowBudget } from './relay-new-flow-budget.js';
import { CoarseClock } from './flow-table.js';

test('the new-flow budget allows a burst, then perSecond a second (driven time)', () => {
  const b = new NewFlowBudget(10, 0, 4);
  let ok = 0;
  for (let i = 0; i < 100; i++) if (b.take(0)) ok++;
  assert.equal(ok, 4, 'the burst');
  assert.equal(b.take(50), false, 'half a token after 50 ms');
  assert.equal(b.take(100), true, 'one token after 100 ms');
  assert.equal(b.take(100), false);
  ok = 0;
  for (let t = 100; t <= 1150; t += 10) if (b.take(t)) ok++;
  assert.equal(ok, 10, '10 per second sustained');
  // A long pause refills to the burst, not beyond.
  ok = 0;
  for (let i = 0; i < 100; i++) if (b.take(1_000_000)) ok++;
  assert.equal(ok, 4);
  // Time going backwards (clock step) never adds tokens.
  assert.equal(b.take(0), false);
});

test('the new-flow budget refuses nonsense rates', () => {
  assert.throws(() => new NewFlowBudget(0, 0), RangeError);
  assert.throws(() => new NewFlowBudget(Number.NaN, 0), RangeError);
});

test('CoarseClock returns the time of its last refresh', () => {
  const source = {
    t: 5,
    now() {
      return this.t;
    },
  };
  const c = new CoarseClock(source);
  assert.equal(c.now(), 5);
  source.t = 900;
  assert.equal(c.now(), 5, 'not read per call');
  assert.equal(c.refresh(), 900);
  assert.equal(c.now(), 900);
});
