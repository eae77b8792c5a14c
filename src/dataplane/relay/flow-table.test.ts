import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FlowTable, type RemovalReason, type TableEntry } from './flow-table.js';

interface E extends TableEntry {
  readonly id: number;
}
const entry = (id: number): E => ({ id, lastSeen: 0, referenced: false });

function table(maxEntries: number, idleTimeout = 1000) {
  const clock = {
    t: 0,
    now() {
      return this.t;
    },
  };
  const removed: [string, RemovalReason][] = [];
  const t = new FlowTable<E>({
    maxEntries,
    idleTimeout,
    clock,
    scanLimit: 8,
    onRemove: (k, _e, r) => removed.push([k, r]),
  });
  return { t, clock, removed };
}

test('idle entries expire on sweep, active ones stay (fake clock)', () => {
  const { t, clock, removed } = table(10, 1000);
  t.insert('a', entry(1));
  t.insert('b', entry(2));
  clock.t = 600;
  t.touch(t.get('b')!);
  clock.t = 1000;
  assert.equal(t.sweep(), 1);
  assert.deepEqual(removed, [['a', 'idle']]);
  assert.ok(t.get('b'));
  clock.t = 1601;
  assert.equal(t.sweep(), 1);
  assert.equal(t.size, 0);
});

test('the table never exceeds maxEntries: a flood of one-packet entries evicts itself', () => {
  const { t, removed } = table(16);
  for (let i = 0; i < 16; i++) t.insert(`live${i}`, entry(i));
  for (let i = 0; i < 16; i++) t.touch(t.get(`live${i}`)!); // traffic: referenced
  let refused = 0;
  for (let i = 0; i < 10_000; i++) {
    if (!t.insert(`flood${i}`, entry(i))) refused++;
    assert.ok(t.size <= 16);
    // the live flows keep carrying traffic
    if (i % 4 === 0)
      for (let j = 0; j < 16; j++) {
        const e = t.get(`live${j}`);
        if (e) t.touch(e);
      }
  }
  assert.equal(t.size, 16);
  assert.ok(removed.every(([, r]) => r === 'evicted'));
  assert.ok(refused + removed.length >= 10_000 - 16);
});

test('second chance: referenced entries move to the back, unreferenced ones are evicted first', () => {
  const { t, removed } = table(3);
  t.insert('a', entry(1));
  t.insert('b', entry(2));
  t.insert('c', entry(3));
  t.touch(t.get('a')!);
  assert.equal(t.insert('d', entry(4)), true);
  assert.deepEqual(removed, [['b', 'evicted']]);
  assert.deepEqual(
    [...t.entries()].map(([k]) => k),
    ['c', 'a', 'd'],
  );
});

test('when every scanned entry is busy the insertion is refused, bounded by the scan limit', () => {
  const { t, removed } = table(100);
  for (let i = 0; i < 100; i++) t.insert(`k${i}`, entry(i));
  for (const e of t.values()) t.touch(e);
  assert.equal(
    t.insert('new', entry(-1)),
    false,
    'the hand cleared 8 flags and found nothing to evict',
  );
  assert.equal(removed.length, 0);
  assert.equal(t.size, 100);
});

test('an expired entry is preferred for eviction even when referenced', () => {
  const { t, clock, removed } = table(2, 1000);
  t.insert('old', entry(1));
  t.touch(t.get('old')!);
  clock.t = 500;
  t.insert('mid', entry(2));
  clock.t = 1200;
  assert.equal(t.insert('new', entry(3)), true);
  assert.deepEqual(removed, [['old', 'idle']]);
});

test('removeWhere and clear report their reason', () => {
  const { t, removed } = table(10);
  for (let i = 0; i < 4; i++) t.insert(`k${i}`, entry(i));
  assert.equal(
    t.removeWhere((e) => e.id % 2 === 0, 'flushed'),
    2,
  );
  t.clear('stopped');
  assert.deepEqual(
    removed.map(([, r]) => r),
    ['flushed', 'flushed', 'stopped', 'stopped'],
  );
});
