import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { TlsHelloReader, type HelloKind, type HelloReadResult } from './hello-reader.js';
import { TLS_1_2, TLS_1_3 } from './tls-constants.js';
import * as fx from '../../../test/support/tls-fixtures.js';

function readWhole<K extends HelloKind>(kind: K, bytes: Uint8Array): HelloReadResult<K> {
  return new TlsHelloReader(kind).push(bytes);
}

/** Feeds `bytes` in the given pieces, returning the first definite answer (or the last need-more). */
function readPieces<K extends HelloKind>(kind: K, pieces: Uint8Array[]): HelloReadResult<K> {
  const r = new TlsHelloReader(kind);
  let last: HelloReadResult<K> = { kind: 'need-more', bytesRead: 0 };
  for (const p of pieces) {
    last = r.push(p);
    if (last.kind !== 'need-more') return last;
  }
  return last;
}

function byteByByte(bytes: Uint8Array): Uint8Array[] {
  return [...bytes].map((b) => Uint8Array.of(b));
}

/** Asserts the whole / one-octet-at-a-time / every-split readings all agree, and returns it. */
function readAllWays<K extends HelloKind>(kind: K, bytes: Uint8Array): HelloReadResult<K> {
  const whole = readWhole(kind, bytes);
  const canon = JSON.stringify(whole, (_k, v) =>
    v instanceof Uint8Array ? Buffer.from(v).toString('hex') : v,
  );
  const same = (r: HelloReadResult<K>, how: string) =>
    assert.equal(
      JSON.stringify(r, (_k, v) => (v instanceof Uint8Array ? Buffer.from(v).toString('hex') : v)),
      canon,
      how,
    );
  same(readPieces(kind, byteByByte(bytes)), 'one octet at a time');
  for (let at = 1; at < bytes.length; at++)
    same(readPieces(kind, [bytes.subarray(0, at), bytes.subarray(at)]), `split at ${at}`);
  return whole;
}

/** Re-fragments one handshake record into records of `size` fragment octets (RFC 8446 §5.1 allows it). */
function refragment(record: Uint8Array, size: number): Uint8Array {
  const fragment = record.subarray(5);
  const out: Buffer[] = [];
  for (let i = 0; i < fragment.length; i += size) {
    const part = fragment.subarray(i, i + size);
    out.push(
      Buffer.from([0x16, 0x03, 0x03, part.length >> 8, part.length & 0xff]),
      Buffer.from(part),
    );
  }
  return Uint8Array.from(Buffer.concat(out));
}

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

