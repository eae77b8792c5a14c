/**
 * The ECMP lab (root): an upstream router running BIRD 2 that learns each service address from
 * the vpnlb nodes over eBGP and installs one multipath route (ECMP, L3 hash), N vpnlb nodes
 * each announcing through its own `vpnlb bgp start`, three strongSwan servers, and real
 * strongSwan clients (IPv4, IPv6, a CGNAT site).
 *
 * ```
 *  c1..cN ─┐              osw (bridge)                 isw (bridge)
 *  cgn ────┼─ rtr ────────┬─ lb1 ─────────────────────┬─ s1 198.18.1.11 / .21, 2001:db8:b::11
 *  (n1..)  ┘ 198.18.0.1   ├─ lb2                      ├─ s2 198.18.1.12 / .22
 *            AS 65000     ├─ lb3                      └─ s3 198.18.1.13 / .23
 *            BIRD, ECMP   └─ lb4 (added later)    servers' default: multipath via lb1..lb3
 *   198.19.0.1 source-ip (servers .1x), 198.19.0.2 ike-spi (servers .2x), 2001:db8:ffff::1 source-ip
 * ```
 *
 * Each server has one address per IPv4 service (reply NAT gives a server's packet the address
 * of the service it serves, docs/scale-out.md). The servers' default route spreads over three
 * nodes with the kernel's L3 hash and skips a node whose neighbour entry failed
 * (`fib_multipath_use_neigh`): their packets reach a node that did not forward the flow as often
 * as not, which is what reply NAT is for. The router counts (and drops) packets that leave the
 * farm with a server's own address (`leaked`, DESIGN §6).
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { Topology, type Namespace } from '../netns.js';
import { sleep, waitUntil } from '../../src/util/wait.js';
import { TUNNEL_TARGET_V4, TUNNEL_TARGET_V6 } from '../strongswan/swanctl-conf.js';
import { addCgnatClients, addDirectClient } from '../client-sites.js';
import {
  addBridge,
  bridgePort,
  installLeakCounter,
  leakedPackets,
  startFarmClient,
  startFarmServers,
  type FarmServer,
} from '../farm-parts.js';
import { HaLabNode, type HaLabClient } from '../ha/ha-lab.js';
import { loadOrCreateToken } from '../../src/admin/credentials.js';

export const VIP_SOURCE_IP = '198.19.0.1';
export const VIP_IKE_SPI = '198.19.0.2';
export const VIP6 = '2001:db8:ffff::1';
const ROUTER4 = '198.18.0.1';
const ROUTER6 = '2001:db8:a::1';
const ROUTER_ASN = 65000;
const NODE_ASN = 65001;
const ADMIN_PORT = 8088;

export type Affinity = 'source-ip' | 'ike-spi';

export interface EcmpLabOptions {
  readonly label?: string;
  /** Nodes announcing from the start (the last node, `lb<nodes+1>`, is added by the add-node event). */
  readonly nodes: number;
  readonly clients4: number;
  readonly clients6: number;
  readonly cgnatClients: number;
}

export interface EcmpClient extends HaLabClient {
  /** The VIP it dials, hence its service's affinity. */
  readonly vip: string;
  readonly affinity: Affinity;
}

/** One node: vpnlb run (HaLabNode does that), plus its `vpnlb bgp start`. */
export class EcmpNode {
  readonly vpnlbNode: HaLabNode;
  readonly index: number;
  readonly address4: string;
  readonly address6: string;
  readonly insideAddress4: string;
  #bgp: ChildProcess | undefined;

  constructor(vpnlbNode: HaLabNode, index: number) {
    this.vpnlbNode = vpnlbNode;
    this.index = index;
    this.address4 = `198.18.0.${1 + index}`;
    this.address6 = `2001:db8:a::${1 + index}`;
    this.insideAddress4 = `198.18.1.${1 + index}`;
  }

  get name(): string {
    return this.vpnlbNode.name;
  }

  get ns(): Namespace {
    return this.vpnlbNode.ns;
  }

  /** Its admin API, inside its namespace (the other nodes pull its flow state there). */
  get adminUrl(): string {
    return `http://${this.insideAddress4}:${ADMIN_PORT}`;
  }

  /** The file of its admin API's operator token (created by its vpnlb at start). */
  get adminTokenFile(): string {
    return this.vpnlbNode.adminTokenFile;
  }

