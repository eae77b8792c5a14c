import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Thresholds } from './thresholds.js';

function run(rise: number, fall: number, results: string): string {
  const t = new Thresholds(rise, fall);
  return [...results].map((c) => t.record(c === '+').verdict[0]).join('');
}

describe('Thresholds', () => {
  it('decides the first verdict from one result', () => {
    assert.equal(run(2, 3, '+'), 'u');
    assert.equal(run(2, 3, '-'), 'd');
  });
  it('goes down after fall consecutive failures and up after rise consecutive successes', () => {
    assert.equal(run(2, 3, '+---'), 'uuud');
    assert.equal(run(2, 3, '+--+---'), 'uuuuuud');
    assert.equal(run(2, 3, '-++'), 'ddu');
    assert.equal(run(2, 3, '-+-++'), 'ddddu');
  });
  it('never moves on alternating results', () => {
    assert.equal(run(2, 2, '+-+-+-+-+-'), 'uuuuuuuuuu');
    assert.equal(run(2, 2, '-+-+-+-+-+'), 'dddddddddd');
  });
  it('with rise = fall = 1 follows every result', () => {
    assert.equal(run(1, 1, '+-+-'), 'udud');
  });
  it('reports streaks and changes', () => {
    const t = new Thresholds(2, 2);
    assert.deepEqual(t.record(true), { from: 'unknown', verdict: 'up', changed: true, streak: 1 });
    assert.deepEqual(t.record(false), { from: 'up', verdict: 'up', changed: false, streak: 1 });
    assert.deepEqual(t.record(false), { from: 'up', verdict: 'down', changed: true, streak: 2 });
  });
  it('rejects nonsense thresholds', () => {
    assert.throws(() => new Thresholds(0, 1), RangeError);
    assert.throws(() => new Thresholds(1, 1.5), RangeError);
  });
});

it('a known verdict carries over (a reload restarts the monitors): an up backend still needs fall failures', () => {
  const t = new Thresholds(2, 3, 'up');
  assert.equal(t.verdict, 'up');
  assert.equal(t.record(false).verdict, 'up');
  assert.equal(t.record(false).verdict, 'up');
  assert.equal(t.record(false).verdict, 'down');
});
