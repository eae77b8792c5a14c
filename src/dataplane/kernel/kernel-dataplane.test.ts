/**
 * The kernel data plane's create / diff / adopt / stop logic against `FakeNftApplier` (no root).
 * The real nft, conntrack and packets are exercised in test/integration/kernel-dataplane.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Metrics } from '../../observability/metrics.js';
import { loadConfigText } from '../../config/load-config.js';
import { Controller } from '../../control/controller.js';
import type { ServiceSnapshot } from '../../control/snapshot.js';
import { silentLogger } from '../../log/logger.js';
import type { CommandRunner } from '../../platform/command-runner.js';
import type { ConntrackEntry, ConntrackTable } from './conntrack.js';
import { KernelIkeDataPlane } from './kernel-dataplane.js';
import { FakeNftApplier } from './nft-applier.js';
import { decide } from '../../control/decide.js';
import { dataPlaneConformance } from '../../../test/support/dataplane-conformance.js';
import { randomBytes } from 'node:crypto';

const YAML = `
pools:
  farm:
    backends:
      - { name: a, address: 198.18.2.10 }
      - { name: b, address: 198.18.2.11 }
      - { name: c, address: 198.18.2.12 }
services:
  ikev2:
    - { name: ike, virtualIp: 198.19.0.1, pool: farm }
`;

class FakeConntrack implements ConntrackTable {
  readonly deleted: string[] = [];
  entries: ConntrackEntry[] = [];
  async list() {
    return { ok: true as const, value: this.entries };
  }
  async deleteBackendFlows(_vip: string, backend: string) {
    this.deleted.push(backend);
    return { ok: true as const, value: 1 };
  }
}

/** sysctl answers as on a correctly set up balancer; `ip route get` gives the balancer's address. */
const runner: CommandRunner = async (cmd, args) => {
  if (cmd === 'sysctl') {
    const v =
      args[1] === 'net.netfilter.nf_conntrack_udp_timeout_stream'
        ? '120'
        : args[1] === 'net.netfilter.nf_conntrack_max'
          ? '1000000'
          : '1';
    return { ok: true, stdout: `${v}\n`, stderr: '' };
  }
  if (cmd === 'ip') return { ok: true, stdout: '[{"prefsrc":"198.18.2.1"}]', stderr: '' };
  return { ok: false, code: 1, stdout: '', stderr: '', message: 'unexpected' };
};

function setup(yaml = YAML, ownsReplicatedFlows?: () => boolean) {
  const config = loadConfigText(yaml);
  const controller = new Controller(config);
  const metrics = new Metrics();
  const ctx = {
    config,
    controller,
    logger: silentLogger(),
    metrics,
    ...(ownsReplicatedFlows ? { ownsReplicatedFlows } : {}),
  };
  const nft = new FakeNftApplier();
  const ct = new FakeConntrack();
  const snap = () => controller.service('ike') as ServiceSnapshot;
  const make = () =>
    new KernelIkeDataPlane(config.services.ikev2[0]!, ctx, {
      applier: nft,
      conntrack: ct,
      runner,
      pollIntervalMs: 0,
    });
  return { controller, nft, ct, snap, make, metrics };
}

const slotsOf = (nft: FakeNftApplier) =>
  nft.tables.get('ip vpnlb')?.slots ?? new Map<number, string>();

test("an HA pair's standby keeps a lost server's conntrack entries (conntrackd would carry the deletion to the active node); it deletes them once active", async () => {
  let role = 'standby';
  const { controller, ct, snap, make, metrics } = setup(YAML, () => role === 'active');
  const dp = make();
  await dp.start(snap());
  controller.setAdminState('b', 'disabled');
  await dp.apply(snap());
  assert.deepEqual(ct.deleted, [], 'the standby deleted nothing');
  const text = await metrics.text();
  assert.match(
    text,
    /^vpnlb_kernel_conntrack_kept_standby_total\{service="ike",backend="b"\} 2$/m,
    text,
  );
  role = 'active';
  controller.setAdminState('c', 'disabled');
  await dp.apply(snap());
  assert.deepEqual(ct.deleted, ['198.18.2.12', '198.18.2.12']);
  await dp.stop();
});

