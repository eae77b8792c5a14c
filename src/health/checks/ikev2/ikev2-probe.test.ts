import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  buildIkeMessage,
  decodeSaBody,
  findPayload,
  IKE_EXCHANGE,
  IKE_FLAG,
  IKE_NOTIFY,
  IKE_PAYLOAD,
  IKE_TRANSFORM,
  notifyPayload,
  parsePayloads,
  withNonEspMarker,
} from '../../../protocol/ikev2/index.js';
import { closedUdpPort, udpServer } from '../../../../test/support/loopback-targets.js';
import { describeProbeConformance } from '../../../../test/support/probe-conformance.js';
import { createIkev2Probe } from './ikev2-probe.js';
import { buildProbeMessage, PROBE_PRIVATE_ENCR_ID } from './probe-message.js';

/** Answers like RFC 7296 §2.7 requires: NO_PROPOSAL_CHOSEN to an unacceptable IKE_SA_INIT. */
function rejectingResponder(
  msg: Buffer,
  reply: (d: Uint8Array) => void,
  mutate?: (spi: bigint) => bigint,
): void {
  const p = parsePayloads(msg);
  if (p.kind !== 'ok' || p.header.exchangeType !== IKE_EXCHANGE.IKE_SA_INIT) return;
  reply(
    buildIkeMessage({
      spiI: mutate ? mutate(p.header.spiI) : p.header.spiI,
      exchange: IKE_EXCHANGE.IKE_SA_INIT,
      flags: IKE_FLAG.RESPONSE,
      payloads: [notifyPayload({ type: IKE_NOTIFY.NO_PROPOSAL_CHOSEN })],
    }),
  );
}

describeProbeConformance({
  name: 'ikev2 probe',
  createProbe: () => createIkev2Probe(),
  live: [
    { label: 'IPv4', start: () => udpServer(4, (m, r) => rejectingResponder(m, r)) },
    { label: 'IPv6', start: () => udpServer(6, (m, r) => rejectingResponder(m, r)) },
  ],
  dead: () => closedUdpPort(4),
  silent: () => udpServer(4, () => undefined),
  garbage: [
    {
      label: 'random bytes',
      start: () => udpServer(4, (_m, r) => r(Buffer.from('not an IKE message at all, sorry'))),
    },
    {
      label: 'a valid response for another SPI',
      start: () => udpServer(4, (m, r) => rejectingResponder(m, r, (spi) => spi ^ 1n)),
    },
    { label: 'the request echoed back (no R flag)', start: () => udpServer(6, (m, r) => r(m)) },
    {
      label: 'a truncated response',
      start: () =>
        udpServer(4, (m, r) => rejectingResponder(m, (d) => r(d.subarray(0, d.length - 3)))),
    },
  ],
});

describe('ikev2 probe message', () => {
  it('offers one IKE proposal whose encryption ID is private-use (RFC 7296 §3.3.2)', () => {
    const p = parsePayloads(buildProbeMessage(0x1122334455667788n));
    assert.equal(p.kind, 'ok');
    if (p.kind !== 'ok') return;
    assert.equal(p.header.spiI, 0x1122334455667788n);
    assert.equal(p.header.spiR, 0n);
    assert.equal(p.header.isInitiator, true);
    assert.equal(p.header.isResponse, false);
    assert.deepEqual(
      p.payloads.map((x) => x.type),
      [IKE_PAYLOAD.SA, IKE_PAYLOAD.KE, IKE_PAYLOAD.NONCE],
    );
    const sa = decodeSaBody(findPayload(p, IKE_PAYLOAD.SA)!.body);
    assert.equal(sa?.length, 1);
    const encr = sa![0]!.transforms.filter((t) => t.type === IKE_TRANSFORM.ENCR);
    assert.deepEqual(
      encr.map((t) => t.id),
      [PROBE_PRIVATE_ENCR_ID],
    );
    assert.ok(PROBE_PRIVATE_ENCR_ID >= 1024);
  });

  it('uses a fresh SPI and source port for every probe', async () => {
    const seen: { spi: bigint; port: number }[] = [];
    const t = await udpServer(4, () => undefined);
    t.socket.on('message', (m, rinfo) => {
      const p = parsePayloads(m);
      if (p.kind === 'ok') seen.push({ spi: p.header.spiI, port: rinfo.port });
    });
    try {
      const probe = createIkev2Probe();
      await Promise.all(
        Array.from({ length: 5 }, () => probe.probe(t.target, new AbortController().signal, 200)),
      );
      assert.equal(seen.length, 5);
      assert.equal(new Set(seen.map((s) => s.spi)).size, 5);
      assert.equal(new Set(seen.map((s) => s.port)).size, 5);
    } finally {
      await t.close();
    }
  });

  it('speaks NAT-T framing (non-ESP marker) on port 4500', async () => {
    const t = await udpServer(4, (m, reply) => {
      if (m.readUInt32BE(0) !== 0) return; // RFC 3948 §2.2: IKE behind four zero octets
      rejectingResponder(m.subarray(4), (d) => reply(withNonEspMarker(d)));
    });
    try {
      const r = await createIkev2Probe({ natTPort: t.target.port! }).probe(
        t.target,
        new AbortController().signal,
        2000,
      );
      assert.equal(r.ok, true, r.detail);
      assert.match(r.detail, /NO_PROPOSAL_CHOSEN/);
    } finally {
      await t.close();
    }
  });

  it('says why it gave up when only garbage came back', async () => {
    const t = await udpServer(4, (_m, r) => r(Buffer.alloc(40, 7)));
    try {
      const r = await createIkev2Probe().probe(t.target, new AbortController().signal, 300);
      assert.equal(r.ok, false);
      assert.match(
        r.detail,
        /no answer within 300 ms \(1 datagram ignored, last: malformed IKE message/,
      );
    } finally {
      await t.close();
    }
  });
});
