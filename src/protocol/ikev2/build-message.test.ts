import { test } from 'node:test';
import assert from 'node:assert/strict';

import { buildIkeMessage, withNonEspMarker } from './build-message.js';
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
  FIXTURE_SPI_I,
  FIXTURE_SPI_R,
  IKE_AUTH_4500_HEX,
  IKE_AUTH_REQUEST_HEX,
  IKE_SA_INIT_REQUEST_HEX,
  IKE_SA_INIT_RESPONSE_HEX,
  INVALID_KE_RESPONSE_HEX,
  MS_VENDOR_ID_HEX,
  NO_PROPOSAL_RESPONSE_HEX,
  hex,
} from '../../../test/support/ikev2-fixtures.js';
import { classifyNatT } from './nat-t.js';
import { natDetectionPayloads } from './nat-detection.js';
import { parsePayloads } from './payload-walker.js';
import {
  encryptedPayload,
  invalidKeNotify,
  kePayload,
  noncePayload,
  notifyPayload,
  vendorIdPayload,
} from './payloads.js';
import { decodeSaBody, saPayload, type IkeProposal } from './sa-payload.js';

const CLIENT = { address: '198.18.0.10', port: 500 };
const SERVER = { address: '198.19.0.1', port: 500 };

const IKE_PROPOSAL: IkeProposal = {
  protocolId: IKE_PROTOCOL.IKE,
  transforms: [
    { type: IKE_TRANSFORM.ENCR, id: ENCR.AES_CBC, keyLength: 256 },
    { type: IKE_TRANSFORM.INTEG, id: INTEG.HMAC_SHA2_256_128 },
    { type: IKE_TRANSFORM.PRF, id: PRF.HMAC_SHA2_256 },
    { type: IKE_TRANSFORM.DH, id: DH_GROUP.ECP_256 },
  ],
};

function hexOf(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('hex');
}

test('the builder reproduces the hand-written IKE_SA_INIT request octet for octet', () => {
  const message = buildIkeMessage({
    spiI: FIXTURE_SPI_I,
    exchange: IKE_EXCHANGE.IKE_SA_INIT,
    flags: IKE_FLAG.INITIATOR,
    payloads: [
      saPayload(IKE_PROPOSAL),
      kePayload(DH_GROUP.ECP_256, new Uint8Array(64).fill(0x5a)),
      noncePayload(new Uint8Array(32).fill(0xa1)),
      ...natDetectionPayloads({
        spiI: FIXTURE_SPI_I,
        spiR: 0n,
        source: CLIENT,
        destination: SERVER,
      }),
      notifyPayload({ type: IKE_NOTIFY.IKEV2_FRAGMENTATION_SUPPORTED }),
      vendorIdPayload(hex(MS_VENDOR_ID_HEX)),
    ],
  });
  assert.equal(hexOf(message), hexOf(hex(IKE_SA_INIT_REQUEST_HEX)));
});

test('the builder reproduces the response fixtures (normal, COOKIE, INVALID_KE, NO_PROPOSAL)', () => {
  const response = {
    spiI: FIXTURE_SPI_I,
    exchange: IKE_EXCHANGE.IKE_SA_INIT,
    flags: IKE_FLAG.RESPONSE,
  };
  const normal = buildIkeMessage({
    ...response,
    spiR: FIXTURE_SPI_R,
    payloads: [
      saPayload([IKE_PROPOSAL]),
      kePayload(DH_GROUP.ECP_256, new Uint8Array(64).fill(0x7c)),
      noncePayload(new Uint8Array(32).fill(0x3e)),
      ...natDetectionPayloads({
        spiI: FIXTURE_SPI_I,
        spiR: FIXTURE_SPI_R,
        source: SERVER,
        destination: CLIENT,
      }),
      notifyPayload({ type: IKE_NOTIFY.IKEV2_FRAGMENTATION_SUPPORTED }),
    ],
  });
  assert.equal(hexOf(normal), hexOf(hex(IKE_SA_INIT_RESPONSE_HEX)));
  const cookieData = hex('0000000159ec0f7da62b31e43c9ee2a0bd14cd55');
  const cookie = buildIkeMessage({
    ...response,
    payloads: [notifyPayload({ type: IKE_NOTIFY.COOKIE, data: cookieData })],
  });
  assert.equal(hexOf(cookie), hexOf(hex(COOKIE_RESPONSE_HEX)));
  const invalidKe = buildIkeMessage({
    ...response,
    spiR: FIXTURE_SPI_R,
    payloads: [invalidKeNotify(DH_GROUP.MODP_2048)],
  });
  assert.equal(hexOf(invalidKe), hexOf(hex(INVALID_KE_RESPONSE_HEX)));
  const noProposal = buildIkeMessage({
    ...response,
    payloads: [notifyPayload({ type: IKE_NOTIFY.NO_PROPOSAL_CHOSEN })],
  });
  assert.equal(hexOf(noProposal), hexOf(hex(NO_PROPOSAL_RESPONSE_HEX)));
});

