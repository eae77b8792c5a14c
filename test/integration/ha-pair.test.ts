/**
 * The active/standby pair with real engines (keepalived, conntrackd, strongSwan) in network
 * namespaces: the `ha-pair` lab scenario in a shorter variant (fewer clients; every failover:
 * `kill -9` of the active node's vpnlb, the active node's links down, keepalived stopped, a
 * planned `vpnlb node drain`, each followed by the fail-back to the preferred node). No tunnel
 * may be lost, no IKE SA re-established, no handshake split, no server packet may leave the pair
 * un-NATed (reply NAT covers a flow the new node does not know yet), and new
 * clients must connect during and after each event. Gap durations are reported, not asserted
 * (they depend on the host's load). Before the first event, both nodes' dashboards are read in
 * Chromium inside each node's namespace: the HA card says active on lb1 and standby on lb2,
 * with the peer, conntrackd running and the election at start that made lb1 active.
 * `VPNLB_SCREENSHOTS=DIR` saves lb1's view as DIR/dashboard-ha.png.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { checkDashboardInNamespace } from '../../lab/browser.js';
import { HA_ADMIN_PORT, type HaLab } from '../../lab/ha/ha-lab.js';
import { canUseConntrack } from '../../lab/netns.js';
import { hasFile, requireOrSkip } from '../../lab/requirements.js';
import { canUseStrongswan } from '../../lab/strongswan/charon.js';
import { runHaPair } from '../../lab/ha/ha-pair.js';

const SHOTS = process.env.VPNLB_SCREENSHOTS;

/** Each node's dashboard, as an operator sees it: its role in the pair, its peer, the sync. */
async function checkDashboards(lab: HaLab): Promise<void> {
  for (const [node, role, peer] of [
    ['lb1', 'active', 'lb2'],
    ['lb2', 'standby', 'lb1'],
  ] as const) {
    const n = lab.nodes.find((x) => x.name === node)!;
    const url = `http://127.0.0.1:${HA_ADMIN_PORT}`;
    await checkDashboardInNamespace(n.ns.name, url, n.adminTokenFile, async (page) => {
      const card = page.locator('#total-ha');
      await card.filter({ hasText: `HA ${node}` }).waitFor({ timeout: 15_000 });
      await card.locator('.value', { hasText: role }).waitFor({ timeout: 15_000 });
      await card.filter({ hasText: 'conntrackd running' }).waitFor({ timeout: 15_000 });
      const text = (await card.textContent()) ?? '';
      assert.match(text, new RegExp(`peer ${peer} \\(priority \\d+, ours \\d+\\)`), text);
      assert.match(text, /\d+ entries/, text);
      if (node === 'lb1') {
        // lb1 started first: keepalived made it active within its master-down interval.
        assert.match(text, /last failover .*→ active, elected at start/, text);
        if (SHOTS) await page.screenshot({ path: join(SHOTS, 'dashboard-ha.png'), fullPage: true });
      }
    });
  }
}

const skip = requireOrSkip(
  'active/standby pair tests',
  canUseConntrack(),
  canUseStrongswan(),
  hasFile('/usr/sbin/keepalived', 'keepalived'),
  hasFile('/usr/sbin/conntrackd', 'conntrackd'),
);

describe('active/standby pair: keepalived + conntrackd, real tunnels', {
  skip,
  timeout: 1_500_000,
}, () => {
  it('loses no tunnel when vpnlb is killed, the node dies, keepalived stops or the node is drained, nor on the fail-backs', async () => {
    const report = await runHaPair({
      label: 'hait',
      clients4: 4,
      clients6: 1,
      cgnatClients: 2,
      events: ['kill-vpnlb', 'node-down', 'keepalived-stop', 'planned-drain'],
      progress: (l) => console.log(`# ${l}`),
      atSteadyState: checkDashboards,
    });
    assert.equal(report.connected, report.clients, 'every client connected before the failovers');
    assert.deepEqual(
      report.failovers.map((f) => f.event),
      [
        'kill-vpnlb',
        'fail-back',
        'node-down',
        'fail-back',
        'keepalived-stop',
        'fail-back',
        'planned-drain',
        'fail-back',
      ],
    );
    for (const f of report.failovers) {
      const what = `${f.event} ${f.from}->${f.to}: ${JSON.stringify(f)}`;
      assert.equal(f.tunnelsBefore, report.clients, what);
      assert.equal(f.tunnelsLost, 0, what);
      assert.equal(f.tunnelsAfter, f.tunnelsBefore, what);
      assert.equal(f.ikeSasReestablished, 0, what);
      assert.equal(f.splitHandshakes, 0, what);
      // A takeover right after conntrackd was cut off or restarted may meet a flow the new node
      // does not know yet: reply NAT gives its server packet the service address (counted in
      // replyNatPackets), so none leaves with the server's own.
      assert.equal(f.leakedServerPackets, 0, what);
      assert.equal(f.newClientsTried, 2, what);
      assert.equal(f.newClientsConnected, f.newClientsTried, what);
    }
    // The cause recorded by the node that gave the addresses away (a drained one records its drain).
    assert.match(report.failovers[0]!.cause ?? '', /health check failed: vpnlb does not answer/);
    assert.match(report.failovers[2]!.cause ?? '', /link down/);
    assert.match(report.failovers[4]!.cause ?? '', /keepalived stopped/);
    assert.match(report.failovers[6]!.cause ?? '', /planned drain \(vpnlb node drain\)/);
    for (const i of [1, 3, 5, 7])
      assert.match(
        report.failovers[i]!.cause ?? '',
        /the peer took over/,
        JSON.stringify(report.failovers[i]),
      );
  });
});
