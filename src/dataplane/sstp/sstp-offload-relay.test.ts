/**
 * The offload relay, run through both fronts (Node's node:tls, and the native one whose
 * OpenSSL handshake and relay live in the addon): what a tunnel must do whichever relays it.
 * Octets intact both ways under backpressure and counted exactly; each side's end of stream
 * passed on (half-close); idle tunnels closed; the front's certificate, TLS versions and
 * session resumption; clients that are not TLS, or say nothing; descriptors after stop.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { readdirSync } from 'node:fs';
import { PassThrough } from 'node:stream';
import net from 'node:net';
import tls from 'node:tls';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { loadConfigText } from '../../config/load-config.js';
import { Controller } from '../../control/controller.js';
import { createLogger, silentLogger } from '../../log/logger.js';
import { Metrics } from '../../observability/metrics.js';
import { generateTestCertificate, type TestCertificate } from '../../sim/rras/sstp-certs.js';
import { eventually, FRONT_RUNS } from '../../../test/support/sstp-test-lab.js';
import { SstpProxy } from './sstp-proxy.js';

/** What a backend connection saw: its octets' hash and count, and whether the client ended. */
interface Seen {
  readonly socket: net.Socket;
  readonly hash: ReturnType<typeof createHash>;
  bytes: number;
  ended: boolean;
}

/**
 * A plain-TCP server (RRAS's :80 behind offload): `onFirst` runs at a connection's first chunk
 * (by default nothing is answered), `onEnd` when its client has ended (by default it ends too).
 */
