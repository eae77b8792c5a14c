/**
 * The npm package as a user gets it: `npm pack`, install the tarball into an empty directory,
 * and run the installed `vpnlb` there — help, a config check of a shipped example, and a short
 * demo. It catches a `"files"` list that leaves out a module the CLI imports (the demo imports
 * the simulated servers from dist/src/sim; `vpnlb lab` loads the lab from dist/lab), and test
 * files or test helpers (test/support) shipped by mistake. Needs npm and the npm registry (for the package's dependencies).
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';

const execFileP = promisify(execFile);
const ROOT = join(import.meta.dirname, '..', '..', '..');

describe('npm pack → install → vpnlb', { timeout: 300_000 }, () => {
  let dir: string;
  let files: string[] = [];
  let bin: string;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'vpnlb-pack-'));
    const { stdout } = await execFileP('npm', ['pack', '--json', '--pack-destination', dir], {
      cwd: ROOT,
      maxBuffer: 64 << 20,
    });
    const packed = JSON.parse(stdout) as { filename: string; files: { path: string }[] }[];
    files = packed[0]!.files.map((f) => f.path);
    const app = join(dir, 'app');
    await execFileP('mkdir', ['-p', app]);
    writeFileSync(
      join(app, 'package.json'),
      JSON.stringify({ name: 'vpnlb-pack-smoke', version: '1.0.0', private: true }),
    );
    const tarball = join(dir, readdirSync(dir).find((f) => f.endsWith('.tgz'))!);
    await execFileP('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', tarball], {
      cwd: app,
      maxBuffer: 64 << 20,
    });
    bin = join(app, 'node_modules', '.bin', 'vpnlb');
  });
  after(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('ships the CLI, the simulated servers the demo needs and the examples, and no test files', () => {
    for (const f of [
      'bin/vpnlb.js',
      'dist/src/cli/run-cli.js',
      'dist/src/sim/rras/sim-farm.js',
      'examples/rras-farm.yaml',
      'LICENSE',
    ]) {
      assert.ok(files.includes(f), `${f} is not in the package`);
    }
    const tests = files.filter(
      (f) => /\.test\.js$/.test(f) || f.startsWith('dist/test/') || f.startsWith('dist/bench/'),
    );
    assert.deepEqual(tests, []);
    // Test helpers live in test/support (compiled to dist/test/support, never shipped).
    const helpers = files.filter((f) =>
      /(fixtures|test-harness|test-lab|test-certificate|loopback-targets|conformance)[^/]*\.js$/.test(
        f,
      ),
    );
    assert.deepEqual(helpers, []);
  });

  it('vpnlb help lists the commands', async () => {
    const { stdout } = await execFileP(bin, ['help']);
    assert.match(stdout, /\bcheck\b/);
    assert.match(stdout, /\bdemo\b/);
    assert.match(stdout, /\brun\b/);
  });

  it('vpnlb check accepts a shipped example', async () => {
    const example = join(dir, 'app', 'node_modules', 'vpnlb', 'examples', 'rras-farm.yaml');
    assert.ok(existsSync(example));
    const { stdout, stderr } = await execFileP(bin, ['check', '--config', example]);
    assert.doesNotMatch(stdout + stderr, /error:/);
  });

  it('vpnlb demo --duration 5 --json runs from the installed package', async () => {
    const { stdout } = await execFileP(bin, ['demo', '--duration', '5', '--json'], {
      maxBuffer: 16 << 20,
      timeout: 120_000,
    });
    const result = JSON.parse(stdout.trim().split('\n').pop()!) as {
      phases: Record<string, { connected: number; splitHandshakes: number }>;
    };
    const phases = Object.values(result.phases);
    assert.ok(phases.length >= 2, stdout.slice(-2000));
    for (const p of phases) {
      assert.ok(p.connected > 0, `a demo phase connected nobody: ${JSON.stringify(p)}`);
      assert.equal(p.splitHandshakes, 0);
    }
  });
});
