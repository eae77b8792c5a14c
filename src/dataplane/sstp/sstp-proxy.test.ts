import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import net from 'node:net';
import { NODE_TLS13_CLIENT_HELLO } from '../../../test/support/tls-fixtures.js';
import { eventually, SPLICE_RUNS, startProxyLab } from '../../../test/support/sstp-test-lab.js';

for (const run of SPLICE_RUNS)
  describe(`SstpProxy passthrough (${run.name})`, { skip: run.skip }, () => {
    it('least connections spreads concurrent tunnels evenly; each server saw Call Connect Requests and PPP', async () => {
      const lab = await startProxyLab({
        splice: run.splice,
        front: run.front,
        placement: run.placement,
        backends: [{ name: 'rras1' }, { name: 'rras2' }, { name: 'rras3' }],
      });
      try {
        const clients = await Promise.all(Array.from({ length: 12 }, () => lab.client()));
        const perServer = [...lab.sims.values()].map(
          (s) =>
            s
              .report()
              .connections.filter((c) => c.callConnectRequests === 1 && c.pppFrames.length === 1)
              .length,
        );
        assert.deepEqual(perServer, [4, 4, 4]);
        const st = lab.proxy.status();
        assert.deepEqual(
          Object.values(st.backends).map((b) => b.connections),
          [4, 4, 4],
        );
        assert.match(st.listeners[0] ?? '', /^tcp 127\.0\.0\.1:\d+$/);
        assert.equal(await lab.metric('vpnlb_sstp_connections_total', { via: 'balancer' }), 12);
        // The servers see the balancer's loopback address, and the traffic is counted both ways.
        assert.ok(
          (st.backends['rras1']?.bytesIn ?? 0) > 0 && (st.backends['rras1']?.bytesOut ?? 0) > 0,
        );
        // The run's relaying path is the one in use: 12 hand-offs to the addon (each tunnel once
        // it has lived the lab's spliceAfterMs), or none.
        if (run.splice !== 'off')
          await eventually(
            () => lab.proxy.spliceStats().handedOff === 12,
            '12 hand-offs to the splice path',
          );
        assert.deepEqual(
          lab.proxy.spliceStats(),
          run.splice === 'off'
            ? { active: false, tunnels: 0, handedOff: 0 }
            : { active: true, tunnels: 12, handedOff: 12 },
        );
        assert.match(
          st.dataplane,
          run.splice === 'off'
            ? /\(passthrough\)$/
            : run.front === 'auto'
              ? /\(passthrough, native front, splice\)$/
              : /\(passthrough, splice\)$/,
        );
        await Promise.all(clients.map((c) => c.close()));
        await eventually(
          () => [...lab.controller.connections('sstp').entries()].length === 0,
          'connection counts back to zero',
        );
        assert.equal(lab.proxy.spliceStats().tunnels, 0, 'every tunnel left the addon');
        assert.equal(lab.proxy.openConnections(), 0);
      } finally {
        await lab.close();
      }
    });

    it('weights count: weights 3 and 1 get 6 and 2 of 8 tunnels', async () => {
      const lab = await startProxyLab({
        splice: run.splice,
        front: run.front,
        placement: run.placement,
        backends: [
          { name: 'big', weight: 3 },
          { name: 'small', weight: 1 },
        ],
      });
      try {
        for (let i = 0; i < 8; i++) await lab.client();
        assert.deepEqual(
          Object.values(lab.proxy.status().backends).map((b) => b.connections),
          [6, 2],
        );
      } finally {
        await lab.close();
      }
    });

    it('a resumed TLS 1.2 session reaches the server that issued it', async () => {
      const lab = await startProxyLab({
        splice: run.splice,
        front: run.front,
        placement: run.placement,
        backends: [{ name: 'rras1' }, { name: 'rras2' }, { name: 'rras3' }],
        maxTlsVersion: 'TLSv1.2',
      });
      try {
        const first = await lab.client({ maxVersion: 'TLSv1.2' });
        const session = first.session;
        assert.ok(session);
        await first.close();
        const issuer = [...lab.sims.values()].find((s) => s.report().connections.length === 1);
        assert.ok(issuer);
        for (let i = 0; i < 4; i++) {
          const again = await lab.client({ maxVersion: 'TLSv1.2', session });
          assert.equal(again.isSessionReused, true, `resumption ${i} was accepted by the server`);
          await again.close();
        }
        assert.equal(issuer.report().connections.length, 5);
        assert.equal(issuer.report().connections.filter((c) => c.resumed).length, 4);
        assert.equal(
          await lab.metric('vpnlb_sstp_persistence_total', { kind: 'tls-session', result: 'hit' }),
          4,
        );
        assert.equal(await lab.metric('vpnlb_sstp_sessions_learned_total'), 1 + 4);
      } finally {
        await lab.close();
      }
    });

    it('without persistence the same resumptions scatter (the test above can fail)', async () => {
      const lab = await startProxyLab({
        splice: run.splice,
        front: run.front,
        placement: run.placement,
        backends: [{ name: 'rras1' }, { name: 'rras2' }, { name: 'rras3' }],
        maxTlsVersion: 'TLSv1.2',
        service: { persistence: 'none' },
      });
      try {
        const first = await lab.client({ maxVersion: 'TLSv1.2' });
        const session = first.session;
        await first.close();
        let reused = 0;
        for (let i = 0; i < 4; i++) {
          const again = await lab.client({
            maxVersion: 'TLSv1.2',
            ...(session ? { session } : {}),
          });
          if (again.isSessionReused) reused++;
          await again.close();
        }
        assert.ok(reused < 4, `only the issuing server can resume; ${reused} of 4 resumed`);
      } finally {
        await lab.close();
      }
    });

    it('drain: no new tunnels to a draining server; its tunnels stay until drainTimeout, then are closed and counted', async () => {
      const lab = await startProxyLab({
        splice: run.splice,
        front: run.front,
        placement: run.placement,
        backends: [{ name: 'rras1' }, { name: 'rras2' }],
        service: { drainTimeout: '400ms' },
      });
      try {
        const a = await lab.client();
        const b = await lab.client();
        const onRras1 = lab.sims.get('rras1')?.openConnections();
        assert.equal(onRras1, 1);
        lab.controller.setAdminState('rras1', 'draining');
        const newcomers = await Promise.all([lab.client(), lab.client(), lab.client()]);
        assert.equal(
          lab.sims.get('rras1')?.report().connections.length,
          1,
          'no new tunnel on the draining server',
        );
        assert.equal(lab.sims.get('rras2')?.report().connections.length, 4);
        // The draining server's tunnel still carries traffic...
        await a.echo();
        await b.echo();
        // ...until the drain deadline closes it (and only it).
        await eventually(() => a.isClosed || b.isClosed, 'the drained tunnel to close');
        assert.equal(
          await lab.metric('vpnlb_sstp_closed_total', {
            backend: 'rras1',
            reason: 'drain-timeout',
          }),
          1,
        );
        const survivor = a.isClosed ? b : a;
        await survivor.echo();
        for (const c of newcomers) await c.echo();
      } finally {
        await lab.close();
      }
    });

    it('a disabled server loses its tunnels at once; per-backend and per-service limits refuse the excess', async () => {
      const lab = await startProxyLab({
        splice: run.splice,
        front: run.front,
        placement: run.placement,
        backends: [
          { name: 'rras1', maxConnections: 1 },
          { name: 'rras2', maxConnections: 1 },
        ],
        service: { maxConnections: 3 },
      });
      try {
        const a = await lab.client();
        const b = await lab.client();
        await assert.rejects(lab.client({ timeoutMs: 2_000 }), /closed/);
        assert.equal(await lab.metric('vpnlb_sstp_rejected_total', { reason: 'no-backend' }), 1);
        lab.controller.setAdminState('rras2', 'disabled');
        await eventually(() => a.isClosed !== b.isClosed, 'the disabled server tunnel to close');
        assert.equal(
          await lab.metric('vpnlb_sstp_closed_total', { reason: 'backend-disabled' }),
          1,
        );
        lab.controller.setAdminState('rras2', 'enabled');
        const c = await lab.client();
        // Service limit: two tunnels open plus two idle sockets hit maxConnections 3.
        const idle = net.connect(lab.proxy.port(), '127.0.0.1');
        await new Promise((r) => idle.once('connect', r));
        const refused = net.connect(lab.proxy.port(), '127.0.0.1');
        await new Promise((r) => refused.once('close', r));
        assert.equal(await lab.metric('vpnlb_sstp_rejected_total', { reason: 'service-limit' }), 1);
        idle.destroy();
        await c.echo();
      } finally {
        await lab.close();
      }
    });

    it('listens on IPv6 (::1) as well', async () => {
      const lab = await startProxyLab({
        splice: run.splice,
        front: run.front,
        placement: run.placement,
        backends: [{ name: 'rras1' }],
        virtualIp: '::1',
      });
      try {
        const c = await lab.client();
        await c.echo();
        assert.match(lab.proxy.status().listeners[0] ?? '', /^tcp \[::1\]:\d+$/);
        assert.equal(lab.sims.get('rras1')?.report().connections[0]?.callConnectRequests, 1);
      } finally {
        await lab.close();
      }
    });

    it('half-close: the client ends its side, the server answers after that and ends; then the tunnel closes', async () => {
      const backend = await rawBackend();
      const lab = await startProxyLab({
        splice: run.splice,
        front: run.front,
        placement: run.placement,
        backends: [{ name: 'rras1', absent: true }],
        service: { persistence: 'none', backendPort: backend.port },
        backendAddresses: ['127.0.0.30'],
      });
      const client = net.connect({
        port: lab.proxy.port(),
        host: '127.0.0.1',
        allowHalfOpen: true,
      });
      try {
        let got = 0;
        client.on('data', (d: Buffer) => (got += d.length));
        const clientEnded = new Promise((r) => client.once('end', r));
        await new Promise((r) => client.once('connect', r));
        client.write(NODE_TLS13_CLIENT_HELLO);
        const server = await backend.accepted;
        await eventually(
          () => backend.received() === NODE_TLS13_CLIENT_HELLO.length,
          'the hello reached the server',
        );
        server.write(Buffer.alloc(100, 0x16)); // the "ServerHello"
        await eventually(() => got === 100, 'the answer reached the client');
        await eventually(
          () => lab.proxy.spliceStats().tunnels === (run.splice === 'off' ? 0 : 1),
          'the tunnel is on its path',
        );
        client.end(Buffer.alloc(5000, 1));
        await backend.ended;
        assert.equal(
          backend.received(),
          NODE_TLS13_CLIENT_HELLO.length + 5000,
          'everything before the client FIN arrived',
        );
        server.end(Buffer.alloc(300_000, 2)); // still answering after the client's half-close
        await clientEnded;
        assert.equal(got, 100 + 300_000);
        await eventually(
          () => lab.proxy.openConnections() === 0,
          'the tunnel closed once both sides ended',
        );
        assert.equal(
          lab.proxy.status().backends['rras1']?.bytesIn,
          NODE_TLS13_CLIENT_HELLO.length + 5000,
        );
        assert.equal(lab.proxy.status().backends['rras1']?.bytesOut, 300_100);
      } finally {
        client.destroy();
        await lab.close();
        await backend.close();
      }
    });

    it('idle timeout: a tunnel without traffic is closed and counted; a busy one stays', async () => {
      const lab = await startProxyLab({
        splice: run.splice,
        front: run.front,
        placement: run.placement,
        backends: [{ name: 'rras1' }],
        service: { idleTimeout: '400ms' },
      });
      try {
        const quiet = await lab.client();
        const busy = await lab.client();
        const until = Date.now() + 1_200;
        while (Date.now() < until && !quiet.isClosed) {
          await busy.echo();
          await new Promise((r) => setTimeout(r, 50));
        }
        await eventually(() => quiet.isClosed, 'the quiet tunnel to close');
        assert.equal(busy.isClosed, false, 'the busy tunnel stays');
        assert.equal(await lab.metric('vpnlb_sstp_closed_total', { reason: 'idle-timeout' }), 1);
        await busy.echo();
      } finally {
        await lab.close();
      }
    });
  });