async function backend(
  hooks: { onFirst?: (s: net.Socket) => void; onEnd?: (s: net.Socket) => void } = {},
) {
  const seen: Seen[] = [];
  const server = net.createServer({ allowHalfOpen: true }, (socket) => {
    socket.on('error', () => {});
    const me: Seen = { socket, hash: createHash('sha256'), bytes: 0, ended: false };
    seen.push(me);
    socket.once('data', () => hooks.onFirst?.(socket));
    socket.on('data', (d: Buffer) => {
      me.hash.update(d);
      me.bytes += d.length;
    });
    socket.on('end', () => {
      me.ended = true;
      (hooks.onEnd ?? ((s) => s.end()))(socket);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.20', () => r()));
  return {
    port: (server.address() as net.AddressInfo).port,
    seen,
    close: () => {
      for (const s of seen) s.socket.destroy();
      return new Promise<void>((r) => server.close(() => r()));
    },
  };
}

async function metricSum(metrics: Metrics, name: string, labels: Record<string, string> = {}) {
  const m = metrics.registry.getSingleMetric(name);
  if (!m) return 0;
  return (await m.get()).values
    .filter((v) =>
      Object.entries(labels).every(([k, val]) => (v.labels as Record<string, unknown>)[k] === val),
    )
    .reduce((n, v) => n + v.value, 0);
}

async function startOffload(
  front: 'auto' | 'node',
  cert: TestCertificate,
  backendPort: number,
  service: Record<string, unknown> = {},
  logger = silentLogger(),
) {
  const config = loadConfigText(
    JSON.stringify({
      pools: { farm: { backends: [{ name: 'b1', address: '127.0.0.20' }] } },
      services: {
        sstp: [
          {
            name: 'sstp',
            virtualIp: '127.0.0.1',
            port: 0,
            pool: 'farm',
            mode: 'offload',
            backendPort,
            tls: { cert: cert.certPath, key: cert.keyPath },
            persistence: 'none',
            ...service,
          },
        ],
      },
    }),
  );
  const controller = new Controller(config);
  const metrics = new Metrics();
  const proxy = new SstpProxy(
    config.services.sstp[0]!,
    { config, controller, logger, metrics },
    { front },
  );
  await proxy.start(controller.service('sstp')!);
  return { proxy, metrics };
}

function connect(port: number, options: tls.ConnectionOptions = {}): Promise<tls.TLSSocket> {
  return new Promise((resolve, reject) => {
    // (`allowHalfOpen` is honoured by tls.connect but missing from @types/node's options.)
    const s = tls.connect({
      port,
      host: '127.0.0.1',
      rejectUnauthorized: false,
      allowHalfOpen: true,
      ...options,
    } as tls.ConnectionOptions);
    s.once('secureConnect', () => resolve(s));
    s.once('error', reject);
  });
}

/** A TLS client through the proxy over a socket of the test's own, to write raw octets into or reset. */
async function overRaw(port: number): Promise<{ raw: net.Socket; client: tls.TLSSocket }> {
  const raw = net.connect(port, '127.0.0.1');
  raw.on('error', () => {});
  return { raw, client: await connect(port, { socket: raw }) };
}

/** One offload proxy in front of one `backend(hooks)`, and one TLS client through it. */
async function withTunnel(
  front: 'auto' | 'node',
  hooks: Parameters<typeof backend>[0],
  service: Record<string, unknown>,
  body: (t: {
    be: Awaited<ReturnType<typeof backend>>;
    proxy: SstpProxy;
    metrics: Metrics;
    client: tls.TLSSocket;
  }) => Promise<void>,
): Promise<void> {
  const be = await backend(hooks);
  const { proxy, metrics } = await startOffload(front, cert, be.port, service);
  try {
    const client = await connect(proxy.port());
    try {
      await body({ be, proxy, metrics, client });
    } finally {
      client.destroy();
    }
  } finally {
    await proxy.stop();
    await be.close();
  }
}

const fds = () => readdirSync('/proc/self/fd').length;

let cert: TestCertificate;
before(() => {
  cert = generateTestCertificate();
});
after(() => cert.dispose());

for (const run of FRONT_RUNS)
  describe(`SSTP offload relay (${run.name})`, { skip: run.skip }, () => {
    it('relays megabytes intact both ways under backpressure, and counts every plaintext octet', async () => {
      const answer = randomBytes(3 * 1024 * 1024 + 5);
      await withTunnel(
        run.front,
        { onFirst: (s) => s.write(answer) },
        {},
        async ({ be, proxy, metrics, client }) => {
          assert.match(
            proxy.status().dataplane,
            run.front === 'auto' ? /native front/ : /^sstp-proxy \(offload\)$/,
          );
          const got = createHash('sha256');
          let gotBytes = 0;
          client.on('data', (d: Buffer) => {
            got.update(d);
            gotBytes += d.length;
          });
          client.pause(); // the server's answer must wait in the proxy (backpressure)
          const payload = randomBytes(5 * 1024 * 1024 + 3);
          client.write(payload);
          await eventually(() => be.seen[0]?.bytes === payload.length, 'the server got everything');
          assert.equal(
            be.seen[0]?.hash.copy().digest('hex'),
            createHash('sha256').update(payload).digest('hex'),
          );
          await sleep(100);
          client.resume();
          await eventually(() => gotBytes === answer.length, 'the client got the whole answer');
          assert.equal(got.digest('hex'), createHash('sha256').update(answer).digest('hex'));
          const open = proxy.status().backends['b1'];
          assert.equal(open?.bytesIn, payload.length);
          assert.equal(open?.bytesOut, answer.length);

          client.write(Buffer.alloc(1000, 1));
          await eventually(() => be.seen[0]?.bytes === payload.length + 1000, 'the last write');
          client.destroy();
          await eventually(() => proxy.openConnections() === 0, 'the tunnel closed');
          assert.equal(
            await metricSum(metrics, 'vpnlb_sstp_bytes_total', { direction: 'to-backend' }),
            payload.length + 1000,
          );
          assert.equal(
            await metricSum(metrics, 'vpnlb_sstp_bytes_total', { direction: 'to-client' }),
            answer.length,
          );
        },
      );
    });

    it("passes the client's end on: the server answers after it, then ends, and the tunnel closes", async () => {
      await withTunnel(
        run.front,
        { onEnd: (s) => s.end('answer after your end') },
        {},
        async ({ be, proxy, client }) => {
          let reply = '';
          client.setEncoding('latin1');
          client.on('data', (d: string) => (reply += d));
          const ended = new Promise<void>((r) => client.once('end', () => r()));
          const request =
            'SSTP_DUPLEX_POST /sra_{BA195980-CD49-458b-9E23-C84EE0ADCD75}/ HTTP/1.1\r\n\r\n';
          client.end(request);
          await ended;
          assert.equal(reply, 'answer after your end');
          assert.equal(be.seen[0]?.bytes, request.length);
          assert.equal(be.seen[0]?.ended, true);
          await eventually(() => proxy.openConnections() === 0, 'the tunnel closed');
        },
      );
    });

    it("passes the server's end on while the client still sends", async () => {
      await withTunnel(
        run.front,
        { onFirst: (s) => s.end('bye') },
        {},
        async ({ be, proxy, client }) => {
          let reply = '';
          client.setEncoding('latin1');
          client.on('data', (d: string) => (reply += d));
          const ended = new Promise<void>((r) => client.once('end', () => r()));
          client.write('hello');
          await ended;
          assert.equal(reply, 'bye');
          client.write('more');
          await eventually(() => be.seen[0]?.bytes === 9, 'the server still receives');
          client.end();
          await eventually(() => proxy.openConnections() === 0, 'the tunnel closed');
          assert.equal(be.seen[0]?.ended, true);
        },
      );
    });

    it('a download to a client that reads slowly arrives whole, then its end (close_notify waits for room)', async () => {
      const answer = randomBytes(4 * 1024 * 1024);
      await withTunnel(
        run.front,
        { onFirst: (s) => s.end(answer) },
        {},
        async ({ be, proxy, client }) => {
          const got = createHash('sha256');
          let gotBytes = 0;
          let failed: Error | undefined;
          client.on('error', (e) => (failed = e));
          client.on('data', (d: Buffer) => {
            got.update(d);
            gotBytes += d.length;
          });
          const ended = new Promise<void>((r) => client.once('end', () => r()));
          client.pause();
          client.write('GET');
          await eventually(() => be.seen[0]?.bytes === 3, 'the request reached the server');
          await sleep(300); // the server has ended; the proxy holds the rest for the client
          client.resume();
          await ended;
          assert.equal(failed, undefined);
          assert.equal(gotBytes, answer.length);
          assert.equal(got.digest('hex'), createHash('sha256').update(answer).digest('hex'));
          client.end();
          await eventually(() => proxy.openConnections() === 0, 'the tunnel closed');
        },
      );
    });

    it('idleTimeout 0 keeps a quiet tunnel open', async () => {
      await withTunnel(
        run.front,
        { onFirst: (s) => s.write('y') },
        { idleTimeout: 0 },
        async ({ be, proxy, client }) => {
          client.resume();
          client.write('x');
          await eventually(() => be.seen[0]?.bytes === 1, 'the tunnel is up');
          await sleep(400);
          assert.equal(proxy.openConnections(), 1);
          client.write('z');
          await eventually(() => be.seen[0]?.bytes === 2, 'the tunnel still carries octets');
        },
      );
    });

    it('closes a tunnel idle for idleTimeout, and counts it', async () => {
      await withTunnel(
        run.front,
        { onFirst: (s) => s.write('y') },
        { idleTimeout: '300ms' },
        async ({ proxy, metrics, client }) => {
          // (A half-open client: the proxy's close is its end of stream.)
          const closed = new Promise<boolean>((r) => client.once('end', () => r(true)));
          client.resume();
          client.write('x');
          assert.equal(await Promise.race([closed, sleep(5_000, false)]), true, 'closed when idle');
          assert.equal(
            await metricSum(metrics, 'vpnlb_sstp_closed_total', { reason: 'idle-timeout' }),
            1,
          );
          assert.equal(proxy.openConnections(), 0);
        },
      );
    });

    it('presents the front certificate; TLS 1.3 and 1.2 with AES-GCM; a session resumes', async () => {
      const be = await backend({ onFirst: (s) => s.write('y') });
      const { proxy } = await startOffload(run.front, cert, be.port);
      const sockets: tls.TLSSocket[] = [];
      try {
        const first = await connect(proxy.port());
        sockets.push(first);
        assert.equal(first.getProtocol(), 'TLSv1.3');
        assert.equal(first.getCipher().name, 'TLS_AES_128_GCM_SHA256');
        assert.equal(
          first.getPeerX509Certificate()?.fingerprint256.replaceAll(':', '').toLowerCase(),
          cert.sha256,
        );
        const session = await new Promise<Buffer>((r) => first.once('session', r));
        const again = await connect(proxy.port(), { session });
        sockets.push(again);
        assert.equal(again.isSessionReused(), true, 'TLS 1.3 ticket accepted');

        const old = await connect(proxy.port(), { maxVersion: 'TLSv1.2' });
        sockets.push(old);
        assert.equal(old.getProtocol(), 'TLSv1.2');
        assert.equal(old.getCipher().name, 'ECDHE-ECDSA-AES128-GCM-SHA256');
        for (const s of sockets) s.write('x');
        await eventually(() => be.seen.length === 3, 'every tunnel reached the server');
      } finally {
        for (const s of sockets) s.destroy();
        await proxy.stop();
        await be.close();
      }
    });

    it('refuses a client that is not TLS and one that says nothing, and keeps serving', async () => {
      const be = await backend({ onFirst: (s) => s.write('y') });
      const { proxy, metrics } = await startOffload(run.front, cert, be.port);
      try {
        const http = net.connect(proxy.port(), '127.0.0.1');
        http.on('error', () => {});
        http.write('GET / HTTP/1.1\r\nHost: vpn\r\n\r\n');
        await new Promise((r) => http.once('close', r));
        const silent = net.connect(proxy.port(), '127.0.0.1');
        silent.on('error', () => {});
        silent.once('connect', () => silent.end());
        await new Promise((r) => silent.once('close', r));
        await eventually(
          async () =>
            (await metricSum(metrics, 'vpnlb_sstp_rejected_total', {
              reason: 'tls-handshake-failed',
            })) === 1 &&
            (await metricSum(metrics, 'vpnlb_sstp_rejected_total', { reason: 'client-closed' })) ===
              1,
          'one refusal of each kind',
        );
        const ok = await connect(proxy.port());
        ok.write('x');
        await eventually(() => be.seen.length === 1, 'a TLS client is still served');
        ok.destroy();
      } finally {
        await proxy.stop();
        await be.close();
      }
    });

    it("answers a forged record with an alert, closes the tunnel at once, counts it and logs TLS's reason; keeps serving", async () => {
      const be = await backend({ onFirst: (s) => s.write('y') });
      const lines = new PassThrough();
      let log = '';
      lines.on('data', (d: Buffer) => (log += d.toString()));
      const { proxy, metrics } = await startOffload(
        run.front,
        cert,
        be.port,
        {},
        createLogger({ level: 'debug', destination: lines }),
      );
      try {
        const { raw, client } = await overRaw(proxy.port());
        let alert = '';
        client.on('error', (err: NodeJS.ErrnoException) => (alert = err.code ?? err.message));
        client.write('x');
        await eventually(() => be.seen.length === 1, 'the tunnel reached the server');
        // An application-data record that no key made: its authentication tag cannot match.
        raw.write(Buffer.concat([Buffer.from([0x17, 3, 3, 0, 48]), randomBytes(48)]));
        await eventually(() => alert !== '', 'the front to answer with an alert');
        assert.equal(alert, 'ERR_SSL_SSLV3_ALERT_BAD_RECORD_MAC');
        // Closed by the front while the client is still connected, counted, and said why.
        await eventually(() => proxy.openConnections() === 0, 'the tunnel closed');
        assert.equal(
          await metricSum(metrics, 'vpnlb_sstp_closed_total', { reason: 'tls-error' }),
          1,
        );
        assert.match(
          log,
          /closing tunnel from 127\.0\.0\.1 to b1: tls-error \([^)]*bad record mac/i,
        );
        raw.destroy();
        const ok = await connect(proxy.port());
        ok.write('x');
        await eventually(() => be.seen.length === 2, 'the next client is served');
        ok.destroy();
        client.destroy();
      } finally {
        await proxy.stop();
        await be.close();
      }
    });

    it('a client that resets its tunnel is gone, not counted as a TLS error', async () => {
      const be = await backend({ onFirst: (s) => s.write('y') });
      const { proxy, metrics } = await startOffload(run.front, cert, be.port);
      try {
        const { raw, client } = await overRaw(proxy.port());
        client.on('error', () => {});
        client.write('x');
        await eventually(() => be.seen.length === 1, 'the tunnel reached the server');
        raw.resetAndDestroy(); // an RST: the client's network dropped it
        await eventually(() => proxy.openConnections() === 0, 'the tunnel closed');
        assert.equal(await metricSum(metrics, 'vpnlb_sstp_closed_total'), 0);
      } finally {
        await proxy.stop();
        await be.close();
      }
    });

    it('leaves no descriptor behind: tunnels ended by either side, and stop with tunnels open', async () => {
      const base = fds();
      const be = await backend({ onFirst: (s) => s.write('y') });
      const { proxy } = await startOffload(run.front, cert, be.port);
      const clients = await Promise.all(Array.from({ length: 12 }, () => connect(proxy.port())));
      for (const c of clients) c.on('end', () => c.end()).resume(); // a server that leaves ends its tunnel
      try {
        for (const c of clients) c.write('x');
        await eventually(() => be.seen.length === 12, 'every tunnel reached the server');
        for (const c of clients.slice(0, 4)) c.destroy();
        for (const s of be.seen.slice(4, 8)) s.socket.destroy();
        await eventually(() => proxy.openConnections() === 4, 'eight tunnels closed');
        await proxy.stop();
        for (const c of clients) c.destroy();
        await be.close();
        await eventually(() => fds() === base, `descriptors back to ${base}`);
      } finally {
        for (const c of clients) c.destroy();
        await proxy.stop();
        await be.close();
      }
    });
  });
