/**
 * The Always On VPN shapes with real strongSwan clients: each client namespace runs one charon
 * holding a device tunnel and a user tunnel on the same UDP 500/4500 sockets (one IKEEXT), so
 * both IKE_SAs share the client's address and its NAT-T flow. Measured against one affinity
 * mode, through the real `vpnlb run` (kernel data plane, transparent):
 *
 * - the user tunnel 2 s after the device tunnel, and again long after it (past the port-500
 *   conntrack entries, the usual case: the user logs on minutes later), with a control-plane
 *   restart (`kill -9`, adoption of the kernel table) in between;
 * - a user tunnel that reconnects while the device tunnel stays up;
 * - the device tunnel re-keyed (CREATE_CHILD_SA and IKE_SA rekey) with the user tunnel up;
 * - roaming: directly connected clients with both tunnels up move to a new address (MOBIKE,
 *   RFC 4555 UPDATE_SA_ADDRESSES) and must keep both IKE_SAs and their traffic.
 *
 * Every figure comes from the peers themselves (the clients' IKE_SAs, the servers each one got
 * — a server's virtual-IP pool names it — and pings through each tunnel) and from the kernel's
 * `ike_split` counter, not from vpnlb's own account.
 */
import { sleep } from '../../src/util/wait.js';
import { TUNNEL_TARGET_V4, USER_TUNNEL_TARGET_V4 } from '../strongswan/swanctl-conf.js';
import { IkeLab, type LabClient } from '../topology-ike.js';
import { counterPackets } from '../netns.js';
import { LabVpnlb } from './vpnlb-in-namespace.js';
import type { AffinityMode } from '../../src/balancer/affinity.js';

/** Where a client is: its own address, a home NAT of its own, or a CGNAT shared with others. */
export type ClientShape = 'direct' | 'home-nat' | 'cgnat';

const SHAPES = ['direct', 'home-nat', 'cgnat'] as const;

export function shapeOf(c: LabClient): ClientShape {
  return c.behindCgnat ? 'cgnat' : c.behindHomeNat ? 'home-nat' : 'direct';
}

/** One phase's outcome for one client shape. */
export interface PhaseShapeResult {
  readonly clients: number;
  /** User tunnels (or, for rekey/roaming, clients) that succeeded at the first IKE_SA attempt. */
  readonly firstAttempt: number;
  /** Succeeded at all (within `maxAttempts`). */
  readonly connected: number;
  /** IKE_SA attempts made in total. */
  readonly attempts: number;
  /** Clients whose two tunnels ended on one server with traffic through both. */
  readonly bothOnOneServerWithTraffic: number;
  /** Distinct servers these clients' device tunnels are on (1 for a CGNAT site: it no longer spreads). */
  readonly servers: number;
  /**
   * Packets the kernel counted in `ike_split` while this shape's clients ran (direct and
   * home-NAT clients run together, CGNAT clients after them, so that the figures separate).
   */
  readonly splitPackets: number;
}

export interface PhaseResult {
  readonly phase: string;
  readonly byShape: Readonly<Partial<Record<ClientShape, PhaseShapeResult>>>;
  readonly seconds: number;
}

export interface DeviceUserReport {
  readonly affinity: AffinityMode;
  readonly clients: Readonly<Partial<Record<ClientShape, number>>>;
  readonly phases: readonly PhaseResult[];
}

export interface DeviceUserOptions {
  readonly affinity: AffinityMode;
  /** Seconds between the device tunnels and the late user tunnels (≥ 40: past every port-500 entry). */
  readonly lateDelaySec?: number;
  /** IKE_SA attempts per user tunnel before giving up (each failed one costs a retransmission schedule). */
  readonly maxAttempts?: number;
  /** Restart vpnlb (kill -9, then a new start that adopts the table) while the device tunnels run alone. */
  readonly restartWhileWaiting?: boolean;
  /** Run the CGNAT clients of a phase at the same time instead of one after the other. */
  readonly concurrentCgnat?: boolean;
  /** Move the directly connected clients to a new address at the end (MOBIKE). */
  readonly roaming?: boolean;
  readonly progress?: (line: string) => void;
  /** Admin port of this run's vpnlb (distinct per run when several share a lab). */
  readonly adminPort?: number;
}

