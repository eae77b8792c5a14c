import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, it } from 'node:test';
import { isIntegrationRequired } from './requirements.js';
import { canUseStrongswan } from './strongswan/charon.js';
import { LAB_PLUGINS } from './strongswan/strongswan-conf.js';

const requirementsUrl = pathToFileURL(join(import.meta.dirname, 'requirements.js')).href;

/** Runs a test file that calls requireOrSkip with one failed check, under node --test. */
function runSkippingFile(env: NodeJS.ProcessEnv): { status: number | null; out: string } {
  const dir = mkdtempSync(join(tmpdir(), 'vpnlb-req-'));
  try {
    const file = join(dir, 'skipper.test.mjs');
    writeFileSync(
      file,
      `import { requireOrSkip } from '${requirementsUrl}';\n` +
        `import { test } from 'node:test';\n` +
        `const skip = requireOrSkip('demo peers', { ok: true }, { ok: false, reason: '/x/charon missing (apt-get install strongswan-charon)' });\n` +
        `test('uses the peers', { skip }, () => {});\n`,
    );
    // A child of a test file inherits NODE_TEST_CONTEXT, under which node --test runs nothing.
    const childEnv = { ...env };
    delete childEnv.NODE_TEST_CONTEXT;
    const r = spawnSync(process.execPath, ['--test', file], { encoding: 'utf8', env: childEnv });
    return { status: r.status, out: r.stdout + r.stderr };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('integration requirements', () => {
  it('skips with the reason printed when the switch is off', () => {
    const env = { ...process.env };
    delete env.VPNLB_REQUIRE_INTEGRATION;
    const r = runSkippingFile(env);
    assert.equal(r.status, 0, r.out);
    assert.match(
      r.out,
      /# skipping demo peers: \/x\/charon missing \(apt-get install strongswan-charon\)/,
    );
    assert.match(r.out, /# skipped 1/);
  });

  it('fails the run under VPNLB_REQUIRE_INTEGRATION=1 (CI cannot pass by skipping)', () => {
    const r = runSkippingFile({ ...process.env, VPNLB_REQUIRE_INTEGRATION: '1' });
    assert.notEqual(r.status, 0, r.out);
    assert.match(r.out, /demo peers: required by VPNLB_REQUIRE_INTEGRATION=1/);
    assert.match(r.out, /# fail 1/);
  });

  it('reads the switch as exactly "1"', () => {
    assert.equal(isIntegrationRequired({ VPNLB_REQUIRE_INTEGRATION: '1' }), true);
    assert.equal(isIntegrationRequired({ VPNLB_REQUIRE_INTEGRATION: '0' }), false);
    assert.equal(isIntegrationRequired({}), false);
  });

  it('names the Debian package of a missing strongSwan plugin (the lab loads openssl from the standard plugins)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'vpnlb-plugins-'));
    try {
      for (const p of LAB_PLUGINS)
        if (p !== 'openssl') writeFileSync(join(dir, `libstrongswan-${p}.so`), '');
      const r = canUseStrongswan(dir);
      // Without charon installed the binaries are reported first; with it, the plugin.
      if (!r.ok && r.reason.includes('plugin')) {
        assert.match(r.reason, /plugin 'openssl'.*apt-get install libstrongswan-standard-plugins/);
      } else {
        assert.equal(r.ok, false);
        assert.match((r as { reason: string }).reason, /apt-get install strongswan-/);
      }
      writeFileSync(join(dir, 'libstrongswan-openssl.so'), '');
      const all = canUseStrongswan(dir);
      if (!all.ok) assert.match(all.reason, /apt-get install strongswan-(charon|swanctl)/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
