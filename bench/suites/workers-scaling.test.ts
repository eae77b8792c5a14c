import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MIN_SCALING_CORES, workersScalingPlan } from './workers-scaling.js';

test('workers scaling: not measurable below 4 cores, with the reason', () => {
  const p = workersScalingPlan(2);
  assert.ok('reason' in p);
  assert.match(p.reason, /not measurable here: 2 cores.*at least 4/);
  assert.equal(MIN_SCALING_CORES, 4);
});

test('workers scaling: half the cores for the workers, the bench cores keep their roles', () => {
  const p = workersScalingPlan(8);
  assert.ok(!('reason' in p));
  assert.equal(p.workers, 4);
  assert.deepEqual(p.balancer, [0, 2, 3, 4]);
  assert.deepEqual(p.placement.generators, [1, 5, 6, 7]);
  assert.equal(p.placement.servers, '1,5,6,7');
  assert.equal(p.forced, undefined);
  const four = workersScalingPlan(4);
  assert.ok(!('reason' in four));
  assert.deepEqual(
    [four.balancer, four.placement.generators],
    [
      [0, 2],
      [1, 3],
    ],
  );
});

test('workers scaling: forced on 2 cores, two workers share the balancer core and it says so', () => {
  const p = workersScalingPlan(2, true);
  assert.ok(!('reason' in p));
  assert.equal(p.workers, 2);
  assert.deepEqual(p.balancer, [0]);
  assert.deepEqual(p.placement.generators, [1]);
  assert.match(p.forced ?? '', /not a scaling figure/);
});
