/**
 * The kernel IKEv2 data plane with real nftables and conntrack, in network namespaces (root).
 *
 * Topology (routed veths, lab/netns.ts): client ns (198.18.1.2 and .3, 2001:db8:1::2) ↔ balancer
 * ns ↔ three server namespaces (198.18.1N.2, 2001:db8:1N::2) whose default route is the
 * balancer. `KernelIkeDataPlane` programs the balancer namespace (`netns` option); clients and
 * servers are small Node dgram scripts. Servers record every datagram (source address and port,
 * payload) and answer it, so conntrack sees replies.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { dirname, join } from 'node:path';
import { readdirSync, existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Topology, type Namespace } from '../../lab/netns.js';
import {
  INFORMATIONAL,
  espDatagram,
  ikeMessage,
  sendBatch,
  sendDatagram,
  startUdpServer,
  withMarker,
} from '../../lab/udp-peers.js';
import { decide } from '../../src/control/decide.js';
import type { ServiceSnapshot } from '../../src/control/snapshot.js';
import { KernelIkeDataPlane } from '../../src/dataplane/kernel/kernel-dataplane.js';
import { NftCliApplier, type NftApplier } from '../../src/dataplane/kernel/nft-applier.js';
import type { CounterFamily } from '../../src/dataplane/kernel/nft-counters.js';
import { kernelTestSkip, runtimeFor } from '../support/kernel-lab.js';

const skip = kernelTestSkip('kernel data-plane integration tests');

const VIP4 = '198.19.0.1';
const VIP6 = '2001:db8:ff::1';
const SERVERS = [1, 2, 3].map((n) => ({
  name: `s${n}`,
  v4: `198.18.1${n}.2`,
  v6: `2001:db8:1${n}::2`,
  gw4: `198.18.1${n}.1`,
}));
const CLIENTS4 = ['198.18.1.2', '198.18.1.3'];
const CLIENT6 = '2001:db8:1::2';

let topo: Topology;
let lb: Namespace;
let client: Namespace;
const received: { srv: string; lport: number; raddr: string; rport: number; hex: string }[] = [];

const send = (bind: string, port: number, to: string, dport: number, payload: Buffer, wait = 400) =>
  sendDatagram(client, { bind, port, to, dport, payload, wait });
const ikeHeader = (spi: Buffer) => ikeMessage(spi);
const ike4500 = (spi: Buffer) => withMarker(ikeMessage(spi));
const esp = espDatagram;

function serverOf(raddr: string, rport: number, lport: number) {
  return received.filter((r) => r.raddr === raddr && r.rport === rport && r.lport === lport);
}

function yamlFor(opts: { vip: string; family: 4 | 6; affinity?: string; table: string }): string {
  const backends = SERVERS.map(
    (s) => `      - { name: ${s.name}, address: "${opts.family === 6 ? s.v6 : s.v4}" }`,
  ).join('\n');
  return `pools:\n  farm:\n    backends:\n${backends}\nservices:\n  ikev2:\n    - { name: ike, virtualIp: "${opts.vip}", pool: farm, affinity: ${opts.affinity ?? 'ike-spi'}, table: ${opts.table}, hashSeed: 305419896 }\n`;
}

const lbNft = async (...args: string[]) => lb.exec('nft', args);
/**
 * Empties the peer_<server> sets (affinity ike-spi: a new SA from an address with NAT-T flows on
 * one server joins it), so that the next SAs of a test that checks SPI placement are hashed by
 * their SPI. The join itself is checked by the IPv6 test and strongswan-device-user.
 */
