/**
 * Descriptor and memory attacks on the SSTP proxy (issue 11, findings 1 and 2), against a real
 * `vpnlb run` in a child process whose open-file limit is lowered to 1024 (`ulimit -n`), so the
 * machine's own limit is never approached. Loopback only, a few hundred connections.
 *
 * Before: one client opened 3,000 tunnels (18,024 of 20,000 descriptors), the admin API
 * answered with empty replies, a legitimate client was closed after 9 ms.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { generateTestCertificate, type TestCertificate } from '../../sim/rras/sstp-certs.js';
import { SimSstpEndpoint } from '../../sim/rras/sstp-endpoint.js';
import { SimSstpClient } from '../../sim/rras/sstp-sim-client.js';
import { vpnlbArgv } from '../../../lab/vpnlb-process.js';
import { NODE_TLS13_CLIENT_HELLO } from '../../../test/support/tls-fixtures.js';
import { eventually } from '../../../test/support/sstp-test-lab.js';

const OPEN_FILE_LIMIT = 1024;
const PER_SOURCE = 40;

/** Opens a connection from `localAddress`, sends `bytes`; resolves with it once connected (or closed). */
function attackConnection(
  port: number,
  localAddress: string,
  bytes: Uint8Array,
): Promise<net.Socket> {
  return new Promise((resolve) => {
    const s = net.connect({ port, host: '127.0.0.1', localAddress });
    s.on('error', () => {});
    s.on('data', () => {}); // the server's answer is read and ignored: the client then sits
    s.once('connect', () => {
      s.write(bytes);
      resolve(s);
    });
    s.once('close', () => resolve(s));
  });
}

describe('SSTP proxy under a descriptor attack (vpnlb run, open-file limit 1024)', () => {
  let cert: TestCertificate;
  let sim: SimSstpEndpoint;
  let child: ChildProcess;
  let dir: string;
  let admin = '';
  let port = 0;
  const attackers: net.Socket[] = [];

  const get = async (path: string): Promise<{ status: number; text: string }> => {
    const r = await fetch(admin + path, {
      headers: { authorization: `Bearer ${readFileSync(join(dir, 'admin.token'), 'utf8').trim()}` },
    });
    return { status: r.status, text: await r.text() };
  };
  const metric = async (name: string, reason: string): Promise<number> => {
    const { text } = await get('/metrics');
    const line = text
      .split('\n')
      .find((l) => l.startsWith(name) && l.includes(`reason="${reason}"`));
    return line ? Number(line.split(' ').pop()) : 0;
  };

  before(async () => {
    cert = generateTestCertificate();
    sim = await SimSstpEndpoint.start({
      name: 'rras1',
      host: '127.0.0.40',
      cert: cert.cert,
      key: cert.key,
    });
    dir = mkdtempSync(join(tmpdir(), 'vpnlb-exhaustion-'));
    const config = {
      // One process: the descriptor budget under test is a process's (each worker has its own).
      workers: 1,
      admin: { listen: '127.0.0.1', port: 0, tokenFile: join(dir, 'admin.token') },
      log: { level: 'error' },
      pools: { farm: { backends: [{ name: 'rras1', address: '127.0.0.40' }] } },
      services: {
        sstp: [
          {
            name: 'sstp',
            virtualIp: '127.0.0.1',
            port: 0,
            pool: 'farm',
            backendPort: sim.tlsPort,
            handshakeTimeout: '2s',
            maxConnectionsPerSource: PER_SOURCE,
          },
        ],
      },
    };
    writeFileSync(join(dir, 'vpnlb.json'), JSON.stringify(config));
    const [node, ...args] = vpnlbArgv(['run', '--config', join(dir, 'vpnlb.json')]);
    const quoted = [node, ...args].map((a) => `'${a}'`).join(' ');
    child = spawn('sh', ['-c', `ulimit -n ${OPEN_FILE_LIMIT} && exec ${quoted}`], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr!.on('data', () => {});
    await eventually(
      () => /admin (http:\/\/[^/]+)\//.test(out) || child.exitCode !== null,
      'vpnlb run to start',
      15_000,
    );
    admin = /admin (http:\/\/[^/]+)\//.exec(out)?.[1] ?? '';
    assert.ok(admin, `vpnlb run did not start: ${out}`);
    const status = JSON.parse((await get('/api/v1/status')).text) as {
      services: { listeners: string[] }[];
    };
    port = Number(/:(\d+)$/.exec(status.services[0]?.listeners[0] ?? '')?.[1]);
  });

  after(async () => {
    for (const s of attackers) s.destroy();
    if (child && child.exitCode === null) {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
    }
    await sim?.close();
    cert?.dispose();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('one source opening 300 tunnels is held to its limits; a legitimate client connects and the admin API answers', async () => {
    const opened = await Promise.all(
      Array.from({ length: 300 }, () =>
        attackConnection(port, '127.0.0.5', NODE_TLS13_CLIENT_HELLO),
      ),
    );
    attackers.push(...opened);
    const refused = async () =>
      (await metric('vpnlb_sstp_rejected_total', 'source-limit')) +
      (await metric('vpnlb_sstp_rejected_total', 'source-rate'));
    await eventually(async () => (await refused()) + PER_SOURCE >= 300, 'the excess to be refused');
    assert.ok(
      (await metric('vpnlb_sstp_rejected_total', 'source-limit')) > 0,
      'refusals counted under source-limit',
    );
    assert.ok(
      sim.openConnections() <= PER_SOURCE,
      `${sim.openConnections()} attacker tunnels reached the server`,
    );
    const legit = await SimSstpClient.connect({
      host: '127.0.0.1',
      port,
      ca: cert.cert,
      localAddress: '127.0.0.6',
      timeoutMs: 5_000,
    });
    await legit.echo();
    legit.socket.destroy();
    assert.equal((await get('/api/v1/status')).status, 200);
  });

  it('connections from many sources stop at maxConnections auto (open-file limit minus the reserve); the admin API still answers', async () => {
    // auto = (1024 - 256 reserved) / 6 descriptors per tunnel = 128 connections.
    for (let i = 1; i <= 150; i++)
      attackers.push(await attackConnection(port, `127.0.3.${i}`, NODE_TLS13_CLIENT_HELLO));
    await eventually(
      async () => (await metric('vpnlb_sstp_rejected_total', 'service-limit')) > 0,
      'the service limit to refuse',
    );
    const { status, text } = await get('/api/v1/status');
    assert.equal(status, 200);
    assert.match(text, /"name": "sstp"/);
    assert.equal((await get('/metrics')).status, 200);
    // These connections completed their hellos and the server answered: they hold until
    // idleTimeout. The service is full, not broken: once they go, clients are served again.
    for (const s of attackers.splice(0)) s.destroy();
    await eventually(
      async () => {
        try {
          const c = await SimSstpClient.connect({
            host: '127.0.0.1',
            port,
            ca: cert.cert,
            localAddress: '127.0.0.7',
            timeoutMs: 2_000,
          });
          c.socket.destroy();
          return true;
        } catch {
          return false;
        }
      },
      'a client to be served again after the attack',
      10_000,
    );
  });
});
