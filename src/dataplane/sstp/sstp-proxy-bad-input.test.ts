/**
 * Bad input at the SSTP proxy: each case gets a clear outcome (the connection is closed, the
 * reason counted in vpnlb_sstp_rejected_total) and a tunnel opened before keeps working.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import tls from 'node:tls';
import { setImmediate as tick } from 'node:timers/promises';
import { describe, it } from 'node:test';
import { NODE_TLS13_CLIENT_HELLO } from '../../../test/support/tls-fixtures.js';
import {
  eventually,
  FRONT_RUNS,
  SPLICE_RUNS,
  startProxyLab,
  type LabOptions,
  type ProxyLab,
} from '../../../test/support/sstp-test-lab.js';

/** Opens a raw TCP connection, sends `bytes`, optionally half-closes, and resolves when the proxy closes it. */
async function rawExchange(
  lab: ProxyLab,
  bytes: Uint8Array,
  options: { end?: boolean } = {},
): Promise<{ received: number }> {
  const s = net.connect(lab.proxy.port(), '127.0.0.1');
  s.on('error', () => {});
  let received = 0;
  s.on('data', (d: Buffer) => (received += d.length));
  await new Promise((r) => s.once('connect', r));
  if (bytes.length > 0) s.write(bytes);
  if (options.end) s.end();
  await new Promise((r) => s.once('close', r));
  return { received };
}

