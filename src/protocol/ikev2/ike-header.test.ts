import { test } from 'node:test';
import assert from 'node:assert/strict';
import { inspect } from 'node:util';

import { IKE_EXCHANGE, IKE_MAX_MESSAGE_LENGTH } from './constants.js';
import {
  COOKIE_RESPONSE_HEX,
  FIXTURE_SPI_I,
  FIXTURE_SPI_R,
  IKE_AUTH_REQUEST_HEX,
  IKE_SA_INIT_REQUEST_HEX,
  IKE_SA_INIT_RESPONSE_HEX,
  IKEV1_HEADER_HEX,
  hex,
} from '../../../test/support/ikev2-fixtures.js';
import { decodeIkeHeader, formatSpi, parseIkeHeader, type IkeHeader } from './ike-header.js';
import { IKE_HEADER_INVALID_CODES, IKE_HEADER_OUTCOMES } from './parse-codes.js';
import { IkeParseStats } from './parse-stats.js';

function okHeader(bytes: Uint8Array): IkeHeader {
  const result = parseIkeHeader(bytes);
  assert.equal(result.kind, 'ok', inspect(result));
  return (result as { header: IkeHeader }).header;
}

/** A copy of `bytes` with `edit` applied. */
function edited(bytes: Uint8Array, edit: (copy: Uint8Array, view: DataView) => void): Uint8Array {
  const copy = bytes.slice();
  edit(copy, new DataView(copy.buffer));
  return copy;
}

const REQUEST = hex(IKE_SA_INIT_REQUEST_HEX);

test('IKE_SA_INIT request fixture: every header field', () => {
  assert.deepEqual(okHeader(REQUEST), {
    spiI: FIXTURE_SPI_I,
    spiR: 0n,
    nextPayload: 33,
    majorVersion: 2,
    minorVersion: 0,
    exchangeType: 34,
    exchange: 'IKE_SA_INIT',
    flags: 0x08,
    isInitiator: true,
    isResponse: false,
    hasHigherVersion: false,
    messageId: 0,
    length: 272,
  });
});

test('IKE_SA_INIT response, stateless COOKIE reply (SPIr 0) and IKE_AUTH fixtures', () => {
  const response = okHeader(hex(IKE_SA_INIT_RESPONSE_HEX));
  assert.equal(response.spiR, FIXTURE_SPI_R);
  assert.equal(response.isResponse, true);
  assert.equal(response.isInitiator, false);
  assert.equal(response.length, 248);
  // RFC 7296 §2.6: a responder that keeps no state echoes SPIr = 0; it must not be rejected.
  const cookie = okHeader(hex(COOKIE_RESPONSE_HEX));
  assert.equal(cookie.spiR, 0n);
  assert.equal(cookie.nextPayload, 41);
  const auth = okHeader(hex(IKE_AUTH_REQUEST_HEX));
  assert.equal(auth.exchange, 'IKE_AUTH');
  assert.equal(auth.messageId, 1);
  assert.equal(auth.nextPayload, 46);
});

test('minor version, V flag and reserved flag bits are reported, not rejected (RFC 7296 §3.1)', () => {
  const header = okHeader(
    edited(REQUEST, (b) => {
      b[17] = 0x2f;
      b[19] = 0x08 | 0x10 | 0x07 | 0x80;
    }),
  );
  assert.equal(header.minorVersion, 15);
  assert.equal(header.hasHigherVersion, true);
  assert.equal(header.flags, 0x9f);
  assert.equal(header.isInitiator, true);
});

test('an exchange type vpnlb does not know is accepted with its raw value and counted', () => {
  const stats = new IkeParseStats();
  for (const type of [38, 44, 200, 255]) {
    const result = parseIkeHeader(
      edited(hex(IKE_AUTH_REQUEST_HEX), (b) => {
        b[18] = type;
      }),
      stats,
    );
    assert.equal(result.kind, 'ok');
    if (result.kind === 'ok') {
      assert.equal(result.header.exchangeType, type);
      assert.equal(result.header.exchange, undefined);
    }
  }
  // RFC 5723 IKE_SESSION_RESUME (38) starts with SPIr = 0 like IKE_SA_INIT: not judged either.
  assert.equal(
    parseIkeHeader(
      edited(REQUEST, (b) => {
        b[18] = 38;
      }),
    ).kind,
    'ok',
  );
  assert.equal(
    parseIkeHeader(
      edited(REQUEST, (b) => {
        b[18] = IKE_EXCHANGE.IKE_INTERMEDIATE;
      }),
    ).kind,
    'invalid',
  );
  assert.equal(stats.unknownExchange, 4);
  assert.equal(stats.header.ok, 4);
});

