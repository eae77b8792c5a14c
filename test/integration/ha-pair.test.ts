/**
 * The active/standby pair with real engines (keepalived, conntrackd, strongSwan) in network
 * namespaces: the `ha-pair` lab scenario in a shorter variant (fewer clients; every failover:
 * `kill -9` of the active node's vpnlb, the active node's links down, keepalived stopped, a
 * planned `vpnlb node drain`, each followed by the fail-back to the preferred node). No tunnel
 * may be lost, no IKE SA re-established, no handshake split, no server packet may leave the pair
 * un-NATed (reply NAT covers a flow the new node does not know yet), and new
 * clients must connect during and after each event. Gap durations are reported, not asserted
 * (they depend on the host's load).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { canUseConntrack } from '../../lab/netns.js';
import { hasFile, requireOrSkip } from '../../lab/requirements.js';
import { canUseStrongswan } from '../../lab/strongswan/charon.js';
import { runHaPair } from '../../lab/ha/ha-pair.js';

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
