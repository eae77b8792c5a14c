/**
 * Deterministic fuzzing of the data-plane parsers: 100,000 random, mutated and generated
 * buffers through parseIkeHeader, classifyNatT, parsePayloads (and, for a tenth of them, the
 * stream reader). Nothing may throw; every result must be a declared kind / code; the parsers
 * must agree with each other; and every declared code must be reached, so the corpus really
 * reaches the deep paths. Failures print the seed, the iteration and the input in hex.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { IKE_MAX_MESSAGE_LENGTH } from './constants.js';
import {
  ESP_4500_HEX,
  IKE_AUTH_4500_HEX,
  IKE_MESSAGE_FIXTURES,
  hex,
} from '../../../test/support/ikev2-fixtures.js';
import { IkeHeaderReader } from './ike-header-reader.js';
import { parseIkeHeader } from './ike-header.js';
import { classifyNatT } from './nat-t.js';
import {
  IKE_HEADER_INVALID_CODES,
  IKE_MESSAGE_INVALID_CODES,
  NAT_T_INVALID_CODES,
  PAYLOAD_INVALID_CODES,
} from './parse-codes.js';
import { IkeParseStats } from './parse-stats.js';
import { parsePayloads } from './payload-walker.js';
import { mulberry32 } from '../../../lab/prng.js';

const SEED = 0x5eed1e;
const ITERATIONS = 100_000;

const random = mulberry32(SEED);
const int = (n: number): number => Math.floor(random() * n);
const randomBytes = (n: number): Uint8Array => Uint8Array.from({ length: n }, () => int(256));

const SEEDS = [...Object.values(IKE_MESSAGE_FIXTURES), IKE_AUTH_4500_HEX, ESP_4500_HEX].map(hex);

/** Makes the header plausible so the payload walker gets to run: version, SPI, Length. */
function repairHeader(buf: Uint8Array): void {
  if (buf.length < 28) return;
  buf[17] = 0x20;
  if (random() < 0.9 && buf.every((b, i) => i >= 8 || b === 0)) buf[7] = 1;
  new DataView(buf.buffer, buf.byteOffset).setUint32(24, buf.length);
}

/** A chain of random payloads with consistent lengths (sometimes many, sometimes broken). */
function generatedChain(): Uint8Array {
  const isLong = random() < 0.05; // around IKE_MAX_PAYLOADS, of Vendor IDs
  const count = isLong ? 60 + int(10) : int(8);
  const parts: number[] = [];
  const types: number[] = [];
  for (let i = 0; i < count; i++)
    types.push(isLong ? 43 : random() < 0.4 ? 41 : random() < 0.1 ? 46 : 33 + int(21));
  for (let i = 0; i < count; i++) {
    const body =
      types[i] === 41
        ? [int(4), int(6), 0x40, int(256), ...randomBytes(int(6))]
        : [...randomBytes(int(12))];
    parts.push(types[i + 1] ?? 0, random() < 0.1 ? 0x80 : 0, 0, 4 + body.length, ...body);
  }
  const header = [
    ...randomBytes(8),
    ...new Array<number>(8).fill(0),
    types[0] ?? 0,
    0x20,
    34,
    0x08,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
  ];
  const buf = Uint8Array.from([...header, ...parts]);
  repairHeader(buf);
  if (random() < 0.3) buf[28 + int(Math.max(1, buf.length - 28))] = int(256);
  return buf;
}

function mutated(): Uint8Array {
  const source = SEEDS[int(SEEDS.length)]!;
  let buf: Uint8Array = source.slice();
  const edits = 1 + int(4);
  for (let e = 0; e < edits; e++) {
    const op = int(6);
    if (op === 0 && buf.length > 0) buf[int(buf.length)] = int(256);
    else if (op === 1) buf = buf.slice(0, int(buf.length + 1));
    else if (op === 2) buf = Uint8Array.from([...buf, ...randomBytes(1 + int(16))]);
    else if (op === 3 && buf.length > 30)
      new DataView(buf.buffer).setUint16(28 + int(buf.length - 29), int(0x10000));
    else if (op === 4)
      buf.fill(
        0,
        ...(
          [
            [0, 8],
            [8, 16],
            [20, 24],
          ] as const
        )[int(3)]!,
      ); // SPIi, SPIr, message ID
    else if (buf.length > 0) {
      const at = int(Math.min(buf.length, 28)); // a header octet: one flipped bit
      buf[at] = buf[at]! ^ (1 << int(8));
    }
  }
  if (random() < 0.5) repairHeader(buf);
  return buf;
}

function nextInput(): Uint8Array {
  const r = random();
  if (r < 0.2) return randomBytes(int(random() < 0.9 ? 64 : 2000));
  if (r < 0.3) {
    const buf = randomBytes(28 + int(100));
    repairHeader(buf);
    return buf;
  }
  if (r < 0.45) return generatedChain();
  if (r < 0.55) return Uint8Array.from([0, 0, 0, 0, ...mutated()]);
  return mutated();
}

