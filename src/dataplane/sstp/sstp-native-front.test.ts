/**
 * What only the native front does (sstp-native-front.ts, native/tcp-splice/front_core.c): its
 * own framing of the ClientHello across segments and records, clients leaving while the
 * backend is busy, its listener's errors, stop with connections still in it, and the switch
 * back to Node's front. The proxy's shared suites (sstp-proxy*.test.ts) run through it too.
 */
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import net from 'node:net';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { NODE_TLS13_CLIENT_HELLO } from '../../../test/support/tls-fixtures.js';
import {
  eventually,
  SPLICE_RUNS,
  startProxyLab,
  type ProxyLab,
} from '../../../test/support/sstp-test-lab.js';
import { NATIVE_FRONT_ENV } from './sstp-native-front.js';
import { loadNativeSplice, type NativeSplice } from './sstp-splice.js';

const run = SPLICE_RUNS.find((r) => r.front === 'auto');
const skip = run?.skip ?? 'no native front run';

/** A raw client that sends `pieces` (pausing between them) and collects what comes back. */
async function rawClient(
  lab: ProxyLab,
  pieces: readonly Uint8Array[],
  pauseMs = 30,
): Promise<{ socket: net.Socket; received: () => number; closed: Promise<void> }> {
  const socket = net.connect({ port: lab.proxy.port(), host: '127.0.0.1', noDelay: true });
  socket.on('error', () => {});
  let received = 0;
  socket.on('data', (d: Buffer) => (received += d.length));
  const closed = new Promise<void>((r) => socket.once('close', () => r()));
  await new Promise((r) => socket.once('connect', r));
  for (const p of pieces) {
    socket.write(p);
    await sleep(pauseMs);
  }
  return { socket, received: () => received, closed };
}

/** The fixture ClientHello re-framed as two TLS records (RFC 8446 §5.1 allows it). */
function helloInTwoRecords(): Buffer {
  const body = NODE_TLS13_CLIENT_HELLO.subarray(5);
  const cut = 40;
  const record = (part: Uint8Array) =>
    Buffer.concat([Buffer.from([0x16, 0x03, 0x01, part.length >> 8, part.length & 0xff]), part]);
  return Buffer.concat([record(body.subarray(0, cut)), record(body.subarray(cut))]);
}

describe('SSTP native front', { skip }, () => {
  it('reads a ClientHello split over segments and records, then hands the tunnel to the splice thread', async () => {
    const lab = await startProxyLab({ front: 'auto', backends: [{ name: 'rras1' }] });
    try {
      assert.match(lab.proxy.status().dataplane, /native front/);
      // Three segments: part of the record header, the rest of the first record and a part of
      // the second, then the rest.
      const two = helloInTwoRecords();
      const a = await rawClient(lab, [two.subarray(0, 3), two.subarray(3, 60), two.subarray(60)]);
      // The server answered (its ServerHello crossed the proxy) and the tunnel is spliced.
      await eventually(() => a.received() > 0, 'the server answered through the proxy');
      await eventually(() => lab.proxy.spliceStats().tunnels === 1, 'one spliced tunnel');
      assert.equal(await lab.metric('vpnlb_sstp_connections_total', { backend: 'rras1' }), 1);
      a.socket.destroy();
      await eventually(() => lab.proxy.openConnections() === 0, 'the tunnel closed');
      assert.equal(lab.proxy.spliceStats().tunnels, 0);
      // Counted both ways once it ended: the hello (to-backend) and the server's answer.
      assert.ok(
        (await lab.metric('vpnlb_sstp_bytes_total', { direction: 'to-backend' })) >= two.length,
      );
      assert.ok((await lab.metric('vpnlb_sstp_bytes_total', { direction: 'to-client' })) > 0);
      // No descriptor stays behind: ten more tunnels, opened and closed, leave the count as it
      // was (the splice engine reuses the first tunnel's pipes).
      const fds = () => readdirSync('/proc/self/fd').length;
      const before = fds();
      for (let i = 0; i < 10; i++) {
        const c = await rawClient(lab, [NODE_TLS13_CLIENT_HELLO], 0);
        await eventually(() => c.received() > 0, 'answered');
        c.socket.destroy();
        await c.closed;
        await eventually(() => lab.proxy.openConnections() === 0, 'closed');
      }
      assert.ok(fds() <= before + 2, `${fds()} descriptors open, ${before} before`);
      // A real client through the same front.
      await (await lab.client()).echo();
    } finally {
      await lab.close();
    }
  });

  it('listens on IPv6 (v6 only) and sees the client address', async () => {
    const lab = await startProxyLab({
      front: 'auto',
      virtualIp: '::1',
      backends: [{ name: 'rras1' }],
      service: { persistence: 'source-ip' },
    });
    try {
      assert.deepEqual(lab.proxy.status().listeners, [`tcp [::1]:${lab.proxy.port()}`]);
      await (await lab.client()).echo();
      // Source-IP persistence learned the client's IPv6 address, as the front reported it.
      assert.deepEqual(
        lab.proxy.persistenceEntries().filter(([t]) => t === 'clients'),
        [['clients', '::1', 'rras1']],
      );
    } finally {
      await lab.close();
    }
  });

  it('a client that leaves while its server is silent is forgotten: no count, no tunnel left', async () => {
    const lab = await startProxyLab({
      front: 'auto',
      backends: [{ name: 'quiet', silent: true }],
      service: { handshakeTimeout: '5s' },
    });
    try {
      const leave = async () => {
        const c = await rawClient(lab, [NODE_TLS13_CLIENT_HELLO]);
        await eventually(
          () => lab.controller.connections('sstp').get('quiet') === 1,
          'the backend connection counted',
        );
        c.socket.destroy();
        await eventually(() => lab.proxy.openConnections() === 0, 'the connection forgotten');
      };
      await leave();
      assert.equal(lab.controller.connections('sstp').get('quiet'), 0);
      assert.equal(await lab.metric('vpnlb_sstp_open_connections'), 0);
      assert.equal(await lab.metric('vpnlb_sstp_rejected_total'), 0);
      // The addon let go of both sockets too, every time.
      const fds = () => readdirSync('/proc/self/fd').length;
      const before = fds();
      for (let i = 0; i < 5; i++) await leave();
      await eventually(() => lab.proxy.frontStats().held === 0, 'no connection held by the addon');
      assert.deepEqual(lab.proxy.frontStats(), { active: true, tracked: 0, held: 0 });
      assert.ok(fds() <= before + 2, `${fds()} descriptors open, ${before} before`);
    } finally {
      await lab.close();
    }
  });

  it('stop closes the connections still in the front', async () => {
    const lab = await startProxyLab({ front: 'auto', backends: [{ name: 'rras1' }] });
    let closed: Promise<void> | undefined;
    try {
      // Half a record header: the connection waits in the front for the rest of its hello.
      const c = await rawClient(lab, [NODE_TLS13_CLIENT_HELLO.subarray(0, 3)]);
      closed = c.closed;
      await eventually(() => lab.proxy.frontStats().held === 1, 'the connection in the front');
      assert.equal(lab.proxy.openConnections(), 1);
    } finally {
      await lab.close();
    }
    await Promise.race([
      closed,
      sleep(5_000).then(() => assert.fail('the client was not closed within 5 s of stop')),
    ]);
  });

  it("a port in use is the listener's error, as with Node's front", async () => {
    const taken = net.createServer();
    await new Promise<void>((r) => taken.listen(0, '127.0.0.1', () => r()));
    const port = (taken.address() as net.AddressInfo).port;
    try {
      await assert.rejects(
        startProxyLab({ front: 'auto', backends: [{ name: 'rras1' }], service: { port } }),
        (err: Error & { code?: string }) =>
          err.code === 'VPNLB_LISTEN' && /EADDRINUSE/.test(err.message),
      );
    } finally {
      taken.close();
    }
  });

  it(`${NATIVE_FRONT_ENV}=0 keeps Node's front`, async () => {
    process.env[NATIVE_FRONT_ENV] = '0';
    try {
      const lab = await startProxyLab({ front: 'auto', backends: [{ name: 'rras1' }] });
      try {
        assert.match(lab.proxy.status().dataplane, /\(passthrough, splice\)$/);
        await (await lab.client()).echo();
      } finally {
        await lab.close();
      }
    } finally {
      delete process.env[NATIVE_FRONT_ENV];
    }
  });
});

