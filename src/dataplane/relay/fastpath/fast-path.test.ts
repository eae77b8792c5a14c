/**
 * The native fast path on its own, on loopback: hand-off of unknown clients, installed flows
 * forwarded both ways across batch boundaries, counters and last-seen, the quick checks,
 * removal, refusals. Skipped (with the reason) when the addon is not built.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket, type Socket } from 'node:dgram';
import { FastPath, type FlowDelta } from './fast-path.js';
import { loadNativeFastPath, type HandoffPacket } from './native-binding.js';
import { sleep } from '../../../util/wait.js';

const loaded = loadNativeFastPath();
const skip =
  'unavailable' in loaded ? `native fast path unavailable: ${loaded.unavailable}` : false;
if (skip) console.log(`# fast-path: skipped: ${skip}`);

async function bound(address = '127.0.0.1'): Promise<Socket> {
  const s = createSocket('udp4');
  await new Promise<void>((resolve) => s.bind({ address, port: 0 }, resolve));
  return s;
}

async function connected(to: Socket): Promise<Socket> {
  const s = await bound();
  await new Promise<void>((resolve) => s.connect(to.address().port, '127.0.0.1', resolve));
  return s;
}

/** Collects what a socket receives; `until(n)` waits (bounded) for n datagrams. */
function collector(s: Socket): { got: Buffer[]; until(n: number, ms?: number): Promise<Buffer[]> } {
  const got: Buffer[] = [];
  s.on('message', (m) => got.push(m));
  return {
    got,
    async until(n, ms = 2000) {
      const deadline = Date.now() + ms;
      while (got.length < n && Date.now() < deadline) await sleep(5);
      return got;
    },
  };
}

function esp(spi: number, seq: number, size = 64): Buffer {
  const b = Buffer.alloc(size, 0xab);
  b.writeUInt32BE(spi, 0);
  b.writeUInt32BE(seq, 4);
  return b;
}

interface Rig {
  fast: FastPath;
  ike: Socket;
  natT: Socket;
  backend: Socket;
  handed: HandoffPacket[];
  close(): Promise<void>;
}

async function rig(maxFlows = 16): Promise<Rig> {
  const ike = await bound();
  const natT = await bound();
  const backend = await bound();
  const handed: HandoffPacket[] = [];
  const fast = FastPath.open({ ike, natT, maxFlows, onHandoff: (p) => handed.push(...p) });
  assert.ok(fast instanceof FastPath, `open: ${JSON.stringify(fast)}`);
  return {
    fast,
    ike,
    natT,
    backend,
    handed,
    async close() {
      fast.close();
      for (const s of [ike, natT, backend]) s.close();
    },
  };
}

function poll(fast: FastPath): {
  flows: Map<number, FlowDelta & { lastSeenMs: number }>;
  drops: Record<string, number>;
} {
  const flows = new Map<number, FlowDelta & { lastSeenMs: number }>();
  const drops: Record<string, number> = {};
  fast.poll(
    (slot, packetsIn, bytesIn, packetsOut, bytesOut, errors, lastSeenMs) =>
      flows.set(slot, { packetsIn, bytesIn, packetsOut, bytesOut, errors, lastSeenMs }),
    (reason, count) => (drops[reason] = (drops[reason] ?? 0) + count),
  );
  return { flows, drops };
}

test('unknown clients are handed to JavaScript unchanged, with address, port and virtual port', {
  skip,
}, async () => {
  const r = await rig();
  const client = await bound('127.0.0.5');
  try {
    client.send(esp(7, 1), r.natT.address().port, '127.0.0.1');
    client.send(Buffer.from('ike?'), r.ike.address().port, '127.0.0.1');
    const deadline = Date.now() + 2000;
    while (r.handed.length < 2 && Date.now() < deadline) await sleep(5);
    assert.equal(r.handed.length, 2);
    const natT = r.handed.find((p) => p[3])!;
    const ike = r.handed.find((p) => !p[3])!;
    assert.deepEqual(natT[0], esp(7, 1));
    assert.equal(natT[1], '127.0.0.5');
    assert.equal(natT[2], client.address().port);
    assert.deepEqual(
      ike[0],
      Buffer.from('ike?'),
      'no check before the hand-off: the relay parses new flows',
    );
  } finally {
    client.close();
    await r.close();
  }
});

