/**
 * The one conformance suite every balancing method passes (hono's habit: one interface, one
 * shared suite, a few lines per implementation). Method-specific behaviour (Maglev's table,
 * nginx's sequence...) is tested beside each implementation.
 *
 * Picks are followed by `connections.increment(name)`, as the data planes do when a tunnel
 * opens, so that least connections sees load grow. No assertion depends on timing.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';

import {
  type Balancer,
  type BalancerFactory,
  type Candidate,
  ConnectionCounts,
} from '../../src/balancer/balancer.js';

const SEED = 0x1234;

function candidate(name: string, weight = 1): Candidate {
  return {
    name,
    address: `198.18.1.${name.length}${name.charCodeAt(name.length - 1) % 10}`,
    weight,
  };
}

/** Deterministic 8-byte keys (xorshift32), shaped like IKE SPIs. */
function keyStream(seed = 0x2545f491): () => Uint8Array {
  let x = seed;
  const next = (): number => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x;
  };
  return () => {
    const key = new Uint8Array(8);
    const view = new DataView(key.buffer);
    view.setUint32(0, next());
    view.setUint32(4, next());
    return key;
  };
}

function build(
  factory: BalancerFactory,
  candidates: readonly Candidate[],
  connections = new ConnectionCounts(),
): Balancer {
  return factory({ candidates: Object.freeze([...candidates]), seed: SEED, connections });
}

/** Picks `count` times with fresh keys, counting connections; returns the picked names. */
function pickMany(balancer: Balancer, connections: ConnectionCounts, count: number): string[] {
  const nextKey = keyStream();
  const names: string[] = [];
  for (let i = 0; i < count; i++) {
    const picked = balancer.pick(nextKey());
    assert.ok(picked, 'pick returned undefined with candidates present');
    connections.increment(picked.name);
    names.push(picked.name);
  }
  return names;
}

/**
 * Runs the shared conformance tests against one method.
 *
 * @param name label of the `describe` block (the method's name).
 * @param factory builds a balancer of the method from an input.
 */
export function runBalancerConformance(name: string, factory: BalancerFactory): void {
  describe(`${name}: Balancer conformance`, () => {
    test('no candidates → undefined, whatever the key', () => {
      const balancer = build(factory, []);
      for (const key of [new Uint8Array(0), new Uint8Array(8), new Uint8Array(100).fill(7)]) {
        assert.equal(balancer.pick(key), undefined);
      }
    });

    test('a single candidate is always picked', () => {
      const only = candidate('rras1', 3);
      const connections = new ConnectionCounts();
      const balancer = build(factory, [only], connections);
      const nextKey = keyStream();
      for (let i = 0; i < 200; i++) {
        assert.equal(balancer.pick(nextKey()), only);
        connections.increment(only.name);
      }
    });

    test('every pick is one of the candidates (the same object)', () => {
      const candidates = ['rras1', 'rras2', 'rras3', 'rras4'].map((n, i) => candidate(n, i + 1));
      const connections = new ConnectionCounts();
      const balancer = build(factory, candidates, connections);
      const nextKey = keyStream();
      for (let i = 0; i < 500; i++) {
        const picked = balancer.pick(nextKey());
        assert.ok(picked !== undefined && candidates.includes(picked));
        connections.increment(picked.name);
      }
    });

    test('picks follow the weights (within 3 points of share over 20000 picks)', () => {
      const weights: Record<string, number> = { a: 1, b: 2, c: 3, d: 4 };
      const candidates = Object.entries(weights).map(([n, w]) => candidate(n, w));
      const connections = new ConnectionCounts();
      const names = pickMany(build(factory, candidates, connections), connections, 20000);
      for (const [n, w] of Object.entries(weights)) {
        const share = names.filter((x) => x === n).length / names.length;
        assert.ok(
          Math.abs(share - w / 10) <= 0.03,
          `${n}: share ${share.toFixed(4)} vs weight share ${w / 10}`,
        );
      }
    });

    test('never throws on empty, 1-byte, odd-length and long keys', () => {
      const candidates = [candidate('rras1'), candidate('rras2'), candidate('rras3')];
      const balancer = build(factory, candidates);
      const keys = [0, 1, 3, 7, 8, 12, 13, 16, 100, 1500].map((len) =>
        new Uint8Array(len).fill(len & 0xff),
      );
      for (const key of keys) {
        const picked = balancer.pick(key);
        assert.ok(
          picked !== undefined && candidates.includes(picked),
          `key of ${key.length} bytes`,
        );
      }
    });

    test('candidates with weight 0 (or invalid weights) are never picked', () => {
      const candidates = [
        candidate('up', 2),
        candidate('zero', 0),
        candidate('neg', -1),
        candidate('nan', Number.NaN),
      ];
      const connections = new ConnectionCounts();
      const names = pickMany(build(factory, candidates, connections), connections, 300);
      assert.deepEqual([...new Set(names)], ['up']);
      assert.equal(build(factory, [candidate('zero', 0)]).pick(new Uint8Array(8)), undefined);
    });

    test('the order of the candidates does not change any decision', () => {
      const candidates = ['rras3', 'rras10', 'rras1', 'rras2', 'rras7'].map((n, i) =>
        candidate(n, (i % 3) + 1),
      );
      const orders = [
        candidates,
        [...candidates].reverse(),
        [...candidates].sort((x, y) => x.weight - y.weight),
      ];
      const runs = orders.map((order) => {
        const connections = new ConnectionCounts();
        return pickMany(build(factory, order, connections), connections, 400);
      });
      assert.deepEqual(runs[1], runs[0]);
      assert.deepEqual(runs[2], runs[0]);
    });

    test('the input array is left untouched', () => {
      const candidates = [candidate('b'), candidate('a'), candidate('c')];
      const before = [...candidates];
      factory({ candidates, seed: SEED, connections: new ConnectionCounts() }).pick(
        new Uint8Array(8),
      );
      assert.deepEqual(candidates, before);
    });

    test('duplicate candidate names are rejected when building', () => {
      assert.throws(() => build(factory, [candidate('rras1'), candidate('rras1')]), RangeError);
    });

    test('a consistent method maps a key to the same backend on every pick and every node', () => {
      const candidates = ['rras1', 'rras2', 'rras3', 'rras4', 'rras5'].map((n) => candidate(n));
      const nodeA = build(factory, candidates);
      if (!nodeA.isConsistent) return; // only key-based methods promise this
      const nodeB = build(factory, [...candidates].reverse());
      const nextKey = keyStream();
      for (let i = 0; i < 500; i++) {
        const key = nextKey();
        const first = nodeA.pick(key);
        assert.equal(nodeA.pick(key), first);
        assert.equal(nodeB.pick(key)?.name, first?.name);
      }
    });
  });
}