describe('TlsHelloReader on real ClientHellos', () => {
  it('Node TLS 1.3: SNI, 32-octet compatibility session id, empty session_ticket, no PSK', () => {
    const r = readAllWays('client-hello', fx.NODE_TLS13_CLIENT_HELLO);
    assert.equal(r.kind, 'ok');
    assert.equal(r.hello.serverName, 'vpn.example.test');
    assert.equal(r.hello.maxVersion, TLS_1_3);
    assert.deepEqual(r.hello.supportedVersions, [TLS_1_3, TLS_1_2]);
    assert.equal(r.hello.sessionId.length, 32);
    assert.equal(r.hello.hasSessionTicket, true);
    assert.equal(r.hello.sessionTicketLength, 0);
    assert.equal(r.hello.hasPreSharedKey, false);
    assert.equal(r.bytesRead, fx.NODE_TLS13_CLIENT_HELLO.length);
  });

  it('Node TLS 1.2 resumption offers the session id the server assigned', () => {
    const first = readAllWays('client-hello', fx.NODE_TLS12_CLIENT_HELLO);
    assert.equal(first.kind, 'ok');
    assert.equal(first.hello.maxVersion, TLS_1_2);
    assert.equal(first.hello.sessionId.length, 0);
    const sh = readAllWays('server-hello', fx.NODE_TLS12_SERVER_HELLO);
    assert.equal(sh.kind, 'ok');
    assert.equal(sh.hello.selectedVersion, TLS_1_2);
    assert.equal(sh.hello.sessionId.length, 32);
    const resume = readAllWays('client-hello', fx.NODE_TLS12_RESUME_CLIENT_HELLO);
    assert.equal(resume.kind, 'ok');
    assert.equal(hex(resume.hello.sessionId), hex(sh.hello.sessionId));
    const rsh = readAllWays('server-hello', fx.NODE_TLS12_RESUME_SERVER_HELLO);
    assert.equal(rsh.kind, 'ok');
    assert.equal(hex(rsh.hello.sessionId), hex(sh.hello.sessionId));
  });

  it('OpenSSL TLS 1.3 first connection and PSK resumption', () => {
    const a = readAllWays('client-hello', fx.OPENSSL_TLS13_CLIENT_HELLO);
    assert.equal(a.kind, 'ok');
    assert.equal(a.hello.serverName, 'vpn.example.test');
    assert.equal(a.hello.hasPreSharedKey, false);
    const b = readAllWays('client-hello', fx.OPENSSL_TLS13_PSK_CLIENT_HELLO);
    assert.equal(b.kind, 'ok');
    assert.equal(b.hello.hasPreSharedKey, true);
    assert.equal(b.hello.maxVersion, TLS_1_3);
    const sh = readAllWays('server-hello', fx.OPENSSL_TLS13_SERVER_HELLO);
    assert.equal(sh.kind, 'ok');
    assert.equal(sh.hello.selectedVersion, TLS_1_3);
    assert.equal(sh.hello.isHelloRetryRequest, false);
  });

  it('OpenSSL TLS 1.2 without SNI, then resuming by session id', () => {
    const a = readAllWays('client-hello', fx.OPENSSL_TLS12_CLIENT_HELLO);
    assert.equal(a.kind, 'ok');
    assert.equal(a.hello.serverName, undefined);
    assert.equal(a.hello.maxVersion, TLS_1_2);
    const b = readAllWays('client-hello', fx.OPENSSL_TLS12_RESUME_CLIENT_HELLO);
    assert.equal(b.kind, 'ok');
    assert.equal(b.hello.sessionId.length, 32);
  });

  it('reassembles a hello fragmented over many records, fed whole and byte by byte', () => {
    for (const size of [1, 7, 100]) {
      const frag = refragment(fx.NODE_TLS13_CLIENT_HELLO, size);
      const whole = readWhole('client-hello', frag);
      assert.equal(whole.kind, 'ok', `fragments of ${size}`);
      assert.equal(whole.hello.serverName, 'vpn.example.test');
      const slow = readPieces('client-hello', byteByByte(frag));
      assert.equal(slow.kind, 'ok');
    }
    readAllWays('client-hello', refragment(fx.OPENSSL_TLS12_CLIENT_HELLO, 50));
  });

  it('stops at the end of the hello; bytesRead excludes what follows in the same chunk', () => {
    const extra = Buffer.concat([
      fx.NODE_TLS12_SERVER_HELLO,
      Buffer.from('160303000b0b000007', 'hex'),
    ]);
    const r = readWhole('server-hello', extra);
    assert.equal(r.kind, 'ok');
    assert.equal(r.bytesRead, fx.NODE_TLS12_SERVER_HELLO.length);
  });
});

