/**
 * N active nodes behind ECMP with real engines (BIRD 2 on the router and on every node,
 * strongSwan servers and clients) in network namespaces: the `ecmp` lab scenario in a shorter
 * variant (fewer clients, every event once). Asserted: every client connects, the servers see
 * the clients' real addresses, no split handshake and no server address leaks; each event moves
 * the router's route (a drained, killed or server-less node is withdrawn, an added node
 * announced); BIRD does not outlive a `kill -9` of its node's vpnlb; no `source-ip` tunnel is
 * lost in any event; and no `ike-spi` tunnel is lost by a planned drain or an added node (the
 * nodes exchange their pins, `bgp.flowSync`). `ike-spi` losses at a kill or a server-less node
 * are reported, not asserted (docs/scale-out.md says what the design reaches and why). Gap
 * durations are reported, not asserted. Once every tunnel is up, the first node's dashboard is
 * read in Chromium inside that node's namespace: its BGP card (every address announced, the
 * router's session up) and its flow-sync card (the running nodes pulled, the spare node not
 * running yet shown failing). `VPNLB_SCREENSHOTS=DIR` saves that view as DIR/dashboard-ecmp.png.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { checkDashboardInNamespace } from '../../lab/browser.js';
import type { EcmpLab, EcmpNode } from '../../lab/ecmp/ecmp-lab.js';
import { canUseConntrack } from '../../lab/netns.js';
import { hasFile, requireOrSkip } from '../../lab/requirements.js';
import { canUseStrongswan } from '../../lab/strongswan/charon.js';
import { runEcmp } from '../../lab/ecmp/ecmp.js';

const SHOTS = process.env.VPNLB_SCREENSHOTS;

/** The first node's dashboard, as an operator sees it, with the other nodes running. */
async function checkDashboard(lab: EcmpLab, active: readonly EcmpNode[]): Promise<void> {
  const node = active[0]!;
  const spare = lab.nodes.find((n) => !active.includes(n))!;
  await checkDashboardInNamespace(
    node.ns.name,
    node.adminUrl,
    node.adminTokenFile,
    async (page) => {
      const bgp = page.locator('#total-bgp');
      await bgp.filter({ hasText: `BGP ${node.name}` }).waitFor({ timeout: 15_000 });
      await bgp.filter({ hasText: '3 / 3 announced' }).waitFor({ timeout: 15_000 });
      await bgp.filter({ hasText: 'rtr up' }).waitFor({ timeout: 15_000 });
      const sync = page.locator('#total-flow-sync');
      const others = active.filter((n) => n !== node);
      await sync
        .filter({ hasText: `${others.length} / ${lab.nodes.length - 1} nodes` })
        .waitFor({ timeout: 15_000 });
      const text = (await sync.textContent()) ?? '';
      for (const n of others) assert.match(text, new RegExp(`${n.name} pulled`), text);
      assert.match(text, new RegExp(`${spare.name} failing: `), text);
      assert.doesNotMatch(text, /starting/, text);
      if (SHOTS) await page.screenshot({ path: join(SHOTS, 'dashboard-ecmp.png'), fullPage: true });
    },
  );
}

const skip = requireOrSkip(
  'ECMP scale-out tests',
  canUseConntrack(),
  canUseStrongswan(),
  hasFile('/usr/sbin/bird', 'bird2'),
);

describe('ECMP scale-out: BIRD 2 announcements gated by vpnlb, real tunnels', {
  skip,
  timeout: 1_800_000,
}, () => {
  it('loses no source-ip tunnel when a node is drained, added, killed or loses its servers, and no ike-spi tunnel when one is drained or added', async () => {
    const report = await runEcmp({
      label: 'ecit',
      clients4: 6,
      clients6: 1,
      cgnatClients: 2,
      progress: (l) => console.log(`# ${l}`),
      atSteadyState: checkDashboard,
    });
    console.log(`# ${JSON.stringify(report)}`);
    assert.equal(report.connected, report.clients, 'every client connected');
    assert.equal(report.splitHandshakes, 0);
    assert.equal(
      report.clientAddressesSeenByServers,
      report.expectedClientAddresses,
      'the servers see every real client address',
    );
    assert.equal(report.nodeAddressesSeenByServers, 0);
    assert.deepEqual(
      [...new Set(report.events.map((e) => e.event))],
      ['planned-drain', 'add-node', 'kill-node', 'all-backends-down'],
    );
    for (const e of report.events) {
      const what = `${e.event} ${e.node} ${e.affinity}: ${JSON.stringify(e)}`;
      assert.notEqual(e.withdrawSeconds, null, `the router's route changed: ${what}`);
      assert.equal(e.splitHandshakes, 0, what);
      assert.equal(e.leakedServerPackets, 0, what);
      if (e.affinity === 'source-ip') {
        assert.ok(e.tunnelsBefore > 0, what);
        assert.equal(e.tunnelsLost, 0, what);
      }
      if (e.affinity === 'ike-spi' && (e.event === 'planned-drain' || e.event === 'add-node')) {
        assert.ok(e.tunnelsBefore > 0, what);
        assert.equal(e.tunnelsLost, 0, what);
      }
    }
    const kill = report.events.find((e) => e.event === 'kill-node')!;
    assert.equal(kill.detail.birdSurvived, false, 'BIRD died with its vpnlb bgp');
    const drain = report.events.find((e) => e.event === 'planned-drain')!;
    assert.equal(
      (drain.detail.drain as { timedOut: boolean }).timedOut,
      false,
      'the drain saw the clients leave',
    );
  });
});
