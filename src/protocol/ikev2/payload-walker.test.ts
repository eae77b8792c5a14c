import { test } from 'node:test';
import assert from 'node:assert/strict';

import { buildIkeMessage } from './build-message.js';
import {
  DH_GROUP,
  ENCR,
  IKE_EXCHANGE,
  IKE_FLAG,
  IKE_NOTIFY,
  IKE_PAYLOAD,
  IKE_PROTOCOL,
  IKE_TRANSFORM,
  INTEG,
  PRF,
} from './constants.js';
import {
  COOKIE_RESPONSE_HEX,
  IKE_AUTH_REQUEST_HEX,
  IKE_SA_INIT_REQUEST_HEX,
  INVALID_KE_RESPONSE_HEX,
  MS_VENDOR_ID_HEX,
  NO_PROPOSAL_RESPONSE_HEX,
  hex,
} from '../../../test/support/ikev2-fixtures.js';
import {
  IKE_MAX_PAYLOADS,
  findNotify,
  findPayload,
  parsePayloads,
  type IkeMessageOk,
} from './payload-walker.js';
import { IkeParseStats } from './parse-stats.js';
import { acceptedKeGroup, decodeKeBody, vendorIdPayload } from './payloads.js';
import { decodeSaBody } from './sa-payload.js';

function ok(bytes: Uint8Array): IkeMessageOk {
  const result = parsePayloads(bytes);
  assert.equal(result.kind, 'ok', result.kind === 'invalid' ? result.code : '');
  return result as IkeMessageOk;
}

/** A copy of `bytes` with `edit` applied. */
function edited(bytes: Uint8Array, edit: (copy: Uint8Array, view: DataView) => void): Uint8Array {
  const copy = bytes.slice();
  edit(copy, new DataView(copy.buffer));
  return copy;
}

const REQUEST = hex(IKE_SA_INIT_REQUEST_HEX);

test('IKE_SA_INIT request: payload chain, Notify decoding, SA / KE bodies', () => {
  const message = ok(REQUEST);
  assert.deepEqual(
    message.payloads.map((p) => p.type),
    [
      IKE_PAYLOAD.SA,
      IKE_PAYLOAD.KE,
      IKE_PAYLOAD.NONCE,
      IKE_PAYLOAD.NOTIFY,
      IKE_PAYLOAD.NOTIFY,
      IKE_PAYLOAD.NOTIFY,
      IKE_PAYLOAD.VENDOR_ID,
    ],
  );
  assert.deepEqual(
    message.payloads.map((p) => p.offset),
    [28, 76, 148, 184, 212, 240, 248],
  );
  assert.deepEqual(
    message.notifies.map((n) => n.type),
    [
      IKE_NOTIFY.NAT_DETECTION_SOURCE_IP,
      IKE_NOTIFY.NAT_DETECTION_DESTINATION_IP,
      IKE_NOTIFY.IKEV2_FRAGMENTATION_SUPPORTED,
    ],
  );
  assert.equal(
    Buffer.from(findNotify(message, IKE_NOTIFY.NAT_DETECTION_SOURCE_IP)!.data).toString('hex'),
    '232fc4e7797cc21a929637be52284b136cea91e9',
  );
  assert.equal(
    Buffer.from(findPayload(message, IKE_PAYLOAD.VENDOR_ID)!.body).toString('hex'),
    MS_VENDOR_ID_HEX,
  );
  assert.equal(findNotify(message, IKE_NOTIFY.COOKIE), undefined);

  const ke = decodeKeBody(findPayload(message, IKE_PAYLOAD.KE)!.body);
  assert.equal(ke?.dhGroup, DH_GROUP.ECP_256);
  assert.equal(ke?.keyData.length, 64);
  assert.deepEqual(decodeSaBody(findPayload(message, IKE_PAYLOAD.SA)!.body), [
    {
      number: 1,
      protocolId: IKE_PROTOCOL.IKE,
      spi: new Uint8Array(0),
      transforms: [
        { type: IKE_TRANSFORM.ENCR, id: ENCR.AES_CBC, keyLength: 256 },
        { type: IKE_TRANSFORM.INTEG, id: INTEG.HMAC_SHA2_256_128 },
        { type: IKE_TRANSFORM.PRF, id: PRF.HMAC_SHA2_256 },
        { type: IKE_TRANSFORM.DH, id: DH_GROUP.ECP_256 },
      ],
    },
  ]);
});

