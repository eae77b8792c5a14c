import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mulberry32 } from '../../prng.js';
import { clientSubnet4 } from '../../topology-ike.js';
import { floodAccounting } from './chaos.js';
import { FAULT_KINDS, faultPlan } from './fault-plan.js';
import {
  kernelVerdict,
  randomDatagram,
  randomSstpGarbage,
  sstpVerdict,
  type FloodReport,
} from './flood.js';
import { metricByLabel } from './observations.js';
import { parsePingLine } from './tunnel-ping.js';

const hex = (h: string) => Buffer.from(h.replace(/\s+/g, ''), 'hex');

describe('chaos flood verdicts (mirror of the kernel ruleset and the SSTP proxy)', () => {
  it('IKE port: an SPI needs 8 octets (RFC 7296 §3.1), anything longer is hashed and forwarded', () => {
    assert.equal(kernelVerdict(false, Buffer.alloc(0)), 'ike_unrouted');
    assert.equal(kernelVerdict(false, hex('01020304050607')), 'ike_unrouted');
    assert.equal(kernelVerdict(false, hex('0102030405060708')), 'forwarded');
    assert.equal(kernelVerdict(false, Buffer.alloc(300, 0xab)), 'forwarded');
  });
  it('NAT-T port: only a zero marker followed by a full SPI is hashed; ESP, keepalives and short markers are unrouted', () => {
    assert.equal(kernelVerdict(true, hex('00000000 0102030405060708')), 'forwarded');
    assert.equal(kernelVerdict(true, hex('00000000 01020304050607')), 'natt_unrouted');
    assert.equal(kernelVerdict(true, hex('00000001 0102030405060708')), 'natt_unrouted');
    assert.equal(kernelVerdict(true, hex('ff')), 'natt_unrouted');
    assert.equal(kernelVerdict(true, Buffer.alloc(0)), 'natt_unrouted');
    assert.equal(kernelVerdict(true, hex('000000')), 'natt_unrouted');
  });
  it('SSTP port: the proxy reader decides the reason; nothing at all is client-closed', () => {
    assert.equal(sstpVerdict(Buffer.alloc(0)), 'client-closed');
    assert.equal(sstpVerdict(Buffer.from('GET / HTTP/1.1\r\n\r\n')), 'tls-not-tls');
    assert.equal(sstpVerdict(hex('160301')), 'tls-truncated');
    assert.equal(sstpVerdict(hex('1603010000')), 'tls-bad-record');
    assert.equal(sstpVerdict(hex('15030100020228')), 'tls-alert');
  });
  it('the generators cover every verdict and never produce a forwardable SSTP hello', () => {
    const rnd = mulberry32(7);
    const seen = new Set<string>();
    for (let i = 0; i < 2000; i++) {
      const d = randomDatagram(rnd);
      seen.add(`${d.natT ? 'natT' : 'ike'}:${kernelVerdict(d.natT, d.payload)}`);
    }
    assert.deepEqual([...seen].sort(), [
      'ike:forwarded',
      'ike:ike_unrouted',
      'natT:forwarded',
      'natT:natt_unrouted',
    ]);
    const reasons = new Set<string | undefined>();
    for (let i = 0; i < 500; i++) reasons.add(sstpVerdict(randomSstpGarbage(rnd)));
    for (const r of ['client-closed', 'tls-not-tls', 'tls-bad-record', 'tls-truncated'])
      assert.ok(reasons.has(r), `no ${r} in ${[...reasons].join(', ')}`);
  });
  it('the same seed gives the same flood', () => {
    const a = mulberry32(3);
    const b = mulberry32(3);
    for (let i = 0; i < 100; i++) assert.deepEqual(randomDatagram(a), randomDatagram(b));
  });
});