  async startBgp(): Promise<void> {
    this.#bgp = await this.vpnlbNode.spawn(
      ['bgp', 'start', '--config', this.vpnlbNode.configPath],
      /vpnlb bgp running/,
    );
  }

  /** `kill -9` of both vpnlb processes at once: nothing may keep announcing (BIRD dies with `vpnlb bgp`). */
  async killAll(): Promise<void> {
    const bgp = this.#bgp;
    const bgpExited =
      bgp && bgp.exitCode === null && bgp.signalCode === null
        ? new Promise<void>((r) => bgp.once('exit', () => r()))
        : Promise.resolve();
    if (bgp?.pid !== undefined && bgp.exitCode === null) process.kill(bgp.pid, 'SIGKILL');
    await Promise.all([this.vpnlbNode.killVpnlb(), bgpExited]);
  }

  /** The BIRD processes still running in this node's namespace. */
  async birdPids(): Promise<number[]> {
    const out = await this.ns.exec('ip', ['netns', 'pids', this.ns.name]).catch(() => '');
    const pids: number[] = [];
    for (const pid of out.split(/\s+/).filter(Boolean)) {
      const comm = await this.ns.exec('cat', [`/proc/${pid}/comm`]).catch(() => '');
      if (comm.trim() === 'bird') pids.push(Number(pid));
    }
    return pids;
  }

  async stop(): Promise<void> {
    const child = this.#bgp;
    if (child && child.exitCode === null && child.signalCode === null && child.pid !== undefined) {
      const exited = new Promise<void>((r) => child.once('exit', () => r()));
      process.kill(child.pid, 'SIGTERM');
      await Promise.race([exited, sleep(10_000)]);
    }
    await this.vpnlbNode.stopAll();
  }

  /** Client addresses with a NAT-T flow through this node (its conntrack table), to any or one VIP. */
  async natTClients(
    vips: readonly string[] = [VIP_SOURCE_IP, VIP_IKE_SPI, VIP6],
  ): Promise<string[]> {
    const out = await this.ns
      .exec('conntrack', ['-L', '-p', 'udp', '--dport', '4500'])
      .catch(() => '');
    const set = new Set<string>();
    for (const line of out.split('\n')) {
      const m = /src=(\S+) dst=(\S+) sport=\d+ dport=4500/.exec(line);
      if (m && vips.includes(m[2]!)) set.add(m[1]!);
    }
    return [...set];
  }
}

export class EcmpLab {
  readonly topo: Topology;
  readonly dir: string;
  readonly options: EcmpLabOptions;
  readonly servers: FarmServer[] = [];
  readonly clients: EcmpClient[] = [];
  readonly nodes: EcmpNode[] = [];
  #router: ChildProcess | undefined;
  routerLog = '';

  private constructor(topo: Topology, dir: string, options: EcmpLabOptions) {
    this.topo = topo;
    this.dir = dir;
    this.options = options;
  }

  static async create(options: EcmpLabOptions): Promise<EcmpLab> {
    const topo = Topology.create(options.label ?? 'ecmp');
    const lab = new EcmpLab(
      topo,
      mkdtempSync(join(tmpdir(), `vpnlb-ecmp-${topo.prefix}-`)),
      options,
    );
    try {
      await lab.#build();
    } catch (err) {
      await lab.destroy();
      throw err;
    }
    return lab;
  }

  get router(): Namespace {
    return this.topo.ns('rtr');
  }

  async #build(): Promise<void> {
    const t = this.topo;
    const o = this.options;
    await addBridge(t, 'osw');
    await addBridge(t, 'isw');
    const rtr = await t.addNamespace('rtr');
    const rtrIf = await bridgePort(t, 'osw', 'rtr', [`${ROUTER4}/24`, `${ROUTER6}/64`]);
    // L3 multipath hash (source and destination address only): all of a client's packets, UDP
    // 500 and 4500 alike, reach one node while the node set is stable (docs/scale-out.md).
    for (const k of [
      'net.ipv4.fib_multipath_hash_policy=0',
      'net.ipv6.fib_multipath_hash_policy=0',
    ])
      await rtr.exec('sysctl', ['-qw', k]);
    await installLeakCounter(rtr, rtrIf);

    for (let i = 1; i <= o.nodes + 1; i++) {
      const name = `lb${i}`;
      const ns = await t.addNamespace(name);
      const outside = await bridgePort(t, 'osw', name, [
        `198.18.0.${1 + i}/24`,
        `2001:db8:a::${1 + i}/64`,
      ]);
      const inside = await bridgePort(t, 'isw', name, [
        `198.18.1.${1 + i}/24`,
        `2001:db8:b::${1 + i}/64`,
      ]);
      await t.route(name, 'default', ROUTER4);
      await t.route(name, 'default', ROUTER6);
      const dir = join(this.dir, name);
      mkdirSync(dir, { recursive: true, mode: 0o700 });
      this.nodes.push(
        new EcmpNode(
          new HaLabNode(name, ns, join(this.dir, `${name}.yaml`), dir, [outside, inside]),
          i,
        ),
      );
    }