const forgetPeers = async (family: 'ip' | 'ip6', table: string) => {
  for (const s of SERVERS) await lbNft('flush', 'set', family, table, `peer_${s.name}`);
};
const ctCount = async (vip: string, family: 4 | 6, replySrc?: string, dport?: number) => {
  const out = await lb.exec('conntrack', [
    '-L',
    '-f',
    family === 6 ? 'ipv6' : 'ipv4',
    '-p',
    'udp',
    '--orig-dst',
    vip,
    ...(replySrc ? ['--reply-src', replySrc] : []),
    ...(dport ? ['--dport', String(dport)] : []),
  ]);
  return out.split('\n').filter((l) => l.includes('src=')).length;
};
const slotMap = async (table: string, family: 'ip' | 'ip6') => {
  const j = JSON.parse(await lbNft('-j', 'list', 'map', family, table, 'slots')) as {
    nftables: { map?: { elem: [number, string][] } }[];
  };
  const m = new Map<number, string>();
  for (const it of j.nftables) for (const [k, v] of it.map?.elem ?? []) m.set(k, v);
  return m;
};

before(async () => {
  if (skip) return;
  topo = Topology.create('kdp');
  lb = await topo.addNamespace('lb');
  client = await topo.addNamespace('cl');
  await topo.link({
    a: 'cl',
    b: 'lb',
    aAddresses: ['198.18.1.2/24', '198.18.1.3/24', '2001:db8:1::2/64'],
    bAddresses: ['198.18.1.1/24', '2001:db8:1::1/64'],
  });
  await topo.route('cl', 'default', '198.18.1.1');
  await topo.route('cl', 'default', '2001:db8:1::1');
  for (const [i, s] of SERVERS.entries()) {
    const ns = await topo.addNamespace(s.name);
    await topo.link({
      a: s.name,
      b: 'lb',
      aAddresses: [`${s.v4}/24`, `${s.v6}/64`],
      bAddresses: [`${s.gw4}/24`, `2001:db8:1${i + 1}::1/64`],
    });
    await topo.route(s.name, 'default', s.gw4);
    await topo.route(s.name, 'default', `2001:db8:1${i + 1}::1`);
    startUdpServer(ns, s.name, received);
  }
  // The servers' sockets are bound once a datagram to them is answered.
  for (const s of SERVERS) {
    for (let i = 0; i < 50; i++) {
      const r = await send('198.18.1.2', 0, s.v4, 500, Buffer.from('ping'), 200);
      if (r.reply) break;
    }
  }
  received.length = 0;
});

after(async () => {
  await topo?.destroy();
});

test('every golden ruleset loads in the real nft (check mode)', { skip }, async () => {
  const dir = join(dirname(fileURLToPath(import.meta.url)), '../../src/dataplane/kernel/golden');
  const goldDir = existsSync(dir)
    ? dir
    : join(dirname(fileURLToPath(import.meta.url)), '../../../src/dataplane/kernel/golden');
  const files = readdirSync(goldDir).filter((f) => f.endsWith('.nft'));
  assert.ok(files.length >= 6);
  for (const f of files) await lbNft('-c', '-f', join(goldDir, f));
});

