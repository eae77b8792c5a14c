/**
 * `vpnlb run` on a fatal start-up error (issue 11, finding 4): it undoes what had started and
 * exits non-zero, so that systemd's `Restart=on-failure` fires. Before, with the admin port
 * taken, it logged the error and stayed up with the SSTP listener proxying.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { vpnlbArgv } from '../../../lab/vpnlb-process.js';

/** Runs `vpnlb run` with `config`; resolves with its exit code and stderr, or kills it after `limitMs`. */
async function runUntilExit(
  config: object,
  limitMs: number,
): Promise<{ code: number | null; stderr: string; stdout: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'vpnlb-run-'));
  try {
    writeFileSync(join(dir, 'vpnlb.json'), JSON.stringify(config));
    const [node, ...args] = vpnlbArgv(['run', '--config', join(dir, 'vpnlb.json')]);
    const child = spawn(node!, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    let stdout = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), limitMs);
    const code = await new Promise<number | null>((r) => child.once('close', (c) => r(c)));
    clearTimeout(timer);
    return { code, stderr, stdout };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('vpnlb run exits 1 when the admin port is taken, after closing the SSTP listener it had opened', async () => {
  const taken = net.createServer();
  await new Promise<void>((r) => taken.listen(0, '127.0.0.1', () => r()));
  const port = (taken.address() as net.AddressInfo).port;
  try {
    const r = await runUntilExit(
      {
        admin: { listen: '127.0.0.1', port },
        pools: { farm: { backends: [{ name: 'rras1', address: '127.0.0.41' }] } },
        services: { sstp: [{ name: 'sstp', virtualIp: '127.0.0.1', port: 0, pool: 'farm' }] },
      },
      15_000,
    );
    assert.equal(r.code, 1, `exit code ${r.code}; stderr: ${r.stderr.slice(-500)}`);
    assert.match(r.stderr, /VPNLB_ADMIN_LISTEN/);
    assert.match(r.stdout + r.stderr, /undoing what had started/);
  } finally {
    taken.close();
  }
});

test('vpnlb run refuses admin.listen that is not an address before starting anything', async () => {
  const r = await runUntilExit(
    {
      admin: { listen: 'not-an-ip' },
      pools: { farm: { backends: [{ name: 'rras1', address: '127.0.0.41' }] } },
      services: { sstp: [{ name: 'sstp', virtualIp: '127.0.0.1', port: 0, pool: 'farm' }] },
    },
    15_000,
  );
  assert.equal(r.code, 1);
  assert.match(r.stderr, /admin\.listen: "not-an-ip" is not an IPv4 or IPv6 address/);
});
