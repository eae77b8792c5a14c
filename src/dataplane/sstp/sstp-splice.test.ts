/**
 * The native splice path at the addon level (native/tcp-splice through SpliceEngine): real
 * loopback TCP connections, a "proxy" pair of sockets handed to the engine, and peers at both
 * ends. Skipped, with the reason printed, when the addon is not built.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { loadNativeSplice, SpliceEngine, type SpliceEnd } from './sstp-splice.js';
import { eventually } from '../../../test/support/sstp-test-lab.js';

const loaded = loadNativeSplice();
const skip =
  'unavailable' in loaded ? `native splice addon unavailable: ${loaded.unavailable}` : false;
if (skip) console.log(`# skipping sstp-splice tests: ${skip}`);

interface Pair {
  /** The outer ends: what a client and a backend hold. */
  client: net.Socket;
  backend: net.Socket;
  /** The proxy's two sockets (handed to the engine). */
  front: net.Socket;
  up: net.Socket;
}

/** Every socket the tests made: destroyed at the end even when a test failed midway. */
const allSockets: net.Socket[] = [];

/** A connection client ↔ front (accepted) and up ↔ backend (accepted), all on loopback. */
async function pair(frontServer: net.Server, backendServer: net.Server): Promise<Pair> {
  const frontP = new Promise<net.Socket>((r) => frontServer.once('connection', r));
  const backendP = new Promise<net.Socket>((r) => backendServer.once('connection', r));
  // Half-open on every socket, as in the proxy: with Node's default, a socket that reads EOF
  // ends its own writing side, and a test whose other direction finishes first would cut off
  // its own transfer.
  const client = net.connect({
    port: (frontServer.address() as net.AddressInfo).port,
    host: '127.0.0.1',
    allowHalfOpen: true,
  });
  const front = await frontP;
  const up = net.connect({
    port: (backendServer.address() as net.AddressInfo).port,
    host: '127.0.0.1',
    allowHalfOpen: true,
  });
  const backend = await backendP;
  await new Promise((r) => (up.connecting ? up.once('connect', r) : r(undefined)));
  for (const s of [client, backend, front, up]) s.on('error', () => {});
  allSockets.push(client, backend, front, up);
  front.pause();
  up.pause();
  return { client, backend, front, up };
}

function listen(): Promise<net.Server> {
  const s = net.createServer({ allowHalfOpen: true, pauseOnConnect: true });
  return new Promise((r) => s.listen(0, '127.0.0.1', () => r(s)));
}

/** Collects what a socket receives until EOF: octet count and SHA-256. */
function sink(s: net.Socket): Promise<{ bytes: number; sha: string }> {
  const h = createHash('sha256');
  let bytes = 0;
  s.resume();
  s.on('data', (d: Buffer) => {
    h.update(d);
    bytes += d.length;
  });
  return new Promise((r) => s.once('end', () => r({ bytes, sha: h.digest('hex') })));
}

/** Writes `total` random octets in 64 KiB chunks (honouring backpressure), then ends. */
async function source(s: net.Socket, total: number): Promise<string> {
  const h = createHash('sha256');
  for (let sent = 0; sent < total; ) {
    const chunk = randomBytes(Math.min(65536, total - sent));
    h.update(chunk);
    sent += chunk.length;
    if (!s.write(chunk)) await new Promise((r) => s.once('drain', r).once('close', r));
    if (s.destroyed) throw new Error('closed while writing');
  }
  s.end();
  return h.digest('hex');
}

