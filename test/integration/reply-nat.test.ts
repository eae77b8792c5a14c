/**
 * The reply-NAT table (dataplane/kernel/reply-nat.ts) with real nftables and conntrack: a node
 * that holds no conntrack entry for a flow — an HA node right after a takeover its conntrackd did
 * not prepare, an ECMP node that did not forward the flow — receives a server's packet from its
 * NAT-T port. The client must see it from the service address, its answer must reach the server
 * that sent it with the client's own address, and a server packet from any other port must pass
 * untouched. The table is the one `vpnlb ha start` loads, rendered from a pair configuration.
 *
 * Topology (routed veths): client ns (198.18.1.2, 2001:db8:1::2) ↔ node ns ↔ server ns
 * (198.18.11.2, 2001:db8:11::2) whose default route is the node.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Topology, counterPackets, type Namespace } from '../../lab/netns.js';
import { readJsonLines } from '../../lab/udp-peers.js';
import { checkConfigText } from '../../src/config/load-config.js';
import { REPLY_NAT_COUNTER } from '../../src/dataplane/kernel/reply-nat.js';
import { HA_REPLY_NAT_TABLE, renderNodeFiles } from '../../src/ha/render-pair.js';
import { kernelTestSkip } from '../support/kernel-lab.js';

const skip = kernelTestSkip('reply-NAT integration tests');

const FAMILIES = [
  { family: 4, client: '198.18.1.2', server: '198.18.11.2', vip: '198.19.0.1' },
  { family: 6, client: '2001:db8:1::2', server: '2001:db8:11::2', vip: '2001:db8:ff::1' },
] as const;

const CONFIG = `pools:
  rras4: { backends: [ { name: s4, address: 198.18.11.2 } ] }
  rras6: { backends: [ { name: s6, address: "2001:db8:11::2" } ] }
services:
  ikev2:
    - { name: ike4, virtualIp: 198.19.0.1, pool: rras4 }
    - { name: ike6, virtualIp: "2001:db8:ff::1", pool: rras6 }
ha:
  nodes:
    - { name: lb1, priority: 150, syncAddress: 198.18.2.1 }
    - { name: lb2, priority: 100, syncAddress: 198.18.2.2 }
  sync: { interface: sync0 }
  vrrp:
    outside: { interface: outside0, virtualRouterId: 51 }
    inside: { interface: inside0, virtualRouterId: 52, addresses: [198.18.11.1/24] }
`;

/**
 * One UDP socket per argument `bind,port[,to,dport]`: prints `{ at, from, port, text }` for every
 * datagram; a socket with a destination sends `hello` once bound; every socket answers what it
 * receives once (`answer`), to the address it came from.
 */
const PEER_SCRIPT = `
const dgram = require('node:dgram');
for (const spec of process.argv.slice(1)) {
  const [bind, port, to, dport] = spec.split(',');
  const s = dgram.createSocket({ type: bind.includes(':') ? 'udp6' : 'udp4', reuseAddr: true });
  s.on('message', (m, r) => {
    console.log(JSON.stringify({ at: bind + ':' + port, from: r.address, port: r.port, text: m.toString() }));
    if (m.toString() === 'hello') s.send('answer', r.port, r.address);
  });
  s.bind(Number(port), bind, () => { if (to) s.send('hello', Number(dport), to); });
}
`;

interface Seen {
  readonly at: string;
  readonly from: string;
  readonly port: number;
  readonly text: string;
}

let topo: Topology;
let node: Namespace;
let client: Namespace;
let server: Namespace;

