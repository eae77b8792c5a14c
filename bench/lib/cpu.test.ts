import assert from 'node:assert/strict';
import { test } from 'node:test';
import { coreSpeeds, speedChange } from './cpu.js';

test('speedChange names the cores whose speed moved by more than a fifth', () => {
  assert.equal(speedChange([600, 610], [560, 640]), undefined);
  const f = speedChange([600, 610], [300, 600]);
  assert.match(f ?? '', /CPU 0 600 → 300 MiB\/s/);
  assert.doesNotMatch(f ?? '', /CPU 1/);
  assert.match(speedChange([300, 300], [400, 300]) ?? '', /CPU 0 300 → 400/);
  assert.equal(speedChange([undefined, 600], [300, undefined]), undefined);
});

test('coreSpeeds measures a core of this machine (taskset, util-linux)', () => {
  const v = coreSpeeds(1);
  assert.equal(v.length, 1);
  assert.ok(v[0] !== undefined && v[0] > 0, `CPU 0: ${v[0]}`);
});