/** The server a client's tunnel reached (by its virtual IP), or undefined when the tunnel is down. */
export async function tunnelServer(
  lab: IkeLab,
  c: LabClient,
  conn: 'device' | 'user',
): Promise<{ server: string; spi: string } | undefined> {
  const sa = (await c.charon!.listSas().catch(() => [])).find(
    (s) =>
      s.connection === conn &&
      s.state === 'ESTABLISHED' &&
      s.children.some((ch) => ch.state === 'INSTALLED'),
  );
  const server = sa ? lab.serverOfVip(sa.localVips[0] ?? '')?.name : undefined;
  return sa && server ? { server, spi: sa.initiatorSpi } : undefined;
}

/** Both tunnels of a client on one server, each passing a ping. */
export async function bothOnOneServerWithTraffic(lab: IkeLab, c: LabClient): Promise<boolean> {
  const [d, u] = await Promise.all([tunnelServer(lab, c, 'device'), tunnelServer(lab, c, 'user')]);
  if (!d || !u || d.server !== u.server) return false;
  const [pd, pu] = await Promise.all([
    lab.ping(c, 2, 0.1, TUNNEL_TARGET_V4),
    lab.ping(c, 2, 0.1, USER_TUNNEL_TARGET_V4),
  ]);
  return pd.received > 0 && pu.received > 0;
}

/** The kernel's `ike_split` counter (packets), read in the balancer namespace. */
export async function splitPackets(lab: IkeLab, table = 'vpnlb'): Promise<number> {
  return (await counterPackets(lab.lb, { family: 'ip', table })).ike_split ?? 0;
}

/** One client's outcome in a phase. */
interface ClientOutcome {
  readonly c: LabClient;
  /** The server of the client's device tunnel at the end of the phase. */
  readonly server?: string;
  /** IKE_SA attempts made. */
  readonly attempts: number;
  readonly connected: boolean;
  /** Both tunnels on one server, traffic through both. */
  readonly ok: boolean;
}

/** Brings a client's user tunnel up, retrying like an Always On VPN client (each attempt a new IKE_SA). */
export async function connectUser(
  c: LabClient,
  maxAttempts: number,
): Promise<{ attempts: number; connected: boolean }> {
  for (let attempt = 1; attempt <= maxAttempts; attempt++) {
    const r = await c.charon!.initiate('user', 20);
    if (r.ok) return { attempts: attempt, connected: true };
  }
  return { attempts: maxAttempts, connected: false };
}

function summarize(
  results: readonly ClientOutcome[],
  splits: Readonly<Partial<Record<ClientShape, number>>>,
): Partial<Record<ClientShape, PhaseShapeResult>> {
  const out: Partial<Record<ClientShape, PhaseShapeResult>> = {};
  for (const shape of SHAPES) {
    const mine = results.filter((r) => shapeOf(r.c) === shape);
    if (mine.length === 0) continue;
    out[shape] = {
      clients: mine.length,
      firstAttempt: mine.filter((r) => r.connected && r.attempts === 1).length,
      connected: mine.filter((r) => r.connected).length,
      attempts: mine.reduce((n, r) => n + r.attempts, 0),
      bothOnOneServerWithTraffic: mine.filter((r) => r.ok).length,
      servers: new Set(mine.map((r) => r.server).filter(Boolean)).size,
      splitPackets: splits[shape] ?? 0,
    };
  }
  return out;
}

/**
 * Runs every phase on a lab built with `tunnels: 'device-user'` (fresh peers, fresh conntrack);
 * vpnlb is started and stopped here.
 */
