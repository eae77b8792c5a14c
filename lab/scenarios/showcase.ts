/**
 * The showcase: one farm of real strongSwan servers, the same clients, twice — once behind
 * full NAT (vpnlb `nat: full`, which masquerades like an appliance's "SNAT automap"), once
 * behind vpnlb's transparent mode (destination NAT only). A few clients stall half-open (their
 * IKE_AUTH on 4500 never arrives, as when fragments are lost); the servers keep their
 * default per-address half-open limit (`charon.block_threshold` = 5). Behind full NAT every
 * client shares the balancer's address, so the stalled ones exhaust that limit for everyone:
 * the good clients' IKE_SA_INITs are ignored — strongSwan's form of Windows' error 809.
 * Behind transparent mode each client is limited only by its own half-open SAs.
 */
import { sleep } from '../../src/util/wait.js';
import { IkeLab, type LabClient } from '../topology-ike.js';
import {
  countBlockedInits,
  distinctRemoteAddresses,
  serverSas,
  traceClientFlows,
} from './observe.js';
import { LabVpnlb } from './vpnlb-in-namespace.js';

export type LabNatMode = 'full' | 'transparent';

/** The numbers of one mode. */
export interface ModeReport {
  /** Good clients (the stalled ones are counted separately). */
  readonly clients: number;
  readonly connected: number;
  /** Connected clients whose ping went through their tunnel. */
  readonly pingedThroughTunnel: number;
  /** Clients whose UDP 500 and 4500 reached different servers. */
  readonly splitHandshakes: number;
  /** Distinct client addresses in the servers' IKE_SAs. */
  readonly clientAddressesSeenByServers: number;
  readonly stalledClients: number;
  /** Half-open IKE_SAs the servers held when the good clients started. */
  readonly halfOpenSasAtStart: number;
  /** The same, per server. */
  readonly halfOpenSasPerServer: Readonly<Record<string, number>>;
  /** IKE_SA_INITs the servers ignored for the per-address half-open limit. */
  readonly blockedIkeSaInits: number;
  /** Established tunnels per server. */
  readonly tunnelsPerServer: Readonly<Record<string, number>>;
  readonly seconds: number;
}

export interface ShowcaseReport {
  readonly fullNat: ModeReport;
  readonly transparent: ModeReport;
  readonly servers: number;
  readonly halfOpenLimitPerAddress: number;
}

export interface ShowcaseOptions {
  readonly servers?: number;
  readonly clients?: number;
  readonly stalledClients?: number;
  /** Half-open IKE_SAs each stalled client starts. */
  readonly stalledSas?: number;
  /** Progress lines (stderr in the CLI). */
  readonly progress?: (line: string) => void;
  readonly label?: string;
}

const BLOCK_THRESHOLD = 5;
/** Half-open SAs per stalled client: enough that every server reaches its limit behind full NAT. */
const STALLED_SAS = 12;

/**
 * Deletes a client's port-500 conntrack entry in the balancer once the server answered on it
 * (bounded: 2 s), so that the client's next IKE_SA_INIT is a new placement.
 */
async function forgetIkeFlow(lab: IkeLab, address: string): Promise<void> {
  const filter = ['-p', 'udp', '--orig-src', address, '--orig-port-dst', '500'];
  for (const deadline = Date.now() + 2000; Date.now() < deadline; await sleep(50)) {
    const out = await lab.lb.exec('conntrack', ['-L', ...filter]).catch(() => '');
    if (out.includes('dport=500') && !out.includes('[UNREPLIED]')) break;
  }
  await lab.lb.exec('conntrack', ['-D', ...filter]).catch(() => undefined);
}

