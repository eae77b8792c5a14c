import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfigFile, loadConfigText } from '../config/load-config.js';
import type { DataPlane } from '../control/dataplane-interface.js';
import { silentLogger } from '../log/logger.js';
import { AdminCredentials } from '../admin/credentials.js';
import { diffConfig } from '../control/config-diff.js';
import { Runtime } from './runtime.js';
import type { ServiceSnapshot } from '../control/snapshot.js';

/** Records what the runtime does to it; `kind` decides what status() calls it. */
class RecordingDataPlane implements DataPlane {
  readonly calls: string[] = [];
  readonly applied: ServiceSnapshot[] = [];
  stoppedWith: { keepState?: boolean } | undefined;
  constructor(
    readonly serviceName: string,
    readonly kind: string,
  ) {}
  async start(s: ServiceSnapshot) {
    this.calls.push('start');
    this.applied.push(s);
  }
  async apply(s: ServiceSnapshot) {
    this.calls.push('apply');
    this.applied.push(s);
  }
  async stop(options: { keepState?: boolean } = {}) {
    this.calls.push('stop');
    this.stoppedWith = options;
  }
  status() {
    return { dataplane: this.kind, listeners: [], backends: {}, warnings: [] };
  }
}

const yaml = (o: {
  backends: string;
  sstpIdle?: string;
  extraService?: boolean;
  ikeTable?: string;
}) => `
pools:
  farm:
    backends:
${o.backends}
services:
  ikev2:
    - { name: ike, virtualIp: 198.19.0.1, pool: farm, table: ${o.ikeTable ?? 'vpnlbtest'} }
  sstp:
    - { name: sstp, virtualIp: 198.19.0.1, pool: farm${o.sstpIdle ? `, idleTimeout: ${o.sstpIdle}` : ''} }
${o.extraService ? '    - { name: sstp2, virtualIp: 198.19.0.2, pool: farm }' : ''}
`;
const TWO = '      - { name: s1, address: 198.18.1.1 }\n      - { name: s2, address: 198.18.1.2 }';
const THREE_WEIGHTED =
  '      - { name: s1, address: 198.18.1.1, weight: 3 }\n      - { name: s2, address: 198.18.1.2 }\n      - { name: s3, address: 198.18.1.3 }';

