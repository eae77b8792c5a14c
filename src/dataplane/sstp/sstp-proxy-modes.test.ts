/**
 * TLS offload and re-encryption through the SSTP proxy, against simulated RRAS endpoints.
 * Offload runs both ways: Node's front (node:tls) and the native front (OpenSSL in the addon).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FRONT_RUNS, startProxyLab } from '../../../test/support/sstp-test-lab.js';

for (const run of FRONT_RUNS)
  describe(`SstpProxy offload (${run.name})`, { skip: run.skip }, () => {
    it('terminates TLS with the front certificate; the server receives plain HTTP with the SSTP request', async () => {
      const lab = await startProxyLab({
        front: run.front,
        backends: [{ name: 'rras1' }, { name: 'rras2' }],
        service: { mode: 'offload', persistence: 'none' },
      });
      try {
        const clients = await Promise.all([lab.client(), lab.client()]);
        for (const c of clients) await c.echo();
        for (const sim of lab.sims.values()) {
          const [conn] = sim.report().connections;
          assert.ok(conn);
          assert.equal(conn.transport, 'plain');
          assert.deepEqual(conn.requests, [
            'SSTP_DUPLEX_POST /sra_{BA195980-CD49-458b-9E23-C84EE0ADCD75}/',
          ]);
          assert.equal(conn.sstpHeaders?.['content-length'], '18446744073709551615');
          assert.equal(conn.callConnectRequests, 1);
          assert.equal(conn.pppFrames.length, 1);
        }
        assert.match(
          lab.proxy.status().dataplane,
          run.front === 'auto' ? /offload, native front/ : /^sstp-proxy \(offload\)$/,
        );
      } finally {
        await lab.close();
      }
    });

    it('a returning client address goes back to its server; other addresses are balanced (source-ip, the offload default)', async () => {
      const lab = await startProxyLab({
        front: run.front,
        backends: [{ name: 'rras1' }, { name: 'rras2' }],
        service: { mode: 'offload' },
      });
      try {
        assert.equal(lab.config.services.sstp[0]?.persistence, 'source-ip');
        for (let i = 0; i < 3; i++) await (await lab.client({ localAddress: '127.0.0.2' })).close();
        const counts = () => [...lab.sims.values()].map((s) => s.report().connections.length);
        assert.deepEqual(counts().sort(), [0, 3]);
        await lab.client({ localAddress: '127.0.0.3' });
        assert.deepEqual(counts().sort(), [1, 3]);
        assert.equal(
          await lab.metric('vpnlb_sstp_persistence_total', { kind: 'source-ip', result: 'hit' }),
          2,
        );
      } finally {
        await lab.close();
      }
    });
  });

describe('SstpProxy re-encryption', () => {
  it('refuses a server whose certificate differs from the front one: in error, no traffic', async () => {
    const lab = await startProxyLab({
      backends: [{ name: 'same' }, { name: 'other', otherCertificate: true }],
      service: { mode: 'reencrypt', persistence: 'none' },
    });
    try {
      const other = lab.controller.service('sstp')?.backends.find((b) => b.name === 'other');
      assert.equal(other?.state, 'down');
      assert.match(other?.error ?? '', /^certificate differs from the front certificate/);
      const clients = await Promise.all(Array.from({ length: 4 }, () => lab.client()));
      for (const c of clients) await c.echo();
      assert.equal(
        lab.sims
          .get('same')
          ?.report()
          .connections.filter((c) => c.callConnectRequests === 1).length,
        4,
      );
      assert.equal(
        lab.sims
          .get('other')
          ?.report()
          .connections.filter((c) => c.requests.length > 0).length,
        0,
      );

      // Should the error be cleared while the certificate is still wrong, the per-connection
      // check catches the first client that lands there: the server is marked again and the
      // client, whose plaintext went nowhere, is served by another server.
      lab.controller.setError('sstp', 'other', undefined);
      assert.equal(
        lab.controller.service('sstp')?.backends.find((b) => b.name === 'other')?.state,
        'up',
      );
      for (let i = 0; i < 3; i++) await (await lab.client()).echo();
      assert.equal(
        await lab.metric('vpnlb_sstp_backend_failures_total', {
          backend: 'other',
          reason: 'certificate-mismatch',
        }),
        1,
      );
      assert.equal(
        lab.controller.service('sstp')?.backends.find((b) => b.name === 'other')?.state,
        'down',
      );
      assert.equal(
        lab.sims
          .get('other')
          ?.report()
          .connections.filter((c) => c.requests.length > 0).length,
        0,
      );
      assert.equal(
        lab.sims
          .get('same')
          ?.report()
          .connections.filter((c) => c.callConnectRequests === 1).length,
        7,
      );
    } finally {
      await lab.close();
    }
  });

  it('allowCertificateMismatch: the server keeps its traffic and a warning says why', async () => {
    const lab = await startProxyLab({
      backends: [{ name: 'same' }, { name: 'other', otherCertificate: true }],
      service: { mode: 'reencrypt', allowCertificateMismatch: true, persistence: 'none' },
    });
    try {
      await Promise.all(Array.from({ length: 4 }, () => lab.client()));
      assert.equal(
        lab.sims
          .get('other')
          ?.report()
          .connections.filter((c) => c.callConnectRequests === 1).length,
        2,
      );
      assert.match(lab.proxy.status().warnings.join('\n'), /other: certificate differs/);
    } finally {
      await lab.close();
    }
  });
});
