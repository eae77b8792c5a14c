/**
 * The real SSTP client (Debian `sstp-client`) through the real `vpnlb run` process to simulated
 * RRAS servers, in each mode (passthrough, offload, reencrypt), up to PPP link negotiation
 * (lab/sstpc-client.ts): the chosen server received sstpc's Call Connect Request and our LCP
 * Configure-Request, and the server's Configure-Ack came back out of sstpc's stdout.
 *
 * Needs root: sstpc binds its IPC socket in /var/run/sstpc (owned by its own user).
 * Everything is on loopback (127.0.0.0/8); every process started here is ended by its PID.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { hasFile, isRoot, requireOrSkip } from '../../lab/requirements.js';
import { generateTestCertificate } from '../../src/sim/rras/sstp-certs.js';
import { SimSstpEndpoint } from '../../src/sim/rras/sstp-endpoint.js';
import { vpnlbArgv } from '../../lab/vpnlb-process.js';
import { lcpConfigureRequest } from '../../src/protocol/sstp/ppp-hdlc.js';
import {
  startLatencyPath,
  startSstpcUntilCallSetup,
  until,
  type LatencyPath,
  type SstpcClient,
} from '../support/sstpc-client.js';

const skip = requireOrSkip(
  'sstp-sstpc',
  hasFile('/usr/sbin/sstpc', 'sstp-client'),
  isRoot('sstpc binds its IPC socket in /var/run/sstpc'),
);

const started: ChildProcess[] = [];
const track = (c: SstpcClient): SstpcClient => {
  started.push(c.proc);
  return c;
};
after(() => {
  for (const p of started) if (p.exitCode === null && p.pid) process.kill(p.pid, 'SIGKILL');
});

/** Starts `vpnlb run` on a config file; resolves with the SSTP listener port and its log so far. */
async function startVpnlb(
  configPath: string,
): Promise<{ proc: ChildProcess; port: number; log: string; stop(): Promise<void> }> {
  const [cmd, ...args] = vpnlbArgv(['run', '--config', configPath, '--admin', '127.0.0.1:0']);
  const proc = spawn(cmd as string, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  started.push(proc);
  let log = '';
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`vpnlb did not start: ${log}`)), 15_000);
    proc.stderr?.on('data', (d: Buffer) => {
      log += d.toString();
      const m = /"listeners":\["tcp 127\.0\.0\.1:(\d+)"\]/.exec(log);
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    });
    proc.once('exit', (code) => reject(new Error(`vpnlb exited with ${code}: ${log}`)));
  });
  return {
    proc,
    port,
    log,
    stop: async () => {
      if (proc.exitCode !== null || !proc.pid) return;
      const exited = new Promise((r) => proc.once('exit', r));
      process.kill(proc.pid, 'SIGTERM');
      await exited;
    },
  };
}