describe('SstpProxy slow start (issue 11, finding 7)', () => {
  for (const slowStart of [undefined, '60s']) {
    it(`a server back up under a stream of new SSTP clients: ${slowStart ? 'slowStart ramps its share' : 'without slow start it takes them all'}`, async () => {
      const lab = await startProxyLab({
        splice: 'off',
        backends: [{ name: 'rras1' }, { name: 'rras2' }],
        service: { persistence: 'none', ...(slowStart ? { slowStart } : {}) },
      });
      try {
        lab.controller.setHealth('sstp', 'rras2', 'down', 'probe failed');
        for (let i = 0; i < 10; i++) await lab.client();
        lab.controller.setHealth('sstp', 'rras2', 'up', 'probe answered');
        // The next ten clients, one after the other, within the first step (6 s of 60).
        for (let i = 0; i < 10; i++) await lab.client();
        const onRras2 = lab.sims.get('rras2')!.report().connections.length;
        if (!slowStart) {
          assert.equal(onRras2, 10, 'the herd: every new client to the recovered server');
        } else {
          assert.ok(
            onRras2 >= 1 && onRras2 <= 2,
            `rras2 took ${onRras2} of 10 new clients at a tenth of its weight`,
          );
          const status = lab.controller.service('sstp')!.backends.find((b) => b.name === 'rras2')!;
          assert.equal(status.slowStart?.share, 0.1);
        }
      } finally {
        await lab.close();
        lab.controller.dispose();
      }
    });
  }
});

/** A raw TCP server: counts what it receives; `accepted` is the first connection, `ended` its FIN. */
async function rawBackend(): Promise<{
  port: number;
  accepted: Promise<net.Socket>;
  ended: Promise<void>;
  received: () => number;
  close(): Promise<void>;
}> {
  let received = 0;
  let onEnd!: () => void;
  const ended = new Promise<void>((r) => (onEnd = r));
  const sockets = new Set<net.Socket>();
  const server = net.createServer({ allowHalfOpen: true });
  const accepted = new Promise<net.Socket>((r) => server.once('connection', r));
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('error', () => {});
    s.on('data', (d: Buffer) => (received += d.length));
    s.on('end', onEnd);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.30', () => r()));
  return {
    port: (server.address() as net.AddressInfo).port,
    accepted,
    ended,
    received: () => received,
    close: () => {
      for (const s of sockets) s.destroy();
      return new Promise((r) => server.close(() => r()));
    },
  };
}