test('start creates the table with all 65537 slots in one transaction', async () => {
  const { nft, snap, make } = setup();
  const dp = make();
  await dp.start(snap());
  assert.equal(dp.isAdopted, false);
  assert.equal(nft.transactions.length, 1);
  assert.equal(slotsOf(nft).size, 65537);
  assert.match(nft.transactions[0] as string, /^add table ip vpnlb\n/);
  assert.doesNotMatch(nft.transactions[0] as string, /delete element/);
  await dp.stop();
});

test('apply rewrites only the changed slots (delete + add) and flushes the lost server', async () => {
  const { controller, nft, ct, snap, make } = setup();
  const dp = make();
  await dp.start(snap());
  const before = new Map(slotsOf(nft));
  controller.setAdminState('b', 'disabled');
  await dp.apply(snap());
  const tx = nft.transactions.at(-1) as string;
  const after = slotsOf(nft);
  const changed = [...before].filter(([k, v]) => after.get(k) !== v).map(([k]) => k);
  assert.ok(
    changed.length > 65537 / 3 - 100 && changed.length < 65537 / 3 + 400,
    `${changed.length} slots changed`,
  );
  const deleted =
    (tx.match(/delete element[^\n]*/g) ?? []).join(' ').match(/\d+(?=[,} ])/g)?.length ?? 0;
  assert.equal(deleted, changed.length);
  assert.match(tx, /^flush set ip vpnlb pin_b$/m);
  assert.doesNotMatch(tx, /add table|flush chain/);
  assert.ok(![...after.values()].includes('198.18.2.11'));
  // Before the slots (retired early) and after them (flows the old slots made meanwhile).
  assert.deepEqual(ct.deleted, ['198.18.2.11', '198.18.2.11']);

  // Draining keeps flows and pins; re-applying the same snapshot writes nothing.
  const count = nft.transactions.length;
  await dp.apply(snap());
  assert.equal(nft.transactions.length, count);
  controller.setAdminState('a', 'draining');
  await dp.apply(snap());
  assert.doesNotMatch(nft.transactions.at(-1) as string, /flush set/);
  assert.deepEqual(ct.deleted, ['198.18.2.11', '198.18.2.11']);
  await dp.stop();
});

test('restart adopts the existing table: no table flush, only the differing slots', async () => {
  const { controller, nft, snap, make } = setup();
  const first = make();
  await first.start(snap());
  await first.stop({ keepState: true });
  assert.ok(nft.tables.has('ip vpnlb'), 'keepState leaves the table');

  // Unchanged state: the second start rewrites no slot.
  const second = make();
  await second.start(snap());
  assert.equal(second.isAdopted, true);
  const tx = nft.transactions.at(-1) as string;
  assert.doesNotMatch(tx, /delete table|flush table|element/);
  assert.match(tx, /flush chain ip vpnlb dnat_in/);
  await second.stop({ keepState: true });

  // A backend disabled while vpnlb was down: adoption writes only its slots.
  controller.setAdminState('c', 'disabled');
  const third = make();
  await third.start(snap());
  const tx3 = nft.transactions.at(-1) as string;
  const adds = (tx3.match(/ : /g) ?? []).length;
  assert.ok(adds > 20000 && adds < 23000, `${adds} slots rewritten`);
  assert.match(tx3, /^flush set ip vpnlb pin_c$/m);
  await third.stop();
  assert.equal(nft.tables.has('ip vpnlb'), false);
});

test('a failed transaction leaves the known state; the next apply diffs against the truth', async () => {
  const { controller, nft, snap, make, metrics } = setup();
  const dp = make();
  await dp.start(snap());
  const before = new Map(slotsOf(nft));
  nft.failMatching = { when: /element ip vpnlb slots/, error: 'Error: simulated' };
  controller.setAdminState('a', 'disabled');
  await dp.apply(snap());
  assert.deepEqual(slotsOf(nft), before);
  assert.match(
    await metrics.text(),
    /vpnlb_kernel_applies_total\{service="ike",result="error"\} 1/,
  );
  await dp.apply(snap());
  assert.ok(![...slotsOf(nft).values()].includes('198.18.2.10'));
  await dp.stop();
});