/** Runs one mode on an existing lab (fresh peers, fresh conntrack). */
export async function runMode(
  lab: IkeLab,
  nat: LabNatMode,
  progress: (l: string) => void = () => undefined,
): Promise<ModeReport> {
  const t0 = Date.now();
  await lab.startServers();
  await lab.startClients();
  await lab.flushConntrack();
  const vpnlb = new LabVpnlb(lab, { nat }, `vpnlb-${nat}.yaml`);
  await vpnlb.start();
  try {
    const stalled = lab.clients.filter((c) => c.stalled);
    const good = lab.clients.filter((c) => !c.stalled);
    progress(
      `${nat === 'full' ? 'full NAT' : 'transparent'}: ${stalled.length} stalled clients open half-open IKE_SAs...`,
    );
    const perStalled = lab.options.stalledSas ?? STALLED_SAS;
    // A stalled client's SAs all leave from its port 500, so they would share one conntrack
    // entry and one server. Each is placed afresh instead (its entry is deleted once answered),
    // as the SAs of as many separate devices would be: the stalled SAs spread over every server.
    await Promise.all(
      stalled.map(async (c) => {
        for (let i = 0; i < perStalled; i++) {
          await c.charon!.initiateAsync(i === 0 ? 'home' : `extra${i}`);
          await forgetIkeFlow(lab, c.address);
        }
      }),
    );
    // Wait until the servers hold the half-open SAs (bounded: 5 s).
    const want = stalled.length * perStalled;
    // (Behind full NAT the servers stop at their limit, so also stop once the count settles.)
    let halfOpen = 0;
    let halfOpenPerServer: Record<string, number> = {};
    let stableSince = Date.now();
    for (const deadline = Date.now() + 5000; Date.now() < deadline; ) {
      const connecting = (await serverSas(lab)).filter((x) => x.sa.state === 'CONNECTING');
      const now = connecting.length;
      if (now !== halfOpen) stableSince = Date.now();
      halfOpen = now;
      halfOpenPerServer = Object.fromEntries(
        lab.servers.map((s) => [s.name, connecting.filter((x) => x.server === s.name).length]),
      );
      if (halfOpen >= want || (halfOpen > 0 && Date.now() - stableSince > 1000)) break;
      await sleep(200);
    }
    progress(
      `  servers hold ${halfOpen} half-open IKE_SAs; ${good.length} good clients connect...`,
    );
    const results = await Promise.all(good.map((c) => c.charon!.initiate('home', 20)));
    const connectedClients = good.filter((_, i) => results[i]!.ok);
    const pings = await Promise.all(connectedClients.map((c) => lab.ping(c, 2, 0.2)));
    const flows = await traceClientFlows(lab, good);
    const sas = await serverSas(lab);
    const tunnelsPerServer: Record<string, number> = {};
    for (const s of lab.servers)
      tunnelsPerServer[s.name] = sas.filter(
        (x) => x.server === s.name && x.sa.state === 'ESTABLISHED',
      ).length;
    const report: ModeReport = {
      clients: good.length,
      connected: connectedClients.length,
      pingedThroughTunnel: pings.filter((p) => p.received > 0).length,
      splitHandshakes: flows.filter((f) => f.split).length,
      clientAddressesSeenByServers: distinctRemoteAddresses(sas).length,
      stalledClients: stalled.length,
      halfOpenSasAtStart: halfOpen,
      halfOpenSasPerServer: halfOpenPerServer,
      blockedIkeSaInits: countBlockedInits(lab),
      tunnelsPerServer,
      seconds: Math.round((Date.now() - t0) / 100) / 10,
    };
    progress(`  ${report.connected}/${report.clients} connected (${report.seconds} s)`);
    return report;
  } finally {
    await vpnlb.stop();
  }
}

/** Builds the lab, runs both modes, tears everything down. */
export async function runShowcase(options: ShowcaseOptions = {}): Promise<ShowcaseReport> {
  const progress = options.progress ?? (() => undefined);
  progress('building the lab: namespaces, strongSwan servers and clients...');
  const lab = await IkeLab.create({
    label: options.label ?? 'show',
    servers: options.servers ?? 3,
    clients: options.clients ?? 12,
    stalledClients: options.stalledClients ?? 4,
    stalledSas: options.stalledSas ?? STALLED_SAS,
    blockThreshold: BLOCK_THRESHOLD,
  });
  try {
    const fullNat = await runMode(lab, 'full', progress);
    const transparent = await runMode(lab, 'transparent', progress);
    return {
      fullNat,
      transparent,
      servers: lab.servers.length,
      halfOpenLimitPerAddress: BLOCK_THRESHOLD,
    };
  } finally {
    await lab.destroy();
  }
}

/** The plain-language report for an administrator. */
export function formatShowcase(r: ShowcaseReport): string {
  const line = (label: string, m: ModeReport) =>
    [
      `${label}:`,
      `  clients connected:                 ${m.connected} of ${m.clients}${m.pingedThroughTunnel === m.connected ? '' : ` (ping through the tunnel worked for ${m.pingedThroughTunnel})`}`,
      `  client addresses the servers saw:  ${m.clientAddressesSeenByServers}`,
      `  split handshakes (500 and 4500 on different servers): ${m.splitHandshakes}`,
      `  IKE_SA_INITs refused by the servers' per-address half-open limit: ${m.blockedIkeSaInits}`,
      `  tunnels per server:                ${Object.entries(m.tunnelsPerServer)
        .map(([s, n]) => `${s} ${n}`)
        .join(', ')}`,
      `  time:                              ${m.seconds} s`,
    ].join('\n');
  const f = r.fullNat;
  const t = r.transparent;
  return [
    `vpnlb lab: ${r.servers} strongSwan VPN servers, ${f.clients} clients, and ${f.stalledClients} clients stuck half-open`,
    `(their IKE_AUTH on UDP 4500 never arrives). Each server ignores new IKE_SA_INITs from an`,
    `address that already has ${r.halfOpenLimitPerAddress} half-open IKE_SAs — the same per-address limit that makes`,
    `Windows clients fail with error 809 behind a load balancer that hides their addresses.`,
    '',
    line('Behind full NAT (the servers see only the balancer)', f),
    '',
    line('Behind vpnlb transparent mode (destination NAT only)', t),
    '',
    t.connected > f.connected
      ? `Result: full NAT connected ${f.connected} of ${f.clients} clients; transparent mode connected ${t.connected} of ${t.clients}, because each server sees every client's own address and the stalled clients only use up their own limit.`
      : `Result: full NAT connected ${f.connected} of ${f.clients}; transparent mode connected ${t.connected} of ${t.clients}.`,
    'Transparent mode needs every VPN server to route its replies back through the balancer (default gateway = balancer).',
  ].join('\n');
}

export type { LabClient };
