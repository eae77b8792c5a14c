/**
 * The IKEv2 lab topology (root): real strongSwan clients, a carrier-grade-NAT site, the
 * balancer namespace and 2–3 strongSwan VPN servers, joined by routed veth pairs.
 *
 * ```
 *  c1 ─┐                              ┌─ s1  198.18.101.2   pool 198.19.11.0/24
 *  c2 ─┼── lb (VIP 198.19.0.1) ───────┼─ s2  198.18.102.2   pool 198.19.12.0/24
 *  cgn ┘  (vpnlb runs here)           └─ s3  198.18.103.2   pool 198.19.13.0/24
 *   └─ n1, n2, ... (behind one masquerading router)
 * ```
 *
 * Servers route everything back through the balancer (default gateway = lb), which is what
 * transparent mode needs (DESIGN §1.1). Each server hands out virtual IPs from its own pool, so
 * a client's virtual IP also says which server it got; behind every server's tunnel sits the
 * same address (198.19.100.1, 2001:db8:100::1), which clients ping through their tunnel.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  addCgnatClients,
  addDirectClient,
  addHomeNatClient,
  CGNAT_ADDRESS,
  type ClientSite,
} from './client-sites.js';
import { Topology, type Namespace } from './netns.js';
import { Charon } from './strongswan/charon.js';
import { createLabPki, type LabPki } from './strongswan/pki.js';
import type { RetransmitSettings } from './strongswan/strongswan-conf.js';
import {
  renderInitiatorConf,
  renderResponderConf,
  TUNNEL_TARGET_V4,
  TUNNEL_TARGET_V6,
  USER_TUNNEL_TARGET_V4,
  type LabAuth,
} from './strongswan/swanctl-conf.js';

export { clientSubnet4 } from './client-sites.js';

export const VIP4 = '198.19.0.1';
export const VIP6 = '2001:db8:ffff::1';
const PSK = 'vpnlb-lab-pre-shared-key';
const SERVER_ID = 'server';

export interface IkeLabOptions {
  /** Few letters for namespace names (default `ike`). */
  readonly label?: string;
  readonly servers: number;
  /** Clients with their own address, dialling the IPv4 VIP. */
  readonly clients: number;
  /** Clients whose IKE_AUTH on 4500 is dropped (half-open forever), each holding `stalledSas`. */
  readonly stalledClients?: number;
  readonly stalledSas?: number;
  /** Clients behind one masquerading CGNAT router. */
  readonly cgnatClients?: number;
  /** Clients each behind a masquerading home router of its own (one client per NAT address). */
  readonly homeNatClients?: number;
  /** `device-user`: every client runs an Always On VPN device tunnel and user tunnel (swanctl-conf.ts). */
  readonly tunnels?: 'home' | 'device-user';
  /** Clients dialling the IPv6 VIP. */
  readonly ipv6Clients?: number;
  /** `cert`: certificate authentication with a long chain and IKE fragmentation off. */
  readonly auth?: 'psk' | 'cert';
  readonly blockThreshold?: number;
  readonly retransmit?: RetransmitSettings;
  /** Dead peer detection on the clients (see `InitiatorConfOptions.dpd`). */
  readonly clientDpd?: { readonly delaySec: number; readonly action: 'restart' | 'clear' };
}

export interface LabServer {
  readonly name: string;
  readonly index: number;
  readonly ns: Namespace;
  readonly address4: string;
  readonly address6: string;
  readonly pool4: string;
  readonly pool6: string;
  charon?: Charon;
}

export interface LabClient extends ClientSite {
  readonly stalled: boolean;
  /** The client's current address (changes with `moveClient`). */
  currentAddress: string;
  charon?: Charon;
}

/** One line of `conntrack -L` for UDP: original and reply tuples. */
export interface ConntrackUdp {
  readonly src: string;
  readonly dst: string;
  readonly sport: number;
  readonly dport: number;
  readonly replySrc: string;
  readonly replyDst: string;
  readonly replySport: number;
  readonly replyDport: number;
}

export class IkeLab {
  readonly topo: Topology;
  readonly dir: string;
  readonly servers: LabServer[] = [];
  readonly clients: LabClient[] = [];
  readonly options: IkeLabOptions;
  pki: LabPki | undefined;

