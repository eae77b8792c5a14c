import { test } from 'node:test';
import assert from 'node:assert/strict';
import { warmupPlan } from '../lib/context.js';
import { hardFileLimit } from './flow-memory.js';
import { parseNegotiated } from './run-tls.js';
import { findPeak, type UdpSample } from './udp-forwarding.js';

test('parseNegotiated reads s_client -brief and sess_id output', () => {
  const brief =
    'CONNECTION ESTABLISHED\nProtocol version: TLSv1.3\nCiphersuite: TLS_AES_128_GCM_SHA256\nSignature type: ECDSA\nServer Temp Key: X25519, 253 bits\nDONE\n';
  const sess = '    Protocol  : TLSv1.3\n    TLS session ticket lifetime hint: 7200 (seconds)\n';
  assert.deepEqual(parseNegotiated(brief, sess), {
    protocol: 'TLSv1.3',
    cipher: 'TLS_AES_128_GCM_SHA256',
    group: 'X25519',
    ticket: true,
  });
  const tls12 = parseNegotiated(
    'Protocol version: TLSv1.2\nCiphersuite: ECDHE-ECDSA-AES128-GCM-SHA256\nPeer Temp Key: ECDH, prime256v1, 256 bits\n',
    '    Protocol  : TLSv1.2\n',
  );
  assert.equal(tls12.cipher, 'ECDHE-ECDSA-AES128-GCM-SHA256');
  assert.equal(tls12.group, 'ECDH');
  assert.equal(tls12.ticket, false);
  assert.deepEqual(parseNegotiated('', ''), {
    protocol: undefined,
    cipher: undefined,
    group: undefined,
    ticket: false,
  });
});

test('hardFileLimit reads the hard column of /proc/self/limits', () => {
  const limits =
    'Limit                     Soft Limit           Hard Limit           Units     \nMax open files            1024                 20000                files     \n';
  assert.equal(hardFileLimit(limits), 20000);
  assert.equal(
    hardFileLimit('Max open files            unlimited            unlimited            files\n'),
    Number.POSITIVE_INFINITY,
  );
  assert.equal(hardFileLimit('nothing'), undefined);
});

test('warmupPlan: the first window after a start gets the warm-up, later ones the settle time', () => {
  const w = warmupPlan({ warmupSeconds: 2, settleSeconds: 0.5 });
  assert.deepEqual([w(), w(), w()], [2, 0.5, 0.5]);
  const fresh = warmupPlan({ warmupSeconds: 2, settleSeconds: 0.5 });
  assert.equal(fresh(), 2);
});

test('findPeak: saturated only when the sweep ends on rates the contender cannot deliver', async () => {
  const sample = (rate: number, sent: number, delivered: number): UdpSample => ({
    offeredPps: rate,
    sentPps: sent,
    deliveredPps: delivered,
    loss: 0,
    balancerCpu: 0.5,
    generatorCoreCpu: 0.5,
    generatorCpu: 0.5,
  });
  const opts = {
    rates: [50e3, 100e3, 130e3, 160e3, 200e3],
    sweepSeconds: 1,
    seconds: 1,
    repeats: 1,
  };
  const quiet = () => undefined;
  // A contender that tops out at 100,000/s.
  const limited = await findPeak(
    async (r) => sample(r, r || 300e3, Math.min(r || 300e3, 100e3)),
    opts,
    quiet,
  );
  assert.equal(limited.saturated, true);
  assert.equal(limited.peak.offeredPps, 100e3);
  // One that delivers every rate: no peak found.
  const fast = await findPeak(async (r) => sample(r, r || 300e3, r || 300e3), opts, quiet);
  assert.equal(fast.saturated, false);
  // A generator that cannot send 160,000/s: neither.
  const slowGen = await findPeak(
    async (r) => sample(r, Math.min(r || 150e3, 150e3), Math.min(r || 150e3, 150e3)),
    opts,
    quiet,
  );
  assert.equal(slowGen.saturated, false);
});
