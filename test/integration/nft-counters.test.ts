/**
 * The netlink counter reader (native/nft-counters) against the real kernel, in a namespace of its
 * own: it must return what `nft -j list counters` returns (the same names, packets and bytes,
 * filtered by family and table), for a table holding a 65537-element map like vpnlb's, and the
 * kernel plane's `readCounters` must use it. Timings are printed, not asserted.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { canUseNftables, Topology, type Namespace } from '../../lab/netns.js';
import { requireOrSkip, type Availability } from '../../lab/requirements.js';
import {
  loadNativeNftCounters,
  readCountersNative,
} from '../../src/dataplane/kernel/nft-counters.js';
import { NftCliApplier, readCounters } from '../../src/dataplane/kernel/nft-applier.js';

function addonBuilt(): Availability {
  const a = loadNativeNftCounters();
  return 'binding' in a
    ? { ok: true }
    : { ok: false, reason: `the native counter reader is not available: ${a.unavailable}` };
}

const skip = requireOrSkip('native nft counter tests', canUseNftables(), addonBuilt());

/** Named counters as `nft -j list counters [table F T]` reports them. */
async function cliCounters(
  ns: Namespace,
  args: string[],
): Promise<Record<string, { packets: number; bytes: number }>> {
  const doc = JSON.parse(await ns.exec('nft', ['-j', 'list', 'counters', ...args])) as {
    nftables: { counter?: { name: string; table: string; packets: number; bytes: number } }[];
  };
  const out: Record<string, { packets: number; bytes: number }> = {};
  for (const i of doc.nftables)
    if (i.counter)
      out[`${i.counter.table}/${i.counter.name}`] = {
        packets: i.counter.packets,
        bytes: i.counter.bytes,
      };
  return out;
}

describe('native nft counters (netlink) against nft -j list counters', { skip }, () => {
  let topo: Topology;
  let ns: Namespace;
  const table = 'nctest';

  before(async () => {
    topo = Topology.create('nctr');
    ns = await topo.addNamespace('n');
    await ns.exec('ip', ['link', 'set', 'lo', 'up']);
    const slots = Array.from({ length: 65537 }, (_, i) => `${i} : 198.18.1.${(i % 3) + 1}`);
    await ns.exec(
      'nft',
      ['-f', '-'],
      [
        `table ip ${table} {`,
        '  counter seen {}',
        '  counter big {}',
        '  counter never {}',
        '  map slots { type mark : ipv4_addr; }',
        '  chain out { type filter hook output priority 0; counter name seen; ip length > 500 counter name big; }',
        '}',
        `add element ip ${table} slots { ${slots.join(', ')} }`,
        `table ip6 ${table} { counter seen6 {}; }`,
        `table inet ${table}_other { counter other {}; }`,
        '',
      ].join('\n'),
    );
    // Some traffic for the counters: pings to the namespace's own loopback (small and large).
    await ns.exec('ping', ['-c', '3', '-i', '0.2', '-s', '56', '127.0.0.1']);
    await ns.exec('ping', ['-c', '2', '-i', '0.2', '-s', '1000', '127.0.0.1']);
  });

  after(async () => {
    await topo?.destroy();
  });

  it('returns the counters nft lists, per table and family, with their packets and bytes', async () => {
    const t0 = process.hrtime.bigint();
    const native = readCountersNative({ family: 'ip', table, netns: ns.name });
    const nativeMs = Number(process.hrtime.bigint() - t0) / 1e6;
    assert.ok(native?.ok, JSON.stringify(native));
    const t1 = process.hrtime.bigint();
    const cli = await cliCounters(ns, ['table', 'ip', table]);
    const cliMs = Number(process.hrtime.bigint() - t1) / 1e6;
    console.log(
      `# one read of a table with a 65537-element map: netlink ${nativeMs.toFixed(2)} ms, nft -j list counters ${cliMs.toFixed(0)} ms`,
    );
    const got: Record<string, { packets: number; bytes: number }> = {};
    for (const c of native.value) {
      assert.equal(c.table, table);
      assert.equal(c.family, 2);
      got[`${c.table}/${c.name}`] = { packets: c.packets, bytes: c.bytes };
    }
    assert.deepEqual(got, cli);
    assert.ok(got[`${table}/seen`]!.packets >= 10, JSON.stringify(got)); // echo requests and replies
    assert.ok(got[`${table}/big`]!.packets >= 4, JSON.stringify(got));
    assert.equal(got[`${table}/never`]!.packets, 0);

    // Every family and table at once, as `vpnlb node drain` reads them.
    const all = readCountersNative({ netns: ns.name });
    assert.ok(all?.ok);
    assert.deepEqual(all.value.map((c) => `${c.family}:${c.table}/${c.name}`).sort(), [
      `10:${table}/seen6`,
      `1:${table}_other/other`,
      `2:${table}/big`,
      `2:${table}/never`,
      `2:${table}/seen`,
    ]);
    // No such table: nothing (the applier then asks nft, which names the error).
    const none = readCountersNative({ family: 'ip', table: 'nosuchtable', netns: ns.name });
    assert.deepEqual(none, { ok: true, value: [] });
    const gone = readCountersNative({ family: 'ip', table, netns: 'vpnlb-no-such-namespace' });
    assert.equal(gone?.ok, false);
    assert.match(gone && !gone.ok ? gone.error : '', /No such file or directory/);
  });

  it("is what the kernel plane's readCounters uses, and the nft CLI path gives the same values", async () => {
    const applier = new NftCliApplier({ netns: ns.name });
    const viaApplier = await readCounters(applier, 'ip', table);
    assert.ok(viaApplier.ok);
    const cli = await cliCounters(ns, ['table', 'ip', table]);
    for (const [name, value] of Object.entries(viaApplier.value))
      assert.deepEqual(value, cli[`${table}/${name}`], name);
    assert.deepEqual(Object.keys(viaApplier.value).sort(), ['big', 'never', 'seen']);
    const missing = await readCounters(applier, 'ip', 'nosuchtable');
    assert.equal(missing.ok, false);
    assert.match(missing.ok ? '' : missing.error, /No such file or directory/);
    // The switch turns the addon off; the CLI answers the same.
    assert.equal(
      readCountersNative(
        { family: 'ip', table, netns: ns.name },
        { VPNLB_NFT_COUNTERS_NATIVE: '0' },
      ),
      undefined,
    );
  });
});
