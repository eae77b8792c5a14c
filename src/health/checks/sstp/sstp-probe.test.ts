import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import {
  createServer as createHttpServer,
  type IncomingMessage,
  type ServerResponse,
} from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { ProbeTarget } from '../../monitor.js';
import {
  closedTcpPort,
  loopback,
  tcpServer,
  type TestTarget,
} from '../../../../test/support/loopback-targets.js';
import { describeProbeConformance } from '../../../../test/support/probe-conformance.js';
import { createSstpProbe, SSTP_PATH, type SstpProbeOptions } from './sstp-probe.js';
import { TEST_CERT_NAME, testCertificate } from '../../../../test/support/test-certificate.js';
import { generateTestCertificate } from '../../../sim/rras/sstp-certs.js';
import { SimSstpEndpoint } from '../../../sim/rras/sstp-endpoint.js';

/** What RRAS does: 401 to an anonymous request on the SSTP path, 404 elsewhere. */
function rrasLike(status = 401) {
  return (req: IncomingMessage, res: ServerResponse) => {
    res.statusCode = req.url === SSTP_PATH ? status : 404;
    res.end();
  };
}

async function serve(
  server: ReturnType<typeof createHttpServer>,
  family: 4 | 6,
): Promise<TestTarget> {
  server.listen(0, loopback(family));
  await once(server, 'listening');
  const port = (server.address() as { port: number }).port;
  return {
    target: { address: loopback(family), family, port },
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

async function httpsTarget(
  family: 4 | 6,
  status = 401,
  seen?: { sni?: string | false },
): Promise<TestTarget> {
  const { cert, key } = await testCertificate();
  const server = createHttpsServer({ cert, key }, rrasLike(status));
  server.on('secureConnection', (s) => {
    if (seen) seen.sni = s.servername ?? false;
  });
  return serve(server as unknown as ReturnType<typeof createHttpServer>, family);
}

const silentTcp = (family: 4 | 6) => tcpServer(family, () => undefined);

describeProbeConformance({
  name: 'sstp probe (TLS)',
  createProbe: () => createSstpProbe({ tls: true }),
  live: [
    { label: 'IPv4', start: () => httpsTarget(4) },
    { label: 'IPv6', start: () => httpsTarget(6) },
  ],
  dead: () => closedTcpPort(4),
  silent: () => silentTcp(4),
  garbage: [
    {
      label: 'random bytes instead of a TLS handshake',
      start: () => tcpServer(4, (s) => s.end(Buffer.from('\x16\x03\x01\x00\x02garbage'))),
    },
    { label: 'HTTP 200 (a web site, not the SSTP listener)', start: () => httpsTarget(4, 200) },
  ],
});

describeProbeConformance({
  name: 'sstp probe (offload, plain HTTP)',
  createProbe: () => createSstpProbe({ tls: false }),
  live: [
    { label: 'IPv4', start: () => serve(createHttpServer(rrasLike()), 4) },
    { label: 'IPv6', start: () => serve(createHttpServer(rrasLike()), 6) },
  ],
  dead: () => closedTcpPort(6),
  silent: () => silentTcp(4),
  garbage: [
    { label: 'not HTTP', start: () => tcpServer(4, (s) => s.end('SSH-2.0-OpenSSH\r\n')) },
    {
      label: 'HTTP 404',
      start: () =>
        serve(
          createHttpServer((_q, r) => {
            r.statusCode = 404;
            r.end();
          }),
          4,
        ),
    },
  ],
});

describe('sstp probe options', () => {
  const probe = async (opts: SstpProbeOptions, target: ProbeTarget) =>
    createSstpProbe(opts).probe(target, new AbortController().signal, 2000);

  it('honours expectStatus', async () => {
    const t = await httpsTarget(4, 200);
    try {
      assert.equal((await probe({ tls: true, expectStatus: 200 }, t.target)).ok, true);
      const r = await probe({ tls: true }, t.target);
      assert.equal(r.ok, false);
      assert.match(r.detail, /answered 200, expected 401/);
    } finally {
      await t.close();
    }
  });

  it('sends SNI when configured, none otherwise', async () => {
    const seen: { sni?: string | false } = {};
    const t = await httpsTarget(4, 401, seen);
    try {
      assert.equal((await probe({ tls: true, sni: TEST_CERT_NAME }, t.target)).ok, true);
      assert.equal(seen.sni, TEST_CERT_NAME);
      assert.equal((await probe({ tls: true }, t.target)).ok, true);
      assert.equal(seen.sni, false);
    } finally {
      await t.close();
    }
  });

  it('verifies the certificate when asked', async () => {
    const t = await httpsTarget(4);
    const { cert } = await testCertificate();
    try {
      const untrusted = await probe({ tls: true, verifyCertificate: true }, t.target);
      assert.equal(untrusted.ok, false);
      assert.match(untrusted.detail, /certificate rejected/);
      assert.equal(
        (await probe({ tls: true, verifyCertificate: true, ca: cert }, t.target)).ok,
        true,
      );
      assert.equal(
        (
          await probe(
            { tls: true, verifyCertificate: true, ca: cert, sni: TEST_CERT_NAME },
            t.target,
          )
        ).ok,
        true,
      );
      const wrongName = await probe(
        { tls: true, verifyCertificate: true, ca: cert, sni: 'other.example.test' },
        t.target,
      );
      assert.equal(wrongName.ok, false);
      assert.match(wrongName.detail, /ERR_TLS_CERT_ALTNAME_INVALID|certificate/);
    } finally {
      await t.close();
    }
  });
});

describe('sstp probe against the simulated RRAS SSTP endpoint', () => {
  it('is up over TLS (401 to the anonymous HEAD) and over plain HTTP (offload), down when the server hangs', async () => {
    const certificate = generateTestCertificate();
    const { cert, key } = certificate;
    const live = await SimSstpEndpoint.start({ name: 'rras1', cert, key, plainPort: 0 });
    const hung = await SimSstpEndpoint.start({ name: 'rras2', cert, key, silent: true });
    try {
      const signal = new AbortController().signal;
      const tls = await createSstpProbe({ tls: true }).probe(
        { address: '127.0.0.1', family: 4, port: live.tlsPort },
        signal,
        2000,
      );
      assert.equal(tls.ok, true, tls.detail);
      assert.match(tls.detail, /401/);
      const plain = await createSstpProbe({ tls: false }).probe(
        { address: '127.0.0.1', family: 4, port: live.plainPort },
        signal,
        2000,
      );
      assert.equal(plain.ok, true, plain.detail);
      const down = await createSstpProbe({ tls: true }).probe(
        { address: '127.0.0.1', family: 4, port: hung.tlsPort },
        signal,
        300,
      );
      assert.equal(down.ok, false);
    } finally {
      await live.close();
      await hung.close();
      certificate.dispose();
    }
  });
});
