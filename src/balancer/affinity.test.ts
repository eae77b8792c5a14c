import { test } from 'node:test';
import assert from 'node:assert/strict';

import { ikeSpiKey, sourceIpKey } from './affinity.js';
import { slotOf } from './jhash.js';

const hex = (bytes: Uint8Array): string => Buffer.from(bytes).toString('hex');

test('an IKE SPI key is the 8 wire bytes, copied', () => {
  const packet = Buffer.from('0123456789abcdef0000000000000000', 'hex');
  const key = ikeSpiKey(packet.subarray(0, 8));
  assert.equal(hex(key), '0123456789abcdef');
  packet.fill(0);
  assert.equal(hex(key), '0123456789abcdef', 'the key must survive reuse of the packet buffer');
  // The slot the kernel vector in jhash.test.ts gives for this SPI and seed 0x1234.
  assert.equal(slotOf(key, 0x1234), 34224);
});

test('an IKE SPI of the wrong length is a programming error', () => {
  assert.throws(() => ikeSpiKey(new Uint8Array(7)), RangeError);
  assert.throws(() => ikeSpiKey(new Uint8Array(16)), RangeError);
});

test('IPv4 source addresses are 4 bytes in network order', () => {
  assert.equal(hex(sourceIpKey('198.18.0.10')), 'c612000a');
  assert.equal(hex(sourceIpKey('0.0.0.0')), '00000000');
  assert.equal(hex(sourceIpKey('255.255.255.255')), 'ffffffff');
  assert.equal(slotOf(sourceIpKey('198.18.0.10'), 0x1234), 36269); // kernel vector "ipv4"
});

test('IPv6 source addresses are 16 bytes in network order, in every textual form', () => {
  const full = '20010db8000000000000000000000001';
  for (const text of [
    '2001:db8::1',
    '2001:0db8:0000:0000:0000:0000:0000:0001',
    '2001:DB8:0:0:0:0:0:1',
    '2001:db8::1%eth0',
  ]) {
    assert.equal(hex(sourceIpKey(text)), full, text);
  }
  assert.equal(hex(sourceIpKey('::')), '0'.repeat(32));
  assert.equal(hex(sourceIpKey('::1')), `${'0'.repeat(31)}1`);
  assert.equal(hex(sourceIpKey('fe80::')), `fe80${'0'.repeat(28)}`);
  assert.equal(hex(sourceIpKey('1:2:3:4:5:6:7:8')), '00010002000300040005000600070008');
  assert.equal(hex(sourceIpKey('64:ff9b::198.18.0.10')), '0064ff9b0000000000000000c612000a');
  assert.equal(slotOf(sourceIpKey('2001:db8::1'), 0x1234), 4563); // kernel vector "ipv6"
});

test('an IPv4-mapped IPv6 address (dual-stack socket) gives the IPv4 key', () => {
  assert.equal(hex(sourceIpKey('::ffff:198.18.0.10')), 'c612000a');
  assert.equal(hex(sourceIpKey('::FFFF:c612:000a')), 'c612000a');
  assert.equal(hex(sourceIpKey('0:0:0:0:0:ffff:198.18.0.10')), 'c612000a');
  // IPv4-compatible (deprecated, RFC 4291 §2.5.5.1) is a genuine IPv6 address: 16 bytes.
  assert.equal(sourceIpKey('::198.18.0.10').length, 16);
});

test('a string that is not an address is rejected', () => {
  for (const bad of [
    '',
    'rras1',
    '198.18.0',
    '198.18.0.256',
    '2001:db8:::1',
    '1:2:3:4:5:6:7:8:9',
  ]) {
    assert.throws(() => sourceIpKey(bad), TypeError, bad);
  }
});
