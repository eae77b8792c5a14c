/**
 * The pair lab (root): two vpnlb nodes on an outside and an inside L2 segment, a dedicated sync
 * link, three strongSwan servers and real strongSwan clients (IPv4, IPv6, behind a CGNAT).
 *
 * ```
 *  c1..cN ─┐                 osw (bridge)              isw (bridge)
 *  cgn ────┼─ wan ─────────┬─ lb1 ─┬──────────────────┬─ s1 198.18.1.11
 *  (n1..)  ┘  198.18.0.1   │       │ sync 198.18.2.0/30│  s2 198.18.1.12
 *                          └─ lb2 ─┘                   └─ s3 198.18.1.13
 *   outside VIPs 198.19.0.1, 2001:db8:ffff::1   inside gateway 198.18.1.1, 2001:db8:b::1 (VRRP)
 * ```
 *
 * Each bridge lives in a namespace of its own with `net.bridge.bridge-nf-call-*` = 0 there
 * (DESIGN §6: with br_netfilter, a bridge in a namespace would run the frames through that
 * namespace's netfilter). The servers' default gateway is the inside VRRP address: their
 * replies follow the active node. The wan router counts packets that leave the pair with a
 * server's own address (`leaked`): the symptom of a takeover without state (DESIGN §6).
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { addCgnatClients, addDirectClient, type ClientSite } from '../client-sites.js';
import { counterPackets, Topology, type Namespace } from '../netns.js';
import type { Charon } from '../strongswan/charon.js';
import { sleep } from '../../src/util/wait.js';
import { REPLY_NAT_COUNTER } from '../../src/dataplane/kernel/reply-nat.js';
import { HA_REPLY_NAT_TABLE } from '../../src/ha/render-pair.js';
import { TUNNEL_TARGET_V4, TUNNEL_TARGET_V6 } from '../strongswan/swanctl-conf.js';
import {
  addBridge,
  bridgePort,
  installLeakCounter,
  leakedPackets,
  startFarmClient,
  startFarmServers,
  type FarmServer,
} from '../farm-parts.js';
import { vpnlbArgv } from '../vpnlb-process.js';

export const HA_VIP4 = '198.19.0.1';
export const HA_VIP6 = '2001:db8:ffff::1';
/** Each node's admin API, on its own namespace's loopback. */
export const HA_ADMIN_PORT = 8088;
const INSIDE_GW4 = '198.18.1.1';
const INSIDE_GW6 = '2001:db8:b::1';

export interface HaLabOptions {
  readonly label?: string;
  /** Clients dialling the IPv4 VIP from their own address. */
  readonly clients4: number;
  readonly clients6: number;
  readonly cgnatClients: number;
  /** Extra IPv4 clients kept idle, to connect during failovers. */
  readonly spareClients: number;
}

export type HaLabServer = FarmServer;

export interface HaLabClient extends ClientSite {
  readonly spare: boolean;
  charon?: Charon;
}

/** A node's network configuration: addresses (with prefix) per interface, default gateways. */
export interface NodeNetwork {
  readonly addresses: Record<string, string[]>;
  readonly gateways: readonly string[];
}

/** One balancer node: its namespace, its configuration file, its two vpnlb processes. */
export class HaLabNode {
  readonly name: string;
  readonly ns: Namespace;
  readonly configPath: string;
  readonly runDir: string;
  /** Interfaces: outside, inside, sync. */
  readonly links: readonly string[];
  /** What the node's network configuration puts on its links (addresses per link, default gateways). */
  readonly network: NodeNetwork;
  #run: ChildProcess | undefined;
  #ha: ChildProcess | undefined;
  log = '';

  constructor(
    name: string,
    ns: Namespace,
    configPath: string,
    runDir: string,
    links: readonly string[],
    network: NodeNetwork = { addresses: {}, gateways: [] },
  ) {
    this.name = name;
    this.ns = ns;
    this.configPath = configPath;
    this.runDir = runDir;
    this.links = links;
    this.network = network;
  }

  /** The file of its admin API's operator token (created by its vpnlb at start). */
  get adminTokenFile(): string {
    return join(this.runDir, 'admin.token');
  }

