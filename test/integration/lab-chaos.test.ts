/**
 * The chaos scenario's CI variant (issue 10): `runChaos` with 40 real strongSwan tunnels for
 * 90 s of traffic and four faults on a seeded schedule: a server's charon killed (-9) and
 * restarted, vpnlb killed (-9) and started again (it adopts the kernel table), a configuration
 * change applied with `vpnlb reload` (new weights: a slot rewrite), and the bad-input flood.
 * The full run (`vpnlb lab --scenario chaos`: 200 tunnels, 10 minutes, every fault kind) is
 * run by hand; its numbers are in docs/lab.md. What is asserted is what the issue demands of
 * every run: no split handshake, no tunnel lost outside the killed server, every displaced
 * client back, one NAT-T flow per live tunnel, every flooded packet counted under its reason
 * with no loss beyond the baseline, and vpnlb's memory and descriptors not growing without
 * bound.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { canUseConntrack } from '../../lab/netns.js';
import { requireOrSkip } from '../../lab/requirements.js';
import { canUseStrongswan } from '../../lab/strongswan/charon.js';
import { chaosOptionsFor, runChaos } from '../../lab/scenarios/chaos/chaos.js';

const skip = requireOrSkip('chaos lab scenario', canUseConntrack(), canUseStrongswan());

describe('chaos scenario, CI variant (real strongSwan, kernel data plane)', {
  skip,
  timeout: 1_200_000,
}, () => {
  it('holds every tunnel through the faults and accounts for the flood', async () => {
    const seed = Number(process.env.VPNLB_CHAOS_SEED ?? 10);
    const faults = ['kill-server', 'kill-vpnlb', 'weights', 'flood'] as const;
    const r = await runChaos({
      ...chaosOptionsFor({ durationSec: 90, tunnels: 40, seed }),
      faults,
      label: 'chaci',
    });
    const detail = `\n${JSON.stringify({ ...r, samples: r.samples.length }, null, 2)}`;
    const { tunnels, established, lostOutsideKilledServers, displaced, displacedReestablished } = r;
    console.log(
      `# chaos: ${JSON.stringify({ tunnels, established, lostOutsideKilledServers, displaced, displacedReestablished, splitHandshakes: r.splitHandshakes, flood: r.flood && { accounted: r.flood.accounted, udpSent: r.flood.udpSent, udpDropsCounted: r.flood.udpDropsCounted, udpDropsExpected: r.flood.udpDropsExpected }, rssMb: [r.rssMbStart, r.rssMbEnd], fds: [r.fdsStart, r.fdsEnd] })}`,
    );
    assert.equal(r.established, r.tunnels, `not every tunnel came up${detail}`);
    assert.deepEqual(
      [...new Set(r.events.map((e) => e.kind))].sort(),
      [...faults].sort(),
      `a fault was not injected${detail}`,
    );
    assert.equal(r.vpnlbStartRetries, 0, `vpnlb needed a second start${detail}`);
    assert.equal(r.splitHandshakes, 0, `split handshakes${detail}`);
    assert.equal(
      r.lostOutsideKilledServers,
      0,
      `tunnels lost outside killed servers: ${r.lostClients.join(', ')}${detail}`,
    );
    assert.ok(r.displaced > 0, `no client was displaced: the server kill tested nothing${detail}`);
    assert.equal(
      r.displacedReestablished,
      r.displaced,
      `displaced clients that did not come back${detail}`,
    );
    assert.equal(r.aliveAtEnd, r.tunnels, `tunnels down at the end${detail}`);
    // Every tunnel holds exactly one NAT-T flow through the balancer: nothing leaked, nothing missing.
    assert.equal(
      r.conntrack.natT,
      r.aliveAtEnd,
      `NAT-T conntrack entries vs tunnels alive${detail}`,
    );
    assert.ok(r.flood, `no flood${detail}`);
    assert.equal(r.flood.accounted, true, `flood drops not accounted by reason${detail}`);
    assert.ok(
      r.flood.udpDropsExpected.ike_unrouted! > 0 &&
        r.flood.udpDropsExpected.natt_unrouted! > 0 &&
        r.flood.tcpConnections > 0,
      `the flood sent too little${detail}`,
    );
    // The windows count the tunnels never displaced: a class whose every tunnel was on the
    // killed server (4 CGNAT tunnels can be) has nothing in either window, and says nothing.
    const measured = Object.entries(r.traffic).filter(
      ([, t]) => t.baseline.sent > 0 || t.flood.sent > 0,
    );
    assert.ok(measured.length > 0, `no traffic in the windows${detail}`);
    for (const [cls, t] of measured) {
      const rate = (w: { sent: number; lost: number }) => (w.sent === 0 ? 0 : w.lost / w.sent);
      assert.ok(t.flood.sent > 0, `${cls}: no traffic in the flood window${detail}`);
      assert.ok(
        rate(t.flood) <= rate(t.baseline),
        `${cls}: loss during the flood beyond the baseline${detail}`,
      );
    }
    assert.ok(
      r.rssMbEnd < 2 * r.rssMbStart,
      `vpnlb memory grew from ${r.rssMbStart} to ${r.rssMbEnd} MiB${detail}`,
    );
    assert.ok(
      r.fdsEnd <= r.fdsStart + 16,
      `vpnlb descriptors grew from ${r.fdsStart} to ${r.fdsEnd}${detail}`,
    );
    assert.equal(r.errorsLogged, 0, `vpnlb logged errors: ${r.lastErrors.join('\n')}${detail}`);
  });
});
