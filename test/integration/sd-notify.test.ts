/**
 * Readiness the way systemd sees it, without booting systemd: a unix datagram socket stands for
 * the manager's notification socket (a few lines of Python, since Node cannot receive AF_UNIX
 * datagrams either), and `vpnlb run` is started with NOTIFY_SOCKET and WATCHDOG_USEC pointing at
 * it. The real `systemd-notify` sends READY=1 only once the data plane listens, then watchdog
 * pings, then STOPPING=1 at SIGTERM.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { hasFile, requireOrSkip } from '../../lab/requirements.js';
import { readJsonLines } from '../../lab/udp-peers.js';
import { vpnlbArgv } from '../../lab/vpnlb-process.js';

const skip = requireOrSkip(
  'sd-notify',
  hasFile('/usr/bin/systemd-notify', 'systemd'),
  hasFile('/usr/bin/python3', 'python3'),
);

// Prints every datagram as one JSON line. recv() without ancillary space makes the kernel close
// the descriptor systemd-notify passes with BARRIER=1, which is how its barrier completes.
const RECEIVER = `
import json, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
print(json.dumps({"listening": True}), flush=True)
while True:
    print(json.dumps({"message": s.recv(65536).decode()}), flush=True)
`;

async function freePort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  const port = (srv.address() as net.AddressInfo).port;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

const isListening = (port: number): Promise<boolean> =>
  new Promise((resolve) => {
    const c = net.connect(port, '127.0.0.1', () => {
      c.destroy();
      resolve(true);
    });
    c.on('error', () => resolve(false));
  });

describe('sd_notify: READY=1 once programmed, watchdog, STOPPING=1', {
  skip: skip || undefined,
  timeout: 120_000,
}, () => {
  const dir = mkdtempSync(join(tmpdir(), 'vpnlb-notify-'));
  const children: ChildProcess[] = [];
  after(() => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });

  it('tells the service manager when it is ready, alive and stopping', async () => {
    const socketPath = join(dir, 'notify.sock');
    const receiver = spawn('python3', ['-c', RECEIVER, socketPath], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    children.push(receiver);
    const messages: { text: string; listening: boolean }[] = [];
    const sstpPort = await freePort();
    const waiters: (() => void)[] = [];
    await new Promise<void>((resolve) => {
      readJsonLines<{ listening?: boolean; message?: string }>(receiver.stdout, (m) => {
        if (m.listening) resolve();
        if (m.message === undefined) return;
        // When READY=1 arrives, the SSTP listener must already accept connections.
        void isListening(sstpPort).then((listening) => {
          messages.push({ text: m.message!, listening });
          for (const w of waiters.splice(0)) w();
        });
      });
    });
    const until = (what: string, cond: () => boolean) =>
      new Promise<void>((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`no ${what}; got ${JSON.stringify(messages)}`)),
          60_000,
        );
        const check = () => {
          if (cond()) {
            clearTimeout(timer);
            resolve();
          } else waiters.push(check);
        };
        check();
      });

    const config = join(dir, 'vpnlb.yaml');
    writeFileSync(
      config,
      JSON.stringify({
        admin: { listen: '127.0.0.1', port: await freePort() },
        pools: { farm: { backends: [{ name: 'rras1', address: '127.0.0.1' }] } },
        services: {
          sstp: [{ name: 'sstp', virtualIp: '127.0.0.1', port: sstpPort, pool: 'farm' }],
        },
      }),
    );
    const [node, ...args] = vpnlbArgv(['run', '--config', config]);
    const vpnlb = spawn(node!, args, {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, NOTIFY_SOCKET: socketPath, WATCHDOG_USEC: '2000000' },
    });
    children.push(vpnlb);
    let log = '';
    vpnlb.stdout?.on('data', (d: Buffer) => (log += d.toString()));
    vpnlb.stderr?.on('data', (d: Buffer) => (log += d.toString()));

    await until('READY=1', () => messages.some((m) => /^READY=1$/m.test(m.text)));
    const ready = messages.find((m) => /^READY=1$/m.test(m.text))!;
    assert.match(ready.text, /^STATUS=vpnlb running \(config /m);
    assert.ok(ready.listening, 'READY=1 came before the SSTP listener was bound');

    await until('a watchdog ping', () => messages.some((m) => /^WATCHDOG=1$/m.test(m.text)));

    const exited = new Promise<number | null>((resolve) =>
      vpnlb.once('close', (code) => resolve(code)),
    );
    vpnlb.kill('SIGTERM');
    await until('STOPPING=1', () => messages.some((m) => /^STOPPING=1$/m.test(m.text)));
    assert.equal(await exited, 0, log.slice(-3000));
  });
});