test('two IPv4 services cannot share one table; full NAT warns about error 809', async () => {
  // `vpnlb check` rejects two services on one table; the data plane guards again for
  // services built any other way (two runtimes in one process).
  const yaml = `${YAML}    - { name: ike2, virtualIp: 198.19.0.2, pool: farm, nat: full, table: other }\n`;
  const { nft, controller, make, snap } = setup(yaml);
  const config = controller.config;
  const ctx = { config, controller, logger: silentLogger(), metrics: new Metrics() };
  const dp = make();
  await dp.start(snap());
  const sameTable = { ...config.services.ikev2[1]!, table: config.services.ikev2[0]!.table };
  const other = new KernelIkeDataPlane(sameTable, ctx, {
    applier: nft,
    conntrack: new FakeConntrack(),
    runner,
    pollIntervalMs: 0,
  });
  await assert.rejects(other.start(controller.service('ike2') as ServiceSnapshot), {
    code: 'VPNLB_KERNEL_TABLE_CONFLICT',
  });
  await dp.stop();
  await other.start(controller.service('ike2') as ServiceSnapshot);
  assert.ok(other.status().warnings.some((w) => w.includes('error 809')));
  await other.stop();
});

test('status reports counters and a missing return path with the fix', async () => {
  const { nft, ct, snap, make } = setup();
  const dp = make();
  await dp.start(snap());
  nft.tables.get('ip vpnlb')!.counters.set('b_a_in', { packets: 5, bytes: 500 });
  const flow = (server: string, port: number, isUnreplied: boolean): ConntrackEntry => ({
    original: { src: '198.18.1.2', dst: '198.19.0.1', sport: port, dport: 500 },
    reply: { src: server, dst: '198.18.1.2', sport: 500, dport: port },
    isUnreplied,
    isAssured: !isUnreplied,
    timeout: 30,
  });
  ct.entries = [
    flow('198.18.2.10', 1, false),
    flow('198.18.2.11', 2, true),
    flow('198.18.2.11', 3, true),
    flow('198.18.2.11', 4, true),
  ];
  await dp.refresh();
  const st = dp.status();
  assert.equal(st.backends.a?.packetsIn, 5);
  assert.equal(st.backends.b?.flows, 3);
  assert.deepEqual(st.warnings.filter((w) => w.includes('return path')).length, 1);
  assert.match(
    st.warnings.join('\n'),
    /set the default gateway of b \(198\.18\.2\.11\) to 198\.18\.2\.1/,
  );
  await dp.stop();
});

test('ct timeout policy: flowTimeout names the object; adoption after a change replaces the stale one', async () => {
  const { nft, snap, make } = setup();
  const dp = make();
  await dp.start(snap());
  assert.match(
    nft.transactions[0] as string,
    /ct timeout udp_30_180 \{[^}]*policy = \{ unreplied : 30, replied : 180 \}/,
  );
  assert.match(
    nft.transactions[0] as string,
    /ip daddr 198\.19\.0\.1 udp dport 4500 ct timeout set "udp_30_180"/,
  );
  // affinity ike-spi: port-500 flows live IKE_PORT_TIMEOUT_S, so that a retry is a new placement.
  assert.match(
    nft.transactions[0] as string,
    /ip daddr 198\.19\.0\.1 udp dport 500 ct timeout set "udp_5_5"/,
  );
  assert.deepEqual([...nft.tables.get('ip vpnlb')!.ctTimeouts].sort(), ['udp_30_180', 'udp_5_5']);
  await dp.stop({ keepState: true });
  // Same table, flowTimeout 10 min: the new object is declared, the old one deleted in the same transaction.
  const changed = setup(YAML.replace('pool: farm }', 'pool: farm, flowTimeout: 10m }'));
  const dp2 = new KernelIkeDataPlane(
    changed.controller.config.services.ikev2[0]!,
    {
      config: changed.controller.config,
      controller: changed.controller,
      logger: silentLogger(),
      metrics: new Metrics(),
    },
    { applier: nft, conntrack: new FakeConntrack(), runner, pollIntervalMs: 0 },
  );
  await dp2.start(changed.snap());
  assert.equal(dp2.isAdopted, true);
  assert.match(nft.transactions.at(-1) as string, /delete ct timeout ip vpnlb udp_30_180/);
  assert.deepEqual([...nft.tables.get('ip vpnlb')!.ctTimeouts].sort(), ['udp_30_600', 'udp_5_5']);
  assert.doesNotMatch(nft.transactions.at(-1) as string, /delete ct timeout ip vpnlb udp_5_5/);
  await dp2.stop();
});

