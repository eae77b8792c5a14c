import { test } from 'node:test';
import assert from 'node:assert/strict';
import { flowKey, ipv4ToNumber } from './relay-flow-key.js';

test('ipv4ToNumber parses canonical dotted quads and refuses everything else', () => {
  assert.equal(ipv4ToNumber('0.0.0.0'), 0);
  assert.equal(ipv4ToNumber('127.0.0.1'), 0x7f000001);
  assert.equal(ipv4ToNumber('255.255.255.255'), 0xffffffff);
  assert.equal(ipv4ToNumber('198.18.16.1'), ((198 << 24) >>> 0) + (18 << 16) + (16 << 8) + 1);
  for (const bad of [
    '',
    '1.2.3',
    '1.2.3.4.5',
    '256.1.1.1',
    '1.2.3.1000',
    '01.2.3.4',
    '1..2.3',
    '.1.2.3',
    '1.2.3.',
    '::1',
    '::ffff:1.2.3.4',
    '2001:db8::1',
    '1.2.3.a',
    ' 1.2.3.4',
  ]) {
    assert.equal(ipv4ToNumber(bad), -1, bad);
  }
});

test('flow keys: IPv4 keys are exact numbers, distinct per address, port and virtual port', () => {
  const seen = new Map<number | string, string>();
  const addresses = ['0.0.0.0', '0.0.0.1', '1.0.0.0', '127.0.0.1', '255.255.255.255', '10.0.0.1'];
  for (const a of addresses) {
    for (const port of [0, 1, 500, 4500, 65535]) {
      for (const natT of [false, true]) {
        const k = flowKey(a, port, natT);
        assert.equal(typeof k, 'number');
        assert.ok(Number.isSafeInteger(k));
        const what = `${a}:${port}:${natT}`;
        assert.equal(seen.get(k), undefined, `${what} collides with ${seen.get(k)}`);
        seen.set(k, what);
      }
    }
  }
});

test('flow keys: IPv6 keys are strings that never meet an IPv4 key', () => {
  const k = flowKey('2001:db8::1', 4500, true);
  assert.equal(typeof k, 'string');
  assert.notEqual(k, flowKey('2001:db8::1', 4500, false));
  assert.notEqual(k, flowKey('2001:db8::1', 4501, true));
  assert.equal(k, flowKey('2001:db8::1', 4500, true));
  assert.notEqual(flowKey('::ffff:1.2.3.4', 500, false), flowKey('1.2.3.4', 500, false));
});
