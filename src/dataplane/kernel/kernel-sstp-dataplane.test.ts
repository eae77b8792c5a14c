/**
 * The kernel SSTP plane's create / update / adopt / stop logic against `FakeNftApplier` (no
 * root); the real nft, conntrack and sstpc are in test/integration/kernel-sstp.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Metrics } from '../../observability/metrics.js';
import { loadConfigText } from '../../config/load-config.js';
import { Controller } from '../../control/controller.js';
import { decide } from '../../control/decide.js';
import type { ServiceSnapshot } from '../../control/snapshot.js';
import { silentLogger } from '../../log/logger.js';
import type { CommandRunner } from '../../platform/command-runner.js';
import type { ConntrackEntry, ConntrackTable } from './conntrack.js';
import { KernelSstpDataPlane } from './kernel-sstp-dataplane.js';
import { FakeNftApplier } from './nft-applier.js';

const YAML = `
pools:
  farm:
    backends:
      - { name: a, address: 198.18.2.10 }
      - { name: b, address: 198.18.2.11 }
      - { name: c, address: 198.18.2.12 }
services:
  sstp:
    - { name: sstp, virtualIp: 198.19.0.1, pool: farm, dataplane: kernel }
`;

class FakeConntrack implements ConntrackTable {
  readonly deleted: string[] = [];
  entries: ConntrackEntry[] = [];
  async list() {
    return { ok: true as const, value: this.entries };
  }
  async deleteBackendFlows(_vip: string, backend: string) {
    this.deleted.push(backend);
    return { ok: true as const, value: 2 };
  }
}

const forwarding = { value: '1' };
const runner: CommandRunner = async (cmd, args) => {
  if (cmd === 'sysctl')
    return {
      ok: true,
      stdout: `${args[1]?.includes('forward') ? forwarding.value : '1000000'}\n`,
      stderr: '',
    };
  if (cmd === 'ip') return { ok: true, stdout: '[{"prefsrc":"198.18.2.1"}]', stderr: '' };
  return { ok: false, code: 1, stdout: '', stderr: '', message: 'unexpected' };
};

function setup() {
  const config = loadConfigText(YAML);
  const controller = new Controller(config);
  const metrics = new Metrics();
  const ctx = { config, controller, logger: silentLogger(), metrics };
  const nft = new FakeNftApplier();
  const ct = new FakeConntrack();
  const snap = () => controller.service('sstp') as ServiceSnapshot;
  const make = () =>
    new KernelSstpDataPlane(config.services.sstp[0]!, ctx, {
      applier: nft,
      conntrack: ct,
      runner,
      pollIntervalMs: 0,
    });
  return { controller, nft, ct, snap, make, metrics };
}
const slotsOf = (nft: FakeNftApplier) =>
  nft.tables.get('ip vpnlb_sstp')?.slots ?? new Map<number, string>();

test('start programs the table: 65537 slots, the slot decide() names for a client, DNAT of TCP to the backend port', async () => {
  const { nft, snap, make } = setup();
  const dp = make();
  await dp.start(snap());
  assert.equal(dp.isAdopted, false);
  assert.equal(slotsOf(nft).size, 65537);
  const text = nft.transactions[0] as string;
  assert.match(
    text,
    /ip daddr 198\.19\.0\.1 tcp dport 443 dnat to jhash ip saddr mod 65537 seed 0x76706e6c map @slots : 443/,
  );
  for (const client of ['198.18.1.2', '198.18.1.77', '203.0.113.9']) {
    const d = decide(snap(), { address: client });
    assert.equal(d.keyKind, 'source-ip');
    assert.equal(slotsOf(nft).get(d.slot as number), d.backend?.address, client);
  }
  const st = dp.status();
  assert.equal(st.dataplane, 'kernel');
  assert.deepEqual(st.listeners, ['tcp 198.19.0.1:443 (nft ip vpnlb_sstp)']);
  assert.deepEqual(Object.keys(st.backends).sort(), ['a', 'b', 'c']);
  assert.deepEqual(st.warnings, []);
  await dp.stop();
  assert.equal(nft.tables.size, 0);
});

test('disable: its slots move and its connections are deleted after the map; drain keeps connections', async () => {
  const { controller, nft, ct, snap, make, metrics } = setup();
  const dp = make();
  await dp.start(snap());
  controller.setAdminState('a', 'draining');
  await dp.apply(snap());
  assert.ok(
    ![...slotsOf(nft).values()].includes('198.18.2.10'),
    'a draining server takes no new client',
  );
  assert.deepEqual(ct.deleted, [], 'a draining server keeps its connections');
  controller.setAdminState('b', 'disabled');
  const before = nft.transactions.length;
  await dp.apply(snap());
  assert.equal(nft.transactions.length, before + 1);
  assert.deepEqual([...new Set(slotsOf(nft).values())], ['198.18.2.12']);
  assert.deepEqual(ct.deleted, ['198.18.2.11']);
  await dp.apply(snap());
  assert.deepEqual(ct.deleted, ['198.18.2.11'], 'deleted once, not on every snapshot');
  assert.match(
    await metrics.text(),
    /vpnlb_kernel_conntrack_deleted_total\{service="sstp",backend="b"\} 2/,
  );
  await dp.stop();
});

test('a failed transaction keeps the previous map and retries the clean-up with the next snapshot', async () => {
  const { controller, nft, ct, snap, make } = setup();
  const dp = make();
  await dp.start(snap());
  controller.setAdminState('c', 'disabled');
  nft.failNext = 'Error: simulated';
  await dp.apply(snap());
  assert.ok([...slotsOf(nft).values()].includes('198.18.2.12'));
  assert.deepEqual(ct.deleted, []);
  await dp.apply(snap());
  assert.ok(![...slotsOf(nft).values()].includes('198.18.2.12'));
  assert.deepEqual(ct.deleted, ['198.18.2.12']);
  await dp.stop();
});

test('restart with keepState adopts the table: no slot rewritten, chains re-filled, objects of another configuration dropped', async () => {
  const { nft, snap, make } = setup();
  const first = make();
  await first.start(snap());
  await first.stop({ keepState: true });
  assert.equal(slotsOf(nft).size, 65537);
  // A leftover of an older configuration, as adoption may find it.
  await nft.apply('table ip vpnlb_sstp {\n\tcounter b_old_in {\n\t}\n}\n');
  const second = make();
  await second.start(snap());
  assert.equal(second.isAdopted, true);
  const text = nft.transactions.at(-1) as string;
  assert.doesNotMatch(text, /element/, 'no slot touched');
  assert.match(text, /flush chain ip vpnlb_sstp dnat_in/);
  assert.match(text, /delete counter ip vpnlb_sstp b_old_in/);
  await second.stop();
});

test('return path: a server whose connections all stay unreplied is reported, with the gateway to set', async () => {
  const { ct, snap, make } = setup();
  const dp = make();
  await dp.start(snap());
  const entry = (
    src: string,
    sport: number,
    server: string,
    unreplied: boolean,
  ): ConntrackEntry => ({
    original: { src, dst: '198.19.0.1', sport, dport: 443 },
    reply: { src: server, dst: src, sport: 443, dport: sport },
    isUnreplied: unreplied,
    isAssured: !unreplied,
    timeout: 100,
  });
  ct.entries = [
    ...[1, 2, 3, 4].map((i) => entry('198.18.1.2', 40000 + i, '198.18.2.10', true)),
    entry('198.18.1.3', 40100, '198.18.2.11', false),
    // Another service's port on the same address is not this service's.
    {
      ...entry('198.18.1.4', 40200, '198.18.2.12', true),
      original: { src: '198.18.1.4', dst: '198.19.0.1', sport: 40200, dport: 80 },
    },
  ];
  await dp.refresh();
  const st = dp.status();
  assert.equal(st.warnings.length, 1, st.warnings.join('\n'));
  assert.match(
    st.warnings[0] as string,
    /return path missing for a \(198\.18\.2\.10\).*default gateway of a \(198\.18\.2\.10\) to 198\.18\.2\.1/,
  );
  assert.equal(st.backends.a?.connections, 4);
  assert.equal(st.backends.b?.connections, 1);
  assert.equal(st.backends.c?.connections, 0);
  await dp.stop();
});

test('forwarding off is a warning in status', async () => {
  const { snap, make } = setup();
  forwarding.value = '0';
  try {
    const dp = make();
    await dp.start(snap());
    assert.match(dp.status().warnings.join('\n'), /net\.ipv4\.ip_forward = 0/);
    await dp.stop();
  } finally {
    forwarding.value = '1';
  }
});