  private constructor(topo: Topology, dir: string, options: IkeLabOptions) {
    this.topo = topo;
    this.dir = dir;
    this.options = options;
  }

  get lb(): Namespace {
    return this.topo.ns('lb');
  }

  /** Builds namespaces, links, routes and addresses (peers are started by `startPeers`). */
  static async create(options: IkeLabOptions): Promise<IkeLab> {
    const topo = Topology.create(options.label ?? 'ike');
    const lab = new IkeLab(topo, mkdtempSync(join(tmpdir(), `vpnlb-lab-${topo.prefix}-`)), options);
    try {
      await lab.#build();
    } catch (err) {
      await lab.destroy();
      throw err;
    }
    return lab;
  }

  async #build(): Promise<void> {
    const o = this.options;
    const t = this.topo;
    const lb = await t.addNamespace('lb');
    await lb.exec('ip', ['addr', 'add', `${VIP4}/32`, 'dev', 'lo']);
    await lb.exec('ip', ['addr', 'add', `${VIP6}/128`, 'dev', 'lo', 'nodad']);
    for (let i = 1; i <= o.servers; i++) {
      const name = `s${i}`;
      const ns = await t.addNamespace(name);
      const net = 100 + i;
      await t.link({
        a: 'lb',
        b: name,
        aAddresses: [`198.18.${net}.1/24`, `2001:db8:1:${net}::1/64`],
        bAddresses: [`198.18.${net}.2/24`, `2001:db8:1:${net}::2/64`],
      });
      await t.route(name, 'default', `198.18.${net}.1`);
      await t.route(name, 'default', `2001:db8:1:${net}::1`);
      await ns.exec('ip', ['addr', 'add', `${TUNNEL_TARGET_V4}/32`, 'dev', 'lo']);
      await ns.exec('ip', ['addr', 'add', `${USER_TUNNEL_TARGET_V4}/32`, 'dev', 'lo']);
      await ns.exec('ip', ['addr', 'add', `${TUNNEL_TARGET_V6}/128`, 'dev', 'lo', 'nodad']);
      this.servers.push({
        name,
        index: i,
        ns,
        address4: `198.18.${net}.2`,
        address6: `2001:db8:1:${net}::2`,
        pool4: `198.19.${10 + i}.0/24`,
        pool6: `2001:db8:10:${i}::/120`,
      });
    }
    let n = 0;
    const direct = async (family: 4 | 6, stalled: boolean): Promise<void> => {
      const site = await addDirectClient(t, 'lb', ++n, family);
      if (stalled) {
        // IKE_AUTH travels on 4500 (RFC 7296 §2.23: the initiator switches once NAT is
        // detected, and kernel-libipsec always claims NAT): dropping it here leaves the
        // server holding a half-open IKE_SA, like a client whose fragments are lost.
        await site.ns.exec(
          'nft',
          ['-f', '-'],
          'table inet stall {\n  chain out {\n    type filter hook output priority 0;\n    udp dport 4500 drop\n  }\n}\n',
        );
      }
      this.clients.push({ ...site, currentAddress: site.address, stalled });
    };
    for (let i = 0; i < (o.stalledClients ?? 0); i++) await direct(4, true);
    for (let i = 0; i < o.clients; i++) await direct(4, false);
    for (let i = 0; i < (o.ipv6Clients ?? 0); i++) await direct(6, false);
    for (const site of await addCgnatClients(t, 'lb', o.cgnatClients ?? 0))
      this.clients.push({ ...site, currentAddress: site.address, stalled: false });
    for (let k = 1; k <= (o.homeNatClients ?? 0); k++) {
      const site = await addHomeNatClient(t, 'lb', k);
      this.clients.push({ ...site, currentAddress: site.address, stalled: false });
    }
    if (o.auth === 'cert') {
      this.pki = await createLabPki(join(this.dir, 'pki'), [
        SERVER_ID,
        ...this.clients.map((c) => c.name),
      ]);
    }
  }

  /** The CGNAT router's public address, as the balancer sees CGNAT clients. */
  get cgnatAddress(): string {
    return CGNAT_ADDRESS;
  }

  #auth(id: string): { auth: LabAuth; files: Record<string, string> } {
    if (!this.pki) return { auth: { kind: 'psk', secret: PSK }, files: {} };
    const ee = this.pki.endEntities[id];
    if (!ee) throw new Error(`no certificate for ${id}`);
    return {
      auth: { kind: 'pubkey', cert: ee.cert, key: ee.key },
      files: { ...this.pki.caFiles, ...ee.files },
    };
  }

  /** (Re)starts every server's charon with a fresh state. */
  async startServers(): Promise<void> {
    await Promise.all(this.servers.map((s) => this.startServer(s)));
  }

  async startServer(s: LabServer): Promise<void> {
    await s.charon?.stop();
    const { auth, files } = this.#auth(SERVER_ID);
    s.charon = await Charon.start({
      ns: s.ns,
      dir: join(this.dir, s.name),
      files,
      ...(this.options.blockThreshold !== undefined
        ? { blockThreshold: this.options.blockThreshold }
        : {}),
      ...(this.options.retransmit ? { retransmit: this.options.retransmit } : {}),
      swanctlConf: renderResponderConf({
        id: SERVER_ID,
        auth,
        pools: [s.pool4, s.pool6],
        localTs: [
          `${TUNNEL_TARGET_V4}/32`,
          `${USER_TUNNEL_TARGET_V4}/32`,
          `${TUNNEL_TARGET_V6}/128`,
        ],
        fragmentation: this.options.auth !== 'cert',
      }),
    });
  }

  /** (Re)starts every client's charon with a fresh state. */
  async startClients(): Promise<void> {
    await Promise.all(this.clients.map((c) => this.startClient(c)));
  }

  async startClient(c: LabClient): Promise<void> {
    await c.charon?.stop();
    const { auth, files } = this.#auth(c.name);
    c.charon = await Charon.start({
      ns: c.ns,
      dir: join(this.dir, c.name),
      files,
      ...(this.options.retransmit ? { retransmit: this.options.retransmit } : {}),
      swanctlConf: renderInitiatorConf({
        id: c.name,
        auth,
        remote: c.family === 4 ? VIP4 : VIP6,
        remoteId: SERVER_ID,
        remoteTs: [c.family === 4 ? `${TUNNEL_TARGET_V4}/32` : `${TUNNEL_TARGET_V6}/128`],
        vips: [c.family === 4 ? '0.0.0.0' : '::'],
        fragmentation: this.options.auth !== 'cert',
        extraConnections: c.stalled ? (this.options.stalledSas ?? 8) - 1 : 0,
        ...(this.options.tunnels ? { tunnels: this.options.tunnels } : {}),
        ...(this.options.clientDpd ? { dpd: this.options.clientDpd } : {}),
      }),
    });
  }

  /** Which server handed out this virtual IP (each server has its own pool). */
  serverOfVip(vip: string): LabServer | undefined {
    return this.servers.find((s) =>
      vip.includes(':')
        ? vip.startsWith(s.pool6.replace(/::\/\d+$/, ':'))
        : vip.startsWith(s.pool4.replace(/0\/24$/, '')),
    );
  }

  /**
   * Moves a directly connected client to another address on its link (the old one is removed),
   * as a laptop that changes network: its charon announces the new address to the server with
   * MOBIKE (RFC 4555 UPDATE_SA_ADDRESSES). Returns the new address.
   */
  async moveClient(c: LabClient): Promise<string> {
    if (c.behindCgnat || c.behindHomeNat || c.family !== 4)
      throw new Error(`${c.name}: only directly connected IPv4 clients move`);
    // Between .2 and .3 of its link, so that a lab reused for another run moves again.
    const next = c.currentAddress.replace(/\.\d+$/, c.currentAddress.endsWith('.3') ? '.2' : '.3');
    // The new address is a secondary of the same subnet: keep it when the primary goes.
    await c.ns.exec('sysctl', ['-qw', `net.ipv4.conf.${c.ifName}.promote_secondaries=1`]);
    await c.ns.exec('ip', ['addr', 'add', `${next}/24`, 'dev', c.ifName]);
    await c.ns.exec('ip', ['addr', 'del', `${c.currentAddress}/24`, 'dev', c.ifName]);
    // Deleting the address took the default route's source with it on some kernels: restore it.
    await c.ns.exec('ip', ['route', 'replace', 'default', 'via', next.replace(/\.\d+$/, '.1')]);
    c.currentAddress = next;
    return next;
  }

  /** Pings the tunnel target (or `target`) through a client's tunnel: `{sent, received}`. */
  async ping(
    c: LabClient,
    count: number,
    intervalSec = 0.2,
    target = c.family === 4 ? TUNNEL_TARGET_V4 : TUNNEL_TARGET_V6,
  ): Promise<{ sent: number; received: number }> {
    const out = await c.ns
      .exec('ping', ['-n', '-q', '-c', String(count), '-i', String(intervalSec), '-W', '1', target])
      .catch((e: Error) => e.message);
    return parsePingSummary(out);
  }

  /**
   * Starts a continuous ping of `count` requests through a client's tunnel. It ends by itself
   * (after waiting for the last reply), so no request is counted lost just because the ping was
   * interrupted while it was in flight; `isRunning()` lets a test check that the ping covered
   * the event it measures.
   */
  startPing(
    c: LabClient,
    count: number,
    intervalSec = 0.02,
  ): { isRunning(): boolean; result: Promise<{ sent: number; received: number }> } {
    const target = c.family === 4 ? TUNNEL_TARGET_V4 : TUNNEL_TARGET_V6;
    const child = c.ns.spawn('ping', [
      '-n',
      '-q',
      '-c',
      String(count),
      '-i',
      String(intervalSec),
      '-W',
      '1',
      target,
    ]);
    let out = '';
    let running = true;
    child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
    const result = new Promise<{ sent: number; received: number }>((resolve) =>
      // 'close', not 'exit': the summary may still be in the stdout pipe when the process exits.
      child.once('close', () => {
        running = false;
        resolve(parsePingSummary(out));
      }),
    );
    return { isRunning: () => running, result };
  }

  /** UDP conntrack entries of both address families in a namespace (the balancer's, or the CGNAT router's). */
  async conntrack(ns: Namespace = this.lb): Promise<ConntrackUdp[]> {
    // `conntrack -L` lists IPv4 only unless told otherwise.
    const outs = await Promise.all(
      ['ipv4', 'ipv6'].map((f) =>
        ns.exec('conntrack', ['-L', '-f', f, '-p', 'udp']).catch(() => ''),
      ),
    );
    return outs.flatMap(parseConntrackUdp);
  }

  /** Flushes the balancer's conntrack table (between scenario modes). */
  async flushConntrack(): Promise<void> {
    await this.lb.exec('conntrack', ['-F']).catch(() => undefined);
    if ((this.options.cgnatClients ?? 0) > 0)
      await this.topo
        .ns('cgn')
        .exec('conntrack', ['-F'])
        .catch(() => undefined);
  }

  /** Writes a file in the lab directory and returns its path. */
  writeFile(name: string, content: string): string {
    const path = join(this.dir, name);
    writeFileSync(path, content);
    return path;
  }

  /** Stops every peer, deletes the namespaces and the lab directory. */
  async destroy(): Promise<void> {
    await Promise.all(
      [...this.servers, ...this.clients].map((p) => p.charon?.kill().catch(() => undefined)),
    );
    await this.topo.destroy();
    if (process.env.VPNLB_LAB_KEEP_DIR !== '1') rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Parses ping's summary line. */
export function parsePingSummary(out: string): { sent: number; received: number } {
  const m = /(\d+) packets transmitted, (\d+) (?:packets )?received/.exec(out);
  return m ? { sent: Number(m[1]), received: Number(m[2]) } : { sent: 0, received: 0 };
}

/** Parses `conntrack -L -p udp` output. */
export function parseConntrackUdp(out: string): ConntrackUdp[] {
  const entries: ConntrackUdp[] = [];
  for (const line of out.split('\n')) {
    const src = [...line.matchAll(/\bsrc=(\S+)/g)].map((m) => m[1]!);
    const dst = [...line.matchAll(/\bdst=(\S+)/g)].map((m) => m[1]!);
    const sport = [...line.matchAll(/\bsport=(\d+)/g)].map((m) => Number(m[1]));
    const dport = [...line.matchAll(/\bdport=(\d+)/g)].map((m) => Number(m[1]));
    if (src.length < 2 || dst.length < 2 || sport.length < 2 || dport.length < 2) continue;
    entries.push({
      src: src[0]!,
      dst: dst[0]!,
      sport: sport[0]!,
      dport: dport[0]!,
      replySrc: src[1]!,
      replyDst: dst[1]!,
      replySport: sport[1]!,
      replyDport: dport[1]!,
    });
  }
  return entries;
}
