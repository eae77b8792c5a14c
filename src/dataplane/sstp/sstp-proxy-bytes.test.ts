/**
 * Byte accounting of the passthrough pipe (issue 7): octets are no longer counted per chunk but
 * read from the upstream socket's own counters — at status reads, periodically, and at close.
 * These tests pin that the figures stay exact (hello included) and reach both the status and
 * `vpnlb_sstp_bytes_total`, with megabytes through the pipe under backpressure.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { describe, it } from 'node:test';
import { Metrics } from '../../observability/metrics.js';
import { loadConfigText } from '../../config/load-config.js';
import { Controller } from '../../control/controller.js';
import { silentLogger } from '../../log/logger.js';
import { NODE_TLS13_CLIENT_HELLO } from '../../../test/support/tls-fixtures.js';
import { SstpProxy } from './sstp-proxy.js';
import { eventually, SPLICE_RUNS } from '../../../test/support/sstp-test-lab.js';

/** A backend that counts what it receives and answers `answer` octets to the first chunk. */
async function countingBackend(
  answer: number,
): Promise<{ port: number; received: () => number; close(): Promise<void> }> {
  let received = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on('error', () => {});
    s.once('data', () => s.write(Buffer.alloc(answer, 0x17)));
    s.on('data', (d: Buffer) => (received += d.length));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.20', () => r()));
  return {
    port: (server.address() as net.AddressInfo).port,
    received: () => received,
    close: () => {
      for (const s of sockets) s.destroy();
      return new Promise((r) => server.close(() => r()));
    },
  };
}

async function metricSum(
  metrics: Metrics,
  name: string,
  labels: Record<string, string>,
): Promise<number> {
  const m = metrics.registry.getSingleMetric(name);
  if (!m) return 0;
  const got = await m.get();
  return got.values
    .filter((v) =>
      Object.entries(labels).every(([k, val]) => (v.labels as Record<string, unknown>)[k] === val),
    )
    .reduce((n, v) => n + v.value, 0);
}

for (const run of SPLICE_RUNS)
  describe(`SstpProxy byte accounting (${run.name})`, { skip: run.skip }, () => {
    it('counts every octet both ways from the socket counters: hello included, several MiB under backpressure, at status reads and at close', async () => {
      const answer = 3 * 1024 * 1024 + 7;
      const backend = await countingBackend(answer);
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
                backendPort: backend.port,
                persistence: 'none',
              },
            ],
          },
        }),
      );
      const controller = new Controller(config);
      const metrics = new Metrics();
      const proxy = new SstpProxy(
        config.services.sstp[0]!,
        { config, controller, logger: silentLogger(), metrics },
        { splice: run.splice, front: run.front, splicePlacement: run.placement, spliceAfterMs: 0 },
      ); // hand-off mid-transfer
      await proxy.start(controller.service('sstp')!);
      const client = net.connect(proxy.port(), '127.0.0.1');
      try {
        let got = 0;
        client.on('data', (d: Buffer) => (got += d.length));
        // Read slowly at first, so that the proxy's upstream → client pipe must apply backpressure.
        client.pause();
        await new Promise((r) => client.once('connect', r));
        const payload = 5 * 1024 * 1024 + 3;
        client.write(NODE_TLS13_CLIENT_HELLO);
        client.write(Buffer.alloc(payload, 0x5a));
        const sent = NODE_TLS13_CLIENT_HELLO.length + payload;
        await eventually(() => backend.received() === sent, 'the backend received everything');
        setTimeout(() => client.resume(), 100);
        await eventually(() => got === answer, 'the client received the whole answer');

        assert.equal(
          proxy.spliceStats().tunnels,
          run.splice === 'off' ? 0 : 1,
          'the run relays on its own path',
        );
        // While the tunnel is open: the status read brings the counters up to date.
        const open = proxy.status().backends['b1'];
        assert.equal(open?.bytesIn, sent);
        assert.equal(open?.bytesOut, answer);
        assert.equal(
          await metricSum(metrics, 'vpnlb_sstp_bytes_total', { direction: 'to-backend' }),
          sent,
        );
        assert.equal(
          await metricSum(metrics, 'vpnlb_sstp_bytes_total', { direction: 'to-client' }),
          answer,
        );

        // More traffic, then close: the final report happens at close, without a status read.
        client.write(Buffer.alloc(1000, 1));
        await eventually(
          () => backend.received() === sent + 1000,
          'the backend received the last write',
        );
        client.destroy();
        await eventually(() => proxy.openConnections() === 0, 'the tunnel closed');
        assert.equal(
          await metricSum(metrics, 'vpnlb_sstp_bytes_total', { direction: 'to-backend' }),
          sent + 1000,
        );
        assert.equal(
          await metricSum(metrics, 'vpnlb_sstp_bytes_total', { direction: 'to-client' }),
          answer,
        );
        assert.equal(
          proxy.status().backends['b1']?.bytesIn,
          sent + 1000,
          'closed tunnels stay in the totals, counted once',
        );
      } finally {
        client.destroy();
        await proxy.stop();
        await backend.close();
      }
    });
  });
