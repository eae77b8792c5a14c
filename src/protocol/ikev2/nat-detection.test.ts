import { test } from 'node:test';
import assert from 'node:assert/strict';

import { IKE_NOTIFY } from './constants.js';
import { FIXTURE_SPI_I, FIXTURE_SPI_R } from '../../../test/support/ikev2-fixtures.js';
import { ipAddressBytes, natDetectionHash, natDetectionPayloads } from './nat-detection.js';
import { decodeNotifyBody } from './payloads.js';

function hexOf(bytes: Uint8Array | undefined): string | undefined {
  return bytes === undefined ? undefined : Buffer.from(bytes).toString('hex');
}

/**
 * Golden vectors: SHA-1(SPIi | SPIr | IP | port) computed with Python's hashlib over
 * socket.inet_pton(...) and struct.pack('>H', port), independently of this code.
 */
const VECTORS = [
  { spiR: 0n, address: '198.18.0.10', port: 500, sha1: '232fc4e7797cc21a929637be52284b136cea91e9' },
  { spiR: 0n, address: '198.19.0.1', port: 500, sha1: '5052fd3f1db4661f72182693da4a16852bab432b' },
  {
    spiR: FIXTURE_SPI_R,
    address: '198.19.0.1',
    port: 500,
    sha1: 'b6496e7f8f2373af3b96cf0ca97dfe6132e42ed2',
  },
  {
    spiR: FIXTURE_SPI_R,
    address: '2001:db8::ffff:198.18.0.10',
    port: 4500,
    sha1: 'ef032a3421a305ccbb9fbebe6465d9d8354ea3f7',
  },
] as const;

test('natDetectionHash matches the golden vectors (RFC 7296 §2.23)', () => {
  for (const v of VECTORS) {
    const digest = natDetectionHash(FIXTURE_SPI_I, v.spiR, { address: v.address, port: v.port });
    assert.equal(hexOf(digest), v.sha1, v.address);
    // The same address given as octets hashes the same.
    const octets = ipAddressBytes(v.address)!;
    assert.equal(
      hexOf(natDetectionHash(FIXTURE_SPI_I, v.spiR, { address: octets, port: v.port })),
      v.sha1,
    );
  }
});

test('natDetectionPayloads: source then destination notify', () => {
  const [source, destination] = natDetectionPayloads({
    spiI: FIXTURE_SPI_I,
    spiR: 0n,
    source: { address: '198.18.0.10', port: 500 },
    destination: { address: '198.19.0.1', port: 500 },
  });
  const s = decodeNotifyBody(source.body)!;
  const d = decodeNotifyBody(destination.body)!;
  assert.equal(s.type, IKE_NOTIFY.NAT_DETECTION_SOURCE_IP);
  assert.equal(d.type, IKE_NOTIFY.NAT_DETECTION_DESTINATION_IP);
  assert.equal(hexOf(s.data), VECTORS[0].sha1);
  assert.equal(hexOf(d.data), VECTORS[1].sha1);
});

test('ipAddressBytes: IPv4, IPv6 forms (compressed, embedded IPv4, zone), and garbage', () => {
  const cases: Array<[string, string | undefined]> = [
    ['198.18.0.10', 'c612000a'],
    ['0.0.0.0', '00000000'],
    ['::', '00000000000000000000000000000000'],
    ['::1', '00000000000000000000000000000001'],
    ['1::', '00010000000000000000000000000000'],
    ['2001:db8::1', '20010db8000000000000000000000001'],
    ['1:2:3:4:5:6:7:8', '00010002000300040005000600070008'],
    ['::ffff:192.0.2.1', '00000000000000000000ffffc0000201'],
    ['fe80::1%eth0', 'fe800000000000000000000000000001'],
    ['FE80::ABCD', 'fe80000000000000000000000000abcd'],
    ['198.18.0.256', undefined],
    ['rras1', undefined],
    ['', undefined],
  ];
  for (const [text, expected] of cases) assert.equal(hexOf(ipAddressBytes(text)), expected, text);
});

test('natDetectionHash refuses bad endpoints', () => {
  assert.throws(() => natDetectionHash(1n, 0n, { address: 'example.com', port: 500 }), RangeError);
  assert.throws(
    () => natDetectionHash(1n, 0n, { address: new Uint8Array(5), port: 500 }),
    RangeError,
  );
  assert.throws(() => natDetectionHash(1n, 0n, { address: '::1', port: 65536 }), RangeError);
});
