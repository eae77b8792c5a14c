import { test } from 'node:test';
import assert from 'node:assert/strict';

import {
  IKE_MESSAGE_FIXTURES,
  IKE_SA_INIT_REQUEST_HEX,
  IKEV1_HEADER_HEX,
  hex,
} from '../../../test/support/ikev2-fixtures.js';
import { IkeHeaderReader, type IkeReaderResult } from './ike-header-reader.js';
import { parseIkeHeader } from './ike-header.js';
import { IkeParseStats } from './parse-stats.js';

/** Feeds `chunks` in order; returns every result, asserting nothing is left unconsumed early. */
function feed(reader: IkeHeaderReader, chunks: readonly Uint8Array[]): IkeReaderResult[] {
  const results: IkeReaderResult[] = [];
  for (let chunk of chunks) {
    for (;;) {
      const result = reader.push(chunk);
      results.push(result);
      if (result.kind !== 'ok' || result.consumed === chunk.length) break;
      chunk = chunk.subarray(result.consumed);
    }
  }
  return results;
}

/** The one `ok` result among `results` (a trailing empty chunk starts the next message). */
function onlyMessage(results: readonly IkeReaderResult[], label: string): Uint8Array {
  const messages = results.filter((r) => r.kind === 'ok');
  assert.equal(messages.length, 1, label);
  assert.ok(
    results.every((r) => r.kind !== 'invalid'),
    label,
  );
  return (messages[0] as { message: Uint8Array }).message;
}

function last<T>(list: readonly T[]): T {
  const item = list[list.length - 1];
  assert.ok(item !== undefined);
  return item;
}

for (const [name, text] of Object.entries(IKE_MESSAGE_FIXTURES)) {
  const bytes = hex(text);
  const expected = parseIkeHeader(bytes);

  test(`${name}: one octet at a time gives the datagram parser's header`, () => {
    assert.equal(expected.kind, 'ok');
    const reader = new IkeHeaderReader();
    const results = feed(
      reader,
      [...bytes].map((b) => Uint8Array.of(b)),
    );
    assert.equal(results.length, bytes.length);
    results.slice(0, -1).forEach((r, i) => {
      assert.equal(r.kind, 'need-more', `after ${i + 1} octets`);
      // Before the header is complete it needs the rest of the header, then the rest of the body.
      const needed = i + 1 < 28 ? 28 - (i + 1) : bytes.length - (i + 1);
      assert.equal((r as { needed: number }).needed, needed);
    });
    const done = last(results);
    assert.equal(done.kind, 'ok');
    if (done.kind === 'ok' && expected.kind === 'ok') {
      assert.deepEqual(done.header, expected.header);
      assert.deepEqual(done.message, bytes);
    }
  });

  test(`${name}: split at every position (2 and 3 chunks) gives the same message`, () => {
    for (let i = 0; i <= bytes.length; i++) {
      const results = feed(new IkeHeaderReader(), [bytes.subarray(0, i), bytes.subarray(i)]);
      assert.deepEqual(onlyMessage(results, `split at ${i}`), bytes);
    }
    for (let i = 0; i <= bytes.length; i += 7) {
      for (let j = i; j <= bytes.length; j += 5) {
        const chunks = [bytes.subarray(0, i), bytes.subarray(i, j), bytes.subarray(j)];
        const results = feed(new IkeHeaderReader(), chunks);
        assert.deepEqual(onlyMessage(results, `split at ${i}, ${j}`), bytes);
      }
    }
  });
}

test('back-to-back messages in one chunk: each ok says how much it consumed', () => {
  const fixtures = Object.values(IKE_MESSAGE_FIXTURES).map(hex);
  const stream = new Uint8Array(fixtures.reduce((n, f) => n + f.length, 0));
  let offset = 0;
  for (const f of fixtures) {
    stream.set(f, offset);
    offset += f.length;
  }
  for (const chunkSize of [1, 13, 28, 29, 100, stream.length]) {
    const chunks: Uint8Array[] = [];
    for (let i = 0; i < stream.length; i += chunkSize)
      chunks.push(stream.subarray(i, i + chunkSize));
    const messages = feed(new IkeHeaderReader(), chunks).filter((r) => r.kind === 'ok');
    assert.equal(messages.length, fixtures.length, `chunk size ${chunkSize}`);
    for (const [i, m] of messages.entries())
      assert.deepEqual(m.kind === 'ok' && m.message, fixtures[i]);
  }
});

test('an invalid header is reported once its 28 octets are in, and sticks until reset()', () => {
  const stats = new IkeParseStats();
  const reader = new IkeHeaderReader({ stats });
  const v1 = hex(IKEV1_HEADER_HEX);
  assert.equal(reader.push(v1.subarray(0, 27)).kind, 'need-more');
  assert.deepEqual(reader.push(v1.subarray(27)), {
    kind: 'invalid',
    code: 'bad-version',
    consumed: 1,
  });
  assert.equal(reader.state, 'failed');
  const request = hex(IKE_SA_INIT_REQUEST_HEX);
  assert.deepEqual(reader.push(request), { kind: 'invalid', code: 'bad-version', consumed: 0 });
  reader.reset();
  assert.equal(reader.state, 'header');
  assert.equal(reader.push(request).kind, 'ok');
  assert.equal(stats.header['bad-version'], 2);
  assert.equal(stats.header['need-more'], 1);
  assert.equal(stats.header.ok, 1);
});

test('the header is validated before the body arrives (no buffering of a bad Length)', () => {
  const bad = hex(IKE_SA_INIT_REQUEST_HEX).slice(0, 28);
  new DataView(bad.buffer).setUint32(24, 0x7fffffff);
  assert.deepEqual(new IkeHeaderReader().push(bad), {
    kind: 'invalid',
    code: 'bad-length',
    consumed: 28,
  });
});

test('a header-only message (Length 28) completes with the header', () => {
  const bytes = hex(IKE_SA_INIT_REQUEST_HEX).slice(0, 28);
  bytes[16] = 0;
  new DataView(bytes.buffer).setUint32(24, 28);
  const results = feed(
    new IkeHeaderReader(),
    [...bytes].map((b) => Uint8Array.of(b)),
  );
  assert.equal(last(results).kind, 'ok');
  assert.equal(new IkeHeaderReader().push(new Uint8Array(0)).kind, 'need-more');
});

test('the returned message is a copy the reader no longer touches', () => {
  const bytes = hex(IKE_SA_INIT_REQUEST_HEX);
  const reader = new IkeHeaderReader();
  const first = reader.push(bytes);
  assert.equal(first.kind, 'ok');
  reader.push(bytes.subarray(0, 100));
  if (first.kind === 'ok') assert.deepEqual(first.message, bytes);
});
