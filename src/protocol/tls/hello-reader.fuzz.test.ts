/**
 * Fuzz test: mutated real hellos (bit flips, overwritten octets, truncation, insertion,
 * duplication), fed in random splits. The reader must never throw and must always answer one
 * of its three kinds, with a known code on `invalid`. Seeded, so a failure is reproducible.
 */
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { TlsHelloReader, type HelloKind } from './hello-reader.js';
import { TLS_INVALID_CODES } from './tls-constants.js';
import * as fx from '../../../test/support/tls-fixtures.js';
import { mulberry32 as prng } from '../../../lab/prng.js';

const SEEDS: [HelloKind, Uint8Array][] = [
  ['client-hello', fx.NODE_TLS13_CLIENT_HELLO],
  ['client-hello', fx.NODE_TLS12_RESUME_CLIENT_HELLO],
  ['client-hello', fx.OPENSSL_TLS13_PSK_CLIENT_HELLO],
  ['client-hello', fx.OPENSSL_TLS12_CLIENT_HELLO],
  ['server-hello', fx.NODE_TLS12_SERVER_HELLO],
  ['server-hello', fx.OPENSSL_TLS13_SERVER_HELLO],
];

function mutate(rand: () => number, input: Uint8Array): Uint8Array {
  const b = Buffer.from(input);
  const int = (n: number) => Math.floor(rand() * n);
  const rounds = 1 + int(4);
  let out: Buffer = b;
  for (let k = 0; k < rounds; k++) {
    switch (int(5)) {
      case 0: // flip one bit
        if (out.length > 0) {
          const i = int(out.length);
          out[i] = (out[i] as number) ^ (1 << int(8));
        }
        break;
      case 1: // overwrite an octet, favouring the length fields near the start
        if (out.length > 0)
          out[rand() < 0.5 ? int(Math.min(out.length, 48)) : int(out.length)] = int(256);
        break;
      case 2: // truncate
        out = out.subarray(0, int(out.length + 1));
        break;
      case 3: // insert random octets
        {
          const at = int(out.length + 1);
          const ins = Buffer.from(Array.from({ length: 1 + int(8) }, () => int(256)));
          out = Buffer.concat([out.subarray(0, at), ins, out.subarray(at)]);
        }
        break;
      default: {
        // duplicate a slice
        const at = int(out.length + 1);
        const len = int(40);
        out = Buffer.concat([out.subarray(0, at), out.subarray(at, at + len), out.subarray(at)]);
      }
    }
  }
  return Uint8Array.from(out);
}

it('never throws on 20 000 mutated hellos fed in random splits', () => {
  const rand = prng(0x5e1ec7);
  const counts: Record<string, number> = {};
  for (let n = 0; n < 20_000; n++) {
    const [kind, seed] = SEEDS[n % SEEDS.length] as [HelloKind, Uint8Array];
    const input = mutate(rand, seed);
    const reader = new TlsHelloReader(kind);
    let result = reader.push(new Uint8Array(0));
    for (let at = 0; at < input.length && result.kind === 'need-more'; ) {
      const len = 1 + Math.floor(rand() * 64);
      result = reader.push(input.subarray(at, at + len));
      at += len;
    }
    if (result.kind === 'need-more') result = reader.end();
    assert.ok(result.kind === 'ok' || result.kind === 'invalid', `input ${n}`);
    if (result.kind === 'invalid') assert.ok(TLS_INVALID_CODES.includes(result.code), result.code);
    const key = result.kind === 'ok' ? 'ok' : result.code;
    counts[key] = (counts[key] ?? 0) + 1;
  }
  // The corpus exercised several outcomes (a mutation engine stuck on one would be useless).
  assert.ok(Object.keys(counts).length >= 4, JSON.stringify(counts));
});