describe('chaos accounting', () => {
  const sent: FloodReport = {
    seconds: 10,
    udp: {
      forwarded: { ike: 5, natT: 6 },
      ike_unrouted: { ike: 7, natT: 0 },
      natt_unrouted: { ike: 0, natT: 9 },
    },
    udpSendErrors: 0,
    tcp: { 'tls-not-tls': 3, 'client-closed': 1 },
    tcpConnectErrors: 0,
  };
  it('is accounted when every reason grew by exactly what was sent', () => {
    const r = floodAccounting(
      sent,
      { ike_unrouted: 100, natt_unrouted: 1 },
      { ike_unrouted: 107, natt_unrouted: 10 },
      { 'tls-not-tls': 2 },
      { 'tls-not-tls': 5, 'client-closed': 1 },
    );
    assert.equal(r.accounted, true);
    assert.equal(r.udpSent, 27);
    assert.equal(r.udpForwardedToServers, 11);
    assert.deepEqual(r.tcpRejectsCounted, { 'client-closed': 1, 'tls-not-tls': 3 });
  });
  it('is not accounted when a counter is short or another reason grew', () => {
    assert.equal(
      floodAccounting(
        sent,
        {},
        { ike_unrouted: 6, natt_unrouted: 9 },
        {},
        { 'tls-not-tls': 3, 'client-closed': 1 },
      ).accounted,
      false,
    );
    assert.equal(
      floodAccounting(
        sent,
        {},
        { ike_unrouted: 7, natt_unrouted: 9 },
        {},
        { 'tls-not-tls': 3, 'client-closed': 1, 'tls-alert': 1 },
      ).accounted,
      false,
    );
  });
  it('counts a refusal at accept in place of the reason the content would have earned', () => {
    const r = floodAccounting(
      sent,
      {},
      { ike_unrouted: 7, natt_unrouted: 9 },
      {},
      { 'tls-not-tls': 1, 'client-closed': 1, 'source-rate': 2 },
    );
    assert.equal(r.accounted, true);
    assert.equal(r.tcpRefusedAtAccept, 2);
    // One connection counted twice, or one not at all, is not accounted.
    for (const after of [
      { 'tls-not-tls': 2, 'client-closed': 1, 'source-rate': 2 },
      { 'tls-not-tls': 1, 'client-closed': 1, 'source-rate': 1 },
      { 'tls-not-tls': 0, 'client-closed': 2, 'source-rate': 2 },
    ])
      assert.equal(
        floodAccounting(sent, {}, { ike_unrouted: 7, natt_unrouted: 9 }, {}, after).accounted,
        false,
        JSON.stringify(after),
      );
  });
  it('reads one label of a Prometheus counter', () => {
    const text =
      '# HELP x\nvpnlb_sstp_rejected_total{service="a",reason="tls-not-tls"} 3\nvpnlb_sstp_rejected_total{service="b",reason="tls-not-tls"} 2\nvpnlb_sstp_rejected_total{service="a",reason="client-closed"} 1\nother{reason="x"} 9\n';
    assert.deepEqual(metricByLabel(text, 'vpnlb_sstp_rejected_total', 'reason'), {
      'tls-not-tls': 5,
      'client-closed': 1,
    });
  });
  it('parses ping -D -O lines', () => {
    assert.deepEqual(
      parsePingLine(
        '[1764662400.123456] 64 bytes from 198.19.100.1: icmp_seq=5 ttl=64 time=0.4 ms',
      ),
      { seq: 5, atMs: 1764662400123, replied: true },
    );
    assert.deepEqual(parsePingLine('[1764662401.5] no answer yet for icmp_seq=6'), {
      seq: 6,
      atMs: 1764662401500,
      replied: false,
    });
    assert.deepEqual(
      parsePingLine('[1764662400.1] 64 bytes from 2001:db8:100::1: icmp_seq=1 ttl=64 time=1 ms')
        ?.seq,
      1,
    );
    assert.equal(
      parsePingLine('PING 198.19.100.1 (198.19.100.1) 56(84) bytes of data.'),
      undefined,
    );
  });
});

describe('chaos fault plan', () => {
  it('injects every kind first, adds the spare, kills a server, removes the spare in that order, and replays from the seed', () => {
    for (let seed = 0; seed < 50; seed++) {
      const plan = faultPlan(mulberry32(seed));
      const first = Array.from({ length: FAULT_KINDS.length }, () => plan.next().value);
      assert.deepEqual([...first].sort(), [...FAULT_KINDS].sort());
      assert.ok(
        first.indexOf('add-server') < first.indexOf('kill-server') &&
          first.indexOf('kill-server') < first.indexOf('remove-server'),
        `seed ${seed}: ${first.join(' ')}`,
      );
      const again = faultPlan(mulberry32(seed));
      assert.deepEqual(
        Array.from({ length: 20 }, () => again.next().value).slice(0, first.length),
        first,
      );
      for (let i = 0; i < 20; i++) assert.notEqual(plan.next().value, 'flood');
    }
  });
});

describe('lab addressing', () => {
  it('keeps the first 87 clients on their historical /24s and puts more on distinct /30s', () => {
    assert.deepEqual(clientSubnet4(1), {
      gateway: '198.18.11.1',
      client: '198.18.11.2',
      prefixLength: 24,
    });
    assert.deepEqual(clientSubnet4(87), {
      gateway: '198.18.97.1',
      client: '198.18.97.2',
      prefixLength: 24,
    });
    assert.deepEqual(clientSubnet4(88), {
      gateway: '198.19.128.1',
      client: '198.19.128.2',
      prefixLength: 30,
    });
    assert.deepEqual(clientSubnet4(88 + 65), {
      gateway: '198.19.129.5',
      client: '198.19.129.6',
      prefixLength: 30,
    });
    const all = new Set(Array.from({ length: 1000 }, (_, i) => clientSubnet4(i + 1).client));
    assert.equal(all.size, 1000);
  });
});