async function withReloadable(
  fn: (h: {
    rt: Runtime;
    write(text: string): void;
    planes: RecordingDataPlane[];
    plane(name: string): RecordingDataPlane;
  }) => Promise<void>,
) {
  const dir = mkdtempSync(join(tmpdir(), 'vpnlb-reload-'));
  const file = join(dir, 'vpnlb.yaml');
  writeFileSync(file, yaml({ backends: TWO }));
  const planes: RecordingDataPlane[] = [];
  const rt = new Runtime({
    config: loadConfigFile(file),
    configFile: file,
    logger: silentLogger(),
    admin: false,
    adminCredentials: AdminCredentials.ephemeral(),
    // The IKEv2 service stands for the kernel plane (what decides how it is reloaded).
    createDataPlane: async (s) => {
      const dp = new RecordingDataPlane(s.name, s.kind === 'ikev2' ? 'kernel' : 'sstp-proxy');
      planes.push(dp);
      return dp;
    },
  });
  await rt.start();
  try {
    await fn({
      rt,
      planes,
      write: (text) => writeFileSync(file, text),
      plane: (name) => planes.filter((p) => p.serviceName === name).at(-1)!,
    });
  } finally {
    await rt.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

test('a file with errors is refused with every problem listed; nothing changes', async () => {
  await withReloadable(async ({ rt, write, planes }) => {
    const before = rt.controller.snapshot();
    write(
      yaml({
        backends:
          '      - { name: s1, address: 198.18.1.999 }\n      - { name: s1, address: 198.18.1.2, weight: -1 }',
      }),
    );
    const r = await rt.reload();
    assert.equal(r.ok, false);
    assert.ok(r.issues.length >= 3, r.issues.join('\n'));
    assert.ok(
      r.issues.some((i) =>
        /vpnlb\.yaml:\d+:\d+: error: pools\.farm\.backends\[0\]\.address/.test(i),
      ),
      r.issues.join('\n'),
    );
    assert.ok(
      r.issues.some((i) => /backends\[1\]\.weight/.test(i)),
      r.issues.join('\n'),
    );
    assert.equal(rt.controller.snapshot(), before);
    assert.deepEqual(
      planes.map((p) => p.calls),
      [['start'], ['start']],
    );
    assert.equal(rt.events.list().at(-1)!.kind, 'reload');
    assert.match(rt.events.list().at(-1)!.message, /refused/);
  });
});

test('adding a server and changing a weight: a snapshot for the userspace plane, a keep-state re-adoption for the kernel plane; a drain survives', async () => {
  await withReloadable(async ({ rt, write, plane, planes }) => {
    rt.controller.setAdminState('s2', 'draining');
    await rt.settled();
    const sstp = plane('sstp');
    const kernelBefore = plane('ike');
    write(yaml({ backends: THREE_WEIGHTED }));
    const r = await rt.reload();
    assert.equal(r.ok, true, r.issues.join('\n'));
    assert.ok(r.changes.includes('pool farm: backend s3 added (198.18.1.3)'), r.changes.join('\n'));
    assert.ok(r.changes.includes('pool farm: backend s1: weight 1 → 3'), r.changes.join('\n'));
    // The SSTP plane took it as a snapshot: never stopped.
    assert.equal(plane('sstp'), sstp);
    assert.ok(!sstp.calls.includes('stop'));
    const last = sstp.applied.at(-1)!;
    assert.deepEqual(
      last.backends.map((b) => [b.name, b.weight, b.state]),
      [
        ['s1', 3, 'up'],
        ['s2', 1, 'draining'],
        ['s3', 1, 'up'],
      ],
    );
    // The kernel plane was stopped keeping its table and a new one adopted it.
    assert.deepEqual(kernelBefore.calls, ['start', 'apply', 'stop']);
    assert.deepEqual(kernelBefore.stoppedWith, { keepState: true });
    assert.notEqual(plane('ike'), kernelBefore);
    assert.deepEqual(
      plane('ike').applied[0]!.backends.map((b) => b.name),
      ['s1', 's2', 's3'],
    );
    assert.equal(planes.length, 3);
    assert.equal(rt.config.pools.farm!.backends.length, 3);
    // Reloading the same file again changes nothing.
    const again = await rt.reload();
    assert.deepEqual([again.ok, again.changes], [true, []]);
  });
});

test('a removed server is disabled first (its flows go), then left out', async () => {
  await withReloadable(async ({ rt, write, plane }) => {
    const sstp = plane('sstp');
    write(yaml({ backends: '      - { name: s1, address: 198.18.1.1 }' }));
    const r = await rt.reload();
    assert.equal(r.ok, true, r.issues.join('\n'));
    const states = sstp.applied.map((s) => s.backends.map((b) => `${b.name}:${b.state}`).join(','));
    assert.ok(states.includes('s1:up,s2:disabled'), states.join(' | '));
    assert.equal(states.at(-1), 's1:up');
  });
});

test('changed service settings on a userspace plane restart that service (reported); added and removed services start and stop', async () => {
  await withReloadable(async ({ rt, write, plane }) => {
    const sstp = plane('sstp');
    write(yaml({ backends: TWO, sstpIdle: '10m', extraService: true }));
    const r = await rt.reload();
    assert.equal(r.ok, true, r.issues.join('\n'));
    assert.ok(
      r.changes.some((c) => c === 'service sstp: idleTimeout 900000 → 600000'),
      r.changes.join('\n'),
    );
    assert.ok(
      r.changes.some((c) => /service sstp: restarted .*tunnels are cut/.test(c)),
      r.changes.join('\n'),
    );
    assert.deepEqual(sstp.stoppedWith, { keepState: false });
    assert.equal(plane('sstp').calls[0], 'start');
    assert.deepEqual(plane('sstp2').calls, ['start']);
    write(yaml({ backends: TWO, sstpIdle: '10m' }));
    const removed = await rt.reload();
    assert.ok(removed.changes.includes('service sstp2 removed'));
    assert.ok(plane('sstp2').calls.includes('stop'));
    assert.ok(!rt.dataPlanes().has('sstp2'));
  });
});

test('a changed kernel table cannot be adopted: that service restarts (reported)', async () => {
  await withReloadable(async ({ rt, write, plane }) => {
    const ike = plane('ike');
    write(yaml({ backends: TWO, ikeTable: 'othertable' }));
    const r = await rt.reload();
    assert.equal(r.ok, true);
    assert.deepEqual(ike.stoppedWith, { keepState: false });
    assert.ok(
      r.changes.some((c) => /service ike: restarted/.test(c)),
      r.changes.join('\n'),
    );
  });
});

test('diffConfig: one line per difference', () => {
  const a = loadConfigText(yaml({ backends: TWO }));
  const b = loadConfigText(
    yaml({ backends: THREE_WEIGHTED }).replace('198.18.1.2 }', '198.18.1.22 }'),
  );
  const d = diffConfig(a, b);
  assert.deepEqual(d.changes, [
    'pool farm: backend s1: weight 1 → 3',
    'pool farm: backend s2 moved from 198.18.1.2 to 198.18.1.22: the flows to 198.18.1.2 are removed',
    'pool farm: backend s3 added (198.18.1.3)',
  ]);
  assert.deepEqual(d.backendsRemoved, ['farm/s2']);
  assert.deepEqual(diffConfig(a, a).changes, []);
});

test('a reload reads the token files again: replacing a token rotates it', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'vpnlb-reload-token-'));
  const file = join(dir, 'vpnlb.yaml');
  writeFileSync(file, `admin: { tokenFile: admin.token }\n${yaml({ backends: TWO })}`);
  writeFileSync(join(dir, 'admin.token'), 'first-token-0123456789\n', { mode: 0o600 });
  const rt = new Runtime({
    config: loadConfigFile(file),
    configFile: file,
    logger: silentLogger(),
    admin: { host: '127.0.0.1', port: 0 },
    createDataPlane: async (s) => new RecordingDataPlane(s.name, 'fake'),
  });
  await rt.start();
  try {
    const status = (token: string) =>
      fetch(`http://127.0.0.1:${rt.adminAddress!.port}/api/v1/status`, {
        headers: { authorization: `Bearer ${token}` },
      }).then((r) => r.status);
    assert.equal(await status('first-token-0123456789'), 200);
    writeFileSync(join(dir, 'admin.token'), 'second-token-0123456789\n');
    assert.equal((await rt.reload()).ok, true);
    assert.equal(await status('first-token-0123456789'), 401);
    assert.equal(await status('second-token-0123456789'), 200);
  } finally {
    await rt.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});
