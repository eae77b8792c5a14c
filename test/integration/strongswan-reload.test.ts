/**
 * Hitless configuration reload with real strongSwan tunnels through `vpnlb run` (kernel data
 * plane): while every client pings through its tunnel, the configuration file gains a server
 * and a weight changes (`vpnlb reload`), then another weight (SIGHUP): no packet of any
 * established tunnel is lost. A file with errors is refused with its problems listed and the
 * running configuration stays.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { canUseConntrack } from '../../lab/netns.js';
import { requireOrSkip } from '../../lab/requirements.js';
import { canUseStrongswan } from '../../lab/strongswan/charon.js';
import { sleep } from '../../src/util/wait.js';
import { IkeLab, type LabClient } from '../../lab/topology-ike.js';
import { LabVpnlb, connectThrough } from '../../lab/scenarios/vpnlb-in-namespace.js';
import { vpnlbArgv } from '../../lab/vpnlb-process.js';

const skip = requireOrSkip('strongSwan reload tests', canUseConntrack(), canUseStrongswan());

interface StatusBody {
  services: { name: string; backends: { name: string; state: string; weight: number }[] }[];
}

describe('hitless reload under traffic (real strongSwan)', { skip, timeout: 240_000 }, () => {
  let lab: IkeLab;
  let vpnlb: LabVpnlb;
  const serverOf = new Map<string, string>();

  const connect = async (c: LabClient) => {
    serverOf.set(c.name, await connectThrough(lab, vpnlb, c));
  };
  const backends = async () =>
    ((await vpnlb.admin('/api/v1/status')) as StatusBody).services.flatMap((s) => s.backends);

  before(async () => {
    lab = await IkeLab.create({ label: 'sswr', servers: 3, clients: 6 });
    await lab.startServers();
    await lab.startClients();
    vpnlb = new LabVpnlb(lab, { nat: 'transparent', monitor: true, exclude: ['s3'] });
    await vpnlb.start();
    for (
      const deadline = Date.now() + 10_000;
      Date.now() < deadline && (await backends()).find((b) => b.name === 's1')?.state !== 'up';
    )
      await sleep(200);
  });
  after(async () => {
    await vpnlb?.stop().catch(() => undefined);
    await lab?.destroy();
  });

  it('a reload that adds a server and changes weights loses no packet of established tunnels', async (t) => {
    for (const c of lab.clients) await connect(c);
    assert.ok(
      [...serverOf.values()].every((s) => s === 's1' || s === 's2'),
      JSON.stringify([...serverOf]),
    );
    // 1000 requests at 50/s: 20 s, which covers both reloads (asserted below) even on a busy
    // host, where re-adopting the table (65537 map elements) takes seconds rather than 0.3 s.
    const pings = lab.clients.map((c) => ({ c, p: lab.startPing(c, 1000, 0.02) }));
    await sleep(500);
    vpnlb.rewriteConfig({ nat: 'transparent', monitor: true, weights: { s1: 3 } });
    const out = await vpnlb.reload();
    assert.match(out, /backend s3 added/);
    assert.match(out, /backend s1: weight 1 → 3/);
    assert.match(out, /re-adopted its table/);
    await sleep(1000);
    vpnlb.rewriteConfig({ nat: 'transparent', monitor: true, weights: { s1: 3, s2: 2 } });
    vpnlb.sighup();
    for (
      const deadline = Date.now() + 5000;
      Date.now() < deadline && !/backend s2: weight 1 → 2/.test(vpnlb.log);
    )
      await sleep(100);
    assert.match(vpnlb.log, /configuration reloaded in \d+ ms/);
    assert.match(vpnlb.log, /backend s2: weight 1 → 2/);
    await sleep(500);
    for (const { c, p } of pings)
      assert.ok(p.isRunning(), `${c.name}: the ping ended before the reloads were done`);
    for (const { c, p } of pings) {
      const r = await p.result;
      assert.equal(r.sent, 1000, `${c.name}: only ${r.sent} pings`);
      assert.equal(
        r.received,
        r.sent,
        `${c.name} (on ${serverOf.get(c.name)}): lost ${r.sent - r.received} of ${r.sent} pings across the reloads`,
      );
    }
    const now = await backends();
    assert.deepEqual(
      now.map((b) => [b.name, b.weight]),
      [
        ['s1', 3],
        ['s2', 2],
        ['s3', 1],
      ],
    );
    for (
      const deadline = Date.now() + 5000;
      Date.now() < deadline && (await backends()).find((b) => b.name === 's3')?.state !== 'up';
    )
      await sleep(200);
    assert.equal(
      (await backends()).find((b) => b.name === 's3')?.state,
      'up',
      'the monitor did not find the added server up',
    );
    t.diagnostic(
      `reload durations (ms): ${[...vpnlb.log.matchAll(/configuration reloaded in (\d+) ms/g)].map((m) => m[1]).join(', ')}; pings: ${pings.length} tunnels x 1000, 0 lost`,
    );
    // The tunnels still work after the reloads.
    for (const c of lab.clients)
      assert.equal((await lab.ping(c, 2, 0.1)).received, 2, `${c.name} after the reloads`);
  });

  it('a file with errors is refused, every problem listed; the running configuration stays', async () => {
    lab.writeFile(
      'vpnlb.yaml',
      '{"pools": {"farm4": {"backends": [{"name": "s1", "address": "198.18.999.1"}]}}, "services": {"ikev2": [{"name": "ike4", "virtualIp": "not-an-ip", "pool": "farm4"}]}}\n',
    );
    // The CLI reaches the running vpnlb through the socket the running configuration named.
    const [node, ...args] = vpnlbArgv(['reload', '--admin', `unix:${vpnlb.configPath}.sock`]);
    await assert.rejects(lab.lb.exec(node!, args), (err: Error) => {
      assert.match(err.message, /pools\.farm4\.backends\[0\]\.address/);
      assert.match(err.message, /services\.ikev2\[0\]\.virtualIp/);
      assert.match(err.message, /the running configuration stays/);
      return true;
    });
    assert.deepEqual(
      (await backends()).map((b) => b.name),
      ['s1', 's2', 's3'],
    );
  });
});
