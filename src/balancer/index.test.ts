import { test } from 'node:test';
import assert from 'node:assert/strict';

import type { BalancingMethod as ConfigMethod } from '../config/types.js';
import type { BalancingMethod } from './balancer.js';
import {
  BALANCER_FACTORIES,
  ConnectionCounts,
  LeastConnectionsBalancer,
  MaglevBalancer,
  WeightedRoundRobinBalancer,
  createBalancer,
} from './index.js';

const input = {
  candidates: [{ name: 'rras1', address: '198.18.0.10', weight: 1 }],
  seed: 0x1234,
  connections: new ConnectionCounts(),
};

// The configuration's list of methods and the balancer's are the same (a compile error otherwise).
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const sameMethods: Same<ConfigMethod, BalancingMethod> = true;

test('the configuration and the balancer know the same methods', () => {
  assert.equal(sameMethods, true);
});

test('createBalancer builds the method it is asked for', () => {
  const expected: Record<BalancingMethod, { type: unknown; isConsistent: boolean }> = {
    maglev: { type: MaglevBalancer, isConsistent: true },
    'least-connections': { type: LeastConnectionsBalancer, isConsistent: false },
    'weighted-round-robin': { type: WeightedRoundRobinBalancer, isConsistent: false },
  };
  assert.deepEqual(Object.keys(BALANCER_FACTORIES).sort(), Object.keys(expected).sort());
  for (const [method, { type, isConsistent }] of Object.entries(expected) as Array<
    [BalancingMethod, { type: new (...args: never[]) => unknown; isConsistent: boolean }]
  >) {
    const balancer = createBalancer(method, input);
    assert.ok(balancer instanceof type, method);
    assert.equal(balancer.method, method);
    assert.equal(balancer.isConsistent, isConsistent);
    assert.equal(balancer.pick(new Uint8Array(8))?.name, 'rras1');
  }
});

test('an unknown method (untyped input) is a RangeError, not a crash elsewhere', () => {
  assert.throws(() => createBalancer('random' as BalancingMethod, input), RangeError);
  assert.throws(() => createBalancer('toString' as BalancingMethod, input), RangeError);
});