for (const inLoop of [false, true])
  describe(`native splice engine (${inLoop ? "in Node's event loop" : 'own thread'})`, {
    skip,
  }, () => {
    let frontServer: net.Server;
    let backendServer: net.Server;
    let engine: SpliceEngine;
    before(async () => {
      frontServer = await listen();
      backendServer = await listen();
      const e = SpliceEngine.open(256, undefined, inLoop);
      assert.ok(e instanceof SpliceEngine, `engine opens: ${JSON.stringify(e)}`);
      engine = e;
    });
    after(async () => {
      // A failed test may leave its tunnel in the engine and its sockets open: release both,
      // or closing the servers would wait for those connections forever.
      engine.forEach((slot) => {
        engine.remove(slot);
      });
      for (const sock of allSockets) sock.destroy();
      engine.close();
      await new Promise((r) => frontServer.close(r));
      await new Promise((r) => backendServer.close(r));
    });

    it('moves 24 MiB each way at once, exactly; EOF each way is a half-close; the tunnel ends done with exact counters', async () => {
      const p = await pair(frontServer, backendServer);
      p.client.resume();
      p.backend.resume();
      const ends: SpliceEnd[] = [];
      const slot = engine.add(p.front, p.up, { spliceEnded: (e) => ends.push(e) });
      assert.equal(typeof slot, 'number');
      const n = 24 * 1024 * 1024 + 13;
      const [atBackend, atClient, sentUp, sentDown] = await Promise.all([
        sink(p.backend),
        sink(p.client),
        source(p.client, n),
        source(p.backend, n + 1),
      ]);
      assert.deepEqual(atBackend, { bytes: n, sha: sentUp });
      assert.deepEqual(atClient, { bytes: n + 1, sha: sentDown });
      await eventually(() => ends.length === 1, 'the tunnel reported its end');
      assert.deepEqual(ends, [{ kind: 'done' }]);
      const c = engine.remove(slot as number);
      assert.equal(c?.toBackend, n);
      assert.equal(c?.toClient, n + 1);
      assert.equal(engine.remove(slot as number), undefined, 'a removed slot is gone');
      for (const s of Object.values(p)) s.destroy();
    });

    it('half-close: the client ends, the backend keeps answering, then ends too', async () => {
      const p = await pair(frontServer, backendServer);
      const ends: SpliceEnd[] = [];
      const slot = engine.add(p.front, p.up, { spliceEnded: (e) => ends.push(e) }) as number;
      const atBackend = sink(p.backend);
      const atClient = sink(p.client);
      p.client.end(Buffer.from('request'));
      assert.equal((await atBackend).bytes, 7, 'the backend got the request, then EOF');
      assert.equal(ends.length, 0, 'one direction ended: the tunnel is still open');
      p.backend.write(Buffer.alloc(100_000, 1));
      p.backend.end(Buffer.from('bye'));
      assert.equal(
        (await atClient).bytes,
        100_003,
        'the answer after the half-close arrived whole',
      );
      await eventually(() => ends.length === 1, 'the tunnel ended');
      assert.equal(ends[0]?.kind, 'done');
      assert.deepEqual(
        engine.remove(slot) && { ...engine.counters(slot) },
        {},
        'counters of a removed slot are gone',
      );
      for (const s of Object.values(p)) s.destroy();
    });

    it('a peer reset ends the tunnel with an error', async () => {
      const p = await pair(frontServer, backendServer);
      p.client.resume();
      const ends: SpliceEnd[] = [];
      const slot = engine.add(p.front, p.up, { spliceEnded: (e) => ends.push(e) }) as number;
      p.backend.write(Buffer.alloc(1000));
      await eventually(
        () => (engine.counters(slot)?.toClient ?? 0) === 1000,
        'the first octets crossed',
      );
      p.backend.resetAndDestroy();
      await eventually(() => ends.length === 1, 'the reset was reported');
      assert.equal(ends[0]?.kind, 'error');
      engine.remove(slot);
      for (const s of Object.values(p)) s.destroy();
    });

    it('200 tunnels at once, each with its own data; the table is reusable afterwards', async () => {
      const pairs: Pair[] = [];
      for (let i = 0; i < 200; i++) pairs.push(await pair(frontServer, backendServer)); // one at a time: pair() takes the next accepted socket
      const slots = pairs.map(
        (p) => engine.add(p.front, p.up, { spliceEnded: () => {} }) as number,
      );
      assert.ok(slots.every((s) => typeof s === 'number' && s >= 0));
      assert.equal(new Set(slots).size, 200);
      const results = await Promise.all(
        pairs.map(async (p, i) => {
          const got = sink(p.backend);
          const back = sink(p.client);
          const sent = await source(p.client, 10_000 + i);
          const sentBack = await source(p.backend, 5_000 + i);
          return { got: await got, back: await back, sent, sentBack, i };
        }),
      );
      for (const r of results) {
        assert.deepEqual(r.got, { bytes: 10_000 + r.i, sha: r.sent });
        assert.deepEqual(r.back, { bytes: 5_000 + r.i, sha: r.sentBack });
      }
      let seen = 0;
      engine.forEach(() => {
        seen++;
      });
      assert.equal(seen, 200);
      for (const [i, p] of pairs.entries()) {
        assert.ok(engine.remove(slots[i]!));
        for (const s of Object.values(p)) s.destroy();
      }
      engine.forEach(() => {
        assert.fail('no tunnel left');
      });
    });

    it('remove while data is in flight, then close the sockets: the peers see the connection end, nothing else breaks', async () => {
      const p = await pair(frontServer, backendServer);
      const slot = engine.add(p.front, p.up, { spliceEnded: () => {} }) as number;
      // The backend does not read yet: octets pile up in its socket, the pipe and the client's.
      const backendEnded = new Promise((r) => p.backend.once('end', r));
      const clientClosed = new Promise((r) => p.client.once('close', r));
      const writing = source(p.client, 64 * 1024 * 1024).catch(() => 'aborted');
      await eventually(() => (engine.counters(slot)?.toBackend ?? 0) > 256 * 1024, 'data flows');
      const c = engine.remove(slot);
      assert.ok(c && c.toBackend > 0);
      p.front.destroy();
      p.up.destroy();
      p.client.resume();
      p.backend.resume();
      await Promise.all([clientClosed, backendEnded]);
      await writing;
      p.backend.destroy();
    });

    it('idle tunnels are visible by their last activity; close() with tunnels in flight joins the thread', async () => {
      const e2 = SpliceEngine.open(4, undefined, inLoop);
      assert.ok(e2 instanceof SpliceEngine);
      const p = await pair(frontServer, backendServer);
      p.backend.resume();
      const slot = e2.add(p.front, p.up, { spliceEnded: () => {} }) as number;
      const before = e2.now();
      p.client.write(Buffer.alloc(10));
      await eventually(() => (e2.counters(slot)?.toBackend ?? 0) === 10, 'octets crossed');
      let last = -1;
      e2.forEach((s, _b, _c, lastMs) => {
        if (s === slot) last = lastMs;
      });
      assert.ok(last >= before && last <= e2.now());
      const flood = source(p.client, 32 * 1024 * 1024).catch(() => 'aborted');
      e2.close();
      assert.equal(e2.add(p.front, p.up, { spliceEnded: () => {} }), 'stopped');
      assert.ok(e2.remove(slot), 'still removable after close');
      for (const s of Object.values(p)) s.destroy();
      await flood;
    });
  });