  /** Spawns `vpnlb ARGS` in the node's namespace; resolves once its output matches `ready`. */
  spawn(args: string[], ready: RegExp): Promise<ChildProcess> {
    const [node, ...rest] = vpnlbArgv(args);
    const child = this.ns.spawn(node!, rest, {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, VPNLB_KEEP_STATE: '' },
    });
    return new Promise((resolve, reject) => {
      let out = '';
      const timer = setTimeout(
        () =>
          reject(
            new Error(
              `${this.name}: vpnlb ${args[0]} did not start in 300 s:\n${out.slice(-3000)}`,
            ),
          ),
        300_000,
      );
      const onData = (d: Buffer) => {
        out += d.toString();
        this.log = (this.log + d.toString()).slice(-200_000);
        if (ready.test(out)) {
          clearTimeout(timer);
          resolve(child);
        }
      };
      child.stdout?.on('data', onData);
      child.stderr?.on('data', onData);
      child.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`${this.name}: vpnlb ${args[0]} exited (${code}):\n${out.slice(-3000)}`));
      });
    });
  }

  /**
   * Starts `vpnlb run`, retried up to five times: on a host loaded by other work its start-up check
   * (`nft list tables` within 10 s) can time out while another namespace loads a large map.
   */
  async startVpnlb(): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        this.#run = await this.spawn(['run', '--config', this.configPath], /vpnlb running/);
        return;
      } catch (err) {
        if (attempt >= 6 || !/VPNLB_DATAPLANE_UNAVAILABLE/.test((err as Error).message)) throw err;
        await sleep(3000);
      }
    }
  }

  async startHa(): Promise<void> {
    this.#ha = await this.spawn(['ha', 'start', '--config', this.configPath], /vpnlb ha running/);
  }

  /** `kill -9` of `vpnlb run`: the control plane dies, its kernel table stays. */
  async killVpnlb(): Promise<void> {
    await signal(this.#run, 'SIGKILL');
  }

  /** SIGTERM to `vpnlb ha start`: keepalived leaves (priority-0 advert), conntrackd stops. */
  async stopHa(): Promise<void> {
    await signal(this.#ha, 'SIGTERM');
  }

  async stopAll(): Promise<void> {
    await signal(this.#ha, 'SIGTERM');
    await signal(this.#run, 'SIGTERM');
  }

  /**
   * Every link of the node down (the node is dead to the world), or up again. A link that goes
   * down takes its routes with it, and its IPv6 addresses unless `keep_addr_on_down` is set (the
   * lab sets it, as docs/high-availability.md asks); coming back, the node's network
   * configuration is applied again, as systemd-networkd does on carrier and a rebooted node does
   * at boot.
   */
  async setLinks(up: boolean): Promise<void> {
    for (const l of this.links) await this.ns.exec('ip', ['link', 'set', l, up ? 'up' : 'down']);
    if (!up) return;
    for (const [dev, addresses] of Object.entries(this.network.addresses))
      for (const a of addresses)
        await this.ns.exec('ip', [
          'addr',
          'replace',
          a,
          'dev',
          dev,
          ...(a.includes(':') ? ['nodad'] : []),
        ]);
    for (const via of this.network.gateways)
      await this.ns.exec('ip', [
        ...(via.includes(':') ? ['-6'] : []),
        'route',
        'replace',
        'default',
        'via',
        via,
      ]);
  }

  /** `vpnlb CMD ... --config FILE` in the node's namespace. */
  vpnlb(args: readonly string[]): Promise<string> {
    const [node, ...rest] = vpnlbArgv([...args, '--config', this.configPath]);
    return this.ns.exec(node!, rest);
  }

  async haStatus(): Promise<{
    role: string;
    transitions: number;
    lastFailover: { cause: string } | null;
  }> {
    return JSON.parse(await this.vpnlb(['ha', 'status', '--json'])) as {
      role: string;
      transitions: number;
      lastFailover: { cause: string } | null;
    };
  }

  /** Conntrack entries of flows to the pair's virtual IPs (IPv4 and IPv6) in this node's kernel. */
  async vipFlows(): Promise<number> {
    let n = 0;
    for (const [family, vip] of [
      ['ipv4', HA_VIP4],
      ['ipv6', HA_VIP6],
    ] as const) {
      const out = await this.ns.exec('conntrack', ['-L', '-f', family, '-d', vip]).catch(() => '');
      n += out.split('\n').filter((l) => l.includes(`dst=${vip}`)).length;
    }
    return n;
  }

  /** Server packets the reply-NAT table gave the service address (flows this node did not know). */
  async replyNatPackets(): Promise<number> {
    return (
      (await counterPackets(this.ns, { family: 'inet', table: HA_REPLY_NAT_TABLE }))[
        REPLY_NAT_COUNTER
      ] ?? 0
    );
  }

  /** Packets of the kernel table's `ike_split` counter (IPv4 and IPv6 tables). */
  async ikeSplitPackets(): Promise<number> {
    let n = 0;
    for (const f of ['ip', 'ip6'] as const) {
      n += (await counterPackets(this.ns, { family: f, table: 'vpnlb' })).ike_split ?? 0;
    }
    return n;
  }
}

async function signal(child: ChildProcess | undefined, sig: NodeJS.Signals): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null || child.pid === undefined)
    return;
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  try {
    process.kill(child.pid, sig);
  } catch {
    return;
  }
  const t = setTimeout(() => child.pid !== undefined && process.kill(child.pid, 'SIGKILL'), 10_000);
  await exited;
  clearTimeout(t);
}

export class HaLab {
  readonly topo: Topology;
  readonly dir: string;
  readonly options: HaLabOptions;
  readonly servers: HaLabServer[] = [];
  readonly clients: HaLabClient[] = [];
  readonly nodes: HaLabNode[] = [];

  private constructor(topo: Topology, dir: string, options: HaLabOptions) {
    this.topo = topo;
    this.dir = dir;
    this.options = options;
  }

  static async create(options: HaLabOptions): Promise<HaLab> {
    const topo = Topology.create(options.label ?? 'ha');
    const lab = new HaLab(topo, mkdtempSync(join(tmpdir(), `vpnlb-ha-${topo.prefix}-`)), options);
    try {
      await lab.#build();
    } catch (err) {
      await lab.destroy();
      throw err;
    }
    return lab;
  }

  get wan(): Namespace {
    return this.topo.ns('wan');
  }

  async #port(sw: string, a: string, addresses: string[]): Promise<string> {
    return bridgePort(this.topo, sw, a, addresses);
  }

  async #build(): Promise<void> {
    const t = this.topo;
    const o = this.options;
    await addBridge(t, 'osw');
    await addBridge(t, 'isw');
    const wan = await t.addNamespace('wan');
    const wanIf = await this.#port('osw', 'wan', ['198.18.0.1/24', '2001:db8:a::1/64']);
    // The VIPs are on-link on the outside segment: whichever node answers ARP/ND for them.
    await wan.exec('ip', ['route', 'add', `${HA_VIP4}/32`, 'dev', wanIf]);
    await wan.exec('ip', ['-6', 'route', 'add', `${HA_VIP6}/128`, 'dev', wanIf]);
    // Count (and drop) what leaves the pair with a server's own address: a reversed entry.
    await installLeakCounter(wan, wanIf);

    const links: string[][] = [];
    const networks: NodeNetwork[] = [];
    const gateways = ['198.18.0.1', '2001:db8:a::1'];
    for (const [i, name] of (['lb1', 'lb2'] as const).entries()) {
      const ns = await t.addNamespace(name);
      // As docs/high-availability.md asks of a node: IPv6 addresses survive a link flap.
      await ns.exec('sysctl', ['-qw', 'net.ipv6.conf.all.keep_addr_on_down=1']);
      const outsideAddrs = [`198.18.0.${2 + i}/24`, `2001:db8:a::${2 + i}/64`];
      const insideAddrs = [`198.18.1.${2 + i}/24`, `2001:db8:b::${2 + i}/64`];
      const outside = await this.#port('osw', name, outsideAddrs);
      const inside = await this.#port('isw', name, insideAddrs);
      for (const via of gateways) await t.route(name, 'default', via);
      links.push([outside, inside]);
      networks.push({ addresses: { [outside]: outsideAddrs, [inside]: insideAddrs }, gateways });
    }
    const syncAddresses = ['198.18.2.1/30', '198.18.2.2/30'] as const;
    const sync = await t.link({
      a: 'lb1',
      b: 'lb2',
      aAddresses: [syncAddresses[0]],
      bAddresses: [syncAddresses[1]],
    });
    links[0]!.push(sync.aIf);
    links[1]!.push(sync.bIf);
    networks[0]!.addresses[sync.aIf] = [syncAddresses[0]];
    networks[1]!.addresses[sync.bIf] = [syncAddresses[1]];
    for (const [i, name] of (['lb1', 'lb2'] as const).entries()) {
      this.nodes.push(
        new HaLabNode(
          name,
          t.ns(name),
          join(this.dir, `${name}.yaml`),
          join(this.dir, name, 'ha'),
          links[i]!,
          networks[i]!,
        ),
      );
    }

    for (let i = 1; i <= 3; i++) {
      const name = `s${i}`;
      const ns = await t.addNamespace(name);
      await this.#port('isw', name, [`198.18.1.${10 + i}/24`, `2001:db8:b::${10 + i}/64`]);
      await t.route(name, 'default', INSIDE_GW4);
      await t.route(name, 'default', INSIDE_GW6);
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
    const direct = async (family: 4 | 6, spare: boolean) => {
      this.clients.push({ ...(await addDirectClient(t, 'wan', ++n, family)), spare });
    };
    for (let i = 0; i < o.clients4; i++) await direct(4, false);
    for (let i = 0; i < o.clients6; i++) await direct(6, false);
    for (const site of await addCgnatClients(t, 'wan', o.cgnatClients))
      this.clients.push({ ...site, spare: false });
    for (let i = 0; i < o.spareClients; i++) await direct(4, true);
    this.#writeConfigs();
  }

  /** One configuration per node: identical but for `ha.node` and `ha.runDir` (both nodes share this host's filesystem). */
  #writeConfigs(): void {
    const backends = (v6: boolean) =>
      this.servers.map((s) => ({
        name: v6 ? `${s.name}v6` : s.name,
        address: v6 ? s.address6 : s.address4,
      }));
    const service = (name: string, vip: string, pool: string) => ({
      name,
      virtualIp: vip,
      pool,
      dataplane: 'kernel',
      nat: 'transparent',
      affinity: 'ike-spi',
      monitor: 'ike',
    });
    for (const node of this.nodes) {
      mkdirSync(node.runDir, { recursive: true, mode: 0o700 });
      const config = {
        log: { level: 'info' },
        // The admin token stays in the node's own directory (not the host's /var/lib/vpnlb).
        admin: { listen: '127.0.0.1', port: HA_ADMIN_PORT, tokenFile: node.adminTokenFile },
        monitors: {
          ike: { type: 'ikev2', interval: '1s', timeout: '800ms', rise: 1, fall: 3, jitter: 0 },
        },
        pools: { farm4: { backends: backends(false) }, farm6: { backends: backends(true) } },
        services: { ikev2: [service('ike4', HA_VIP4, 'farm4'), service('ike6', HA_VIP6, 'farm6')] },
        ha: {
          node: node.name,
          nodes: [
            { name: 'lb1', priority: 150, syncAddress: '198.18.2.1' },
            { name: 'lb2', priority: 100, syncAddress: '198.18.2.2' },
          ],
          sync: { interface: node.links[2] },
          vrrp: {
            advertInterval: '1s',
            preemptDelay: '5s',
            outside: { interface: node.links[0], virtualRouterId: 51 },
            inside: {
              interface: node.links[1],
              virtualRouterId: 52,
              addresses: [`${INSIDE_GW4}/24`, `${INSIDE_GW6}/64`],
            },
          },
          runDir: node.runDir,
        },
      };
      writeFileSync(node.configPath, `${JSON.stringify(config, null, 2)}\n`);
    }
  }

  async startServers(): Promise<void> {
    await startFarmServers(this.servers, this.dir);
  }

  async startClient(c: HaLabClient): Promise<void> {
    c.charon = await startFarmClient(c, this.dir, c.family === 4 ? HA_VIP4 : HA_VIP6);
  }

  /** The active node (the one holding the outside VIP), if exactly one does. */
  async activeNode(): Promise<HaLabNode | undefined> {
    const holders: HaLabNode[] = [];
    for (const n of this.nodes) {
      const out = await n.ns.exec('ip', ['-4', 'addr', 'show', 'dev', n.links[0]!]).catch(() => '');
      if (out.includes(`${HA_VIP4}/32`)) holders.push(n);
    }
    return holders.length === 1 ? holders[0] : undefined;
  }

  /** Waits until `name` holds the addresses (and the other does not). */
  async waitActive(name: string, timeoutMs = 90_000): Promise<number> {
    const t0 = Date.now();
    while (Date.now() - t0 < timeoutMs) {
      if ((await this.activeNode())?.name === name) return Date.now() - t0;
      await sleep(100);
    }
    throw new Error(`${name} did not become active within ${timeoutMs} ms`);
  }

  async leakedPackets(): Promise<number> {
    return leakedPackets(this.wan);
  }

  async destroy(): Promise<void> {
    for (const n of this.nodes) await n.stopAll().catch(() => undefined);
    await Promise.all(
      [...this.servers, ...this.clients].map((p) => p.charon?.kill().catch(() => undefined)),
    );
    await this.topo.destroy();
    if (process.env.VPNLB_LAB_KEEP_DIR !== '1') rmSync(this.dir, { recursive: true, force: true });
  }
}
