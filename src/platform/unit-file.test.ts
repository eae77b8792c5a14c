/**
 * The packaged unit (packaging/vpnlb.service) grants what the code needs, and no more: its
 * capability lists are the ones platform/capabilities.ts explains, and readiness is wired the
 * way platform/sd-notify.ts sends it. (systemd-analyze verify/security run on the installed
 * unit in test/integration/deb-package.test.ts.)
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT } from '../../lab/vpnlb-process.js';
import { CAPABILITY_BITS } from './capabilities.js';

const unit = readFileSync(join(REPO_ROOT, 'packaging/vpnlb.service'), 'utf8');
const setting = (key: string): string[] =>
  [...unit.matchAll(new RegExp(`^${key}=(.*)$`, 'gm'))].map((m) => m[1]!.trim());

test('the unit grants exactly the capabilities vpnlb needs, in the ambient set too', () => {
  const needed = Object.keys(CAPABILITY_BITS).sort();
  assert.deepEqual(setting('AmbientCapabilities').join(' ').split(/\s+/).sort(), needed);
  assert.deepEqual(setting('CapabilityBoundingSet').join(' ').split(/\s+/).sort(), needed);
  assert.deepEqual(setting('User'), ['vpnlb']);
  assert.deepEqual(setting('NoNewPrivileges'), ['yes']);
});

test('readiness through systemd-notify needs NotifyAccess=all; the sandbox is the one documented', () => {
  assert.deepEqual(setting('Type'), ['notify']);
  assert.deepEqual(setting('NotifyAccess'), ['all']);
  assert.deepEqual(setting('RestrictAddressFamilies'), ['AF_INET AF_INET6 AF_NETLINK AF_UNIX']);
  assert.deepEqual(setting('ProtectSystem'), ['strict']);
  assert.deepEqual(setting('MemoryDenyWriteExecute'), [], "Node's JIT needs W+X memory");
  assert.deepEqual(setting('ExecReload'), ['/bin/kill -HUP $MAINPID']);
  assert.ok(
    setting('ExecStart')[0]?.startsWith('/usr/bin/vpnlb run --config /etc/vpnlb/vpnlb.yaml'),
  );
});