test('the replies a health probe must recognise: COOKIE, INVALID_KE_PAYLOAD, NO_PROPOSAL_CHOSEN', () => {
  const cookie = findNotify(ok(hex(COOKIE_RESPONSE_HEX)), IKE_NOTIFY.COOKIE);
  assert.equal(cookie?.data.length, 20);
  assert.equal(cookie?.protocolId, 0);
  assert.equal(cookie?.spi.length, 0);
  const invalidKe = findNotify(ok(hex(INVALID_KE_RESPONSE_HEX)), IKE_NOTIFY.INVALID_KE_PAYLOAD);
  assert.ok(invalidKe !== undefined);
  assert.equal(acceptedKeGroup(invalidKe), DH_GROUP.MODP_2048);
  const noProposal = ok(hex(NO_PROPOSAL_RESPONSE_HEX));
  assert.ok(findNotify(noProposal, IKE_NOTIFY.NO_PROPOSAL_CHOSEN) !== undefined);
  assert.equal(acceptedKeGroup(noProposal.notifies[0]!), undefined);
});

test('SK is last and not looked into: its Next Payload is the first inner payload', () => {
  const message = ok(hex(IKE_AUTH_REQUEST_HEX));
  assert.equal(message.payloads.length, 1);
  const sk = message.payloads[0]!;
  assert.equal(sk.type, IKE_PAYLOAD.SK);
  assert.equal(sk.innerNextPayload, IKE_PAYLOAD.IDI);
  assert.equal(sk.body.length, 80);
});

test('payload bodies are views into the message', () => {
  const message = ok(REQUEST);
  assert.equal(message.payloads[0]!.body.buffer, REQUEST.buffer);
});

test('a header-only message has no payloads; the critical bit is reported', () => {
  const empty = buildIkeMessage({
    spiI: 1n,
    spiR: 2n,
    exchange: IKE_EXCHANGE.INFORMATIONAL,
    messageId: 5,
  });
  assert.deepEqual(ok(empty).payloads, []);
  const critical = buildIkeMessage({
    spiI: 1n,
    exchange: IKE_EXCHANGE.IKE_SA_INIT,
    flags: IKE_FLAG.INITIATOR,
    payloads: [{ type: 200, body: Uint8Array.of(1, 2), isCritical: true }],
  });
  assert.deepEqual(ok(critical).payloads[0], {
    type: 200,
    body: Uint8Array.of(1, 2),
    isCritical: true,
    offset: 28,
  });
});

test('invalid payload chains: one case per code', () => {
  const cookie = hex(COOKIE_RESPONSE_HEX);
  const many = buildIkeMessage({
    spiI: 1n,
    exchange: IKE_EXCHANGE.IKE_SA_INIT,
    flags: IKE_FLAG.INITIATOR,
    payloads: Array.from({ length: IKE_MAX_PAYLOADS + 1 }, () => vendorIdPayload(Uint8Array.of(7))),
  });
  const atLimit = buildIkeMessage({
    spiI: 1n,
    exchange: IKE_EXCHANGE.IKE_SA_INIT,
    flags: IKE_FLAG.INITIATOR,
    payloads: Array.from({ length: IKE_MAX_PAYLOADS }, () => vendorIdPayload(Uint8Array.of(7))),
  });
  assert.equal(parsePayloads(atLimit).kind, 'ok');
  const cases: Array<[string, Uint8Array, string]> = [
    ['header problem passes through', cookie.subarray(0, 40), 'length-mismatch'],
    [
      'next payload but no room',
      edited(cookie.subarray(0, 28), (_b, v) => v.setUint32(24, 28)),
      'payload-truncated',
    ],
    [
      '3 octets left for a generic header',
      edited(cookie.subarray(0, 31), (_b, v) => v.setUint32(24, 31)),
      'payload-truncated',
    ],
    ['payload length 3', edited(cookie, (_b, v) => v.setUint16(30, 3)), 'bad-payload-length'],
    [
      'payload length past the end',
      edited(cookie, (_b, v) => v.setUint16(30, 29)),
      'bad-payload-length',
    ],
    ['too many payloads', many, 'too-many-payloads'],
    ['chain ends early', edited(cookie, (_b, v) => v.setUint16(30, 20)), 'trailing-bytes'],
    [
      'SK not last',
      edited(hex(IKE_AUTH_REQUEST_HEX), (_b, v) => v.setUint16(30, 80)),
      'trailing-bytes',
    ],
    [
      'notify body of 3 octets',
      edited(cookie.subarray(0, 39), (_b, v) => {
        v.setUint32(24, 39);
        v.setUint16(30, 7);
      }),
      'bad-notify',
    ],
    [
      'notify SPI past the body',
      edited(cookie, (b) => {
        b[33] = 21;
      }),
      'bad-notify',
    ],
  ];
  const stats = new IkeParseStats();
  for (const [label, bytes, code] of cases) {
    assert.deepEqual(parsePayloads(bytes, stats), { kind: 'invalid', code }, label);
  }
  assert.equal(stats.payloads['bad-notify'], 2);
  assert.equal(stats.payloads['length-mismatch'], 1);
  assert.equal(stats.header['length-mismatch'], 0, 'parsePayloads counts only in its own section');
});