test('an installed flow is forwarded both ways across batch boundaries, counted, and seen', {
  skip,
}, async () => {
  const r = await rig();
  const client = await bound('127.0.0.6');
  const upstream = await connected(r.backend);
  const atBackend = collector(r.backend);
  const atClient = collector(client);
  try {
    const slot = r.fast.install(true, '127.0.0.6', client.address().port, upstream);
    assert.equal(typeof slot, 'number');
    const t0 = r.fast.now();
    // 100 datagrams in one burst: more than one recvmmsg batch (32).
    for (let i = 0; i < 100; i++)
      client.send(esp(0x1000, i, 60 + (i % 7)), r.natT.address().port, '127.0.0.1');
    const got = await atBackend.until(100);
    assert.equal(got.length, 100);
    assert.deepEqual(
      got.map((m) => m.readUInt32BE(4)),
      Array.from({ length: 100 }, (_, i) => i),
      'in order, none lost',
    );
    // The backend answers through the upstream socket: 70 replies back to the client, from the NAT-T port.
    let replyFrom: number | undefined;
    client.once('message', (_m, rinfo) => (replyFrom = rinfo.port));
    for (let i = 0; i < 70; i++)
      r.backend.send(esp(0x2000, i), upstream.address().port, '127.0.0.1');
    assert.equal((await atClient.until(70)).length, 70);
    assert.equal(replyFrom, r.natT.address().port);
    const p = poll(r.fast).flows.get(slot as number);
    assert.ok(p, 'the flow reports activity');
    const bytesIn = got.reduce((n, m) => n + m.length, 0);
    assert.deepEqual(
      { ...p, lastSeenMs: 0 },
      { packetsIn: 100, bytesIn, packetsOut: 70, bytesOut: 70 * 64, errors: 0, lastSeenMs: 0 },
    );
    assert.ok(p.lastSeenMs >= t0 - 20, 'last seen during the test');
    // Deltas: a second poll without traffic reports nothing for the flow.
    assert.equal(poll(r.fast).flows.has(slot as number), false);
    // Removal returns what happened since the last poll; the client is then JavaScript's again.
    client.send(esp(0x1000, 100), r.natT.address().port, '127.0.0.1');
    await atBackend.until(101);
    assert.deepEqual(r.fast.remove(slot as number), {
      packetsIn: 1,
      bytesIn: 64,
      packetsOut: 0,
      bytesOut: 0,
      errors: 0,
    });
    assert.equal(r.fast.remove(slot as number), undefined, 'removed once');
    upstream.close(); // after remove: the addon no longer uses it
    client.send(esp(0x1000, 101), r.natT.address().port, '127.0.0.1');
    const deadline = Date.now() + 2000;
    while (r.handed.length < 1 && Date.now() < deadline) await sleep(5);
    assert.equal(r.handed.length, 1);
    assert.equal(r.handed[0]![0].readUInt32BE(4), 101);
  } finally {
    client.close();
    await r.close();
  }
});

test('the quick checks of an established flow drop and count malformed datagrams (relay-drops.ts mirrored)', {
  skip,
}, async () => {
  const r = await rig();
  const client = await bound('127.0.0.7');
  const up4500 = await connected(r.backend);
  const up500 = await connected(r.backend);
  const atBackend = collector(r.backend);
  try {
    assert.equal(typeof r.fast.install(true, '127.0.0.7', client.address().port, up4500), 'number');
    assert.equal(typeof r.fast.install(false, '127.0.0.7', client.address().port, up500), 'number');
    const ike = Buffer.alloc(40);
    ike[17] = 0x20;
    ike.writeUInt32BE(40, 24);
    const badVersion = Buffer.from(ike);
    badVersion[17] = 0x10;
    const badLength = Buffer.from(ike);
    badLength.writeUInt32BE(41, 24);
    const send = (d: Buffer, port: number) => client.send(d, port, '127.0.0.1');
    const [p500, p4500] = [r.ike.address().port, r.natT.address().port];
    send(ike, p500); // good
    send(ike.subarray(0, 20), p500); // ike-too-short
    send(badVersion, p500); // ike-bad-version
    send(badLength, p500); // ike-length-mismatch
    send(Buffer.alloc(0), p4500); // empty
    send(Buffer.from([1, 2, 3]), p4500); // esp-too-short
    send(Buffer.from([0xff]), p4500); // keepalive: good
    send(Buffer.concat([Buffer.alloc(4), ike]), p4500); // marker + IKE: good
    send(Buffer.concat([Buffer.alloc(4), badLength]), p4500); // ike-length-mismatch
    send(esp(9, 1), p4500); // good
    assert.equal((await atBackend.until(4)).length, 4);
    await sleep(50);
    assert.equal(atBackend.got.length, 4, 'only the four good datagrams passed');
    assert.deepEqual(poll(r.fast).drops, {
      'ike-too-short': 1,
      'ike-bad-version': 1,
      'ike-length-mismatch': 2,
      empty: 1,
      'esp-too-short': 1,
    });
    assert.equal(r.handed.length, 0);
  } finally {
    client.close();
    up4500.close();
    up500.close();
    await r.close();
  }
});

test('install refuses what it cannot hold: a full table, a duplicate, a bad address; close is idempotent', {
  skip,
}, async () => {
  const r = await rig(1);
  const a = await connected(r.backend);
  const b = await connected(r.backend);
  try {
    const slot = r.fast.install(true, '127.0.0.8', 4000, a);
    assert.equal(typeof slot, 'number');
    assert.equal(r.fast.install(true, '127.0.0.8', 4000, b), 'already installed');
    assert.equal(r.fast.install(true, '127.0.0.9', 4000, b), 'table full');
    assert.equal(r.fast.install(false, 'not-an-address', 4000, b), 'bad address');
    assert.ok(r.fast.remove(slot as number));
    assert.equal(
      typeof r.fast.install(true, '127.0.0.9', 4000, b),
      'number',
      'the freed slot is reused',
    );
    r.fast.close();
    r.fast.close();
    assert.equal(r.fast.install(true, '127.0.0.10', 4000, a), 'stopped');
  } finally {
    a.close();
    b.close();
    await r.close();
  }
});
