/**
 * The kernel IKEv2 data plane in full-NAT mode (`nat: full`), with real packets (root).
 *
 * Topology: clients (198.18.1.2–.13) ↔ balancer ↔ one server LAN (198.18.20.0/24: a bridge in
 * its own "switch" namespace, where nothing filters) with three servers that have NO default
 * route: they can answer only addresses of their own LAN. The balancer holds 198.18.20.1 and the
 * SNAT pool 198.18.20.101–.103 on that LAN, as a full-NAT balancer must (the servers ARP for the
 * pool addresses). So every reply that reaches a client proves the SNAT + conntrack round trip.
 *
 * Servers record every datagram (source address and port as they see it, payload) and answer it.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Topology, type Namespace } from '../../lab/netns.js';
import { ikeMessage, sendBatch, startUdpServer } from '../../lab/udp-peers.js';
import { slotOf } from '../../src/balancer/jhash.js';
import { sourceIpKey } from '../../src/balancer/affinity.js';
import { decide } from '../../src/control/decide.js';
import type { ServiceSnapshot } from '../../src/control/snapshot.js';
import { KernelIkeDataPlane } from '../../src/dataplane/kernel/kernel-dataplane.js';
import { kernelTestSkip, runtimeFor } from '../support/kernel-lab.js';

const skip = kernelTestSkip('kernel full-NAT integration tests');

const VIP = '198.19.0.1';
const LB_LAN = '198.18.20.1';
const POOL = ['198.18.20.101', '198.18.20.102', '198.18.20.103'];
const SERVERS = [1, 2, 3].map((n) => ({ name: `s${n}`, address: `198.18.20.1${n}` }));
const CLIENTS = Array.from({ length: 12 }, (_, i) => `198.18.1.${i + 2}`);
const SEED = 305419896;

let topo: Topology;
let lb: Namespace;
let client: Namespace;
interface Seen {
  srv: string;
  lport: number;
  raddr: string;
  rport: number;
  hex: string;
}
const received: Seen[] = [];

const batch = sendBatch;

const ikeHeader = (spi: Buffer) => ikeMessage(spi);
/** RFC 3948 §2.2: IKE on 4500 behind the 4-byte non-ESP marker. */
const ike4500 = (spi: Buffer) => Buffer.concat([Buffer.alloc(4), ikeHeader(spi)]);
/** RFC 3948 §2.1: ESP-in-UDP (non-zero SPI, sequence number, payload). */
const esp = () =>
  Buffer.concat([Buffer.from([0xc0, 0xff, 0xee, 0x01, 0, 0, 0, 1]), randomBytes(24)]);

const seenPayload = (payload: Buffer) => received.filter((r) => r.hex === payload.toString('hex'));

function ctxFor(yaml: string) {
  const { ctx, controller } = runtimeFor(yaml);
  return { ctx, controller, snap: () => controller.service('ike') as ServiceSnapshot };
}

function yamlFor(service: string, servers = SERVERS): string {
  const backends = servers
    .map((s) => `      - { name: ${s.name}, address: "${s.address}" }`)
    .join('\n');
  return `pools:\n  farm:\n    backends:\n${backends}\nservices:\n  ikev2:\n    - { name: ike, virtualIp: "${VIP}", pool: farm, hashSeed: ${SEED}, nat: full, ${service} }\n`;
}

const ctList = async () => lb.exec('conntrack', ['-L', '-p', 'udp', '--orig-dst', VIP]);