test('invalid inputs: one case per code, with the documented precedence', () => {
  const auth = hex(IKE_AUTH_REQUEST_HEX);
  const cases: Array<[string, Uint8Array, string]> = [
    ['empty datagram', new Uint8Array(0), 'too-short'],
    ['27 octets', REQUEST.subarray(0, 27), 'too-short'],
    ['IKEv1', hex(IKEV1_HEADER_HEX), 'bad-version'],
    [
      'major 3',
      edited(REQUEST, (b) => {
        b[17] = 0x30;
      }),
      'bad-version',
    ],
    [
      'major 0',
      edited(REQUEST, (b) => {
        b[17] = 0x02;
      }),
      'bad-version',
    ],
    ['length 27', edited(REQUEST, (_b, v) => v.setUint32(24, 27)), 'bad-length'],
    ['length 0', edited(REQUEST, (_b, v) => v.setUint32(24, 0)), 'bad-length'],
    [
      'length > max',
      edited(REQUEST, (_b, v) => v.setUint32(24, IKE_MAX_MESSAGE_LENGTH + 1)),
      'bad-length',
    ],
    ['length 2^32-1', edited(REQUEST, (_b, v) => v.setUint32(24, 0xffffffff)), 'bad-length'],
    ['datagram longer than length', new Uint8Array([...REQUEST, 0]), 'length-mismatch'],
    ['datagram shorter than length', REQUEST.subarray(0, 271), 'length-mismatch'],
    ['header only', REQUEST.subarray(0, 28), 'length-mismatch'],
    ['SPIi zero', edited(REQUEST, (b) => b.fill(0, 0, 8)), 'zero-spi'],
    [
      'exchange 0',
      edited(REQUEST, (b) => {
        b[18] = 0;
      }),
      'bad-exchange-type',
    ],
    [
      'exchange 33',
      edited(REQUEST, (b) => {
        b[18] = 33;
      }),
      'bad-exchange-type',
    ],
    [
      'INIT with I and R',
      edited(REQUEST, (b) => {
        b[19] = 0x28;
      }),
      'bad-flags',
    ],
    [
      'INIT with neither',
      edited(REQUEST, (b) => {
        b[19] = 0x00;
      }),
      'bad-flags',
    ],
    ['INIT message ID 1', edited(REQUEST, (_b, v) => v.setUint32(20, 1)), 'bad-message-id'],
    [
      'INIT request SPIr set',
      edited(REQUEST, (b) => {
        b[15] = 1;
      }),
      'nonzero-spi-r',
    ],
    ['IKE_AUTH SPIr zero', edited(auth, (b) => b.fill(0, 8, 16)), 'zero-spi-r'],
    [
      'INFORMATIONAL SPIr zero',
      edited(auth, (b) => {
        b.fill(0, 8, 16);
        b[18] = 37;
      }),
      'zero-spi-r',
    ],
    // Precedence: version before length before SPI.
    [
      'IKEv1 with bad length',
      edited(hex(IKEV1_HEADER_HEX), (_b, v) => v.setUint32(24, 3)),
      'bad-version',
    ],
    [
      'bad length and zero SPI',
      edited(REQUEST, (b, v) => {
        v.setUint32(24, 3);
        b.fill(0, 0, 8);
      }),
      'bad-length',
    ],
  ];
  const stats = new IkeParseStats();
  for (const [label, bytes, code] of cases) {
    assert.deepEqual(parseIkeHeader(bytes, stats), { kind: 'invalid', code }, label);
  }
  const reached = new Set(cases.map((c) => c[2]));
  assert.deepEqual(
    [...reached].sort(),
    [...IKE_HEADER_INVALID_CODES].sort(),
    'every code has a case',
  );
  assert.equal(stats.header['length-mismatch'], 3);
  assert.equal(stats.header.ok, 0);
});

test('decodeIkeHeader validates the header without the datagram-size rule', () => {
  const result = decodeIkeHeader(REQUEST.subarray(0, 28));
  assert.equal(result.kind, 'ok');
  assert.equal(decodeIkeHeader(REQUEST.subarray(0, 20)).kind, 'invalid');
});

test('parsing does not copy or alter the input and reads only the header', () => {
  const before = REQUEST.slice();
  parseIkeHeader(REQUEST);
  assert.deepEqual(REQUEST, before);
  // Garbage after the header is not looked at by the header parser.
  const junk = edited(REQUEST, (b) => b.fill(0xee, 28));
  assert.equal(parseIkeHeader(junk).kind, 'ok');
});

test('rejections reuse frozen objects (no allocation for garbage)', () => {
  const a = parseIkeHeader(new Uint8Array(3));
  const b = parseIkeHeader(new Uint8Array(5));
  assert.equal(a, b);
  assert.ok(Object.isFrozen(a));
});

test('IkeParseStats declares every outcome at zero and counts each parse once', () => {
  const stats = new IkeParseStats();
  assert.deepEqual(Object.keys(stats.header), [...IKE_HEADER_OUTCOMES]);
  assert.ok(Object.values(stats.header).every((n) => n === 0));
  parseIkeHeader(REQUEST, stats);
  parseIkeHeader(REQUEST, stats);
  parseIkeHeader(new Uint8Array(1), stats);
  const snap = stats.snapshot();
  assert.equal(snap.header.ok, 2);
  assert.equal(snap.header['too-short'], 1);
  stats.reset();
  assert.equal(stats.header.ok, 0);
  assert.equal(snap.header.ok, 2, 'a snapshot is a copy');
});

test('formatSpi pads to 16 hex digits', () => {
  assert.equal(formatSpi(FIXTURE_SPI_I), '8a3f2c1d5e6b7a90');
  assert.equal(formatSpi(1n), '0000000000000001');
});