const has = (list: readonly string[], code: string): boolean => list.includes(code);

test(`fuzz: ${ITERATIONS} inputs through every parser (seed 0x${SEED.toString(16)})`, () => {
  const stats = new IkeParseStats();
  const seen = new Set<string>();
  let embeddedHeaderParses = 0;
  for (let i = 0; i < ITERATIONS; i++) {
    const input = nextInput();
    const context = (): string => `iteration ${i}, input ${Buffer.from(input).toString('hex')}`;
    try {
      const header = parseIkeHeader(input, stats);
      if (header.kind === 'ok') {
        assert.equal(header.header.length, input.length);
        assert.equal(header.header.majorVersion, 2);
        assert.notEqual(header.header.spiI, 0n);
        assert.ok(header.header.length <= IKE_MAX_MESSAGE_LENGTH);
      } else {
        assert.ok(has(IKE_HEADER_INVALID_CODES, header.code), header.code);
      }
      seen.add(`header:${header.kind === 'ok' ? 'ok' : header.code}`);

      const natT = classifyNatT(input, stats);
      if (natT.kind === 'invalid') assert.ok(has(NAT_T_INVALID_CODES, natT.code), natT.code);
      else assert.ok(['keepalive', 'ike', 'esp'].includes(natT.kind));
      const marked =
        input.length >= 4 && input[0] === 0 && input[1] === 0 && input[2] === 0 && input[3] === 0;
      if (marked) {
        embeddedHeaderParses++;
        const inner = parseIkeHeader(input.subarray(4));
        assert.equal(
          natT.kind === 'ike' ? 'ok' : natT.kind === 'invalid' ? natT.code : natT.kind,
          inner.kind === 'ok' ? 'ok' : `ike-${inner.code}`,
        );
      } else if (natT.kind === 'esp') {
        assert.ok(input.length >= 8);
      }
      seen.add(`natT:${natT.kind === 'invalid' ? natT.code : natT.kind}`);

      const message = parsePayloads(input, stats);
      if (message.kind === 'ok') {
        assert.equal(header.kind, 'ok');
        let covered = 28;
        for (const p of message.payloads) {
          assert.equal(p.offset, covered);
          assert.ok(p.body.byteOffset + p.body.length <= input.byteOffset + input.length);
          covered += 4 + p.body.length;
        }
        assert.equal(covered, input.length);
        assert.ok(message.payloads.length <= 64);
      } else {
        assert.ok(has(IKE_MESSAGE_INVALID_CODES, message.code), message.code);
        // The walker's header verdict is the header parser's.
        if (header.kind === 'invalid') assert.equal(message.code, header.code);
        else assert.ok(has(PAYLOAD_INVALID_CODES, message.code));
      }
      seen.add(`payloads:${message.kind === 'ok' ? 'ok' : message.code}`);

      if (i % 10 === 0) checkReaderAgrees(input, header);
    } catch (error) {
      throw new Error(`${context()}: ${(error as Error).message}`, { cause: error });
    }
  }

  const total = (record: Record<string, number>): number =>
    Object.values(record).reduce((a, b) => a + b, 0);
  assert.equal(total(stats.natT), ITERATIONS);
  assert.equal(total(stats.payloads), ITERATIONS);
  assert.equal(total(stats.header), ITERATIONS + embeddedHeaderParses);

  // Coverage: the corpus reaches every declared code of every parser.
  for (const code of IKE_HEADER_INVALID_CODES)
    assert.ok(seen.has(`header:${code}`), `header:${code} never reached`);
  for (const code of PAYLOAD_INVALID_CODES)
    assert.ok(seen.has(`payloads:${code}`), `payloads:${code} never reached`);
  for (const kind of [
    'header:ok',
    'payloads:ok',
    'natT:ike',
    'natT:esp',
    'natT:keepalive',
    'natT:empty',
    'natT:esp-too-short',
  ]) {
    assert.ok(seen.has(kind), `${kind} never reached`);
  }
});

/** The stream reader, fed the input in two random pieces, agrees with the datagram parser. */
function checkReaderAgrees(input: Uint8Array, datagram: ReturnType<typeof parseIkeHeader>): void {
  const reader = new IkeHeaderReader();
  const cut = int(input.length + 1);
  let result = reader.push(input.subarray(0, cut));
  if (result.kind === 'need-more') result = reader.push(input.subarray(cut));
  if (datagram.kind === 'ok') {
    assert.equal(result.kind, 'ok');
    if (result.kind === 'ok') assert.deepEqual(result.header, datagram.header);
  } else if (datagram.code === 'too-short') {
    assert.equal(result.kind, 'need-more');
  } else if (datagram.code === 'length-mismatch') {
    // Shorter than Length: still waiting. Longer: the message ends before the input does.
    assert.ok(
      result.kind === 'need-more' || (result.kind === 'ok' && result.message.length < input.length),
    );
  } else {
    assert.equal(result.kind, 'invalid');
    if (result.kind === 'invalid') assert.equal(result.code, datagram.code);
  }
}