    const gateways = this.nodes.slice(0, o.nodes);
    for (let i = 1; i <= 3; i++) {
      const name = `s${i}`;
      const ns = await t.addNamespace(name, { forwarding: false });
      await bridgePort(t, 'isw', name, [
        `198.18.1.${10 + i}/24`,
        `198.18.1.${20 + i}/24`,
        `2001:db8:b::${10 + i}/64`,
      ]);
      await ns.exec('sysctl', ['-qw', 'net.ipv4.fib_multipath_use_neigh=1']);
      await ns.exec('ip', [
        'route',
        'add',
        'default',
        ...gateways.flatMap((g) => ['nexthop', 'via', g.insideAddress4]),
      ]);
      await ns.exec('ip', [
        '-6',
        'route',
        'add',
        'default',
        ...gateways.flatMap((g) => ['nexthop', 'via', `2001:db8:b::${1 + g.index}`]),
      ]);
      await ns.exec('ip', ['addr', 'add', `${TUNNEL_TARGET_V4}/32`, 'dev', 'lo']);
      await ns.exec('ip', ['addr', 'add', `${TUNNEL_TARGET_V6}/128`, 'dev', 'lo', 'nodad']);
      this.servers.push({
        name,
        ns,
        address4: `198.18.1.${10 + i}`,
        address6: `2001:db8:b::${10 + i}`,
        pool4: `198.19.${10 + i}.0/24`,
        pool6: `2001:db8:10:${i}::/120`,
      });
    }