test('ike-spi IPv4: kernel slots equal decide(); 500 and 4500 of each SA reach one server; pins; disable; adoption; stop', {
  skip,
}, async () => {
  const table = 'kdpv4';
  const { ctx, controller } = runtimeFor(yamlFor({ vip: VIP4, family: 4, table }));
  const snap = () => controller.service('ike') as ServiceSnapshot;
  const dp = new KernelIkeDataPlane(snap().service as never, ctx, {
    netns: lb.name,
    pollIntervalMs: 0,
  });
  await dp.start(snap());
  assert.equal(dp.isAdopted, false);

  // 12 IKE SAs from two client addresses: each SPI's 500 and 4500 (new source port) packets
  // reach the same server, the one decide() predicts, and the server sees the client's address.
  const sas: { addr: string; spi: Buffer; server: string; natTPort: number }[] = [];
  for (let i = 0; i < 12; i++) {
    const addr = CLIENTS4[i % 2] as string;
    const spi = randomBytes(8);
    const want = decide(snap(), { address: addr, spi }).backend?.name;
    const r500 = await send(addr, 0, VIP4, 500, ikeHeader(spi));
    const r4500 = await send(addr, 0, VIP4, 4500, ike4500(spi));
    assert.equal(r500.reply, `ack:${want}`, `SPI ${spi.toString('hex')} on 500`);
    assert.equal(r4500.reply, `ack:${want}`, `SPI ${spi.toString('hex')} on 4500`);
    assert.notEqual(r500.port, r4500.port);
    assert.equal(serverOf(addr, r500.port, 500)[0]?.srv, want);
    assert.equal(serverOf(addr, r4500.port, 4500)[0]?.srv, want);
    sas.push({ addr, spi, server: want as string, natTPort: r4500.port });
    await forgetPeers('ip', table);
  }
  assert.ok(new Set(sas.map((s) => s.server)).size >= 2, 'SPIs spread over servers');

  // Per-backend counters come back from the kernel.
  await dp.refresh();
  const st = dp.status();
  for (const name of new Set(sas.map((s) => s.server))) {
    assert.ok((st.backends[name]?.packetsIn ?? 0) >= 2, `${name} packetsIn`);
    assert.ok((st.backends[name]?.packetsOut ?? 0) >= 2, `${name} packetsOut`);
  }

  // ESP with no conntrack entry (flushed) follows the pin its IKE packets set...
  const pinned = sas[0]!;
  await lb.exec('conntrack', ['-F']).catch(() => '');
  const espPinned = await send(pinned.addr, pinned.natTPort, VIP4, 4500, esp());
  assert.equal(espPinned.reply, `ack:${pinned.server}`);
  // ...and ESP from a flow that never carried IKE is dropped and counted, never sent at random.
  const before = received.length;
  const stray = await send(CLIENTS4[0]!, 0, VIP4, 4500, esp(), 300);
  assert.equal(stray.reply, null);
  assert.equal(received.slice(before).filter((r) => r.rport === stray.port).length, 0);
  const counters = JSON.parse(
    await lbNft('-j', 'list', 'counter', 'ip', table, 'natt_unrouted'),
  ) as { nftables: { counter?: { packets: number } }[] };
  assert.ok((counters.nftables.find((x) => x.counter)?.counter?.packets ?? 0) >= 1);

  // Re-establish every SA's two flows (the flush above removed them).
  for (const sa of sas) {
    await send(sa.addr, 0, VIP4, 500, ikeHeader(sa.spi));
    await send(sa.addr, sa.natTPort, VIP4, 4500, ike4500(sa.spi));
  }

  // Disable the busiest server: only its slots change, its flows and pins go, others stay.
  const victim = [...new Set(sas.map((s) => s.server))][0] as string;
  const victimAddr = SERVERS.find((s) => s.name === victim)!.v4;
  const mapBefore = await slotMap(table, 'ip');
  // A tunnel's NAT-T flow carries traffic both ways for longer than a handshake: one more
  // exchange on each, over 2 s after the first, makes conntrack treat it as a stream (replied
  // timeout, 180 s, instead of the 30 s of a lone request and answer), as it does a real
  // tunnel's — so that none expires while a loaded host rewrites a third of the slots below.
  await new Promise((r) => setTimeout(r, 2500));
  const refreshed = await sendBatch(
    client,
    sas.map((sa) => ({
      bind: sa.addr,
      port: sa.natTPort,
      to: VIP4,
      dport: 4500,
      payload: ike4500(sa.spi),
    })),
  );
  assert.deepEqual(
    refreshed.map((r) => r.reply),
    sas.map((sa) => `ack:${sa.server}`),
  );
  // The NAT-T flows (port-500 entries live 5 s, so a slow apply may outlive them: not counted).
  const natTList = () =>
    lb
      .exec('conntrack', ['-L', '-p', 'udp', '--orig-dst', VIP4, '--dport', '4500'])
      .catch((e: Error) => e.message);
  const listedBefore = await natTList();
  const othersBefore =
    (await ctCount(VIP4, 4, undefined, 4500)) - (await ctCount(VIP4, 4, victimAddr, 4500));
  assert.ok((await ctCount(VIP4, 4, victimAddr)) > 0);
  controller.setAdminState(victim, 'disabled');
  await dp.apply(snap());
  // Counted at once (reading the map back takes seconds more on a loaded host).
  const flowsAfter = {
    victim: await ctCount(VIP4, 4, victimAddr),
    natT: await ctCount(VIP4, 4, undefined, 4500),
    listed: await natTList(),
  };
  const mapAfter = await slotMap(table, 'ip');
  assert.equal(mapAfter.size, 65537);
  // The kernel holds exactly the new Maglev table, and only the slots that changed were written
  // (Maglev §3.4: the victim's slots, plus a few others of the rebuilt permutation walk).
  let changed = 0;
  let othersMoved = 0;
  for (const [slot, addr] of mapBefore) {
    const now = mapAfter.get(slot);
    if (now !== addr) changed++;
    if (addr !== victimAddr && now !== addr) othersMoved++;
    assert.notEqual(now, victimAddr);
  }
  assert.ok(othersMoved <= 0.005 * 65537, `${othersMoved} slots of other servers moved`);
  const table2 = (
    snap().balancer as unknown as { table: { slots: Int32Array; backends: { address: string }[] } }
  ).table;
  for (let slot = 0; slot < 65537; slot++)
    assert.equal(mapAfter.get(slot), table2.backends[table2.slots[slot] as number]?.address);
  assert.match(
    await ctx.metrics.text(),
    new RegExp(`vpnlb_kernel_slots_written_total\\{service="ike"\\} ${65537 + 2 * changed}\\b`),
  );
  assert.equal(flowsAfter.victim, 0, 'conntrack entries of the disabled server deleted');
  assert.equal(
    flowsAfter.natT,
    othersBefore,
    `other servers keep their flows; before the apply:\n${listedBefore}\nafter:\n${flowsAfter.listed}`,
  );
  const pinSet = await lbNft('list', 'set', 'ip', table, `pin_${victim}`);
  assert.doesNotMatch(pinSet, /elements/);
  // The victim's clients now reach decide()'s new choice at once; others keep their server.
  // decide() is told which servers hold NAT-T flows of the address (affinity ike-spi: a new SA
  // of an address whose flows are all on one server joins it), as they are when each is sent,
  // and how many NAT-T flows the address had live at once: every SA here has a port of its own,
  // so an address with two or more SAs was marked shared when they were sent (natt_shared) and
  // its new SAs are placed by SPI.
  const natT = new Map(
    CLIENTS4.map((a) => [
      a,
      new Set(sas.filter((x) => x.addr === a && x.server !== victim).map((x) => x.server)),
    ]),
  );
  for (const sa of sas) {
    const want =
      sa.server === victim
        ? decide(snap(), {
            address: sa.addr,
            spi: sa.spi,
            natTServers: [...natT.get(sa.addr)!],
            natTFlows: sas.filter((x) => x.addr === sa.addr).length,
          }).backend?.name
        : sa.server;
    const r = await send(sa.addr, sa.natTPort, VIP4, 4500, ike4500(sa.spi));
    assert.equal(r.reply, `ack:${want}`);
    natT.get(sa.addr)!.add(want as string);
  }

  // kill -9 equivalent: leave the table, start a new data plane: it adopts without flushing.
  // The NAT-T streams (port-500 entries and single exchanges live 5 s and 30 s: on a loaded
  // host the adoption below can outlast them, so they are not counted).
  const streams = async () =>
    (
      await lb.exec('conntrack', [
        '-L',
        '-p',
        'udp',
        '--orig-dst',
        VIP4,
        '--dport',
        '4500',
        '--status',
        'ASSURED',
      ])
    )
      .split('\n')
      .filter((l) => l.includes('src=')).length;
  const ctBeforeRestart = await streams();
  assert.ok(ctBeforeRestart > 0);
  await dp.stop({ keepState: true });
  const dp2 = new KernelIkeDataPlane(snap().service as never, ctx, {
    netns: lb.name,
    pollIntervalMs: 0,
  });
  await dp2.start(snap());
  assert.equal(dp2.isAdopted, true);
  assert.equal(await streams(), ctBeforeRestart, 'conntrack kept across the restart');
  assert.deepEqual(await slotMap(table, 'ip'), mapAfter);
  const survivor = sas.find((s) => s.server !== victim)!;
  assert.equal(
    (await send(survivor.addr, survivor.natTPort, VIP4, 4500, esp())).reply,
    `ack:${survivor.server}`,
  );

  // Return path: a server whose replies bypass the balancer is reported with the fix.
  const bad = SERVERS.find((s) => s.name !== victim)!;
  await topo.ns(bad.name).exec('ip', ['route', 'add', 'blackhole', '198.18.1.0/24']);
  // A server that never had a return path: none of its flows was ever answered.
  await lb
    .exec('conntrack', ['-D', '-p', 'udp', '--orig-dst', VIP4, '--reply-src', bad.v4])
    .catch(() => '');
  try {
    let sent = 0;
    await forgetPeers('ip', table);
    for (let i = 0; i < 200 && sent < 4; i++) {
      const spi = randomBytes(8);
      if (decide(snap(), { address: CLIENTS4[1]!, spi }).backend?.name !== bad.name) continue;
      await send(CLIENTS4[1]!, 0, VIP4, 500, ikeHeader(spi), 50);
      sent++;
    }
    await dp2.refresh();
    const warn = dp2.status().warnings.find((w) => w.includes('return path missing'));
    assert.ok(warn, JSON.stringify(dp2.status().warnings));
    assert.match(
      warn,
      new RegExp(
        `set the default gateway of ${bad.name} \\(${bad.v4.replace(/\./g, '\\.')}\\) to ${bad.gw4.replace(/\./g, '\\.')}`,
      ),
    );
    assert.match(
      await ctx.metrics.text(),
      new RegExp(`vpnlb_kernel_return_path_missing\\{service="ike",backend="${bad.name}"\\} 1`),
    );
  } finally {
    await topo.ns(bad.name).exec('ip', ['route', 'del', 'blackhole', '198.18.1.0/24']);
  }

  await dp2.stop();
  assert.doesNotMatch(await lbNft('list', 'tables'), new RegExp(`\\b${table}\\b`));
});