/** A relay that forwards client → proxy one octet per write (Nagle off), proxy → client as is. */
async function tinyWriteRelay(target: number): Promise<{ port: number; close(): void }> {
  const server = net.createServer((c) => {
    const up = net.connect({ port: target, host: '127.0.0.1', noDelay: true });
    c.on('error', () => up.destroy());
    up.on('error', () => c.destroy());
    up.pipe(c);
    let chain = Promise.resolve();
    c.on('data', (chunk: Buffer) => {
      chain = chain.then(async () => {
        for (const b of chunk) {
          up.write(Uint8Array.of(b));
          await tick();
        }
      });
    });
    c.on('end', () => void chain.then(() => up.end()));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return { port: (server.address() as net.AddressInfo).port, close: () => server.close() };
}

/**
 * A backend whose SYNs go unanswered (a firewall that drops them) is given up at
 * `connectTimeout` and the client served by the next one; a pool of only that backend refuses
 * the client as `backend-connect-failed`. (1 s: the good backend's connect must fit in it too.)
 */
async function unansweredSyns(
  lab: Pick<LabOptions, 'splice' | 'front' | 'placement'>,
  service: Record<string, unknown> = {},
): Promise<void> {
  const pair = await startProxyLab({
    ...lab,
    backends: [{ name: 'dropped', blackHole: true }, { name: 'good' }],
    service: { connectTimeout: '1s', method: 'weighted-round-robin', ...service },
  });
  try {
    for (let i = 0; i < 3; i++) await (await pair.client({ timeoutMs: 8_000 })).echo();
    assert.equal(pair.sims.get('good')?.report().connections.length, 3);
    assert.ok(
      (await pair.metric('vpnlb_sstp_backend_failures_total', {
        backend: 'dropped',
        reason: 'connect-timeout',
      })) >= 1,
    );
    assert.equal(await pair.metric('vpnlb_sstp_rejected_total'), 0);
  } finally {
    await pair.close();
  }
  const lonely = await startProxyLab({
    ...lab,
    backends: [{ name: 'dropped', blackHole: true }],
    service: { connectTimeout: '1s', ...service },
  });
  try {
    await assert.rejects(lonely.client({ timeoutMs: 8_000 }), /closed/);
    assert.equal(
      await lonely.metric('vpnlb_sstp_rejected_total', { reason: 'backend-connect-failed' }),
      1,
    );
    assert.equal(
      await lonely.metric('vpnlb_sstp_backend_failures_total', { reason: 'connect-timeout' }),
      1,
    );
  } finally {
    await lonely.close();
  }
}

for (const run of SPLICE_RUNS)
  describe(`SstpProxy bad input (${run.name})`, { skip: run.skip }, () => {
    it('refuses non-TLS, truncated, oversized and slowloris clients; accepts a hello in one-octet writes; other tunnels untouched', async () => {
      const lab = await startProxyLab({
        splice: run.splice,
        front: run.front,
        placement: run.placement,
        backends: [{ name: 'rras1' }, { name: 'rras2' }],
        service: { handshakeTimeout: '300ms' },
      });
      try {
        const bystander = await lab.client();

        // Plain HTTP where TLS is expected.
        await rawExchange(
          lab,
          Buffer.from(
            'SSTP_DUPLEX_POST /sra_{BA195980-CD49-458b-9E23-C84EE0ADCD75}/ HTTP/1.1\r\n\r\n',
          ),
        );
        assert.equal(await lab.metric('vpnlb_sstp_rejected_total', { reason: 'tls-not-tls' }), 1);

        // A truncated ClientHello, then FIN.
        await rawExchange(lab, NODE_TLS13_CLIENT_HELLO.subarray(0, 120), { end: true });
        assert.equal(await lab.metric('vpnlb_sstp_rejected_total', { reason: 'tls-truncated' }), 1);

        // A ClientHello announcing more than 64 KiB: refused from its header, nothing buffered.
        await rawExchange(lab, Buffer.from('1603010009' + '01010001' + '0303', 'hex'));
        assert.equal(await lab.metric('vpnlb_sstp_rejected_total', { reason: 'tls-too-large' }), 1);

        // Slowloris: three octets, then silence: closed by handshakeTimeout.
        await rawExchange(lab, Buffer.from('160301', 'hex'));
        assert.equal(
          await lab.metric('vpnlb_sstp_rejected_total', { reason: 'handshake-timeout' }),
          1,
        );

        // A client that connects and sends nothing is closed by the same timeout.
        await rawExchange(lab, new Uint8Array(0));
        assert.equal(
          await lab.metric('vpnlb_sstp_rejected_total', { reason: 'handshake-timeout' }),
          2,
        );

        // No server ever saw any of them.
        const total = [...lab.sims.values()].reduce((n, s) => n + s.report().connections.length, 0);
        assert.equal(total, 1);

        // A real client whose ClientHello arrives one octet per write works.
        const relay = await tinyWriteRelay(lab.proxy.port());
        try {
          const slow = await lab.client({ port: relay.port, timeoutMs: 10_000 });
          await slow.echo();
          await slow.close();
        } finally {
          relay.close();
        }
        await bystander.echo();
      } finally {
        await lab.close();
      }
    });

    it('a server that accepts and never answers: the client is closed and counted, the next client is served', async () => {
      const lab = await startProxyLab({
        splice: run.splice,
        front: run.front,
        placement: run.placement,
        backends: [{ name: 'hung', silent: true }, { name: 'good' }],
        service: { handshakeTimeout: '300ms' },
      });
      try {
        // Least connections with a rotating start: within two clients one lands on the hung server.
        const results = await Promise.allSettled([
          lab.client({ timeoutMs: 3_000 }),
          lab.client({ timeoutMs: 3_000 }),
        ]);
        assert.equal(results.filter((r) => r.status === 'fulfilled').length, 1);
        assert.equal(
          await lab.metric('vpnlb_sstp_rejected_total', { reason: 'backend-no-answer' }),
          1,
        );
        assert.equal(
          await lab.metric('vpnlb_sstp_backend_failures_total', {
            backend: 'hung',
            reason: 'no-answer',
          }),
          1,
        );
        assert.equal(lab.sims.get('hung')?.report().connections.length, 1);
        const ok = results.find((r) => r.status === 'fulfilled');
        if (ok?.status === 'fulfilled') await ok.value.echo();
        await eventually0(lab);
      } finally {
        await lab.close();
      }
    });

    it('a server that refuses connections: the next backend is tried; with none left the client is refused', async () => {
      const lab = await startProxyLab({
        splice: run.splice,
        front: run.front,
        placement: run.placement,
        backends: [{ name: 'gone', absent: true }, { name: 'good' }],
      });
      try {
        for (let i = 0; i < 3; i++) await (await lab.client()).echo();
        assert.equal(lab.sims.get('good')?.report().connections.length, 3);
        assert.ok(
          (await lab.metric('vpnlb_sstp_backend_failures_total', {
            backend: 'gone',
            reason: 'connect-failed',
          })) >= 1,
        );
      } finally {
        await lab.close();
      }
      const lonely = await startProxyLab({
        splice: run.splice,
        front: run.front,
        placement: run.placement,
        backends: [{ name: 'gone', absent: true }],
      });
      try {
        await assert.rejects(lonely.client({ timeoutMs: 3_000 }), /closed/);
        assert.equal(
          await lonely.metric('vpnlb_sstp_rejected_total', { reason: 'backend-connect-failed' }),
          1,
        );
      } finally {
        await lonely.close();
      }
    });

    it('a server whose SYNs go unanswered: connectTimeout, then the next backend; with none left the client is refused', () =>
      unansweredSyns({ splice: run.splice, front: run.front, placement: run.placement }));
  });

describe('SstpProxy memory and time limits (issue 11)', () => {
  it('1,000 connections announcing 64 KiB ClientHellos hold memory by the octets they sent, not by what they announce; a client still connects', async (t) => {
    const lab = await startProxyLab({
      splice: 'off',
      backends: [{ name: 'rras1' }],
      service: {
        maxConnectionsPerSource: 0,
        maxNewConnectionsPerSecondPerSource: 0,
        handshakeTimeout: '30s',
      },
    });
    const sockets: net.Socket[] = [];
    try {
      const before = process.memoryUsage().arrayBuffers;
      // Record header (16 KiB record) + handshake header announcing a 65,535-octet ClientHello.
      const announce = Buffer.from('16030140000100ffff', 'hex');
      sockets.push(...openMany(lab, 1_000, announce));
      await eventually(() => lab.proxy.openConnections() === 1_000, 'every connection accepted');
      await new Promise((r) => setTimeout(r, 200)); // the 9 octets of each are read
      const grown = process.memoryUsage().arrayBuffers - before;
      const what = `array buffers grew by ${Math.round(grown / 1024)} KiB for 1,000 announcements`;
      t.diagnostic(what);
      // Before: 64 KiB each at once, 64 MB in all. Now: the reader's first 512-octet buffer each.
      assert.ok(grown < 8 * 1024 * 1024, what);
      const c = await lab.client();
      await c.echo();
    } finally {
      for (const s of sockets) s.destroy();
      await lab.close();
    }
  });

  it('large hellos share a memory budget: beyond it they are refused (hello-memory) while small hellos still pass', async () => {
    // A 2 MiB budget (the product's is 32 MiB, MAX_HELLO_BYTES_HELD): the same accounting with
    // ~90 connections over it instead of ~1,400, so a busy machine reaches it in time.
    const budget = 2 * 1024 * 1024;
    const lab = await startProxyLab({
      splice: 'off',
      backends: [{ name: 'rras1' }],
      helloBytesBudget: budget,
      service: {
        maxConnectionsPerSource: 0,
        maxNewConnectionsPerSecondPerSource: 0,
        handshakeTimeout: '30s',
      },
    });
    const sockets: net.Socket[] = [];
    try {
      // 40 KiB of a 64 KiB hello each: 24 KiB each above the small allowance; the 2 MiB budget
      // holds ~85 of them, so 150 go over it.
      const part = Buffer.concat([
        Buffer.from('16030140000100ffff', 'hex'),
        Buffer.alloc(16_380, 0x41),
        Buffer.from('1603014000', 'hex'),
        Buffer.alloc(16_384, 0x41),
        Buffer.from('1603014000', 'hex'),
        Buffer.alloc(8_000, 0x41),
      ]);
      sockets.push(...openMany(lab, 150, part));
      await eventually(
        async () => (await lab.metric('vpnlb_sstp_rejected_total', { reason: 'hello-memory' })) > 0,
        'the budget to refuse',
        20_000,
      );
      assert.ok((await lab.metric('vpnlb_sstp_hello_bytes_held')) <= budget);
      const c = await lab.client();
      await c.echo();
    } finally {
      for (const s of sockets) s.destroy();
      await lab.close();
    }
  });

  it('maxConnections: auto follows the open-file limit; an explicit number beyond it is warned about at start', async () => {
    const auto = await startProxyLab({
      splice: 'off',
      backends: [{ name: 'rras1' }],
      openFileLimit: 1_024,
    });
    try {
      assert.equal(
        auto.proxy.maxConnections,
        128,
        '(1024 - 256 reserved) / 6 descriptors per tunnel',
      );
      assert.deepEqual(auto.proxy.status().warnings, []);
    } finally {
      await auto.close();
    }
    const explicit = await startProxyLab({
      splice: 'off',
      backends: [{ name: 'rras1' }],
      openFileLimit: 1_024,
      service: { maxConnections: 3_000 },
    });
    try {
      assert.equal(explicit.proxy.maxConnections, 3_000);
      assert.match(
        explicit.proxy.status().warnings.join('\n'),
        /maxConnections 3000 exceeds what the open-file limit 1024 allows \(128/,
      );
    } finally {
      await explicit.close();
    }
  });

  for (const run of FRONT_RUNS)
    it(
      `offload: a server whose SYNs go unanswered: connectTimeout, then the next backend; with none left the client is refused (${run.name})`,
      {
        skip: run.skip,
      },
      () => unansweredSyns({ front: run.front }, { mode: 'offload' }),
    );

  for (const run of FRONT_RUNS)
    it(`a client that completes TLS (offload) and then sends nothing is closed at handshakeTimeout, not idleTimeout (${run.name})`, {
      skip: run.skip,
    }, async () => {
      const lab = await startProxyLab({
        front: run.front,
        backends: [{ name: 'rras1' }],
        service: { mode: 'offload', handshakeTimeout: '300ms' },
      });
      try {
        const s = tls.connect({
          port: lab.proxy.port(),
          host: '127.0.0.1',
          rejectUnauthorized: false,
        });
        s.on('error', () => {});
        await new Promise((r) => s.once('secureConnect', r));
        const closed = await Promise.race([
          new Promise((r) => s.once('close', () => r(true))),
          new Promise((r) => setTimeout(() => r(false), 5_000)),
        ]);
        s.destroy();
        assert.equal(closed, true, 'closed by the deadline from accept');
        assert.equal(
          await lab.metric('vpnlb_sstp_rejected_total', { reason: 'handshake-timeout' }),
          1,
        );
        await (await lab.client()).echo();
      } finally {
        await lab.close();
      }
    });
});

/** Opens `n` raw connections to the proxy, each sending `bytes` once connected. */
function openMany(lab: ProxyLab, n: number, bytes: Uint8Array): net.Socket[] {
  return Array.from({ length: n }, () => {
    const s = net.connect(lab.proxy.port(), '127.0.0.1');
    s.on('error', () => {});
    s.once('connect', () => s.write(bytes));
    return s;
  });
}

/** After the failures, no connection is still counted against any backend. */
async function eventually0(lab: ProxyLab): Promise<void> {
  const start = Date.now();
  while (lab.controller.connections('sstp').get('hung') !== 0) {
    if (Date.now() - start > 3_000) assert.fail('the hung server still holds a counted connection');
    await new Promise((r) => setTimeout(r, 10));
  }
}
