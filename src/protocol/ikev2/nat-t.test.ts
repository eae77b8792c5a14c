import { test } from 'node:test';
import assert from 'node:assert/strict';

import {
  ESP_4500_HEX,
  IKE_AUTH_4500_HEX,
  IKE_AUTH_REQUEST_HEX,
  IKEV1_HEADER_HEX,
  hex,
} from '../../../test/support/ikev2-fixtures.js';
import { classifyNatT } from './nat-t.js';
import { NAT_T_INVALID_CODES, NAT_T_OUTCOMES } from './parse-codes.js';
import { IkeParseStats } from './parse-stats.js';

test('NAT-keepalive: the single octet 0xFF (RFC 3948 §2.3)', () => {
  assert.deepEqual(classifyNatT(Uint8Array.of(0xff)), { kind: 'keepalive' });
});

test('IKE behind the non-ESP marker: header parsed at offset 4, message view without marker', () => {
  const datagram = hex(IKE_AUTH_4500_HEX);
  const result = classifyNatT(datagram);
  assert.equal(result.kind, 'ike');
  if (result.kind !== 'ike') return;
  assert.equal(result.header.exchange, 'IKE_AUTH');
  assert.equal(result.header.length, datagram.length - 4);
  assert.deepEqual(result.message, hex(IKE_AUTH_REQUEST_HEX));
  assert.equal(result.message.buffer, datagram.buffer, 'a view, not a copy');
});

test('ESP: SPI and sequence number from the first 8 octets (RFC 3948 §2.1)', () => {
  assert.deepEqual(classifyNatT(hex(ESP_4500_HEX)), { kind: 'esp', spi: 0xc0ffee01, seq: 7 });
  assert.deepEqual(classifyNatT(hex('ffffffff ffffffff')), {
    kind: 'esp',
    spi: 0xffffffff,
    seq: 0xffffffff,
  });
  // 0xFF followed by more octets is ESP with SPI 0xFF......, not a keepalive.
  assert.deepEqual(classifyNatT(hex('ff000000 00000001')), {
    kind: 'esp',
    spi: 0xff000000,
    seq: 1,
  });
  // Exactly 8 octets (SPI + sequence) is enough for the balancer to classify.
  assert.equal(classifyNatT(hex('00000001 00000000')).kind, 'esp');
});

test('invalid datagrams, including IKE codes prefixed with ike-', () => {
  const cases: Array<[string, string, string]> = [
    ['empty', '', 'empty'],
    ['one octet not 0xFF', '00', 'esp-too-short'],
    ['3-octet ESP', 'c0ffee', 'esp-too-short'],
    ['7-octet ESP', 'c0ffee01000000', 'esp-too-short'],
    ['two 0xFF', 'ffff', 'esp-too-short'],
    ['marker alone', '00000000', 'ike-too-short'],
    ['marker + 27 octets', `00000000${'11'.repeat(27)}`, 'ike-too-short'],
    ['marker + IKEv1', `00000000 ${IKEV1_HEADER_HEX}`, 'ike-bad-version'],
    [
      'marker + truncated IKE_AUTH',
      IKE_AUTH_4500_HEX.trimEnd().slice(0, -4),
      'ike-length-mismatch',
    ],
    ['IKE without marker reads as ESP', IKE_AUTH_REQUEST_HEX, 'esp'],
  ];
  for (const [label, text, expected] of cases) {
    const result = classifyNatT(hex(text));
    if (expected === 'esp') assert.equal(result.kind, 'esp', label);
    else assert.deepEqual(result, { kind: 'invalid', code: expected }, label);
    assert.ok(
      result.kind !== 'invalid' || (NAT_T_INVALID_CODES as readonly string[]).includes(result.code),
    );
  }
});

test('stats: natT counts the classification, header counts the embedded IKE parse', () => {
  const stats = new IkeParseStats();
  assert.deepEqual(Object.keys(stats.natT), [...NAT_T_OUTCOMES]);
  classifyNatT(Uint8Array.of(0xff), stats);
  classifyNatT(hex(ESP_4500_HEX), stats);
  classifyNatT(hex(IKE_AUTH_4500_HEX), stats);
  classifyNatT(hex('00000000'), stats);
  classifyNatT(new Uint8Array(0), stats);
  assert.equal(stats.natT.keepalive, 1);
  assert.equal(stats.natT.esp, 1);
  assert.equal(stats.natT.ike, 1);
  assert.equal(stats.natT['ike-too-short'], 1);
  assert.equal(stats.natT.empty, 1);
  assert.equal(stats.header.ok, 1);
  assert.equal(stats.header['too-short'], 1);
});
