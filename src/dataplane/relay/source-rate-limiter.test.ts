import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SourceRateLimiter } from './source-rate-limiter.js';

test('each source has its own bucket: a flooding source spends only its own (driven time)', () => {
  const l = new SourceRateLimiter({ perSecond: 5, burst: 5 });
  let flooder = 0;
  let polite = 0;
  // One second: the flooder tries 500 times, the polite source once every 250 ms (below its rate).
  for (let t = 0; t < 1_000; t += 2) {
    if (l.take('198.18.0.66', t)) flooder++;
    if (t % 250 === 0 && l.take('198.18.0.7', t)) polite++;
  }
  assert.ok(flooder <= 10, `flooder got ${flooder}`);
  assert.equal(polite, 4, 'every attempt of the polite source passed');
});

test('the table of sources is bounded: the oldest is forgotten', () => {
  const l = new SourceRateLimiter({ perSecond: 1, burst: 1, maxSources: 3 });
  for (const s of ['a', 'b', 'c', 'd']) assert.equal(l.take(s, 0), true);
  assert.equal(l.size, 3);
  assert.equal(l.take('d', 0), false, 'd is tracked: its token is spent');
  assert.equal(l.take('a', 0), true, 'a was forgotten: a full bucket again');
});

test('refuses nonsense rates', () => {
  assert.throws(() => new SourceRateLimiter({ perSecond: 0 }), RangeError);
});
