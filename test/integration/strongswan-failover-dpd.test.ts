/**
 * Failover with dead peer detection, real strongSwan through `vpnlb run` (kernel data plane):
 * a server is killed; its clients keep sending DPD (empty INFORMATIONAL, RFC 7296 §2.4) for
 * their old IKE_SA from port 4500 until they give up, then re-initiate (`dpd_action = restart`,
 * as Windows clients reconnect). Those stale DPD packets must not create a 4500 conntrack entry
 * towards some live server: the new handshake's IKE_AUTH would follow it while its
 * IKE_SA_INIT went where the new SPI hashes (issue 4: split handshake). The kernel drops them
 * (`ike_stale`) and every client re-establishes on one live server, 500 and 4500 together.
 *
 * strongSwan picks random SPIs, so without the fix a run fails only when some victim's old and
 * new SPIs hash to different live servers (about half the victims with two live servers); the
 * deterministic reproduction is test/integration/kernel-ike-handshake.test.ts.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { canUseConntrack } from '../../lab/netns.js';
import { requireOrSkip } from '../../lab/requirements.js';
import { canUseStrongswan } from '../../lab/strongswan/charon.js';
import { sleep } from '../../src/util/wait.js';
import { IkeLab, type LabClient } from '../../lab/topology-ike.js';
import { LabVpnlb } from '../../lab/scenarios/vpnlb-in-namespace.js';

const skip = requireOrSkip('strongSwan failover/DPD test', canUseConntrack(), canUseStrongswan());

interface StatusBody {
  services: { name: string; backends: { name: string; state: string }[] }[];
}

describe('failover with DPD restart (real strongSwan)', { skip, timeout: 150_000 }, () => {
  let lab: IkeLab;
  let vpnlb: LabVpnlb;

  const established = async (c: LabClient) =>
    (await c.charon!.listSas()).find(
      (s) => s.state === 'ESTABLISHED' && s.children.some((ch) => ch.state === 'INSTALLED'),
    );
  const backendState = async (name: string) => {
    const body = (await vpnlb.admin('/api/v1/status')) as StatusBody;
    return body.services.flatMap((s) => s.backends).find((b) => b.name === name)?.state;
  };
  const nftCounter = async (name: string) => {
    const j = JSON.parse(
      await lab.lb.exec('nft', ['-j', 'list', 'counter', 'ip', 'vpnlb', name]),
    ) as { nftables: { counter?: { packets: number } }[] };
    return j.nftables.find((x) => x.counter)?.counter?.packets ?? 0;
  };

  before(async () => {
    lab = await IkeLab.create({
      label: 'sswf',
      servers: 3,
      clients: 8,
      clientDpd: { delaySec: 2, action: 'restart' },
    });
    await lab.startServers();
    await lab.startClients();
    vpnlb = new LabVpnlb(lab, { nat: 'transparent', monitor: true });
    await vpnlb.start();
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

  it("a killed server's clients re-establish by DPD on one live server; their stale DPD is dropped", async () => {
    const serverOf = new Map<string, { server: string; spi: string }>();
    for (const c of lab.clients) {
      const r = await c.charon!.initiate('home', 20);
      assert.ok(r.ok, `${c.name} did not connect: ${r.output.slice(-500)}`);
      const sa = await established(c);
      serverOf.set(c.name, {
        server: lab.serverOfVip(sa?.localVips[0] ?? '')?.name ?? '?',
        spi: sa?.initiatorSpi ?? '',
      });
    }
    const count = (name: string) => [...serverOf.values()].filter((s) => s.server === name).length;
    const victimName = ['s1', 's2', 's3'].sort((a, b) => count(b) - count(a))[0]!;
    const victims = lab.clients.filter((c) => serverOf.get(c.name)?.server === victimName);
    const others = lab.clients.filter((c) => !victims.includes(c));
    assert.ok(victims.length > 0);

    await lab.servers.find((s) => s.name === victimName)!.charon!.kill();
    let state: string | undefined;
    for (const deadline = Date.now() + 15_000; Date.now() < deadline; await sleep(200)) {
      state = await backendState(victimName);
      if (state === 'down') break;
    }
    assert.equal(state, 'down', 'the ikev2 monitor did not mark the killed server down');

    // DPD: 2 s idle, then about 7 s of retransmissions (lab FAST_RETRANSMIT), then a new IKE_SA.
    const moved = new Map<string, string>();
    for (
      const deadline = Date.now() + 45_000;
      Date.now() < deadline && moved.size < victims.length;
      await sleep(500)
    ) {
      for (const c of victims) {
        if (moved.has(c.name)) continue;
        const sa = await established(c);
        if (sa && sa.initiatorSpi !== serverOf.get(c.name)?.spi)
          moved.set(c.name, lab.serverOfVip(sa.localVips[0] ?? '')?.name ?? '?');
      }
    }
    const conntrack = await lab.conntrack();
    const detail = `\n--- conntrack:\n${conntrack.map((e) => `${e.src}:${e.sport} -> ${e.dst}:${e.dport} => ${e.replySrc}`).join('\n')}\n--- vpnlb:\n${vpnlb.log.slice(-1500)}`;
    for (const c of victims)
      assert.ok(
        moved.has(c.name),
        `${c.name} did not re-establish after DPD (split handshake?)${detail}`,
      );
    for (const [name, server] of moved)
      assert.notEqual(server, victimName, `${name} re-established on the dead server`);

    // The stale DPD retransmissions of the old SAs were dropped, not hashed to a live server.
    assert.ok((await nftCounter('ike_stale')) > 0, `no stale IKE packet was dropped${detail}`);
    // Each re-established client's 500 and 4500 flows reach the server that holds its SA.
    for (const c of victims) {
      const mine = conntrack.filter(
        (e) => e.src === c.address && (e.dport === 500 || e.dport === 4500),
      );
      const servers = new Set(mine.map((e) => e.replySrc));
      const want = lab.servers.find((s) => s.name === moved.get(c.name))!.address4;
      assert.deepEqual(
        [...servers],
        [want],
        `${c.name}: flows reach ${[...servers].join(', ')}${detail}`,
      );
    }
    for (const c of victims)
      assert.equal(
        (await lab.ping(c, 2, 0.1)).received,
        2,
        `${c.name}: no traffic through the new tunnel`,
      );
    // Clients of the live servers never noticed.
    for (const c of others)
      assert.equal(
        (await established(c))?.initiatorSpi,
        serverOf.get(c.name)?.spi,
        `${c.name} lost its SA`,
      );
  });
});
