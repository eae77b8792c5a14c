import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { NftApplier, NftResult } from '../kernel/nft-applier.js';
import {
  KernelShed,
  parseRcvbufErrors,
  shedCountsOf,
  renderShedTable,
  shedTableName,
} from './relay-kernel-shed.js';

/** Records every transaction; fails the ones `failNext` says. */
class RecordingNft implements NftApplier {
  readonly applied: string[] = [];
  failNext = 0;
  async apply(text: string): Promise<NftResult> {
    this.applied.push(text);
    if (this.failNext > 0) {
      this.failNext--;
      return { ok: false, error: 'Error: Could not process rule: No such file or directory' };
    }
    return { ok: true, value: undefined };
  }
  async list(): Promise<NftResult<unknown>> {
    return {
      ok: true,
      value: {
        nftables: [
          { counter: { name: 'established_shed', packets: 7 } },
          { counter: { name: 'unknown_shed', packets: 3 } },
        ],
      },
    };
  }
  async deleteTable(): Promise<NftResult<boolean>> {
    return { ok: true, value: true };
  }
}

const CONFIG = {
  table: 'vpnlb_shed_ike',
  family: 4 as const,
  virtualIp: '198.19.0.1',
  ports: [500, 4500],
  unknownPerSecond: 20_000,
};

test('the table: established flows by address . port . virtual port, unknown sources on their own budget, before conntrack', () => {
  const text = renderShedTable(CONFIG, undefined);
  assert.match(text, /type filter hook prerouting priority raw - 10;/);
  assert.match(text, /type ipv4_addr \. inet_service \. inet_service/);
  assert.match(
    text,
    /ip daddr 198\.19\.0\.1 udp dport \{ 500, 4500 \} ip saddr \. udp sport \. udp dport @established goto established/,
  );
  // A jump would come back to `pre` and send every established packet through the unknown
  // sources' budget as well.
  assert.doesNotMatch(text, /\bjump\b/);
  assert.match(
    text,
    /limit rate over 20000\/second burst 20000 packets counter name "unknown_shed" drop/,
  );
  assert.doesNotMatch(
    text,
    /established_shed" drop/,
    'no limit on established flows until the relay overflows',
  );
  assert.match(
    renderShedTable(CONFIG, 90_000),
    /limit rate over 90000\/second burst 9000 packets counter name "established_shed" drop/,
  );
  const v6 = renderShedTable(
    { ...CONFIG, family: 6, virtualIp: '2001:db8::1', ports: [4500] },
    undefined,
  );
  assert.match(
    v6,
    /ip6 daddr 2001:db8::1 udp dport 4500 ip6 saddr \. udp sport \. udp dport @established/,
  );
  assert.match(v6, /type ipv6_addr \. inet_service \. inet_service/);
});

test('table names fit nftables and the config pattern', () => {
  assert.equal(shedTableName('ike'), 'vpnlb_shed_ike');
  assert.equal(
    shedTableName('a-very-long-service-name-that-goes-on'),
    'vpnlb_shed_a_very_long_service_',
  );
  assert.ok(shedTableName('x'.repeat(63)).length <= 31);
});

test('set changes are batched: one transaction per flush, re-adds and removals before a flush cancel out', async () => {
  const nft = new RecordingNft();
  const shed = new KernelShed(nft, CONFIG);
  assert.ok((await shed.install()).ok);
  assert.match(
    nft.applied[0]!,
    /^table inet vpnlb_shed_ike\ndelete table inet vpnlb_shed_ike\ntable inet vpnlb_shed_ike \{/,
    'a table left by a killed process is replaced',
  );
  shed.add({ address: '198.18.16.1', port: 10000, dport: 4500 });
  shed.add({ address: '198.18.16.2', port: 500, dport: 500 });
  shed.add({ address: '198.18.16.3', port: 500, dport: 500 });
  shed.remove({ address: '198.18.16.3', port: 500, dport: 500 });
  await shed.flush();
  assert.equal(nft.applied.length, 2);
  assert.equal(
    nft.applied[1],
    'add element inet vpnlb_shed_ike established { 198.18.16.1 . 10000 . 4500, 198.18.16.2 . 500 . 500 }\n',
  );
  assert.equal(shed.members, 2);
  shed.remove({ address: '198.18.16.1', port: 10000, dport: 4500 });
  shed.remove({ address: '198.18.16.9', port: 1, dport: 500 }); // never a member: nothing to delete
  await shed.flush();
  assert.equal(
    nft.applied[2],
    'delete element inet vpnlb_shed_ike established { 198.18.16.1 . 10000 . 4500 }\n',
  );
  await shed.flush();
  assert.equal(nft.applied.length, 3, 'nothing queued: no nft process');
});

test('a failed set change rebuilds the set whole (the kernel and the relay may disagree)', async () => {
  const nft = new RecordingNft();
  const shed = new KernelShed(nft, CONFIG);
  await shed.install();
  shed.add({ address: '198.18.16.1', port: 1, dport: 500 });
  await shed.flush();
  shed.add({ address: '198.18.16.2', port: 2, dport: 500 });
  nft.failNext = 1;
  assert.ok((await shed.flush()).ok);
  assert.equal(
    nft.applied.at(-1),
    'flush set inet vpnlb_shed_ike established\nadd element inet vpnlb_shed_ike established { 198.18.16.1 . 1 . 500, 198.18.16.2 . 2 . 500 }\n',
  );
  assert.equal(shed.members, 2);
});

test('limit changes replace the established chain; unchanged limits cost nothing', async () => {
  const nft = new RecordingNft();
  const shed = new KernelShed(nft, CONFIG);
  await shed.install();
  await shed.setLimit(50_000);
  assert.equal(
    nft.applied.at(-1),
    'flush chain inet vpnlb_shed_ike established\nadd rule inet vpnlb_shed_ike established limit rate over 50000/second burst 5000 packets counter name "established_shed" drop\n',
  );
  await shed.setLimit(50_000);
  assert.equal(nft.applied.length, 2);
  await shed.setLimit(undefined);
  assert.equal(nft.applied.at(-1), 'flush chain inet vpnlb_shed_ike established\n');
  assert.deepEqual(await shed.counts(), { established: 7, unknown: 3 });
  assert.deepEqual(await shed.uninstall(), { ok: true, value: true });
  assert.equal(nft.applied.at(-1), 'table inet vpnlb_shed_ike\ndelete table inet vpnlb_shed_ike\n');
});

test('RcvbufErrors from /proc/net/snmp and snmp6; drops from the named counters', () => {
  const snmp =
    'Ip: Forwarding DefaultTTL\nIp: 1 64\nUdp: InDatagrams NoPorts InErrors OutDatagrams RcvbufErrors SndbufErrors\nUdp: 100 2 7 90 5 0\nUdpLite: InDatagrams NoPorts InErrors OutDatagrams RcvbufErrors\nUdpLite: 0 0 0 0 99\n';
  assert.equal(parseRcvbufErrors(snmp), 5);
  assert.equal(parseRcvbufErrors(snmp, 'Udp6InDatagrams 4\nUdp6RcvbufErrors 11\n'), 16);
  assert.equal(parseRcvbufErrors('nothing'), undefined);
  assert.equal(shedCountsOf({}), undefined);
  assert.equal(shedCountsOf({ established_shed: { packets: 1, bytes: 2 } }), undefined);
  assert.deepEqual(
    shedCountsOf({
      established_shed: { packets: 1, bytes: 2 },
      unknown_shed: { packets: 3, bytes: 4 },
    }),
    { established: 1, unknown: 3 },
  );
});
