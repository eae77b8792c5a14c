/**
 * Real strongSwan peers through the kernel data plane (`vpnlb run`, nftables in the balancer
 * namespace): tunnels with ping through them, real client addresses at the servers, 500/4500
 * on one server, CGNAT clients placed by SPI with `ike-spi` vs one server with `source-ip`,
 * IPv6 through an IPv6 VIP, and a hitless control-plane `kill -9` + restart. One lab for the
 * whole file.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { canUseConntrack } from '../../lab/netns.js';
import { requireOrSkip } from '../../lab/requirements.js';
import { canUseStrongswan } from '../../lab/strongswan/charon.js';
import { IkeLab, type LabClient } from '../../lab/topology-ike.js';
import {
  distinctRemoteAddresses,
  serverSas,
  traceClientFlows,
} from '../../lab/scenarios/observe.js';
import { LabVpnlb } from '../../lab/scenarios/vpnlb-in-namespace.js';
import { loadConfigFile } from '../../src/config/load-config.js';
import { Controller } from '../../src/control/controller.js';
import { decide } from '../../src/control/decide.js';

const skip = requireOrSkip('strongSwan tunnel tests', canUseConntrack(), canUseStrongswan());

describe('strongSwan through vpnlb (kernel data plane)', { skip, timeout: 170_000 }, () => {
  let lab: IkeLab;
  let vpnlb: LabVpnlb | undefined;

  before(async () => {
    lab = await IkeLab.create({
      label: 'sswt',
      servers: 3,
      clients: 4,
      cgnatClients: 8,
      ipv6Clients: 1,
    });
    await lab.startServers();
    await lab.startClients();
  });
  after(async () => {
    await vpnlb?.stop().catch(() => undefined);
    await lab?.destroy();
  });

  const connectAll = async (clients: readonly LabClient[]) => {
    const results = await Promise.all(clients.map((c) => c.charon!.initiate('home', 20)));
    for (const [i, r] of results.entries())
      assert.ok(
        r.ok,
        `${clients[i]!.name} did not connect: ${r.output.slice(-600)}\n--- vpnlb:\n${vpnlb?.log.slice(-2000)}`,
      );
  };
  const serverOfClient = async (c: LabClient) => {
    const sa = (await c.charon!.listSas()).find((s) => s.state === 'ESTABLISHED');
    return lab.serverOfVip(sa?.localVips[0] ?? '')?.name;
  };
  const cgnatFirst = () => lab.clients.filter((c) => c.behindCgnat).slice(0, 2);
  const cgnatLater = () => lab.clients.filter((c) => c.behindCgnat).slice(2);
  const sharedSet = () => lab.lb.exec('nft', ['list', 'set', 'ip', 'vpnlb', 'natt_shared']);
  const waitUntilShared = async (address: string) => {
    const until = Date.now() + 10_000;
    while (!(await sharedSet()).includes(address)) {
      if (Date.now() > until)
        assert.fail(`${address} never appeared in natt_shared: ${await sharedSet()}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  };

  it('transparent + ike-spi: every client connects, pings through its tunnel, and its server saw its real address', async () => {
    vpnlb = new LabVpnlb(
      lab,
      { nat: 'transparent', affinity: 'ike-spi', ipv6: true },
      'ike-spi.yaml',
    );
    await vpnlb.start();
    // The CGNAT address's first two clients with the others, its other six once it is shared
    // (two live NAT-T flows): until then a new client of the address may join the first one's
    // server, as a device's second tunnel does, and how many do depends on timing alone.
    await connectAll([...lab.clients.filter((c) => !c.behindCgnat), ...cgnatFirst()]);
    await waitUntilShared(lab.cgnatAddress);
    await connectAll(cgnatLater());
    for (const c of lab.clients) {
      const p = await lab.ping(c, 3, 0.1);
      assert.equal(p.received, 3, `${c.name}: ping through the tunnel: ${p.received}/3`);
    }
    const sas = await serverSas(lab);
    for (const c of lab.clients) {
      const server = await serverOfClient(c);
      assert.ok(server, `${c.name}: no established SA`);
      const expected = c.behindCgnat ? lab.cgnatAddress : c.address;
      const atServer = sas.filter(
        (x) => x.server === server && x.sa.state === 'ESTABLISHED' && x.sa.remoteHost === expected,
      );
      assert.ok(
        atServer.length > 0,
        `${server} did not see ${c.name}'s address ${expected}: ${JSON.stringify(sas.map((x) => [x.server, x.sa.remoteHost]))}`,
      );
    }
    // Direct clients (v4 and v6) each appear with their own address; CGNAT ones share one.
    const direct = lab.clients.filter((c) => !c.behindCgnat).map((c) => c.address);
    const seen = distinctRemoteAddresses(sas);
    for (const a of direct) assert.ok(seen.includes(a), `servers never saw ${a}`);
  });

  it('UDP 500 and 4500 of every client reached the same server (balancer conntrack)', async () => {
    const flows = await traceClientFlows(lab, lab.clients);
    for (const f of flows) {
      const c = lab.clients.find((x) => x.name === f.client)!;
      // ike-spi gives port-500 entries 5 s (a retry is placed afresh): one may be gone already;
      // where it is still there, it went where the 4500 flow goes.
      assert.equal(
        f.servers4500.length,
        1,
        `${f.client}: 4500 reached ${JSON.stringify(f.servers4500)}`,
      );
      if (f.servers500.length > 0)
        assert.deepEqual(
          f.servers500,
          f.servers4500,
          `${f.client}: 500 → ${f.servers500}, 4500 → ${f.servers4500}`,
        );
      assert.equal(
        f.servers4500[0],
        await serverOfClient(c),
        `${f.client}: the tunnel's server differs from the flows' server`,
      );
    }
  });

  it('IPv6 clients connect through the IPv6 virtual IP', async () => {
    const v6 = lab.clients.filter((c) => c.family === 6);
    assert.ok(v6.length > 0);
    for (const c of v6) {
      const sa = (await c.charon!.listSas()).find((s) => s.state === 'ESTABLISHED');
      assert.equal(sa?.remoteHost, '2001:db8:ffff::1');
      assert.match(sa?.localVips[0] ?? '', /^2001:db8:10:/);
    }
  });

  // One device has one NAT-T flow; the CGNAT address has eight: from its second live flow on it
  // is shared (natt_shared), and its new clients are placed by SPI even while all its tunnels
  // sit on one server. The six that connected once it was shared must each sit on the server
  // its IKE SPI hashes to (the decision function the kernel's table is rendered from), and so
  // spread as the hash spreads them: checked exactly, not by chance.
  it('CGNAT site with ike-spi affinity: the address is counted shared and its later clients are placed by SPI, over more than one server', async () => {
    const snap = new Controller(loadConfigFile(vpnlb!.configPath)).snapshot();
    const ike4 = snap.services.find((x) => x.name === 'ike4')!;
    const expected: string[] = [];
    for (const c of cgnatLater()) {
      const sa = (await c.charon!.listSas()).find((x) => x.state === 'ESTABLISHED');
      assert.ok(sa, `${c.name}: no established SA`);
      const want = decide(ike4, {
        address: lab.cgnatAddress,
        spi: Buffer.from(sa.initiatorSpi, 'hex'),
        natTFlows: 2,
      });
      const got = lab.serverOfVip(sa.localVips[0] ?? '')?.name ?? '?';
      assert.equal(want.keyKind, 'ike-spi');
      assert.equal(got, want.backend?.name, `${c.name} (SPI ${sa.initiatorSpi}) sits on ${got}`);
      expected.push(want.backend!.name);
    }
    const spread = new Set(
      await Promise.all(lab.clients.filter((c) => c.behindCgnat).map(serverOfClient)),
    );
    assert.ok(
      spread.size > 1 || new Set(expected).size === 1,
      `all CGNAT clients landed on ${[...spread]} (their SPIs hash to ${expected})`,
    );
    const shared = await sharedSet();
    assert.ok(
      shared.includes(lab.cgnatAddress),
      `the CGNAT address ${lab.cgnatAddress} is not in natt_shared: ${shared}`,
    );
    // A direct client has one NAT-T flow: never shared.
    for (const c of lab.clients.filter((x) => !x.behindCgnat && x.family === 4))
      if (shared.includes(`${c.address} `) || shared.includes(`${c.address},`))
        assert.fail(
          `${c.address} (one device) is in natt_shared: ${shared}\nits flows: ${await lab.lb.exec('conntrack', ['-L', '-p', 'udp', '--orig-src', c.address]).catch((e) => String(e))}`,
        );
  });

  it('control plane kill -9 and restart under a continuous ping: no loss', async () => {
    const c = lab.clients.find((x) => !x.behindCgnat && x.family === 4)!;
    const restart = (async () => {
      await new Promise((r) => setTimeout(r, 500));
      await vpnlb!.kill9();
      await new Promise((r) => setTimeout(r, 500));
      vpnlb = new LabVpnlb(
        lab,
        { nat: 'transparent', affinity: 'ike-spi', ipv6: true },
        'ike-spi.yaml',
      );
      // However long a start takes on a loaded host: the ping covers it (below).
      await vpnlb.start();
      await new Promise((r) => setTimeout(r, 500));
    })();
    // 50 pings/s in back-to-back runs of 5 s from before the kill until the new process runs;
    // each run waits for its last reply, so ending a run loses nothing.
    let restarted = false;
    const done = restart.finally(() => (restarted = true));
    done.catch(() => undefined); // awaited below, after the pings
    const p = { sent: 0, received: 0, runs: 0 };
    do {
      const r = await lab.startPing(c, 250, 0.02).result;
      p.sent += r.sent;
      p.received += r.received;
      p.runs++;
    } while (!restarted);
    await done;
    assert.match(vpnlb!.log, /adopted the existing nftables table/);
    assert.ok(p.sent >= 250, `${p.sent} pings`);
    assert.equal(
      p.received,
      p.sent,
      `lost ${p.sent - p.received} of ${p.sent} pings (${p.runs} runs) across kill -9 + restart`,
    );
    // New clients are still balanced by the restarted control plane's table.
    await lab.startClient(c);
    await connectAll([c]);
  });

  it('CGNAT site with source-ip affinity: all its clients land on one server', async () => {
    await vpnlb!.stop();
    await lab.startServers();
    await lab.startClients();
    await lab.flushConntrack();
    vpnlb = new LabVpnlb(lab, { nat: 'transparent', affinity: 'source-ip' }, 'source-ip.yaml');
    await vpnlb.start();
    const cgnat = lab.clients.filter((c) => c.behindCgnat);
    await connectAll(cgnat);
    const servers = new Set(await Promise.all(cgnat.map(serverOfClient)));
    assert.equal(
      servers.size,
      1,
      `CGNAT clients spread over ${[...servers]} with source-ip affinity`,
    );
    for (const f of await traceClientFlows(lab, cgnat))
      assert.equal(f.split, false, `${f.client} split`);
  });
});