describe('real sstpc through vpnlb to simulated RRAS servers', { skip }, () => {
  for (const mode of ['passthrough', 'offload', 'reencrypt'] as const) {
    it(`${mode}: two sstpc tunnels, one per server (least connections), each reaching PPP negotiation`, async () => {
      const cert = generateTestCertificate();
      const dir = mkdtempSync(join(tmpdir(), `vpnlb-sstpc-${mode}-`));
      const sims: SimSstpEndpoint[] = [];
      let vpnlb: Awaited<ReturnType<typeof startVpnlb>> | undefined;
      let path: LatencyPath | undefined;
      const clients: SstpcClient[] = [];
      try {
        let port = 0;
        for (const [i, name] of ['rras1', 'rras2'].entries()) {
          const sim = await SimSstpEndpoint.start({
            name,
            host: `127.0.0.${20 + i}`,
            ...(mode === 'offload'
              ? { tlsPort: false, plainPort: port }
              : { tlsPort: port, cert: cert.cert, key: cert.key }),
          });
          port = mode === 'offload' ? sim.plainPort : sim.tlsPort;
          sims.push(sim);
        }
        const configPath = join(dir, 'vpnlb.json');
        writeFileSync(
          configPath,
          JSON.stringify({
            log: { level: 'info' },
            admin: { tokenFile: 'admin.token' },
            pools: {
              farm: {
                backends: [
                  { name: 'rras1', address: '127.0.0.20' },
                  { name: 'rras2', address: '127.0.0.21' },
                ],
              },
            },
            services: {
              sstp: [
                {
                  name: 'sstp',
                  virtualIp: '127.0.0.1',
                  port: 0,
                  pool: 'farm',
                  mode,
                  backendPort: port,
                  ...(mode === 'passthrough'
                    ? {}
                    : { tls: { cert: cert.certPath, key: cert.keyPath }, persistence: 'none' }),
                },
              ],
            },
          }),
        );
        vpnlb = await startVpnlb(configPath);
        // Passthrough and offload run on the native front (the addon that setup.sh builds:
        // accept, hello, dial and the splice path; accept, TLS handshake and relay), re-encryption
        // on Node's.
        assert.match(
          vpnlb.log,
          mode === 'passthrough'
            ? /sstp-proxy \(passthrough, native front, splice\)/
            : mode === 'offload'
              ? /sstp-proxy \(offload, native front\)/
              : /sstp-proxy \(reencrypt\)/,
        );
        // sstpc reaches vpnlb over 2 ms of latency each way, as over any network: on bare
        // loopback a fast TLS server triggers sstpc's bug (test/support/sstpc-client.ts).
        path = await startLatencyPath('127.0.0.2', { host: '127.0.0.1', port: vpnlb.port }, 2);
        // One after the other, so that least connections has counted the first tunnel.
        clients.push(
          track(
            await startSstpcUntilCallSetup(
              `127.0.0.2:${path.port}`,
              cert.certPath,
              `vpnlb-${mode}-1`,
              dir,
            ),
          ),
        );
        await Promise.race(
          sims.map((s) =>
            s.waitFor(
              (r) => r.connections.some((c) => c.callConnectRequests === 1),
              10_000,
              'the first Call Connect Request',
            ),
          ),
        );
        clients.push(
          track(
            await startSstpcUntilCallSetup(
              `127.0.0.2:${path.port}`,
              cert.certPath,
              `vpnlb-${mode}-2`,
              dir,
            ),
          ),
        );
        for (const sim of sims) {
          await sim
            .waitFor(
              (r) =>
                r.connections.some((c) => c.callConnectRequests === 1 && c.pppFrames.length >= 1),
              10_000,
              'a Call Connect Request and a PPP frame',
            )
            .catch((err: Error) =>
              assert.fail(
                `${err.message}\nsstpc logs:\n${clients.map((c) => c.log().slice(-1500)).join('\n---\n')}`,
              ),
            );
        }
        for (const sim of sims) {
          const conns = sim.report().connections.filter((c) => c.callConnectRequests > 0);
          assert.equal(conns.length, 1, `${sim.name}: one tunnel`);
          const c = conns[0]!;
          assert.equal(c.transport, mode === 'offload' ? 'plain' : 'tls');
          assert.equal(c.sstpHeaders?.['content-length'], '18446744073709551615');
          assert.match(c.sstpHeaders?.['sstpcorrelationid'] ?? '', /^\{.+\}$/);
          // The frame sstpc took from its stdin: our LCP Configure-Request, HDLC removed.
          assert.equal(
            c.pppFrames[0],
            Buffer.from(lcpConfigureRequest(1, 0x7670_6e6c)).toString('hex'),
          );
        }
        // The servers' Configure-Acks travelled back through vpnlb and out of sstpc's stdout.
        for (const cl of clients)
          await until(
            () => cl.fromServer.includes(2),
            `LCP Configure-Ack on sstpc's stdout (${cl.log().slice(-500)})`,
          );
      } finally {
        for (const cl of clients) {
          if (cl.proc.exitCode === null && cl.proc.pid) process.kill(cl.proc.pid, 'SIGTERM');
          cl.close();
        }
        await path?.close();
        await vpnlb?.stop();
        await Promise.all(sims.map((s) => s.close()));
        rmSync(dir, { recursive: true, force: true });
        cert.dispose();
      }
    });
  }
});