/** The real nft, with a hook run just before the slot transaction reaches the kernel. */
class BeforeSlotsApplier implements NftApplier {
  readonly #nft: NftCliApplier;
  readonly #table: string;
  beforeSlots: (() => Promise<void>) | undefined;
  readonly kinds: string[] = [];
  constructor(netns: string, table: string) {
    this.#nft = new NftCliApplier({ netns });
    this.#table = table;
  }
  async apply(text: string) {
    const isSlots = text.includes(`element ip ${this.#table} slots`);
    this.kinds.push(isSlots ? 'slots' : 'other');
    if (isSlots && this.beforeSlots) {
      const hook = this.beforeSlots;
      this.beforeSlots = undefined;
      await hook();
    }
    return this.#nft.apply(text);
  }
  counters(family: CounterFamily, table: string) {
    return this.#nft.counters(family, table);
  }
  list(what: readonly string[]) {
    return this.#nft.list(what);
  }
  deleteTable(family: 'ip' | 'ip6', table: string) {
    return this.#nft.deleteTable(family, table);
  }
}

test("ike-spi: a server that goes down is retired before its slots move: its SAs' stale IKE packets are dropped, not placed elsewhere", {
  skip,
}, async () => {
  const table = 'kdpret';
  const { ctx, controller } = runtimeFor(yamlFor({ vip: VIP4, family: 4, table }));
  const snap = () => controller.service('ike') as ServiceSnapshot;
  const nft = new BeforeSlotsApplier(lb.name, table);
  const dp = new KernelIkeDataPlane(snap().service as never, ctx, {
    netns: lb.name,
    pollIntervalMs: 0,
    applier: nft,
  });
  await dp.start(snap());
  try {
    // Two SAs of one client address on one server (the victim), each with its NAT-T flow.
    const victim = SERVERS[1]!;
    const addr = CLIENTS4[1]!;
    const sas: { spi: Buffer; natTPort: number }[] = [];
    for (let i = 0; i < 400 && sas.length < 2; i++) {
      const spi = randomBytes(8);
      if (decide(snap(), { address: addr, spi }).backend?.name !== victim.name) continue;
      assert.equal((await send(addr, 0, VIP4, 500, ikeHeader(spi))).reply, `ack:${victim.name}`);
      const r = await send(addr, 0, VIP4, 4500, ike4500(spi));
      assert.equal(r.reply, `ack:${victim.name}`);
      sas.push({ spi, natTPort: r.port });
      await forgetPeers('ip', table);
    }
    assert.equal(sas.length, 2);
    const key = (spi: Buffer) => `${spi.readUInt32BE(0)} . ${spi.readUInt32BE(4)}`;
    const elements = async (set: string) => {
      const j = JSON.parse(await lbNft('-j', 'list', 'set', 'ip', table, set)) as {
        nftables: { set?: { elem?: unknown[] } }[];
      };
      return (j.nftables.find((x) => x.set)?.set?.elem ?? []).map((e) => {
        const v = ((e as { elem?: { val?: unknown } }).elem?.val ?? e) as { concat?: number[] };
        return v.concat ? `${v.concat[0]} . ${v.concat[1]}` : JSON.stringify(v);
      });
    };
    const stale = async () => {
      const j = JSON.parse(await lbNft('-j', 'list', 'counter', 'ip', table, 'ike_stale')) as {
        nftables: { counter?: { packets: number } }[];
      };
      return j.nftables.find((x) => x.counter)?.counter?.packets ?? 0;
    };
    assert.deepEqual(
      (await elements(`spi_${victim.name}`)).sort(),
      sas.map((x) => key(x.spi)).sort(),
    );
    assert.ok((await ctCount(VIP4, 4, victim.v4, 4500)) >= 2);

    // What the kernel holds between the retirement and the slot rewrite.
    let seen:
      | {
          dead: string[];
          spis: string[];
          pins: string[];
          flows: number;
          victimSlots: number;
          dpd: string | null;
          staleDropped: number;
        }
      | undefined;
    nft.beforeSlots = async () => {
      const staleBefore = await stale();
      // A stale DPD (INFORMATIONAL) of the first SA from a new client port: no conntrack entry,
      // no known SPI — the old slots would still hash it somewhere.
      const sa = sas[0]!;
      const dpd = await send(
        addr,
        0,
        VIP4,
        4500,
        withMarker(ikeMessage(sa.spi, INFORMATIONAL, { spiR: randomBytes(8), messageId: 2 })),
      );
      seen = {
        dead: await elements('spi_dead'),
        spis: await elements(`spi_${victim.name}`),
        pins: await elements(`pin_${victim.name}`),
        flows: await ctCount(VIP4, 4, victim.v4),
        victimSlots: [...(await slotMap(table, 'ip')).values()].filter((a) => a === victim.v4)
          .length,
        dpd: dpd.reply,
        staleDropped: (await stale()) - staleBefore,
      };
    };
    controller.setHealth('ike', victim.name, 'down', 'test');
    await dp.apply(snap());
    assert.ok(seen, 'the slot transaction ran');
    assert.deepEqual(
      nft.kinds.slice(-2),
      ['other', 'slots'],
      'the retirement is a transaction of its own, before the slots',
    );
    assert.ok(
      seen.victimSlots > 65537 / 4,
      `the slots still name ${victim.name} (${seen.victimSlots})`,
    );
    assert.deepEqual(
      seen.dead.sort(),
      sas.map((x) => key(x.spi)).sort(),
      'SPIs moved into spi_dead',
    );
    assert.deepEqual(seen.spis, []);
    assert.deepEqual(seen.pins, []);
    assert.equal(seen.flows, 0, `conntrack entries of ${victim.name} deleted before the slots`);
    assert.equal(seen.dpd, null, 'the stale DPD reached a server');
    assert.equal(seen.staleDropped, 1, 'the stale DPD was not counted as ike_stale');
    // After the rewrite: no slot names the victim, its SAs stay dead, its flows gone.
    assert.ok(![...(await slotMap(table, 'ip')).values()].includes(victim.v4));
    assert.deepEqual((await elements('spi_dead')).sort(), sas.map((x) => key(x.spi)).sort());
    assert.equal(await ctCount(VIP4, 4, victim.v4), 0);
    assert.match(
      await ctx.metrics.text(),
      /vpnlb_kernel_retirements_total\{service="ike",result="ok"\} 1/,
    );
  } finally {
    await dp.stop();
  }
});