    let n = 0;
    const direct = async (family: 4 | 6, vip: string, affinity: Affinity) => {
      this.clients.push({
        ...(await addDirectClient(t, 'rtr', ++n, family)),
        spare: false,
        vip,
        affinity,
      });
    };
    // Half of the direct IPv4 clients on each affinity; IPv6 on the source-ip service.
    for (let i = 0; i < o.clients4; i++)
      await direct(
        4,
        i % 2 === 0 ? VIP_SOURCE_IP : VIP_IKE_SPI,
        i % 2 === 0 ? 'source-ip' : 'ike-spi',
      );
    for (let i = 0; i < o.clients6; i++) await direct(6, VIP6, 'source-ip');
    if (o.cgnatClients > 0) {
      // A carrier-grade NAT site: one public address for all its clients, on the ike-spi service
      // (the affinity that spreads such a site over the servers).
      for (const site of await addCgnatClients(t, 'rtr', o.cgnatClients))
        this.clients.push({ ...site, spare: false, vip: VIP_IKE_SPI, affinity: 'ike-spi' });
    }
    this.#writeConfigs();
  }

  /** One configuration for the farm, written per node only for its admin token path and `bgp.node`/`runDir`. */
  #writeConfigs(): void {
    // Written before any node starts, so that no two nodes race to create it.
    loadOrCreateToken(join(this.dir, 'flow-sync.token'));
    const backends = (base: number, v6: boolean) =>
      this.servers.map((s, i) => ({
        name: `${s.name}${v6 ? 'v6' : base === 10 ? '' : 'b'}`,
        address: v6 ? s.address6 : `198.18.1.${base + i + 1}`,
      }));
    const service = (
      name: string,
      vip: string,
      pool: string,
      affinity: Affinity,
      table: string,
    ) => ({
      name,
      virtualIp: vip,
      pool,
      dataplane: 'kernel',
      nat: 'transparent',
      affinity,
      monitor: 'ike',
      table,
    });
    for (const node of this.nodes) {
      const runDir = node.vpnlbNode.runDir;
      const config = {
        log: { level: 'info' },
        // On the inside link, where the other nodes pull this node's ike-spi flow state with
        // the farm's one read-only token (bgp.flowSync).
        admin: {
          listen: node.insideAddress4,
          port: ADMIN_PORT,
          tokenFile: node.adminTokenFile,
          readOnlyTokenFile: join(this.dir, 'flow-sync.token'),
        },
        monitors: {
          ike: { type: 'ikev2', interval: '1s', timeout: '800ms', rise: 1, fall: 3, jitter: 0 },
        },
        pools: {
          sip: { backends: backends(10, false) },
          spi: { backends: backends(20, false) },
          six: { backends: backends(10, true) },
        },
        services: {
          ikev2: [
            service('ike-sip', VIP_SOURCE_IP, 'sip', 'source-ip', 'vpnlb_sip'),
            service('ike-spi', VIP_IKE_SPI, 'spi', 'ike-spi', 'vpnlb_spi'),
            service('ike6', VIP6, 'six', 'source-ip', 'vpnlb6'),
          ],
        },
        bgp: {
          asn: NODE_ASN,
          node: node.name,
          nodes: this.nodes.map((x) => ({
            name: x.name,
            routerId: x.address4,
            adminUrl: x.adminUrl,
          })),
          peers: [
            { name: 'rtr', address: ROUTER4, asn: ROUTER_ASN },
            { name: 'rtr-v6', address: ROUTER6, asn: ROUTER_ASN },
          ],
          runDir: join(runDir, 'bgp'),
        },
      };
      writeFileSync(node.vpnlbNode.configPath, `${JSON.stringify(config, null, 2)}\n`);
    }
  }

  /** The router's BIRD: every node a neighbour, ECMP into its kernel table (`merge paths`). */
  async startRouter(): Promise<void> {
    const neighbours = this.nodes.flatMap((n) => [
      `protocol bgp ${n.name} from lb {\n\tneighbor ${n.address4} as ${NODE_ASN};\n\tipv4 { import all; export none; };\n}`,
      `protocol bgp ${n.name}v6 from lb {\n\tneighbor ${n.address6} as ${NODE_ASN};\n\tipv6 { import all; export none; };\n}`,
    ]);
    const conf = [
      `router id ${ROUTER4};`,
      'log stderr { info, remote, warning, error, auth, fatal, bug };',
      'protocol device {}',
      'protocol bfd { interface "*" { min rx interval 100 ms; min tx interval 100 ms; multiplier 3; }; }',
      'protocol kernel { ipv4 { import none; export all; }; merge paths yes limit 16; }',
      'protocol kernel { ipv6 { import none; export all; }; merge paths yes limit 16; }',
      `template bgp lb {\n\tlocal as ${ROUTER_ASN};\n\thold time 3;\n\tkeepalive time 1;\n\tconnect delay time 1;\n\tconnect retry time 2;\n\terror wait time 1, 10;\n\tbfd on;\n}`,
      ...neighbours,
      '',
    ].join('\n');
    const dir = join(this.dir, 'rtr');
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'bird.conf'), conf);
    const child = this.router.spawn(
      '/usr/sbin/bird',
      [
        '-f',
        '-c',
        join(dir, 'bird.conf'),
        '-s',
        join(dir, 'bird.ctl'),
        '-P',
        join(dir, 'bird.pid'),
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    this.#router = child;
    const onData = (d: Buffer) => {
      this.routerLog = (this.routerLog + d.toString()).slice(-50_000);
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    const up = async () =>
      (
        await this.router
          .exec('birdc', ['-s', join(dir, 'bird.ctl'), 'show', 'status'])
          .catch(() => '')
      ).includes('Daemon is up');
    await waitUntil(
      "the router's BIRD",
      async () => child.exitCode !== null || (await up()),
      10_000,
      100,
    ).catch(() => undefined);
    if (child.exitCode !== null || !(await up()))
      throw new Error(`the router's BIRD did not start:\n${this.routerLog.slice(-2000)}`);
  }

  /** Node names behind the router's current route to `vip` (its ECMP next hops). */
  async nextHops(vip: string): Promise<string[]> {
    const out = await this.router
      .exec('ip', [vip.includes(':') ? '-6' : '-4', 'route', 'show', vip])
      .catch(() => '');
    return this.nodes
      .filter((n) =>
        new RegExp(
          `via ${(vip.includes(':') ? n.address6 : n.address4).replace(/\./g, '\\.')}( |$)`,
          'm',
        ).test(out),
      )
      .map((n) => n.name);
  }

  async startServers(): Promise<void> {
    await startFarmServers(this.servers, this.dir);
  }

  async startClient(c: EcmpClient): Promise<void> {
    c.charon = await startFarmClient(c, this.dir, c.vip);
  }

  async leakedPackets(): Promise<number> {
    return leakedPackets(this.router);
  }

  async destroy(): Promise<void> {
    for (const n of this.nodes) await n.stop().catch(() => undefined);
    const r = this.#router;
    if (r?.pid !== undefined && r.exitCode === null) r.kill('SIGTERM');
    await Promise.all(
      [...this.servers, ...this.clients].map((p) => p.charon?.kill().catch(() => undefined)),
    );
    await this.topo.destroy();
    if (process.env.VPNLB_LAB_KEEP_DIR !== '1') rmSync(this.dir, { recursive: true, force: true });
  }
}
