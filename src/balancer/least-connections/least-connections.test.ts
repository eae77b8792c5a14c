import { test } from 'node:test';
import assert from 'node:assert/strict';

import { type Candidate, ConnectionCounts } from '../balancer.js';
import { runBalancerConformance } from '../../../test/support/balancer-conformance.js';
import { LeastConnectionsBalancer } from './least-connections.js';

runBalancerConformance('least-connections', (input) => new LeastConnectionsBalancer(input));

const KEY = new Uint8Array(8);
const backend = (name: string, weight = 1): Candidate => ({ name, address: '198.18.0.10', weight });

function withCounts(counts: Record<string, number>): ConnectionCounts {
  const connections = new ConnectionCounts();
  for (const [name, n] of Object.entries(counts))
    for (let i = 0; i < n; i++) connections.increment(name);
  return connections;
}

test('picks the least loaded backend relative to its weight', () => {
  const candidates = [backend('a'), backend('b', 2), backend('c')];
  // (connections + 1) / weight: a 11, b 8, c 5.
  const connections = withCounts({ a: 10, b: 15, c: 4 });
  assert.equal(
    new LeastConnectionsBalancer({ candidates, seed: 0, connections }).pick(KEY)?.name,
    'c',
  );
  // c at 20 connections: a 11, b 8, c 21.
  for (let i = 0; i < 16; i++) connections.increment('c');
  assert.equal(
    new LeastConnectionsBalancer({ candidates, seed: 0, connections }).pick(KEY)?.name,
    'b',
  );
});

test('weights count even when every backend is idle', () => {
  const connections = new ConnectionCounts();
  const balancer = new LeastConnectionsBalancer({
    candidates: [backend('heavy', 3), backend('light', 1)],
    seed: 0,
    connections,
  });
  const picks: string[] = [];
  for (let i = 0; i < 8; i++) {
    const picked = balancer.pick(KEY)?.name ?? '';
    connections.increment(picked);
    picks.push(picked);
  }
  assert.deepEqual(picks, ['heavy', 'heavy', 'heavy', 'light', 'heavy', 'heavy', 'heavy', 'light']);
});

test('ties rotate over the backends in name order instead of piling onto the first', () => {
  // Connections not counted yet (a burst of clients still handshaking): every pick is a tie.
  const balancer = new LeastConnectionsBalancer({
    candidates: [backend('c'), backend('a'), backend('b')],
    seed: 0,
    connections: new ConnectionCounts(),
  });
  const picks = Array.from({ length: 6 }, () => balancer.pick(KEY)?.name);
  assert.deepEqual(picks, ['a', 'b', 'c', 'a', 'b', 'c']);
});

test('connection counts are shared across rebuilds of the balancer', () => {
  const connections = withCounts({ a: 5 });
  const first = new LeastConnectionsBalancer({
    candidates: [backend('a'), backend('b')],
    seed: 0,
    connections,
  });
  assert.equal(first.pick(KEY)?.name, 'b');
  const rebuilt = new LeastConnectionsBalancer({
    candidates: [backend('a'), backend('b'), backend('c')],
    seed: 0,
    connections,
  });
  connections.increment('b');
  assert.equal(rebuilt.pick(KEY)?.name, 'c');
});

test('the key is ignored', () => {
  const make = (): LeastConnectionsBalancer =>
    new LeastConnectionsBalancer({
      candidates: [backend('a'), backend('b')],
      seed: 0,
      connections: withCounts({ a: 1 }),
    });
  assert.equal(make().pick(new Uint8Array(0))?.name, make().pick(Uint8Array.of(1, 2, 3))?.name);
});