test('full NAT with a pool: the SNAT cap is rendered, and a pool too small for maxFlows is warned about', async () => {
  const yaml = YAML.replace(
    'pool: farm }',
    'pool: farm, nat: full, maxFlows: 10000, snat: { addresses: [198.18.9.1, 198.18.9.2], maxSasPerAddress: 1000 } }',
  );
  const { nft, snap, make } = setup(yaml);
  const dp = make();
  await dp.start(snap());
  const text = nft.transactions[0] as string;
  assert.match(
    text,
    /jhash ip saddr mod 2 seed 0x76706e6c 1 add @sas_1 \{ ip daddr ct count over 1000 \} counter name snat_exhausted drop/,
  );
  assert.deepEqual(
    [...nft.tables.get('ip vpnlb')!.sets].filter((s) => s.startsWith('sas_')).sort(),
    ['sas_0', 'sas_1'],
  );
  assert.ok(
    dp
      .status()
      .warnings.some((w) =>
        w.includes(
          'admits at most 6000 tunnels (2 addresses × snat.maxSasPerAddress 1000 × 3 servers), below maxFlows 10000',
        ),
      ),
    dp.status().warnings.join('\n'),
  );
  await dp.stop();
  // Enough addresses: no warning; masquerade: no cap at all (no address to count on).
  const roomy = setup(yaml.replace('maxFlows: 10000', 'maxFlows: 6000'));
  const dp2 = roomy.make();
  await dp2.start(roomy.snap());
  assert.ok(!dp2.status().warnings.some((w) => w.includes('admits at most')));
  await dp2.stop();
  const masq = setup(YAML.replace('pool: farm }', 'pool: farm, nat: full }'));
  const dp3 = masq.make();
  await dp3.start(masq.snap());
  assert.doesNotMatch(masq.nft.transactions[0] as string, /ct count over 1000|sas_/);
  await dp3.stop();
});

test('a flowTimeout too close to the NAT-T keepalive is warned about (the host sysctl no longer applies)', async () => {
  const { snap, make } = setup(YAML.replace('pool: farm }', 'pool: farm, flowTimeout: 25s }'));
  const dp = make();
  await dp.start(snap());
  assert.ok(
    dp.status().warnings.some((w) => w.startsWith('flowTimeout 25 s is not well above')),
    dp.status().warnings.join('\n'),
  );
  await dp.stop();
});

/** Records nft transactions and conntrack deletions in one sequence. */
function recordOrder(nft: FakeNftApplier, ct: FakeConntrack): string[] {
  const seq: string[] = [];
  const apply = nft.apply.bind(nft);
  nft.apply = async (text) => {
    const r = await apply(text);
    seq.push(
      `${/^add table/.test(text) ? 'table' : /element ip vpnlb slots/.test(text) ? 'slots' : 'retire'}${r.ok ? '' : ':failed'}`,
    );
    return r;
  };
  const del = ct.deleteBackendFlows.bind(ct);
  ct.deleteBackendFlows = async (vip, backend) => {
    seq.push(`conntrack ${backend}`);
    return del(vip, backend);
  };
  return seq;
}

const SPI_B = ['16909060 . 84281096', '3735928559 . 1'];