export async function runDeviceUser(lab: IkeLab, o: DeviceUserOptions): Promise<DeviceUserReport> {
  const progress = o.progress ?? (() => undefined);
  const maxAttempts = o.maxAttempts ?? 4;
  await lab.startServers();
  await lab.startClients();
  await lab.flushConntrack();
  const vpnlb = new LabVpnlb(
    lab,
    {
      nat: 'transparent',
      affinity: o.affinity,
      ...(o.adminPort ? { adminPort: o.adminPort } : {}),
    },
    `vpnlb-device-user-${o.affinity}.yaml`,
  );
  await vpnlb.start();
  const clients = lab.clients.filter((c) => !c.stalled);
  const phases: PhaseResult[] = [];
  // Each phase runs the direct and home-NAT clients first, then the CGNAT clients, so that the
  // kernel's split counter tells the two groups apart; CGNAT clients one after the other unless
  // asked otherwise (logons spread over time; concurrent ones from one address are the worst case).
  const sequentialCgnat = !o.concurrentCgnat;
  const phase = async (
    name: string,
    forClient: (c: LabClient) => Promise<ClientOutcome>,
    who: readonly LabClient[] = clients,
  ) => {
    const t0 = Date.now();
    const results: ClientOutcome[] = [];
    const splits: Partial<Record<ClientShape, number>> = {};
    for (const group of [['direct', 'home-nat'], ['cgnat']] as const) {
      const members = who.filter((c) => (group as readonly ClientShape[]).includes(shapeOf(c)));
      if (members.length === 0) continue;
      const split0 = await splitPackets(lab);
      const withServer = async (c: LabClient): Promise<ClientOutcome> => ({
        ...(await forClient(c)),
        server: (await tunnelServer(lab, c, 'device'))?.server,
      });
      if (group[0] === 'cgnat' && sequentialCgnat)
        for (const c of members) results.push(await withServer(c));
      else results.push(...(await Promise.all(members.map(withServer))));
      const split = (await splitPackets(lab)) - split0;
      for (const shape of group) splits[shape] = split;
    }
    const p: PhaseResult = {
      phase: name,
      byShape: summarize(results, splits),
      seconds: Math.round((Date.now() - t0) / 100) / 10,
    };
    phases.push(p);
    progress(
      `  ${o.affinity}: ${name}: ${Object.entries(p.byShape)
        .map(
          ([s, r]) =>
            `${s} ${r.firstAttempt}/${r.clients} at the first attempt, ${r.connected} in ${r.attempts} attempts, ${r.bothOnOneServerWithTraffic} with both tunnels on one server, on ${r.servers} server(s), ${r.splitPackets} split packets`,
        )
        .join('; ')}`,
    );
    return p;
  };
  const userUp = async (c: LabClient): Promise<ClientOutcome> => {
    const { attempts, connected } = await connectUser(c, maxAttempts);
    return { c, attempts, connected, ok: connected && (await bothOnOneServerWithTraffic(lab, c)) };
  };
  try {
    progress(`${o.affinity}: ${clients.length} clients bring their device tunnel up...`);
    const device = await Promise.all(clients.map((c) => c.charon!.initiate('device', 20)));
    const failed = clients.filter((_, i) => !device[i]!.ok).map((c) => c.name);
    if (failed.length > 0) throw new Error(`device tunnels failed: ${failed.join(', ')}`);
    await sleep(2000);
    await phase('user tunnel 2 s after the device tunnel', userUp);
    await phase('user tunnel reconnects, device tunnel stays up', async (c) => {
      await c.charon!.terminate('user');
      return userUp(c);
    });
    await phase(
      'device tunnel rekeyed (CHILD_SA, then IKE_SA) with the user tunnel up',
      async (c) => {
        const before = await tunnelServer(lab, c, 'user');
        await c.charon!.rekey('child', 'device').catch(() => undefined);
        await sleep(1000);
        await c.charon!.rekey('ike', 'device').catch(() => undefined);
        await sleep(1500);
        const after = await tunnelServer(lab, c, 'user');
        const ok =
          before !== undefined &&
          after?.spi === before.spi &&
          (await bothOnOneServerWithTraffic(lab, c));
        return { c, attempts: 1, connected: ok, ok };
      },
    );
    await Promise.all(clients.map((c) => c.charon!.terminate('user')));
    const lateSec = o.lateDelaySec ?? 45;
    progress(
      `${o.affinity}: user tunnels down; waiting ${lateSec} s (past the port-500 conntrack entries of the balancer and the NATs)${o.restartWhileWaiting ? ', restarting vpnlb meanwhile (kill -9, adoption)' : ''}...`,
    );
    const waited = Date.now();
    if (o.restartWhileWaiting) {
      await sleep(2000);
      await vpnlb.kill9();
      await vpnlb.start();
    }
    await sleep(Math.max(0, lateSec * 1000 - (Date.now() - waited)));
    await phase(
      `user tunnel ${lateSec} s after the device tunnel${o.restartWhileWaiting ? ' (vpnlb restarted meanwhile)' : ''}`,
      userUp,
    );
    if (o.roaming) {
      // Clients that have both tunnels up to move with (a mode that lost user tunnels above has fewer).
      const direct = clients.filter((c) => shapeOf(c) === 'direct');
      const up = await Promise.all(
        direct.map(
          async (c) =>
            (await tunnelServer(lab, c, 'device')) !== undefined &&
            (await tunnelServer(lab, c, 'user')) !== undefined,
        ),
      );
      const movers = direct.filter((_, i) => up[i]);
      await phase(
        'roaming: direct clients with both tunnels up move to a new address (MOBIKE)',
        async (c) => {
          const before = await Promise.all([
            tunnelServer(lab, c, 'device'),
            tunnelServer(lab, c, 'user'),
          ]);
          const moved = await lab.moveClient(c);
          // charon notices the address change, then announces the new path (UPDATE_SA_ADDRESSES).
          let ok = false;
          for (
            const deadline = Date.now() + 15_000;
            Date.now() < deadline && !ok;
            await sleep(500)
          ) {
            const sas = await c.charon!.listSas().catch(() => []);
            const moves = sas.filter(
              (s) => s.state === 'ESTABLISHED' && s.localHost === moved,
            ).length;
            if (moves >= 2) ok = true;
          }
          const after = await Promise.all([
            tunnelServer(lab, c, 'device'),
            tunnelServer(lab, c, 'user'),
          ]);
          const kept = before.every(
            (b, i) => b !== undefined && after[i]?.spi === b.spi && after[i]?.server === b.server,
          );
          const traffic = ok && kept && (await bothOnOneServerWithTraffic(lab, c));
          return { c, attempts: 1, connected: kept, ok: traffic };
        },
        movers,
      );
    }
  } finally {
    await vpnlb.stop();
  }
  const count = (shape: ClientShape) => clients.filter((c) => shapeOf(c) === shape).length;
  const shapes: Partial<Record<ClientShape, number>> = {};
  for (const s of SHAPES) if (count(s) > 0) shapes[s] = count(s);
  return { affinity: o.affinity, clients: shapes, phases };
}

