import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO_ROOT } from '../../../lab/vpnlb-process.js';
import { captureIo as capture } from '../../../test/support/command-io.js';
import { nodeCommand } from './node.js';

test('node drain creates a missing run directory (a tmpfs after a reboot) and writes the drain file; resume clears it', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'vpnlb-node-'));
  try {
    const runDir = join(dir, 'not-yet', 'ha');
    const config = join(dir, 'vpnlb.yaml');
    writeFileSync(
      config,
      readFileSync(join(REPO_ROOT, 'test/fixtures/ha-pair.yaml'), 'utf8').replace(
        '  sync: { interface: sync0 }',
        `  runDir: ${runDir}\n  sync: { interface: sync0 }`,
      ),
    );
    const io = capture();
    assert.equal(
      await nodeCommand.run(['drain', '--config', config, '--node', 'lb2'], io),
      0,
      io.stderr,
    );
    assert.equal(readFileSync(join(runDir, 'drain'), 'utf8'), '1\n');
    // No transition yet: the node is not active, so the drain returns at once.
    assert.match(
      io.stdout,
      /lb2: drained \(standby; lb1 holds the addresses while it is healthy\)/,
    );
    assert.equal(
      await nodeCommand.run(['resume', '--config', config, '--node', 'lb2'], capture()),
      0,
    );
    assert.equal(readFileSync(join(runDir, 'drain'), 'utf8'), '0\n');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
