/**
 * `vpnlb export` and `vpnlb rras` through the CLI: output to stdout or a file, and bad input —
 * an unknown format or service, an invalid configuration, a missing certificate — gives one
 * clear error, exit 2 (usage) or 1 (the configuration), and writes nothing.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { REPO_ROOT } from '../../../lab/vpnlb-process.js';
import { generateTestCertificate } from '../../sim/rras/sstp-certs.js';
import { readCertificateHashes } from '../../rras/rras-registry.js';
import type { CommandIo } from '../command.js';
import { main } from '../main.js';

function capture(): CommandIo & { stdout: string; stderr: string } {
  const io = {
    stdout: '',
    stderr: '',
    out(t: string) {
      io.stdout += t;
    },
    err(t: string) {
      io.stderr += `${t}\n`;
    },
  };
  return io;
}

const farm = join(REPO_ROOT, 'examples/rras-farm.yaml');
const offload = join(REPO_ROOT, 'examples/sstp-offload.yaml');
const broken = join(REPO_ROOT, 'test/fixtures/broken.yaml');
const dir = mkdtempSync(join(tmpdir(), 'vpnlb-export-'));
after(() => rmSync(dir, { recursive: true, force: true }));

test('export: stdout and --output carry the same text; help lists the command', async () => {
  const out = capture();
  assert.equal(await main(['export', '--config', farm, '--format', 'nginx'], out), 0);
  assert.match(out.stdout, /stream \{/);
  const file = join(dir, 'farm.conf');
  assert.equal(await main(['export', '-c', farm, '-f', 'nginx', '--output', file], capture()), 0);
  assert.equal(readFileSync(file, 'utf8'), out.stdout);
  const help = capture();
  await main(['help'], help);
  assert.match(help.stdout, /export +write the equivalent F5/);
  assert.match(help.stdout, /rras +write the PowerShell/);
});

for (const [what, argv, code, message] of [
  [
    'an unknown format',
    ['--config', farm, '--format', 'cisco'],
    2,
    /unknown format "cisco" \(one of: f5, citrix, kemp, haproxy, nginx\)/,
  ],
  [
    'an unknown service',
    ['--config', farm, '--format', 'f5', '--service', 'nope'],
    2,
    /no service named "nope"/,
  ],
  [
    'an invalid configuration',
    ['--config', broken, '--format', 'f5'],
    1,
    /broken\.yaml:15:9: error: pools\.rras\.backends\[1\]\.wieght/,
  ],
  ['a missing --format', ['--config', farm], 2, /missing --format/],
] as const) {
  test(`export: ${what} is one error, exit ${code}, nothing written`, async () => {
    const io = capture();
    const file = join(dir, `never-${code}-${what.replaceAll(' ', '-')}.txt`);
    assert.equal(await main(['export', ...argv, '--output', file], io), code);
    assert.match(io.stderr, message);
    assert.equal(io.stdout, '');
    assert.equal(existsSync(file), false);
  });
}

test('rras: one script per server into a directory; --server picks one', async () => {
  const out = join(dir, 'scripts');
  const io = capture();
  assert.equal(
    await main(['rras', '--config', farm, '--gateway', '198.18.1.1', '--output', out], io),
    0,
  );
  assert.deepEqual(readdirSync(out).sort(), ['rras1.ps1', 'rras2.ps1']);
  const one = capture();
  assert.equal(
    await main(['rras', '--config', farm, '--gateway', '198.18.1.1', '--server', 'rras2'], one),
    0,
  );
  assert.equal(one.stdout, readFileSync(join(out, 'rras2.ps1'), 'utf8'));
  assert.match(one.stdout, /\[string\]\$Gateway = '198\.18\.1\.1'/);
});

test('rras: offload uses tls.cert, or --cert, and its SHA-256 is what RRAS gets', async () => {
  const cert = generateTestCertificate();
  try {
    const config = join(dir, 'offload.yaml');
    writeFileSync(
      config,
      readFileSync(offload, 'utf8')
        .replace('tls/vpn.example.com.crt', cert.certPath)
        .replace('tls/vpn.example.com.key', cert.keyPath),
    );
    const sha256 = readCertificateHashes(cert.certPath).sha256;
    for (const argv of [
      ['--config', config],
      ['--config', offload, '--cert', cert.certPath],
    ]) {
      const io = capture();
      assert.equal(await main(['rras', ...argv, '--server', 'rras1'], io), 0, io.stderr);
      const bytes = /\$Hash = \[byte\[\]\]\(([^)]+)\)/.exec(io.stdout)?.[1]?.split(',').map(Number);
      assert.equal(
        Buffer.from(bytes ?? [])
          .toString('hex')
          .toUpperCase(),
        sha256,
      );
    }
  } finally {
    cert.dispose();
  }
});

for (const [what, argv, code, message] of [
  [
    'an unknown server',
    ['--config', farm, '--server', 'nope'],
    2,
    /no server named "nope" .*servers: rras1, rras2/,
  ],
  [
    'a gateway that is not an address',
    ['--config', farm, '--gateway', 'lb1'],
    2,
    /--gateway: "lb1" is not an IP address/,
  ],
  ['an invalid configuration', ['--config', broken], 1, /VPNLB_CONFIG_INVALID/],
  [
    'offload without a readable certificate',
    ['--config', offload],
    1,
    /aovpn-sstp: cannot read a PEM or DER certificate .*pass --cert FILE.*VPNLB_SSTP_TLS_CONFIG/,
  ],
] as const) {
  test(`rras: ${what} is one error, exit ${code}, nothing written`, async () => {
    const io = capture();
    const out = join(dir, `never-rras-${code}-${what.replaceAll(' ', '-')}`);
    assert.equal(await main(['rras', ...argv, '--output', out], io), code);
    assert.match(io.stderr, message);
    assert.equal(existsSync(out), false);
  });
}