test('source-ip IPv4: both ports of a client reach the server decide() names for its address', {
  skip,
}, async () => {
  const table = 'kdpsrc';
  const { ctx, controller } = runtimeFor(
    yamlFor({ vip: VIP4, family: 4, affinity: 'source-ip', table }),
  );
  const snap = controller.service('ike') as ServiceSnapshot;
  const dp = new KernelIkeDataPlane(snap.service as never, ctx, {
    netns: lb.name,
    pollIntervalMs: 0,
  });
  await dp.start(snap);
  try {
    for (const addr of CLIENTS4) {
      const want = decide(snap, { address: addr }).backend?.name;
      for (let i = 0; i < 3; i++) {
        const spi = randomBytes(8);
        assert.equal((await send(addr, 0, VIP4, 500, ikeHeader(spi))).reply, `ack:${want}`);
        assert.equal((await send(addr, 0, VIP4, 4500, ike4500(spi))).reply, `ack:${want}`);
        // No pin needed: ESP is placed by the address too.
        assert.equal((await send(addr, 0, VIP4, 4500, esp())).reply, `ack:${want}`);
      }
      assert.equal(received.filter((r) => r.raddr === addr).at(-1)?.srv, want);
    }
  } finally {
    await dp.stop();
  }
});

test("ike-spi IPv6 VIP: 500 and 4500 of each SA reach the server decide() predicts; later SAs of one device join its NAT-T flow's server, those of a shared address are hashed", {
  skip,
}, async () => {
  const table = 'kdpv6';
  const { ctx, controller } = runtimeFor(yamlFor({ vip: VIP6, family: 6, table }));
  const snap = controller.service('ike') as ServiceSnapshot;
  const dp = new KernelIkeDataPlane(snap.service as never, ctx, {
    netns: lb.name,
    pollIntervalMs: 0,
  });
  await dp.start(snap);
  try {
    // One device: all its SAs share one NAT-T flow (one source port), as an Always On VPN
    // client's device and user tunnels do. After the first SA the address has that one flow on
    // one server: later SAs join it (peer_<server>), which decide() predicts when told the
    // flow's server and that the address has one flow.
    let natTServers: string[] = [];
    let natTPort = 0;
    let joined = 0;
    let lastSpi: Buffer | undefined;
    for (let i = 0; i < 8; i++) {
      const spi = randomBytes(8);
      lastSpi = spi;
      const want = decide(snap, {
        address: CLIENT6,
        spi,
        natTServers,
        natTFlows: natTServers.length,
      }).backend?.name as string;
      if (want !== decide(snap, { address: CLIENT6, spi }).backend?.name) joined++;
      natTServers = [...new Set([...natTServers, want])];
      const r500 = await send(CLIENT6, 0, VIP6, 500, ikeHeader(spi));
      const r4500 = await send(CLIENT6, natTPort, VIP6, 4500, ike4500(spi));
      natTPort = r4500.port;
      assert.equal(r500.reply, `ack:${want}`);
      assert.equal(r4500.reply, `ack:${want}`);
      assert.equal(
        serverOf(CLIENT6, r4500.port, 4500)[0]?.srv,
        want,
        'server sees the real IPv6 client address',
      );
      await lb
        .exec('conntrack', [
          '-D',
          '-f',
          'ipv6',
          '-p',
          'udp',
          '--orig-src',
          CLIENT6,
          '--orig-port-src',
          String(r4500.port),
        ])
        .catch(() => '');
      assert.equal(
        (await send(CLIENT6, r4500.port, VIP6, 4500, esp())).reply,
        `ack:${want}`,
        'IPv6 ESP follows the pin',
      );
    }
    assert.ok(
      joined > 0,
      "no later SA hashed elsewhere than the server of the address's NAT-T flow: the join was not exercised",
    );
    // The loop deleted the flow's conntrack entry and ESP re-created it: the same flow (address
    // and port), so the device's next IKE packet (a DPD, say) is no second flow.
    await send(CLIENT6, natTPort, VIP6, 4500, ike4500(lastSpi!));
    assert.doesNotMatch(
      await lbNft('list', 'set', 'ip6', table, 'natt_shared'),
      new RegExp(CLIENT6),
      'one device (one NAT-T flow) is not a shared address',
    );
    // A second device behind the same address (another NAT-T flow, another source port) makes
    // the address shared (natt_flows: a second source port): from then on its new SAs are placed by
    // SPI — they spread although all its flows sit on one server.
    const second = randomBytes(8);
    const flowServer = natTServers[0] as string;
    assert.equal(natTServers.length, 1);
    assert.equal(
      (await send(CLIENT6, 0, VIP6, 500, ikeHeader(second))).reply,
      `ack:${flowServer}`,
      "the second device's first SA: the address had one flow",
    );
    assert.equal((await send(CLIENT6, 0, VIP6, 4500, ike4500(second))).reply, `ack:${flowServer}`);
    assert.match(
      await lbNft('list', 'set', 'ip6', table, 'natt_shared'),
      new RegExp(CLIENT6),
      'two NAT-T flows: shared',
    );
    let spread = 0;
    for (let i = 0; i < 8; i++) {
      const spi = randomBytes(8);
      const want = decide(snap, { address: CLIENT6, spi, natTServers, natTFlows: 2 + i }).backend
        ?.name as string;
      assert.equal(
        want,
        decide(snap, { address: CLIENT6, spi }).backend?.name,
        'a shared address is placed by SPI',
      );
      if (want !== flowServer) spread++;
      assert.equal((await send(CLIENT6, 0, VIP6, 500, ikeHeader(spi))).reply, `ack:${want}`);
      const r4500 = await send(CLIENT6, 0, VIP6, 4500, ike4500(spi));
      assert.equal(r4500.reply, `ack:${want}`);
      natTServers = [...new Set([...natTServers, want])];
    }
    assert.ok(
      spread > 0,
      "every SA of the shared address hashed to its flows' server: the spread was not exercised",
    );
  } finally {
    await dp.stop();
  }
});

