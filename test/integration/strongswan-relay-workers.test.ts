/**
 * The userspace IKEv2 relay in worker processes, with real strongSwan through `vpnlb run`
 * (dataplane userspace, full NAT, `workers: 2`): each client runs an Always On VPN device and
 * user tunnel on shared sockets. Both tunnels of every client land on one server and pass
 * traffic both ways (pings from the client, and from the server to the client's virtual
 * address); the clients are served by both workers (the kernel picks the worker by source
 * address). Then the busiest server is drained, as for maintenance, and every client roams to
 * a new address (MOBIKE) that the other worker serves: its tunnels keep their SAs, their
 * server and their traffic. For the drained server's clients only the IKE SA sessions that the
 * workers share can do that: placed afresh, an SA goes to another server (drained servers take
 * no new sessions), which does not know it.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { canUseConntrack } from '../../lab/netns.js';
import { requireOrSkip } from '../../lab/requirements.js';
import { canUseStrongswan } from '../../lab/strongswan/charon.js';
import { TUNNEL_TARGET_V4 } from '../../lab/strongswan/swanctl-conf.js';
import { IkeLab, type LabClient } from '../../lab/topology-ike.js';
import { LabVpnlb } from '../../lab/scenarios/vpnlb-in-namespace.js';
import {
  bothOnOneServerWithTraffic,
  connectUser,
  tunnelServer,
} from '../../lab/scenarios/device-user.js';
import {
  reuseportUnavailable,
  workerOfAddress,
} from '../../src/dataplane/workers/reuseport-group.js';
import { sleep } from '../../src/util/wait.js';

const WORKERS = 2;
const noGroups = reuseportUnavailable();
const skip = requireOrSkip(
  'strongSwan through the relay in worker processes',
  canUseConntrack(),
  canUseStrongswan(),
  noGroups === undefined ? { ok: true } : { ok: false, reason: noGroups },
);

describe(`relay in ${WORKERS} worker processes: device + user tunnels and MOBIKE (real strongSwan)`, {
  skip,
  timeout: 240_000,
}, () => {
  let lab: IkeLab;
  let vpnlb: LabVpnlb;

  /** Pings from the client's server to the client's virtual address, through the tunnel. */
  const pingFromServer = async (c: LabClient): Promise<number> => {
    const sa = (await c.charon!.listSas()).find(
      (s) => s.connection === 'device' && s.state === 'ESTABLISHED',
    );
    const vip = sa?.localVips[0];
    const server = vip ? lab.serverOfVip(vip) : undefined;
    if (!vip || !server) return 0;
    const out = await server.ns
      .exec('ping', ['-n', '-q', '-c', '2', '-i', '0.2', '-W', '1', '-I', TUNNEL_TARGET_V4, vip])
      .catch((e: Error) => e.message);
    return Number(/(\d+) received/.exec(out)?.[1] ?? 0);
  };

  before(async () => {
    lab = await IkeLab.create({ label: 'srw', servers: 3, clients: 4, tunnels: 'device-user' });
    await lab.startServers();
    await lab.startClients();
    vpnlb = new LabVpnlb(lab, { nat: 'full', dataplane: 'userspace', workers: WORKERS });
    await vpnlb.start();
  });
  after(async () => {
    await vpnlb?.stop().catch(() => undefined);
    await lab?.destroy();
  });

  it('both tunnels of each client are on one server, with traffic from the client and from the server; both workers serve', async () => {
    const workers = new Set(lab.clients.map((c) => workerOfAddress(c.currentAddress, WORKERS)));
    assert.equal(workers.size, WORKERS, 'the lab gives both workers clients');
    const device = await Promise.all(lab.clients.map((c) => c.charon!.initiate('device', 20)));
    for (const [i, r] of device.entries())
      assert.ok(
        r.ok,
        `${lab.clients[i]!.name}: device tunnel: ${r.output.slice(-300)}\n${vpnlb.log.slice(-2000)}`,
      );
    for (const c of lab.clients) {
      const u = await connectUser(c, 2);
      assert.ok(u.connected, `${c.name}: user tunnel`);
    }
    for (const c of lab.clients) {
      assert.ok(
        await bothOnOneServerWithTraffic(lab, c),
        `${c.name}: both tunnels on one server, with traffic`,
      );
      assert.ok(
        (await pingFromServer(c)) > 0,
        `${c.name}: its server reaches it through the tunnel`,
      );
    }
    const status = (await vpnlb.admin('/api/v1/status')) as {
      services: { name: string; dataplane?: string }[];
    };
    assert.match(JSON.stringify(status), /userspace-relay \(2 workers\)/);
  });

  it('clients that roam to an address the other worker serves keep their SAs, server and traffic (MOBIKE), also on a draining server', async () => {
    const servers = await Promise.all(
      lab.clients.map(async (c) => (await tunnelServer(lab, c, 'device'))?.server),
    );
    const load = new Map<string, number>();
    for (const s of servers) if (s) load.set(s, (load.get(s) ?? 0) + 1);
    const [drained] = [...load.entries()].sort((a, b) => b[1] - a[1])[0]!;
    await vpnlb.backend('drain', drained);
    let crossed = 0;
    let crossedFromDrained = 0;
    for (const [k, c] of lab.clients.entries()) {
      const before = await Promise.all([
        tunnelServer(lab, c, 'device'),
        tunnelServer(lab, c, 'user'),
      ]);
      assert.ok(before[0] && before[1], `${c.name}: both tunnels up before the move`);
      const from = workerOfAddress(c.currentAddress, WORKERS);
      const moved = await lab.moveClient(c);
      if (workerOfAddress(moved, WORKERS) !== from) {
        crossed++;
        if (servers[k] === drained) crossedFromDrained++;
      }
      // charon notices the new address and announces it (UPDATE_SA_ADDRESSES).
      let moves = 0;
      for (
        const deadline = Date.now() + 20_000;
        Date.now() < deadline && moves < 2;
        await sleep(500)
      ) {
        const sas = await c.charon!.listSas().catch(() => []);
        moves = sas.filter((s) => s.state === 'ESTABLISHED' && s.localHost === moved).length;
      }
      assert.equal(moves, 2, `${c.name}: both IKE_SAs moved to ${moved}`);
      const after = await Promise.all([
        tunnelServer(lab, c, 'device'),
        tunnelServer(lab, c, 'user'),
      ]);
      for (const [i, conn] of (['device', 'user'] as const).entries())
        assert.deepEqual(
          after[i],
          before[i],
          `${c.name}: the ${conn} tunnel kept its SA and server`,
        );
      assert.ok(await bothOnOneServerWithTraffic(lab, c), `${c.name}: traffic after the move`);
      assert.ok((await pingFromServer(c)) > 0, `${c.name}: its server reaches it after the move`);
    }
    assert.ok(crossed > 0, 'at least one client moved to the other worker');
    assert.ok(
      crossedFromDrained > 0,
      `at least one client of draining ${drained} moved to the other worker`,
    );
  });
});
