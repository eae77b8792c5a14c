import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { HdlcDecoder, hdlcEncode, lcpConfigureRequest, lcpInfo } from './ppp-hdlc.js';
import { CERT_HASH_PROTOCOL_SHA256, SSTP_ATTRIB, SSTP_MSG } from './sstp-constants.js';
import {
  HttpHeadReader,
  buildDuplexPostRequest,
  buildDuplexPostResponse,
  isSstpDuplexPost,
} from './sstp-http.js';
import {
  SstpPacketReader,
  cryptoBindingRequestAttribute,
  encapsulatedPppAttribute,
  encodeControlPacket,
  encodeDataPacket,
  parseSstpPacket,
  readCryptoBindingRequest,
} from './sstp-packet.js';

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

/** [MS-SSTP] §2.2.9: a Call Connect Request is 14 octets: header, type 1, one attribute (protocol id PPP). */
const CALL_CONNECT_REQUEST_HEX = '1001000e' + '00010001' + '00010006' + '0001';

describe('SSTP packets', () => {
  it('encodes the Call Connect Request exactly as [MS-SSTP] §2.2.9 lays it out', () => {
    assert.equal(
      hex(encodeControlPacket(SSTP_MSG.CALL_CONNECT_REQUEST, [encapsulatedPppAttribute()])),
      CALL_CONNECT_REQUEST_HEX,
    );
  });

  it('a Call Connect Ack with a Crypto Binding Request is 48 octets and parses back', () => {
    const nonce = Buffer.alloc(32, 0xab);
    const ack = encodeControlPacket(SSTP_MSG.CALL_CONNECT_ACK, [
      cryptoBindingRequestAttribute(CERT_HASH_PROTOCOL_SHA256, nonce),
    ]);
    assert.equal(ack.length, 48);
    assert.equal(hex(ack.subarray(0, 12)), '100100300002000100040028');
    const p = parseSstpPacket(ack);
    assert.equal(p.kind, 'ok');
    assert.equal(p.packet.kind, 'control');
    if (p.packet.kind !== 'control') return;
    const attr = p.packet.attributes[0];
    assert.ok(attr);
    assert.equal(attr.id, SSTP_ATTRIB.CRYPTO_BINDING_REQ);
    const cb = readCryptoBindingRequest(attr);
    assert.equal(cb?.hashBitmask, CERT_HASH_PROTOCOL_SHA256);
    assert.equal(hex(cb?.nonce ?? new Uint8Array()), hex(nonce));
  });

  it('reads a stream of packets whole, byte by byte, and split at every position', () => {
    const frame = lcpConfigureRequest(1, 0x11223344);
    const stream = Buffer.concat([
      Buffer.from(CALL_CONNECT_REQUEST_HEX, 'hex'),
      encodeDataPacket(frame),
      encodeControlPacket(SSTP_MSG.ECHO_REQUEST),
    ]);
    const summary = (packets: readonly { kind: string }[]) =>
      JSON.stringify(packets, (_k, v) => (v instanceof Uint8Array ? hex(v) : v));
    const whole = new SstpPacketReader().push(stream);
    assert.equal(whole.kind, 'packets');
    assert.equal(whole.packets.length, 3);
    const expected = summary(whole.packets);
    const slow = new SstpPacketReader();
    const got = [...stream].flatMap((b) => {
      const r = slow.push(Uint8Array.of(b));
      return r.kind === 'packets' ? r.packets : [];
    });
    assert.equal(summary(got), expected);
    for (let at = 1; at < stream.length; at++) {
      const r = new SstpPacketReader();
      const a = r.push(stream.subarray(0, at));
      const b = r.push(stream.subarray(at));
      assert.ok(a.kind === 'packets' && b.kind === 'packets');
      assert.equal(summary([...a.packets, ...b.packets]), expected, `split at ${at}`);
    }
  });

  it('rejects a bad version, a short length and an inconsistent attribute', () => {
    const bad = (bytes: string) => new SstpPacketReader().push(Buffer.from(bytes, 'hex'));
    const a = bad('20010008000800 00'.replace(' ', ''));
    assert.equal(a.kind === 'invalid' && a.code, 'bad-version');
    const b = bad('10010004');
    assert.equal(b.kind === 'invalid' && b.code, 'bad-length');
    const c = bad('1001000c000100010100ff00');
    assert.equal(c.kind === 'invalid' && c.code, 'bad-attribute');
  });
});

describe('SSTP HTTP layer', () => {
  it('reads the SSTP_DUPLEX_POST head split anywhere and hands back the SSTP bytes after it', () => {
    const req = Buffer.concat([
      buildDuplexPostRequest({ host: 'vpn.example.test' }),
      Buffer.from(CALL_CONNECT_REQUEST_HEX, 'hex'),
    ]);
    for (let at = 0; at <= req.length; at++) {
      const r = new HttpHeadReader();
      let res = r.push(req.subarray(0, at));
      // Once the head is complete the reader is done: later octets are the caller's.
      let after = Buffer.from(req.subarray(at));
      if (res.kind === 'need-more') {
        res = r.push(req.subarray(at));
        after = Buffer.alloc(0);
      }
      assert.equal(res.kind, 'ok', `split at ${at}`);
      if (res.kind !== 'ok') return;
      assert.ok(isSstpDuplexPost(res.head));
      assert.equal(res.head.headers.get('content-length'), '18446744073709551615');
      assert.equal(hex(Buffer.concat([res.rest, after])), CALL_CONNECT_REQUEST_HEX);
    }
  });

  it('the response is HTTP/1.1 200 with the unbounded Content-Length', () => {
    const text = Buffer.from(buildDuplexPostResponse()).toString('latin1');
    assert.match(text, /^HTTP\/1\.1 200 OK\r\n/);
    assert.match(text, /\r\nContent-Length: 18446744073709551615\r\n/);
  });

  it('refuses a head with no end within the limit', () => {
    const r = new HttpHeadReader(100);
    const res = r.push(Buffer.alloc(200, 0x41));
    assert.equal(res.kind === 'invalid' && res.code, 'too-large');
  });
});

describe('PPP HDLC framing', () => {
  it("round-trips sstp-client's own test frame and survives one-octet chunks", () => {
    // The LCP Configure-Request from sstp-client's sstp-fcs.c self-test.
    const frame = Buffer.from(
      'ff03c021010100180104057802060000000005063767 24c207020802'.replace(' ', ''),
      'hex',
    );
    const encoded = hdlcEncode(frame);
    assert.equal(encoded[0], 0x7e);
    assert.equal(encoded[encoded.length - 1], 0x7e);
    const d = new HdlcDecoder();
    const frames = [...encoded].flatMap((b) => d.push(Uint8Array.of(b)));
    assert.equal(frames.length, 1);
    assert.equal(hex(frames[0] as Uint8Array), hex(frame));
    assert.deepEqual(lcpInfo(frame), { code: 1, identifier: 1 });
    const corrupt = Buffer.from(encoded);
    corrupt[5] = (corrupt[5] as number) ^ 1;
    const d2 = new HdlcDecoder();
    assert.equal(d2.push(corrupt).length, 0);
    assert.equal(d2.badFrames, 1);
  });
});
