import { test } from 'node:test';
import assert from 'node:assert/strict';
import { NatTFlowIndex } from './natt-flow-index.js';

test('an address maps to the servers of its live NAT-T flows, counted per flow', () => {
  const index = new NatTFlowIndex();
  assert.deepEqual(index.serversOf('198.18.0.10'), []);
  index.add('198.18.0.10', 's1');
  index.add('198.18.0.10', 's1');
  index.add('198.18.0.20', 's2');
  assert.deepEqual(index.serversOf('198.18.0.10'), ['s1']);
  index.add('198.18.0.10', 's3');
  assert.deepEqual(index.serversOf('198.18.0.10').sort(), ['s1', 's3']);
  index.remove('198.18.0.10', 's3');
  index.remove('198.18.0.10', 's1');
  assert.deepEqual(index.serversOf('198.18.0.10'), ['s1'], 'one of the two s1 flows is still open');
  index.remove('198.18.0.10', 's1');
  assert.deepEqual(index.serversOf('198.18.0.10'), []);
  assert.equal(index.size, 1);
});

test('removing a flow that was never added changes nothing', () => {
  const index = new NatTFlowIndex();
  index.add('2001:db8::1', 's1');
  index.remove('2001:db8::1', 's2');
  index.remove('2001:db8::2', 's1');
  assert.deepEqual(index.serversOf('2001:db8::1'), ['s1']);
});
