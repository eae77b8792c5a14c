import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ERROR_CODES, VpnlbError } from './errors.js';
import { REPO_ROOT } from '../lab/vpnlb-process.js';

test('docs/errors.md lists every error code, and nothing else', () => {
  const doc = readFileSync(join(REPO_ROOT, 'docs/errors.md'), 'utf8');
  const documented = new Set([...doc.matchAll(/`(VPNLB_[A-Z0-9_]+)`/g)].map((m) => m[1]));
  for (const code of Object.keys(ERROR_CODES))
    assert.ok(documented.has(code), `${code} is missing from docs/errors.md`);
  for (const code of documented)
    assert.ok(
      code! in ERROR_CODES,
      `docs/errors.md documents ${code}, which the code does not define`,
    );
});

test('VpnlbError carries code and side', () => {
  const e = new VpnlbError('VPNLB_NO_BACKEND', 'none', 'backend');
  assert.equal(e.code, 'VPNLB_NO_BACKEND');
  assert.equal(e.side, 'backend');
  assert.ok(e instanceof Error);
});