describe('TlsHelloReader on bad input', () => {
  const cases: [string, Uint8Array, string][] = [
    [
      'plain HTTP',
      Buffer.from('SSTP_DUPLEX_POST /sra_{BA195980-CD49-458b-9E23-C84EE0ADCD75}/ HTTP/1.1\r\n'),
      'not-tls',
    ],
    ['SSLv2-compatible hello', Buffer.from('802b0100020012000000100000', 'hex'), 'not-tls'],
    ['alert', Buffer.from('15030300020228', 'hex'), 'alert'],
    ['zero-length record', Buffer.from('1603010000', 'hex'), 'bad-record'],
    ['oversized record', Buffer.from('1603014801', 'hex'), 'bad-record'],
    ['hello over 64 KiB', Buffer.from('160301400001011171', 'hex'), 'too-large'],
    [
      'ServerHello where a ClientHello is expected',
      fx.NODE_TLS12_SERVER_HELLO,
      'unexpected-message',
    ],
  ];
  for (const [name, bytes, code] of cases) {
    it(`${name} → ${code} (whole and byte by byte)`, () => {
      const r = readWhole('client-hello', bytes);
      assert.equal(r.kind, 'invalid');
      assert.equal(r.code, code);
      const slow = readPieces('client-hello', byteByByte(bytes));
      assert.equal(slow.kind, 'invalid');
      assert.equal(slow.code, code);
    });
  }

  it('a non-handshake record inside a fragmented hello → bad-record', () => {
    const frag = refragment(fx.NODE_TLS13_CLIENT_HELLO, 100);
    const tampered = Buffer.from(frag);
    tampered[105] = 0x17; // second record's type: application data
    const r = readWhole('client-hello', tampered);
    assert.equal(r.kind, 'invalid');
    assert.equal(r.code, 'bad-record');
  });

  it('a truncated hello is need-more, then truncated at end of stream', () => {
    const reader = new TlsHelloReader('client-hello');
    assert.equal(reader.push(fx.NODE_TLS13_CLIENT_HELLO.subarray(0, 100)).kind, 'need-more');
    const end = reader.end();
    assert.equal(end.kind, 'invalid');
    assert.equal(end.code, 'truncated');
  });

  it('a session id of 33 octets and a duplicated extension → malformed', () => {
    const long = Buffer.from(fx.OPENSSL_TLS12_RESUME_CLIENT_HELLO);
    long[43] = 33; // record 5 + handshake 4 + version 2 + random 32 = offset of the session id length
    const a = readWhole('client-hello', long);
    assert.equal(a.kind, 'invalid');
    assert.equal(a.code, 'malformed');
    // A ClientHello with two empty session_ticket extensions.
    const body = Buffer.concat([
      Buffer.from('0303', 'hex'),
      Buffer.alloc(32),
      Buffer.from('00', 'hex'),
      Buffer.from('0002c02f', 'hex'),
      Buffer.from('0100', 'hex'),
      Buffer.from('000800230000' + '00230000', 'hex'),
    ]);
    const hs = Buffer.concat([Buffer.from([1, 0, body.length >> 8, body.length & 0xff]), body]);
    const rec = Buffer.concat([Buffer.from([0x16, 3, 1, hs.length >> 8, hs.length & 0xff]), hs]);
    const b = readWhole('client-hello', rec);
    assert.equal(b.kind, 'invalid');
    assert.equal(b.code, 'malformed');
    assert.match(b.detail, /twice/);
  });

  it('after an answer, further pushes repeat it', () => {
    const reader = new TlsHelloReader('client-hello');
    const first = reader.push(Buffer.from('GET / HTTP/1.1\r\n'));
    assert.equal(first.kind, 'invalid');
    assert.deepEqual(reader.push(fx.NODE_TLS13_CLIENT_HELLO), first);
    assert.equal(reader.state, 'done');
  });
});

describe('TlsHelloReader memory (issue 11, finding 1)', () => {
  it('holds memory in proportion to the octets received, never to the length a peer announces', () => {
    // A record header and handshake header announcing a 64 KiB ClientHello, and nothing more:
    // the old reader allocated the whole 64 KiB at once.
    const r = new TlsHelloReader('client-hello');
    assert.equal(r.push(Buffer.from('16030140000100ffff', 'hex')).kind, 'need-more');
    assert.ok(r.heldBytes <= 512, `held ${r.heldBytes} octets after a 9-octet announcement`);
    // Then 3,000 octets of body: at most twice what arrived (doubling).
    const body = Buffer.alloc(3_000, 0x41);
    assert.equal(r.push(body).kind, 'need-more');
    assert.ok(
      r.heldBytes >= 3_000 && r.heldBytes <= 6_000,
      `held ${r.heldBytes} octets after 3,000`,
    );
  });

  it('a hello read in many small pieces parses the same as whole (buffer growth keeps every octet)', () => {
    const bytes = fx.NODE_TLS13_CLIENT_HELLO;
    const whole = readWhole('client-hello', bytes);
    for (const size of [1, 7, 100, 511, 513]) {
      const pieces: Uint8Array[] = [];
      for (let i = 0; i < bytes.length; i += size) pieces.push(bytes.subarray(i, i + size));
      assert.deepEqual(readPieces('client-hello', pieces), whole, `pieces of ${size}`);
    }
  });
});