test('IKE_AUTH with an opaque SK payload, and the non-ESP marker for port 4500', () => {
  const skData = hex(`00112233445566778899aabbccddeeff${'c3'.repeat(48)}${'1f'.repeat(16)}`);
  const message = buildIkeMessage({
    spiI: FIXTURE_SPI_I,
    spiR: FIXTURE_SPI_R,
    exchange: IKE_EXCHANGE.IKE_AUTH,
    flags: IKE_FLAG.INITIATOR,
    messageId: 1,
    payloads: [encryptedPayload(IKE_PAYLOAD.IDI, skData)],
  });
  assert.equal(hexOf(message), hexOf(hex(IKE_AUTH_REQUEST_HEX)));
  const onPort4500 = withNonEspMarker(message);
  assert.equal(hexOf(onPort4500), hexOf(hex(IKE_AUTH_4500_HEX)));
  assert.equal(classifyNatT(onPort4500).kind, 'ike');
});

test('round trip: build → parse gives back every field', () => {
  const esp: IkeProposal = {
    number: 1,
    protocolId: IKE_PROTOCOL.ESP,
    spi: Uint8Array.of(0xc0, 0xff, 0xee, 0x01),
    transforms: [
      { type: IKE_TRANSFORM.ENCR, id: ENCR.AES_GCM_16, keyLength: 128 },
      { type: IKE_TRANSFORM.ESN, id: 0 },
    ],
  };
  const second: IkeProposal = {
    ...esp,
    number: 2,
    transforms: [{ type: IKE_TRANSFORM.ENCR, id: ENCR.DES3 }],
  };
  const payloads = [
    saPayload([esp, second]),
    notifyPayload({ type: IKE_NOTIFY.REDIRECT_SUPPORTED }),
    notifyPayload({
      type: 16393,
      protocolId: IKE_PROTOCOL.ESP,
      spi: Uint8Array.of(1, 2, 3, 4),
      data: Uint8Array.of(9),
    }),
    vendorIdPayload(new TextEncoder().encode('vpnlb')),
    { type: 201, body: new Uint8Array(300).fill(3), isCritical: true },
    encryptedPayload(IKE_PAYLOAD.NOTIFY, new Uint8Array(40)),
  ];
  const spec = {
    spiI: 0xffffffffffffffffn,
    spiR: 0x0102030405060708n,
    exchange: IKE_EXCHANGE.CREATE_CHILD_SA,
    flags: IKE_FLAG.RESPONSE | IKE_FLAG.INITIATOR | IKE_FLAG.VERSION,
    messageId: 0xfffffffe,
    payloads,
  };
  const result = parsePayloads(buildIkeMessage(spec));
  assert.equal(result.kind, 'ok');
  if (result.kind !== 'ok') return;
  const { header } = result;
  assert.deepEqual(
    [
      header.spiI,
      header.spiR,
      header.exchangeType,
      header.flags,
      header.messageId,
      header.isInitiator,
      header.isResponse,
      header.hasHigherVersion,
    ],
    [spec.spiI, spec.spiR, spec.exchange, spec.flags, spec.messageId, true, true, true],
  );
  assert.deepEqual(
    result.payloads.map(({ type, body, isCritical, innerNextPayload }) => ({
      type,
      body,
      isCritical,
      innerNextPayload,
    })),
    payloads.map((p) => ({
      type: p.type,
      body: p.body,
      isCritical: p.isCritical ?? false,
      innerNextPayload: p.innerNextPayload,
    })),
  );
  assert.deepEqual(decodeSaBody(result.payloads[0]!.body), [esp, second]);
  assert.deepEqual(result.notifies[1], {
    protocolId: 3,
    type: 16393,
    spi: Uint8Array.of(1, 2, 3, 4),
    data: Uint8Array.of(9),
  });
});