before(async () => {
  if (skip) return;
  topo = Topology.create('rnat');
  node = await topo.addNamespace('lb');
  client = await topo.addNamespace('cl', { forwarding: false });
  server = await topo.addNamespace('srv', { forwarding: false });
  await topo.link({
    a: 'cl',
    b: 'lb',
    aAddresses: ['198.18.1.2/24', '2001:db8:1::2/64'],
    bAddresses: ['198.18.1.1/24', '2001:db8:1::1/64'],
  });
  await topo.link({
    a: 'srv',
    b: 'lb',
    aAddresses: ['198.18.11.2/24', '2001:db8:11::2/64'],
    bAddresses: ['198.18.11.1/24', '2001:db8:11::1/64'],
  });
  for (const [ns, v4, v6] of [
    ['cl', '198.18.1.1', '2001:db8:1::1'],
    ['srv', '198.18.11.1', '2001:db8:11::1'],
  ] as const) {
    await topo.route(ns, 'default', v4);
    await topo.route(ns, 'default', v6);
  }
  const r = checkConfigText(CONFIG, '/etc/vpnlb/vpnlb.yaml', {
    hasInterface: () => true,
    isLocalAddress: () => false,
  });
  assert.ok(r.config, JSON.stringify(r.issues));
  const { files, paths } = renderNodeFiles(r.config, 'lb1');
  const table = files.get(paths.replyNat);
  assert.ok(table, 'ha.replyNat is on by default');
  await node.exec('nft', ['-f', '-'], table);
});

after(async () => {
  if (skip) return;
  await topo.destroy();
});

/** Starts the client's and the server's sockets, lets them talk for `ms`, returns what each saw. */
async function exchange(
  family: (typeof FAMILIES)[number],
  serverPort: number,
  ms = 1500,
): Promise<Seen[]> {
  const seen: Seen[] = [];
  const c = client.spawn(process.execPath, ['-e', PEER_SCRIPT, `${family.client},4500`]);
  readJsonLines<Seen>(c.stdout, (v) => seen.push(v));
  await new Promise((r) => setTimeout(r, 300));
  const s = server.spawn(process.execPath, [
    '-e',
    PEER_SCRIPT,
    `${family.server},${serverPort},${family.client},4500`,
  ]);
  readJsonLines<Seen>(s.stdout, (v) => seen.push(v));
  await new Promise((r) => setTimeout(r, ms));
  for (const p of [c, s]) p.kill('SIGKILL');
  return seen;
}

describe('reply NAT: a server packet of a flow the node does not know', { skip }, () => {
  for (const f of FAMILIES) {
    it(`IPv${f.family}: leaves with the service address, and the client's answer reaches its server`, async () => {
      const before = (await counterPackets(node, { family: 'inet', table: HA_REPLY_NAT_TABLE }))[
        REPLY_NAT_COUNTER
      ];
      const seen = await exchange(f, 4500);
      const atClient = seen.filter((s) => s.at === `${f.client}:4500`);
      const atServer = seen.filter((s) => s.at === `${f.server}:4500`);
      assert.deepEqual(
        atClient.map((s) => `${s.from}:${s.port} ${s.text}`),
        [`${f.vip}:4500 hello`],
        JSON.stringify(seen),
      );
      assert.deepEqual(
        atServer.map((s) => `${s.from}:${s.port} ${s.text}`),
        [`${f.client}:4500 answer`],
        JSON.stringify(seen),
      );
      const after = (await counterPackets(node, { family: 'inet', table: HA_REPLY_NAT_TABLE }))[
        REPLY_NAT_COUNTER
      ];
      // Only a flow's first packet sees the nat chain: the answer followed the entry.
      assert.equal((after ?? 0) - (before ?? 0), 1);
      // The entry the rewrite made: the server's flow, answered from the service address.
      const ct = await node.exec('conntrack', [
        '-L',
        '-f',
        f.family === 6 ? 'ipv6' : 'ipv4',
        '-p',
        'udp',
        '--orig-src',
        f.server,
        '--reply-dst',
        f.vip,
      ]);
      assert.match(ct, /sport=4500 dport=4500/, ct);
    });

    it(`IPv${f.family}: a server packet from another port passes untouched`, async () => {
      const seen = await exchange(f, 4600);
      assert.deepEqual(
        seen.filter((s) => s.at === `${f.client}:4500`).map((s) => `${s.from}:${s.port}`),
        [`${f.server}:4600`],
        JSON.stringify(seen),
      );
    });
  }
});