before(async () => {
  if (skip) return;
  topo = Topology.create('kfn');
  lb = await topo.addNamespace('lb');
  client = await topo.addNamespace('cl');
  const sw = await topo.addNamespace('sw', { forwarding: false });
  await topo.link({
    a: 'cl',
    b: 'lb',
    aAddresses: CLIENTS.map((c) => `${c}/24`),
    bAddresses: ['198.18.1.1/24'],
  });
  await topo.route('cl', 'default', '198.18.1.1');
  // The servers' LAN: a bridge in the switch namespace (no ruleset there, so br_netfilter has
  // nothing to apply); the balancer's LAN address and the SNAT pool on its port.
  await sw.exec('ip', ['link', 'add', 'br0', 'type', 'bridge']);
  await sw.exec('ip', ['link', 'set', 'br0', 'up']);
  const up = await topo.link({
    a: 'lb',
    b: 'sw',
    aAddresses: [`${LB_LAN}/24`, ...POOL.map((p) => `${p}/24`)],
    bAddresses: [],
  });
  await sw.exec('ip', ['link', 'set', up.bIf, 'master', 'br0']);
  for (const s of SERVERS) {
    const ns = await topo.addNamespace(s.name, { forwarding: false });
    const l = await topo.link({
      a: s.name,
      b: 'sw',
      aAddresses: [`${s.address}/24`],
      bAddresses: [],
    });
    await sw.exec('ip', ['link', 'set', l.bIf, 'master', 'br0']);
    // No default route: the servers cannot reach the clients (198.18.1.0/24) on their own.
    startUdpServer(ns, s.name, received);
  }
  // The servers answer the balancer on their LAN once their sockets are bound.
  for (const s of SERVERS) {
    let ok = false;
    for (let i = 0; i < 50 && !ok; i++)
      ok =
        (
          await batch(lb, [
            {
              bind: LB_LAN,
              port: 0,
              to: s.address,
              dport: 500,
              payload: Buffer.from('ping'),
              wait: 200,
            },
          ])
        )[0]?.reply === `ack:${s.name}`;
    assert.ok(ok, `server ${s.name} answers on its LAN`);
  }
  // Control: without the balancer's SNAT, a server cannot answer a client (no route back).
  const direct = await batch(client, [
    {
      bind: CLIENTS[0]!,
      port: 0,
      to: SERVERS[0]!.address,
      dport: 500,
      payload: Buffer.from('direct'),
      wait: 300,
    },
  ]).catch(() => [{ port: 0, reply: null }]);
  assert.equal(direct[0]?.reply ?? null, null, 'servers have no route to the clients');
  received.length = 0;
});

after(async () => {
  await topo?.destroy();
});

test('full NAT with an SNAT pool: both flows of a client reach one server from one pool address; replies return through conntrack; the pool spreads clients', {
  skip,
}, async () => {
  const { ctx, snap } = ctxFor(yamlFor(`snat: { addresses: [${POOL.join(', ')}] }`));
  const dp = new KernelIkeDataPlane(snap().service as never, ctx, {
    netns: lb.name,
    pollIntervalMs: 0,
  });
  await dp.start(snap());
  try {
    assert.ok(
      dp.status().warnings.some((w) => w.includes('error 809')),
      'full NAT warns about error 809',
    );
    // Each client: IKE_SA_INIT from port 500, IKE_AUTH from port 4500 (as real initiators do,
    // so SNAT must also remap colliding source ports), then ESP on the same 4500 flow.
    const plan = CLIENTS.map((addr) => ({
      addr,
      spi: randomBytes(8),
      p500: ikeHeader(randomBytes(8)),
      p4500: Buffer.alloc(0),
      esp: esp(),
    }));
    for (const c of plan) {
      c.p500 = ikeHeader(c.spi);
      c.p4500 = ike4500(c.spi);
    }
    const replies = await batch(
      client,
      plan.flatMap((c) => [
        { bind: c.addr, port: 500, to: VIP, dport: 500, payload: c.p500 },
        { bind: c.addr, port: 4500, to: VIP, dport: 4500, payload: c.p4500 },
        { bind: c.addr, port: 4500, to: VIP, dport: 4500, payload: c.esp },
      ]),
    );
    const poolUsed = new Set<string>();
    for (const [i, c] of plan.entries()) {
      const want = decide(snap(), { address: c.addr, spi: c.spi }).backend?.name;
      // The kernel's `jhash ip saddr mod 3 seed S` is the userspace slotOf(): predictable.
      const wantSrc = POOL[slotOf(sourceIpKey(c.addr), SEED, POOL.length)];
      for (const k of [0, 1, 2])
        assert.equal(
          replies[3 * i + k]?.reply,
          `ack:${want}`,
          `${c.addr} datagram ${k}: the reply came back through the balancer`,
        );
      const [r500] = seenPayload(c.p500);
      const [r4500] = seenPayload(c.p4500);
      const [rEsp] = seenPayload(c.esp);
      assert.ok(r500 && r4500 && rEsp, `${c.addr}: all three datagrams reached a server`);
      assert.equal(r500.srv, want);
      assert.equal(r4500.srv, want, `${c.addr}: 500 and 4500 on one server`);
      assert.equal(r500.raddr, wantSrc, `${c.addr}: SNAT address = pool[jhash(saddr) mod 3]`);
      assert.equal(r4500.raddr, r500.raddr, `${c.addr}: both flows from one SNAT address`);
      assert.deepEqual(
        [rEsp.srv, rEsp.raddr, rEsp.rport],
        [r4500.srv, r4500.raddr, r4500.rport],
        'ESP follows the 4500 flow',
      );
      poolUsed.add(r500.raddr);
    }
    assert.ok(
      received.every((r) => POOL.includes(r.raddr)),
      `servers saw only pool addresses: ${[...new Set(received.map((r) => r.raddr))].join(', ')}`,
    );
    const predicted = new Set(CLIENTS.map((c) => POOL[slotOf(sourceIpKey(c), SEED, POOL.length)]));
    assert.deepEqual([...poolUsed].sort(), [...predicted].sort());
    assert.ok(poolUsed.size >= 2, 'the pool spreads clients over its addresses');
    assert.ok(new Set(received.map((r) => r.srv)).size >= 2, 'SPIs spread over servers');
    // Conntrack shows the translation: replies are expected at a pool address.
    const ct = await ctList();
    for (const p of poolUsed) assert.match(ct, new RegExp(`dst=${p.replace(/\./g, '\\.')} sport=`));
    await dp.refresh();
    const st = dp.status();
    const busy = [...new Set(received.map((r) => r.srv))];
    for (const name of busy)
      assert.ok((st.backends[name]?.packetsOut ?? 0) >= 1, `${name}: replies counted`);
  } finally {
    await dp.stop();
  }
  received.length = 0;
});