test('a lost server is retired in a transaction of its own before the slots: SPIs into spi_dead, sets emptied, flows deleted', async () => {
  const { controller, nft, ct, snap, make, metrics } = setup();
  const listed: string[][] = [];
  const list = nft.list.bind(nft);
  nft.list = async (what) => {
    listed.push([...what]);
    return list(what);
  };
  const dp = make();
  await dp.start(snap());
  assert.match(nft.transactions[0] as string, /set spi_dead \{/);
  assert.ok(!listed.some((w) => w[0] === 'set'), 'nothing to retire at a clean start');
  // Two SAs recorded on b, as the track chain would.
  await nft.apply(
    `add element ip vpnlb spi_b { ${SPI_B.join(', ')} }\nadd element ip vpnlb pin_b { 198.18.1.2 . 4500 }\n`,
  );
  const seq = recordOrder(nft, ct);
  controller.setHealth('ike', 'b', 'down', 'test');
  await dp.apply(snap());
  assert.deepEqual(seq, ['retire', 'conntrack 198.18.2.11', 'slots', 'conntrack 198.18.2.11']);
  // Only b's SPI set is read (a single set: no dump of the slot map).
  assert.deepEqual(
    listed.filter((w) => w[0] === 'set'),
    [['set', 'ip', 'vpnlb', 'spi_b']],
  );
  const [retire, slots] = nft.transactions.slice(-2) as [string, string];
  assert.doesNotMatch(retire, /slots/);
  assert.match(
    retire,
    /^add element ip vpnlb spi_dead \{ 16909060 \. 84281096, 3735928559 \. 1 \}$/m,
  );
  // The SPIs are moved before the set is emptied.
  assert.ok(retire.indexOf('spi_dead') < retire.indexOf('flush set ip vpnlb spi_b'));
  for (const set of ['spi_b', 'pin_b', 'peer_b', 'learn_b'])
    assert.match(retire, new RegExp(`^flush set ip vpnlb ${set}$`, 'm'));
  assert.doesNotMatch(retire, /flush set ip vpnlb (peer|learn|pin|spi)_a$/m);
  // The slot transaction empties the sets again (SAs the old slots placed on b meanwhile) and
  // does not repeat the SPIs.
  assert.match(slots, /^flush set ip vpnlb spi_b$/m);
  assert.doesNotMatch(slots, /spi_dead/);
  const table = nft.tables.get('ip vpnlb')!;
  assert.deepEqual([...(table.elements.get('spi_dead') ?? [])].sort(), [...SPI_B].sort());
  assert.equal(table.elements.get('spi_b')?.size ?? 0, 0);
  assert.equal(table.elements.get('pin_b')?.size ?? 0, 0);
  assert.match(
    await metrics.text(),
    /vpnlb_kernel_retirements_total\{service="ike",result="ok"\} 1/,
  );
  await dp.stop();
});

test('a retirement nft refuses is carried by the slot transaction, flows deleted after it', async () => {
  const { controller, nft, ct, snap, make, metrics } = setup();
  const dp = make();
  await dp.start(snap());
  await nft.apply(`add element ip vpnlb spi_b { ${SPI_B.join(', ')} }\n`);
  const seq = recordOrder(nft, ct);
  nft.failMatching = { when: /^add element ip vpnlb spi_dead/, error: 'Error: simulated' };
  controller.setHealth('ike', 'b', 'down', 'test');
  await dp.apply(snap());
  assert.deepEqual(seq, ['retire:failed', 'slots', 'conntrack 198.18.2.11']);
  const slots = nft.transactions.at(-1) as string;
  assert.match(
    slots,
    /^add element ip vpnlb spi_dead \{ 16909060 \. 84281096, 3735928559 \. 1 \}$/m,
  );
  assert.ok(slots.indexOf('spi_dead') < slots.indexOf('flush set ip vpnlb spi_b'));
  assert.deepEqual(
    [...(nft.tables.get('ip vpnlb')!.elements.get('spi_dead') ?? [])].sort(),
    [...SPI_B].sort(),
  );
  assert.match(
    await metrics.text(),
    /vpnlb_kernel_retirements_total\{service="ike",result="error"\} 1/,
  );
  await dp.stop();
});

test('adoption after a server left the configuration retires its sets before the table is rewritten', async () => {
  const { nft, snap, make } = setup();
  const first = make();
  await first.start(snap());
  await nft.apply(
    `add element ip vpnlb spi_c { ${SPI_B.join(', ')} }\nadd element ip vpnlb pin_c { 198.18.1.2 . 4500 }\n`,
  );
  await first.stop({ keepState: true });
  // The same table, c no longer configured (a restart with a new configuration).
  const without = setup(YAML.replace('      - { name: c, address: 198.18.2.12 }\n', ''));
  const dp = new KernelIkeDataPlane(
    without.controller.config.services.ikev2[0]!,
    {
      config: without.controller.config,
      controller: without.controller,
      logger: silentLogger(),
      metrics: new Metrics(),
    },
    { applier: nft, conntrack: without.ct, runner, pollIntervalMs: 0 },
  );
  const seq = recordOrder(nft, without.ct);
  await dp.start(without.snap());
  assert.equal(dp.isAdopted, true);
  assert.deepEqual(seq, ['retire', 'conntrack 198.18.2.12', 'table', 'conntrack 198.18.2.12']);
  const [retire, table] = nft.transactions.slice(-2) as [string, string];
  assert.match(
    retire,
    /^add element ip vpnlb spi_dead \{ 16909060 \. 84281096, 3735928559 \. 1 \}$/m,
  );
  assert.match(retire, /^flush set ip vpnlb spi_c$/m);
  assert.match(retire, /^flush set ip vpnlb pin_c$/m);
  assert.doesNotMatch(retire, /slots|_a$|_b$/m);
  // The table transaction deletes c's sets (not flushing them again) and rewrites its slots.
  assert.match(table, /^delete set ip vpnlb spi_c$/m);
  assert.doesNotMatch(table, /flush set ip vpnlb spi_c/);
  const t = nft.tables.get('ip vpnlb')!;
  assert.ok(!t.sets.has('spi_c') && !t.sets.has('pin_c'));
  assert.ok(![...t.slots.values()].includes('198.18.2.12'));
  assert.deepEqual([...(t.elements.get('spi_dead') ?? [])].sort(), [...SPI_B].sort());
  await dp.stop();
});

test('source-ip affinity has no SPI sets: nothing to retire', async () => {
  const { controller, nft, snap, make } = setup(
    YAML.replace('pool: farm }', 'pool: farm, affinity: source-ip }'),
  );
  const dp = make();
  await dp.start(snap());
  assert.doesNotMatch(nft.transactions[0] as string, /spi_/);
  controller.setHealth('ike', 'b', 'down', 'test');
  await dp.apply(snap());
  assert.doesNotMatch(nft.transactions.at(-1) as string, /spi_|flush set/);
  await dp.stop();
});

test("a failed start-up removes a table this process created, and leaves one it adopted (the previous process's tunnels)", async () => {
  const { nft, snap, make } = setup();
  const created = make();
  await created.start(snap());
  await created.stop({ failedStart: true });
  assert.equal(nft.tables.has('ip vpnlb'), false);

  const first = make();
  await first.start(snap());
  await first.stop({ keepState: true });
  const adopting = make();
  await adopting.start(snap());
  assert.equal(adopting.isAdopted, true);
  await adopting.stop({ failedStart: true });
  assert.equal(nft.tables.has('ip vpnlb'), true, 'the adopted table was deleted');
  // An ordinary stop still removes it.
  const last = make();
  await last.start(snap());
  await last.stop();
  assert.equal(nft.tables.has('ip vpnlb'), false);
});

/**
 * The data-plane conformance suite against the kernel plane: a new flow goes where the
 * programmed slot map (the fake kernel's) sends its SPI; it is established once conntrack lists
 * it, and alive until the plane deletes its backend's conntrack entries.
 */
dataPlaneConformance('kernel (nftables, fake applier)', async () => {
  const { controller, nft, ct, snap, make } = setup();
  const dp = make();
  await dp.start(snap());
  const backends = snap().service.pool;
  const config = loadConfigText(YAML);
  const nameOf = new Map(config.pools[backends]!.backends.map((b) => [b.address, b.name]));
  return {
    dataplane: dp,
    controller,
    serviceName: 'ike',
    backends: [...nameOf.values()],
    async openFlow(n) {
      const client = `198.18.1.${(n % 250) + 1}`;
      const decision = decide(snap(), { address: client, spi: randomBytes(8) });
      const address = slotsOf(nft).get(decision.slot!);
      const backend = address === undefined ? undefined : nameOf.get(address);
      if (address === undefined || backend === undefined)
        throw new Error(`slot ${decision.slot} holds no backend`);
      ct.entries.push({
        original: { src: client, dst: '198.19.0.1', sport: 4500, dport: 4500 },
        reply: { src: address, dst: client, sport: 4500, dport: 4500 },
        isUnreplied: false,
        isAssured: true,
        timeout: 120,
      });
      await dp.refresh();
      return {
        backend,
        alive: async () => !ct.deleted.includes(backend) && !ct.deleted.includes(address),
      };
    },
    close: () => dp.stop(),
  };
});