describe('SSTP native front, the addon alone', { skip }, () => {
  const binding = (): NativeSplice => {
    const l = loadNativeSplice();
    if ('unavailable' in l) throw new Error(l.unavailable);
    return l.binding;
  };
  const open = (
    b: NativeSplice,
    onEvent: (kind: number, id: number, a: number, x: number, data: unknown) => void,
  ) => b.frontOpen('127.0.0.1', 0, 64, 65_536, 80 * 1024, 16 * 1024, 1 << 20, 64, onEvent);
  const connect = (port: number, bytes?: Uint8Array) => {
    const s = net.connect(port, '127.0.0.1');
    s.on('error', () => {});
    if (bytes) s.once('connect', () => s.write(bytes));
    return { socket: s, closed: new Promise<void>((r) => s.once('close', () => r())) };
  };

  for (const when of ['in the event', 'in a microtask after it'] as const)
    it(`stops ${when}: the run ends, every client is closed`, async () => {
      const b = binding();
      let stops = 0;
      const h: object = open(b, (kind) => {
        if (kind !== 1 || stops++ > 0) return;
        if (when === 'in the event') b.frontStop(h);
        else queueMicrotask(() => b.frontStop(h));
      });
      const port = b.frontPort(h);
      const clients = Array.from({ length: 8 }, () => connect(port));
      await Promise.race([
        Promise.all(clients.map((c) => c.closed)),
        sleep(5_000).then(() => assert.fail('clients still open 5 s after the stop')),
      ]);
      b.frontStop(h); // idempotent
      assert.equal(b.frontPort(h), 0);
    });

  it('more(): reads on after a hello JavaScript wants more of; each event carries every octet', async () => {
    const b = binding();
    const seen: number[] = [];
    const h: object = open(b, (kind, id, _a, _x, data) => {
      if (kind !== 2) return;
      seen.push((data as Buffer).length);
      if (seen.length === 1) assert.equal(b.frontMore(h, id), 0);
      else b.frontClose(h, id);
    });
    try {
      const c = connect(b.frontPort(h), NODE_TLS13_CLIENT_HELLO);
      await eventually(() => seen.length === 1, 'the first hello event');
      c.socket.write(Buffer.from('0123456789'));
      await eventually(() => seen.length === 2, 'the second hello event');
      assert.deepEqual(seen, [NODE_TLS13_CLIENT_HELLO.length, NODE_TLS13_CLIENT_HELLO.length + 10]);
      await c.closed;
      assert.equal(b.frontStats(h)[1], 0);
    } finally {
      b.frontStop(h);
    }
  });
});
