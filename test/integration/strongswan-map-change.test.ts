/**
 * Map changes under traffic with real strongSwan tunnels through `vpnlb run` (kernel data
 * plane): adding a server and draining one lose no packet of established tunnels (continuous
 * pings through every tunnel), and when a server dies the health monitor takes it out and its
 * clients reconnect to the remaining servers.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { canUseConntrack } from '../../lab/netns.js';
import { requireOrSkip } from '../../lab/requirements.js';
import { canUseStrongswan } from '../../lab/strongswan/charon.js';
import { sleep } from '../../src/util/wait.js';
import { IkeLab, type LabClient } from '../../lab/topology-ike.js';
import { LabVpnlb, connectThrough } from '../../lab/scenarios/vpnlb-in-namespace.js';

const skip = requireOrSkip('strongSwan map-change tests', canUseConntrack(), canUseStrongswan());

interface StatusBody {
  services: { name: string; backends: { name: string; state: string }[] }[];
}

describe('map change under traffic (real strongSwan)', { skip, timeout: 150_000 }, () => {
  let lab: IkeLab;
  let vpnlb: LabVpnlb;
  const serverOf = new Map<string, string>();

  const connect = async (c: LabClient) => {
    const server = await connectThrough(lab, vpnlb, c);
    serverOf.set(c.name, server);
    return server;
  };
  const backendState = async (name: string) => {
    const body = (await vpnlb.admin('/api/v1/status')) as StatusBody;
    return body.services.flatMap((s) => s.backends).find((b) => b.name === name)?.state;
  };

  before(async () => {
    lab = await IkeLab.create({ label: 'sswm', servers: 3, clients: 6 });
    await lab.startServers();
    await lab.startClients();
    vpnlb = new LabVpnlb(lab, { nat: 'transparent', monitor: true, disabled: ['s3'] });
    await vpnlb.start();
    // Let the monitor see the servers up before clients arrive.
    for (
      const deadline = Date.now() + 10_000;
      Date.now() < deadline && (await backendState('s1')) !== 'up';
    )
      await sleep(200);
  });
  after(async () => {
    await vpnlb?.stop().catch(() => undefined);
    await lab?.destroy();
  });

  it('adding a server and draining one lose no packet of established tunnels', async () => {
    for (const c of lab.clients) await connect(c);
    assert.ok(
      [...serverOf.values()].every((s) => s === 's1' || s === 's2'),
      `a client reached disabled s3: ${JSON.stringify([...serverOf])}`,
    );
    // 400 requests at 50/s: 8 s, which covers both changes (asserted below).
    const pings = lab.clients.map((c) => ({ c, p: lab.startPing(c, 400, 0.02) }));
    await sleep(500);
    await vpnlb.backend('enable', 's3');
    await sleep(1500);
    await vpnlb.backend('drain', 's2');
    await sleep(500);
    for (const { c, p } of pings)
      assert.ok(p.isRunning(), `${c.name}: the ping ended before the map changes were done`);
    for (const { c, p } of pings) {
      const r = await p.result;
      assert.equal(r.sent, 400, `${c.name}: only ${r.sent} pings`);
      assert.equal(
        r.received,
        r.sent,
        `${c.name} (on ${serverOf.get(c.name)}): lost ${r.sent - r.received} of ${r.sent} pings during enable s3 + drain s2`,
      );
    }
    assert.equal(await backendState('s2'), 'draining');
  });

  it("a killed server's clients reconnect to the other servers", async () => {
    // Kill whichever of s1/s2 holds more tunnels, so that there are clients to move.
    const count = (name: string) => lab.clients.filter((c) => serverOf.get(c.name) === name).length;
    const victimName = count('s1') >= count('s2') ? 's1' : 's2';
    const victim = lab.servers.find((s) => s.name === victimName)!;
    const victims = lab.clients.filter((c) => serverOf.get(c.name) === victimName);
    assert.ok(victims.length > 0);
    const rewrites = () => vpnlb.log.split('slots rewritten').length;
    const rewritesBefore = rewrites();
    await victim.charon!.kill();
    let state: string | undefined;
    for (const deadline = Date.now() + 15_000; Date.now() < deadline; await sleep(200)) {
      state = await backendState(victimName);
      if (state === 'down') break;
    }
    assert.equal(state, 'down', 'the ikev2 monitor did not mark the killed server down');
    // The status shows `down` as soon as the controller decides; the data plane then retires
    // the server's SAs, deletes its conntrack entries, rewrites the map's slots and deletes the
    // entries again. Wait for the rewrite (bounded), not the first deletion: a client that
    // reconnects in between is still sent to the dead server by the old slots (until its
    // retransmission), which a CI run may have seen.
    for (
      const deadline = Date.now() + 5000;
      Date.now() < deadline && rewrites() === rewritesBefore;
    )
      await sleep(100);
    assert.ok(
      rewrites() > rewritesBefore,
      `the slots were not rewritten:\n${vpnlb.log.slice(-2000)}`,
    );
    for (const c of victims) {
      // The client notices its server is gone and dials the VIP again. Its charon is stopped
      // with SIGTERM, so it first sends a DELETE for its old IKE_SA from port 4500: the kernel
      // must drop it (the SA's server is dead, `ike_stale`) rather than let it create a 4500
      // conntrack entry towards another server that the new IKE_AUTH would follow.
      await lab.startClient(c);
      const server = await connect(c);
      assert.notEqual(server, victimName, `${c.name} reconnected to the dead server`);
      // s2 is draining: it takes no new clients.
      assert.notEqual(server, 's2', `${c.name} reconnected to the draining server`);
      const p = await lab.ping(c, 2, 0.1);
      assert.equal(p.received, 2);
    }
  });
});