test('vpnlb stop --config removes the tables of that configuration and nothing else', {
  skip,
}, async () => {
  const { writeFileSync, mkdtempSync, rmSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { vpnlbArgv } = await import('../../lab/vpnlb-process.js');
  const table = 'kdpstop';
  const yaml = yamlFor({ vip: VIP4, family: 4, table });
  const { ctx, controller } = runtimeFor(yaml);
  const snap = controller.service('ike') as ServiceSnapshot;
  const dp = new KernelIkeDataPlane(snap.service as never, ctx, {
    netns: lb.name,
    pollIntervalMs: 0,
  });
  await dp.start(snap);
  await dp.stop({ keepState: true });
  await lbNft('add', 'table', 'ip', 'notvpnlb');
  const dir = mkdtempSync(join(tmpdir(), 'kdp-'));
  try {
    const file = join(dir, 'vpnlb.yaml');
    writeFileSync(file, yaml);
    const [node, ...args] = vpnlbArgv(['stop', '--config', file]);
    const out = await lb.exec(node as string, args);
    assert.match(out, new RegExp(`deleted nftables table ip ${table}`));
    const tables = await lbNft('list', 'tables');
    assert.doesNotMatch(tables, new RegExp(`\\b${table}\\b`));
    assert.match(tables, /\bnotvpnlb\b/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
    await lbNft('delete', 'table', 'ip', 'notvpnlb').catch(() => '');
  }
});