export interface DeviceUserComparisonOptions {
  readonly affinities: readonly AffinityMode[];
  readonly servers?: number;
  readonly directClients?: number;
  readonly homeNatClients?: number;
  readonly cgnatClients?: number;
  readonly lateDelaySec?: number;
  readonly progress?: (line: string) => void;
  readonly label?: string;
}

/** Builds a device + user lab, runs each affinity mode on it (fresh peers each), tears it down. */
export async function runDeviceUserComparison(
  o: DeviceUserComparisonOptions,
): Promise<DeviceUserReport[]> {
  const progress = o.progress ?? (() => undefined);
  progress(
    'building the device + user lab: namespaces, strongSwan servers, direct, home-NAT and CGNAT clients...',
  );
  const lab = await IkeLab.create({
    label: o.label ?? 'dus',
    servers: o.servers ?? 3,
    clients: o.directClients ?? 2,
    homeNatClients: o.homeNatClients ?? 2,
    cgnatClients: o.cgnatClients ?? 3,
    tunnels: 'device-user',
    clientDpd: { delaySec: 10, action: 'clear' },
  });
  try {
    const reports: DeviceUserReport[] = [];
    for (const affinity of o.affinities) {
      reports.push(
        await runDeviceUser(lab, {
          affinity,
          lateDelaySec: o.lateDelaySec ?? 45,
          restartWhileWaiting: true,
          roaming: true,
          progress,
        }),
      );
    }
    return reports;
  } finally {
    await lab.destroy();
  }
}

/** The plain-language table: one block per phase, one line per affinity mode and client shape. */
export function formatDeviceUser(reports: readonly DeviceUserReport[]): string {
  const first = reports[0];
  if (!first) return '';
  const shapes = Object.entries(first.clients)
    .map(([s, n]) => `${n} ${s}`)
    .join(', ');
  const lines = [
    `Always On VPN device + user tunnels (${shapes} clients; each runs both tunnels on one set of sockets, as Windows does):`,
    'each line: user tunnels up at the first IKE_SA attempt / clients, attempts in all, clients with both tunnels on one server and traffic through both, split packets counted by the kernel',
  ];
  for (const [i, p] of first.phases.entries()) {
    lines.push('', `  ${p.phase}:`);
    for (const r of reports) {
      const phase = r.phases[i];
      if (!phase) continue;
      const cells = Object.entries(phase.byShape).map(
        ([s, x]) =>
          `${s} ${x.firstAttempt}/${x.clients} first, ${x.attempts} attempts, ${x.bothOnOneServerWithTraffic} both on one server, ${x.splitPackets} split`,
      );
      lines.push(`    ${r.affinity.padEnd(13)} ${cells.join('; ')}`);
    }
  }
  return lines.join('\n');
}