test("full NAT without a pool: masquerade to the balancer's LAN address; source-ip keeps a client on one server", {
  skip,
}, async () => {
  await lb.exec('conntrack', ['-F']).catch(() => '');
  const { ctx, snap } = ctxFor(yamlFor('affinity: source-ip, table: kfnmasq'));
  const dp = new KernelIkeDataPlane(snap().service as never, ctx, {
    netns: lb.name,
    pollIntervalMs: 0,
  });
  await dp.start(snap());
  try {
    const plan = CLIENTS.slice(0, 6).map((addr) => ({
      addr,
      p500: ikeHeader(randomBytes(8)),
      p4500: ike4500(randomBytes(8)),
    }));
    const replies = await batch(
      client,
      plan.flatMap((c) => [
        { bind: c.addr, port: 500, to: VIP, dport: 500, payload: c.p500 },
        { bind: c.addr, port: 4500, to: VIP, dport: 4500, payload: c.p4500 },
      ]),
    );
    for (const [i, c] of plan.entries()) {
      const want = decide(snap(), { address: c.addr }).backend?.name;
      assert.equal(replies[2 * i]?.reply, `ack:${want}`);
      assert.equal(replies[2 * i + 1]?.reply, `ack:${want}`);
      assert.equal(seenPayload(c.p500)[0]?.raddr, LB_LAN);
      assert.equal(seenPayload(c.p4500)[0]?.raddr, LB_LAN);
    }
  } finally {
    await dp.stop();
  }
  received.length = 0;
});

test('snat.maxSasPerAddress: the kernel refuses new NAT-T flows of a (pool address, server) pair above the cap, and admits again when one ends', {
  skip,
}, async () => {
  await lb.exec('conntrack', ['-F']).catch(() => '');
  const cap = 2;
  const one = [SERVERS[0]!];
  const pool = POOL.slice(0, 2);
  const { ctx, snap } = ctxFor(
    yamlFor(
      `table: kfncap, maxFlows: 16, snat: { addresses: [${pool.join(', ')}], maxSasPerAddress: ${cap} }`,
      one,
    ),
  );
  const dp = new KernelIkeDataPlane(snap().service as never, ctx, {
    netns: lb.name,
    pollIntervalMs: 0,
  });
  await dp.start(snap());
  try {
    assert.ok(
      dp.status().warnings.some((w) => w.includes('admits at most 4 tunnels')),
      JSON.stringify(dp.status().warnings),
    );
    const byAddress = new Map<string, string[]>();
    for (const c of CLIENTS) {
      const a = pool[slotOf(sourceIpKey(c), SEED, pool.length)]!;
      byAddress.set(a, [...(byAddress.get(a) ?? []), c]);
    }
    const replies = await batch(
      client,
      CLIENTS.map((c) => ({
        bind: c,
        port: 4500,
        to: VIP,
        dport: 4500,
        payload: ike4500(randomBytes(8)),
        wait: 200,
      })),
    );
    const admitted = CLIENTS.filter((_, i) => replies[i]?.reply === `ack:${one[0]!.name}`);
    // Per pool address: exactly the first `cap` clients got through (in sending order).
    for (const [a, clients] of byAddress) {
      assert.deepEqual(
        admitted.filter((c) => clients.includes(c)),
        clients.slice(0, cap),
        `pool address ${a}`,
      );
      assert.equal(received.filter((r) => r.raddr === a).length, Math.min(cap, clients.length));
    }
    const refused = CLIENTS.length - admitted.length;
    assert.ok(refused > 0);
    await dp.refresh();
    assert.match(
      await ctx.metrics.text(),
      new RegExp(
        `vpnlb_kernel_dropped_packets_total\\{service="ike",reason="snat_exhausted"\\} ${refused}\\b`,
      ),
    );
    // One admitted tunnel ends (its entry goes): the next client of that address gets its place.
    const [a0, clients0] = [...byAddress].find(([, cs]) => cs.length > cap)!;
    await lb.exec('conntrack', ['-D', '-p', 'udp', '--orig-src', clients0[0]!, '--orig-dst', VIP]);
    const next = clients0[cap]!;
    const again = await batch(client, [
      { bind: next, port: 4500, to: VIP, dport: 4500, payload: ike4500(randomBytes(8)), wait: 300 },
    ]);
    assert.equal(
      again[0]?.reply,
      `ack:${one[0]!.name}`,
      `${next} admitted on ${a0} once a place is free`,
    );
  } finally {
    await dp.stop();
  }
  received.length = 0;
});

