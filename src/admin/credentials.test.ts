import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AdminCredentials, loadOrCreateToken } from './credentials.js';

test('a missing token file is created: 0600 in a 0700 directory, and read back unchanged later', () => {
  const dir = mkdtempSync(join(tmpdir(), 'vpnlb-token-'));
  try {
    const file = join(dir, 'lib', 'admin.token');
    const first = loadOrCreateToken(file);
    assert.equal(first.created, true);
    assert.match(first.token, /^[A-Za-z0-9_-]{43}$/);
    assert.equal(statSync(file).mode & 0o777, 0o600);
    assert.equal(statSync(join(dir, 'lib')).mode & 0o777, 0o700);
    assert.equal(readFileSync(file, 'utf8').trim(), first.token);
    const again = loadOrCreateToken(file);
    assert.deepEqual([again.created, again.token, again.warning], [false, first.token, undefined]);
    chmodSync(file, 0o644);
    assert.match(loadOrCreateToken(file).warning ?? '', /readable by other users/);
    writeFileSync(file, 'short\n');
    assert.throws(() => loadOrCreateToken(file), { code: 'VPNLB_ADMIN_TOKEN_FILE' });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('roles: the operator and read-only tokens, nothing else', () => {
  const c = new AdminCredentials({
    operator: 'operator-token-0123456789',
    readOnly: 'read-only-token-0123456789',
  });
  assert.equal(c.roleOf('operator-token-0123456789'), 'operator');
  assert.equal(c.roleOf('read-only-token-0123456789'), 'read-only');
  assert.equal(c.roleOf('operator-token-012345678'), undefined);
  assert.equal(c.roleOf(''), undefined);
  assert.equal(AdminCredentials.ephemeral().roleOf(''), undefined);
});
