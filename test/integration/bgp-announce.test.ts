/**
 * The announcement gate with real BIRD 2 on both sides and no vpnlb data plane: a router
 * namespace (BIRD, ECMP into its kernel table) and two node namespaces, each driven by a
 * `BgpSupervisor` whose status source the test controls. Asserted: both nodes announced give
 * the router two next hops; a node whose service has no usable server, a drained node, and a
 * node whose vpnlb stops answering are withdrawn; a healthy node announces again; stopping a
 * supervisor withdraws and stops its BIRD. Route-change times are printed, not asserted.
 */
import type { ChildProcess } from 'node:child_process';
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { canUseNamespaces, run, Topology } from '../../lab/netns.js';
import { hasFile, requireOrSkip } from '../../lab/requirements.js';
import { checkConfigText } from '../../src/config/load-config.js';
import { renderBgpNodeFiles } from '../../src/bgp/render-node.js';
import { BgpSupervisor } from '../../src/bgp/supervisor.js';
import { silentLogger } from '../../src/log/logger.js';
import { sleep, waitUntil } from '../../src/util/wait.js';

const skip = requireOrSkip(
  'BGP announcement tests',
  canUseNamespaces(),
  hasFile('/usr/sbin/bird', 'bird2'),
);

const VIP = '198.19.0.1';

describe('BGP announcements gated by health, real BIRD on a router and two nodes', {
  skip,
  timeout: 300_000,
}, () => {
  it('announces healthy nodes, withdraws a server-less, drained or silent one, and withdraws on stop', async () => {
    const topo = Topology.create('bgpit');
    const dir = mkdtempSync(join(tmpdir(), 'vpnlb-bgpit-'));
    let router: ChildProcess | undefined;
    const supervisors: BgpSupervisor[] = [];
    try {
      const rtr = await topo.addNamespace('rtr');
      const nodes = ['lb1', 'lb2'];
      for (const [i, n] of nodes.entries()) {
        await topo.addNamespace(n);
        await topo.link({
          a: 'rtr',
          b: n,
          aAddresses: [`198.18.${21 + i}.1/24`],
          bAddresses: [`198.18.${21 + i}.2/24`],
        });
      }
      writeFileSync(
        join(dir, 'rtr.conf'),
        [
          'router id 198.18.21.1;',
          'protocol device {}',
          'protocol kernel { ipv4 { import none; export all; }; merge paths yes; }',
          ...nodes.map(
            (n, i) =>
              `protocol bgp ${n} { local as 65000; neighbor 198.18.${21 + i}.2 as 65001; hold time 3; keepalive time 1; connect delay time 1; connect retry time 2; error wait time 1, 10; ipv4 { import all; export none; }; }`,
          ),
          '',
        ].join('\n'),
      );
      router = rtr.spawn(
        '/usr/sbin/bird',
        ['-f', '-c', join(dir, 'rtr.conf'), '-s', join(dir, 'rtr.ctl'), '-P', join(dir, 'rtr.pid')],
        { stdio: 'ignore' },
      );

      const yaml = (
        node: string,
        i: number,
      ) => `pools: { p: { backends: [{ name: s1, address: 198.18.1.11 }] } }
services: { ikev2: [{ name: ike4, virtualIp: ${VIP}, pool: p, affinity: source-ip }] }
bgp:
  asn: 65001
  node: ${node}
  bfd: false
  checkInterval: 300ms
  nodes: [{ name: lb1, routerId: 198.18.21.2, peers: [{ name: r1, address: 198.18.21.1, asn: 65000 }] }, { name: lb2, routerId: 198.18.22.2, peers: [{ name: r2, address: 198.18.22.1, asn: 65000 }] }]
  runDir: ${join(dir, node)}
  replyNat: ${i === 0}
`;
      const health: Record<string, 'up' | 'down' | 'silent'> = { lb1: 'up', lb2: 'up' };
      for (const [i, n] of nodes.entries()) {
        const r = checkConfigText(yaml(n, i), `${n}.yaml`);
        assert.ok(r.config, JSON.stringify(r.issues));
        const files = renderBgpNodeFiles(r.config);
        const readStatus = async () => {
          if (health[n] === 'silent') throw new Error('connect ECONNREFUSED 127.0.0.1:8088');
          return {
            services: [
              { name: 'ike4', dataplaneInSync: true, backends: [{ name: 's1', state: health[n] }] },
            ],
          };
        };
        const s = new BgpSupervisor({
          node: files,
          logger: silentLogger(),
          readStatus,
          netns: topo.ns(n).name,
        });
        await s.start();
        supervisors.push(s);
      }
      const hops = async () => {
        const out = await rtr.exec('ip', ['-4', 'route', 'show', VIP]).catch(() => '');
        return nodes.filter((_, i) => out.includes(`via 198.18.${21 + i}.2 `));
      };
      const waitHops = async (what: string, want: string[]) => {
        const ms = await waitUntil(
          what,
          async () => JSON.stringify(await hops()) === JSON.stringify(want),
          60_000,
          20,
        );
        console.log(`# ${what}: ${Math.round(ms)} ms`);
      };
      await waitHops('both nodes announced', ['lb1', 'lb2']);

      health.lb1 = 'down';
      await waitHops('lb1 without a usable server withdrawn', ['lb2']);
      health.lb1 = 'up';
      await waitHops('lb1 healthy again announced', ['lb1', 'lb2']);

      writeFileSync(join(dir, 'lb2', 'drain'), '1\n');
      await waitHops('lb2 drained withdrawn', ['lb1']);
      writeFileSync(join(dir, 'lb2', 'drain'), '0\n');
      await waitHops('lb2 resumed announced', ['lb1', 'lb2']);

      health.lb2 = 'silent';
      await waitHops('lb2 whose vpnlb stopped answering withdrawn', ['lb1']);
      health.lb2 = 'up';
      await waitHops('lb2 answering again announced', ['lb1', 'lb2']);

      // The reply-NAT table of lb1 is loaded in its namespace.
      assert.match(
        await topo.ns('lb1').exec('nft', ['list', 'table', 'inet', 'vpnlb_bgp']),
        /snat ip to 198\.19\.0\.1:4500/,
      );

      await supervisors[0]!.stop();
      await waitHops('lb1 stopped withdrawn', ['lb2']);
      assert.equal(supervisors[0]!.pids().bird !== undefined, true);
      await sleep(200);
      assert.equal(
        (await run('ip', ['netns', 'pids', topo.ns('lb1').name])).trim(),
        '',
        'no process (BIRD) left in lb1',
      );
    } finally {
      for (const s of supervisors) await s.stop().catch(() => undefined);
      router?.kill('SIGTERM');
      await topo.destroy();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