test("conntrack timeouts (any NAT mode): the service's flows get its ct timeout policy (replied = flowTimeout), not the host default; a new flowTimeout replaces it on adoption", {
  skip,
}, async () => {
  await lb.exec('conntrack', ['-F']).catch(() => '');
  const { ctx, snap } = ctxFor(
    yamlFor(`table: kfnct, flowTimeout: 600s, snat: { addresses: [${POOL.join(', ')}] }`),
  );
  const dp = new KernelIkeDataPlane(snap().service as never, ctx, {
    netns: lb.name,
    pollIntervalMs: 0,
  });
  await dp.start(snap());
  try {
    const c = CLIENTS[0]!;
    const spi = randomBytes(8);
    const first = await batch(client, [
      { bind: c, port: 4500, to: VIP, dport: 4500, payload: ike4500(spi) },
    ]);
    assert.match(first[0]?.reply ?? '', /^ack:/);
    // The kernel applies the "replied" (stream) timeout to a flow still active 2 s after its
    // first reply (nf_conntrack_proto_udp.c: stream_ts); before that, the unreplied one.
    await new Promise((r) => setTimeout(r, 2200));
    const second = await batch(client, [
      { bind: c, port: 4500, to: VIP, dport: 4500, payload: esp() },
    ]);
    assert.match(second[0]?.reply ?? '', /^ack:/);
    const line = (await ctList())
      .split('\n')
      .find((l) => l.includes(`src=${c} `) && l.includes('dport=4500'));
    assert.ok(line, 'the 4500 entry exists');
    const timeout = Number(line.trim().split(/\s+/)[2]);
    const hostStream = Number(
      (await lb.exec('sysctl', ['-n', 'net.netfilter.nf_conntrack_udp_timeout_stream'])).trim(),
    );
    assert.ok(
      timeout > 590 && timeout <= 600,
      `timeout ${timeout} s (host stream timeout ${hostStream} s)`,
    );
    assert.match(
      await lb.exec('nft', ['list', 'ct', 'timeout', 'ip', 'kfnct', 'udp_30_600']),
      /replied : 600/,
    );

    // A restart with another flowTimeout adopts the table: the old policy object is replaced
    // (its entries fall back to the host's timeouts), new flows get the new one.
    await dp.stop({ keepState: true });
    const next = ctxFor(
      yamlFor(`table: kfnct, flowTimeout: 300s, snat: { addresses: [${POOL.join(', ')}] }`),
    );
    const dp2 = new KernelIkeDataPlane(next.snap().service as never, next.ctx, {
      netns: lb.name,
      pollIntervalMs: 0,
    });
    await dp2.start(next.snap());
    try {
      assert.equal(dp2.isAdopted, true);
      const objects = await lb.exec('nft', ['list', 'table', 'ip', 'kfnct']);
      assert.match(objects, /ct timeout udp_30_300 /);
      assert.doesNotMatch(objects, /udp_30_600/);
      const c2 = CLIENTS[1]!;
      assert.match(
        (
          await batch(client, [
            { bind: c2, port: 4500, to: VIP, dport: 4500, payload: ike4500(randomBytes(8)) },
          ])
        )[0]?.reply ?? '',
        /^ack:/,
      );
      await new Promise((r) => setTimeout(r, 2200));
      assert.match(
        (await batch(client, [{ bind: c2, port: 4500, to: VIP, dport: 4500, payload: esp() }]))[0]
          ?.reply ?? '',
        /^ack:/,
      );
      const line2 = (await ctList())
        .split('\n')
        .find((l) => l.includes(`src=${c2} `) && l.includes('dport=4500'));
      const t2 = Number(line2?.trim().split(/\s+/)[2]);
      assert.ok(t2 > 290 && t2 <= 300, `timeout after the change: ${t2} s`);
    } finally {
      await dp2.stop();
    }
  } finally {
    await dp.stop().catch(() => undefined);
  }
});