test('encoders and builder refuse what cannot be encoded (RangeError)', () => {
  const base = { spiI: 1n, exchange: IKE_EXCHANGE.IKE_SA_INIT };
  assert.throws(() => buildIkeMessage({ ...base, spiI: 1n << 64n }), RangeError);
  assert.throws(() => buildIkeMessage({ ...base, spiR: -1n }), RangeError);
  assert.throws(() => buildIkeMessage({ ...base, exchange: 256 }), RangeError);
  assert.throws(() => buildIkeMessage({ ...base, messageId: 2 ** 32 }), RangeError);
  assert.throws(() => buildIkeMessage({ ...base, flags: 1.5 }), RangeError);
  assert.throws(
    () => buildIkeMessage({ ...base, payloads: [{ type: 0, body: new Uint8Array(0) }] }),
    RangeError,
  );
  assert.throws(
    () =>
      buildIkeMessage({
        ...base,
        payloads: [encryptedPayload(0, new Uint8Array(1)), vendorIdPayload(new Uint8Array(1))],
      }),
    /must be the last/,
  );
  const big = vendorIdPayload(new Uint8Array(40000));
  assert.throws(() => buildIkeMessage({ ...base, payloads: [big, big] }), /exceeds/);
  assert.throws(() => noncePayload(new Uint8Array(15)), /RFC 7296 §3.9/);
  assert.throws(() => noncePayload(new Uint8Array(257)), RangeError);
  assert.throws(() => vendorIdPayload(new Uint8Array(65532)), RangeError);
  assert.throws(() => kePayload(65536, new Uint8Array(1)), RangeError);
  assert.throws(() => saPayload([]), RangeError);
  assert.throws(() => saPayload({ protocolId: 1, transforms: [] }), RangeError);
  assert.throws(
    () => saPayload({ protocolId: 1, transforms: [{ type: 1, id: 12, keyLength: 70000 }] }),
    RangeError,
  );
  assert.throws(() => notifyPayload({ type: 70000 }), RangeError);
});

test('decodeSaBody rejects inconsistent substructures instead of throwing', () => {
  const body = saPayload(IKE_PROPOSAL).body;
  assert.ok(decodeSaBody(body) !== undefined);
  const variants: Array<(b: Uint8Array) => void> = [
    (b) => {
      b[0] = 2;
    }, // says "more proposals" but none follows
    (b) => {
      b[0] = 1;
    }, // not a valid Last Substruc value
    (b) => {
      b[3] = 0x2d;
    }, // proposal length past the body
    (b) => {
      b[7] = 5;
    }, // one transform more than present
    (b) => {
      b[7] = 3;
    }, // one transform fewer: the proposal has leftover octets
    (b) => {
      b[8] = 0;
    }, // first transform claims to be last
    (b) => {
      b[11] = 7;
    }, // transform length below 8
    (b) => {
      b[11] = 13;
    }, // attribute truncated
  ];
  variants.forEach((edit, i) => {
    const copy = body.slice();
    edit(copy);
    assert.equal(decodeSaBody(copy), undefined, `variant ${i}`);
  });
  assert.equal(decodeSaBody(new Uint8Array(0)), undefined);
});
