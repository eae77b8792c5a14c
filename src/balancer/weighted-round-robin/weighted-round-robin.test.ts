import { test } from 'node:test';
import assert from 'node:assert/strict';

import { type Candidate, ConnectionCounts } from '../balancer.js';
import { runBalancerConformance } from '../../../test/support/balancer-conformance.js';
import { WeightedRoundRobinBalancer } from './weighted-round-robin.js';

runBalancerConformance('weighted-round-robin', (input) => new WeightedRoundRobinBalancer(input));

const KEY = new Uint8Array(8);
const backend = (name: string, weight: number): Candidate => ({
  name,
  address: '198.18.0.10',
  weight,
});

function sequence(candidates: Candidate[], count: number): string[] {
  const balancer = new WeightedRoundRobinBalancer({
    candidates,
    seed: 0,
    connections: new ConnectionCounts(),
  });
  return Array.from({ length: count }, () => balancer.pick(KEY)?.name ?? '');
}

test('weights {5, 1, 1} give nginx’s smooth sequence a a b a c a a, then repeat', () => {
  const expected = ['a', 'a', 'b', 'a', 'c', 'a', 'a'];
  assert.deepEqual(sequence([backend('a', 5), backend('b', 1), backend('c', 1)], 14), [
    ...expected,
    ...expected,
  ]);
  // The same from any input order: candidates are taken in name order.
  assert.deepEqual(sequence([backend('c', 1), backend('b', 1), backend('a', 5)], 7), expected);
});

test('every window of Σweight picks holds each backend exactly weight times', () => {
  const weights: Record<string, number> = { a: 4, b: 3, c: 2, d: 1 };
  const picks = sequence(
    Object.entries(weights).map(([n, w]) => backend(n, w)),
    50,
  );
  for (let start = 0; start < 50; start += 10) {
    const window = picks.slice(start, start + 10);
    for (const [n, w] of Object.entries(weights))
      assert.equal(window.filter((x) => x === n).length, w, `${n} at ${start}`);
  }
});

test('equal weights alternate in name order', () => {
  assert.deepEqual(sequence([backend('b', 2), backend('a', 2)], 4), ['a', 'b', 'a', 'b']);
});
