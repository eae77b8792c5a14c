import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  MAP_SIZE,
  elements,
  fullRewrite,
  incrementalRewrite,
  referenceRuleset,
} from './control-plane.js';

test('reference ruleset fills all 65537 slots round-robin', () => {
  const r = referenceRuleset('t', '198.19.0.1', ['198.18.2.2', '198.18.2.3']);
  assert.equal(MAP_SIZE, 65537);
  assert.match(r, /jhash @th,96,64 mod 65537/);
  assert.equal((r.match(/ : 198\.18\./g) ?? []).length, MAP_SIZE);
  assert.match(r, /\b0 : 198\.18\.2\.2, 1 : 198\.18\.2\.3\b/);
});

test('rewrites: full flushes, incremental deletes and re-adds only the given count', () => {
  assert.match(fullRewrite('t', ['a'], 0), /^flush map ip t slots\n/);
  const inc = incrementalRewrite('t', ['a', 'b'], 3, 1);
  assert.match(inc, /delete element ip t slots \{ 0, 4, 8 \}/);
  assert.equal(
    elements([0, 4], (s) => `x${s}`),
    '0 : x0, 4 : x4',
  );
});
