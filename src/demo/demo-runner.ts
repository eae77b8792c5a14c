/**
 * `vpnlb demo`, the engine: three simulated RRAS servers, the balancer (the real runtime, the
 * userspace relay) and simulated clients, all on loopback; two phases that tell the error-809
 * story and its fix where transparent forwarding is impossible.
 *
 * 1. Full NAT from one address: every client reaches the servers from the relay's address; each
 *    server accepts `perIpLimit` SAs from one address and silently drops the rest — clients
 *    beyond that fail, exactly as Windows clients fail with error 809 behind a source-NATting
 *    load balancer.
 * 2. SNAT pool: the same load leaves from several addresses, at most `perIpLimit` sessions per
 *    (address, server): nobody is refused.
 * Throughout, each client's IKE on 500, IKE on 4500 (from a new source port) and ESP must reach
 * one server; the servers report which SA saw which paths, so a split handshake would show.
 */
import { Writable } from 'node:stream';
import { loadConfigText } from '../config/load-config.js';
import { Runtime } from '../runtime/runtime.js';
import { createDataPlane } from '../dataplane/registry.js';
import { UdpRelay } from '../dataplane/relay/udp-relay.js';
import { createLogger } from '../log/logger.js';
import { runIkeClient, type IkeClientResult } from '../sim/client/ike-client.js';
import { startSimFarm, type SimFarm } from '../sim/rras/sim-farm.js';
import { DEMO, demoConfigYaml } from './demo-config.js';
import { AdminCredentials } from '../admin/credentials.js';
import { sleep } from '../util/wait.js';

export type PhaseKey = 'fullNat' | 'snatPool';

/** Live numbers of a phase (the terminal view prints them every second). */
export interface PhaseProgress {
  readonly started: number;
  readonly attempted: number;
  readonly connected: number;
  readonly failed: number;
  readonly failedByPerIpLimit: number;
  readonly splitHandshakes: number;
  /** Per server: current SAs and how many source addresses they come from. */
  readonly servers: readonly {
    readonly name: string;
    readonly sas: number;
    readonly sourceAddresses: number;
    readonly refused: number;
  }[];
}

export interface PhaseResult {
  readonly title: string;
  readonly service: string;
  readonly attempted: number;
  readonly connected: number;
  readonly failed: number;
  /** Failed clients whose IKE_SA_INIT a server dropped at its per-source-IP limit. */
  readonly failedByPerIpLimit: number;
  readonly failedOther: number;
  /** Clients whose packets reached more than one server (must be 0). */
  readonly splitHandshakes: number;
  readonly backends: Readonly<
    Record<
      string,
      {
        readonly clients: number;
        readonly refusedByPerIpLimit: number;
        readonly sourceAddresses: number;
      }
    >
  >;
  /** Source addresses the servers saw, all servers together. */
  readonly sourceAddresses: readonly string[];
  readonly relayDropped: Readonly<Record<string, number>>;
  readonly medianConnectMs: number | null;
}

export interface DemoReport {
  readonly adminUrl: string | null;
  readonly durationMs: number;
  readonly perIpLimit: number;
  readonly phases: { readonly fullNat: PhaseResult; readonly snatPool: PhaseResult };
}

export type DemoEvent =
  | {
      readonly type: 'started';
      readonly adminUrl: string | null;
      readonly loginUrl: string | null;
      readonly warnings: readonly string[];
    }
  | {
      readonly type: 'phase-start';
      readonly phase: PhaseKey;
      readonly title: string;
      readonly service: string;
    }
  | {
      readonly type: 'tick';
      readonly phase: PhaseKey;
      readonly elapsedMs: number;
      readonly progress: PhaseProgress;
    }
  | { readonly type: 'phase-end'; readonly phase: PhaseKey; readonly result: PhaseResult };

export interface DemoOptions {
  /** Total run time in ms (both phases; each gets half). */
  readonly durationMs: number;
  readonly clientsPerPhase?: number;
  /** Start the admin API on 127.0.0.1, ephemeral port (default true). */
  readonly admin?: boolean;
  readonly onEvent?: (event: DemoEvent) => void;
}

// A real client retransmits for tens of seconds; the demo's give up after 1.4 s so that a
// short run still ends each failure inside its phase.
const RETRANSMITS = [200, 400, 800];
const CLIENT_WORST_CASE_MS = 2_500;

export async function runDemo(options: DemoOptions): Promise<DemoReport> {
  const emit = options.onEvent ?? (() => {});
  const warnings: string[] = [];
  const logStream = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString('utf8').split('\n')) {
        if (!line) continue;
        try {
          const rec = JSON.parse(line) as { level?: number; msg?: string };
          if ((rec.level ?? 0) >= 40 && rec.msg) warnings.push(rec.msg);
        } catch {
          // not JSON: ignore
        }
      }
      done();
    },
  });
  const farm = await startSimFarm({
    addresses: DEMO.servers,
    // SAs outlive the demo's phases: they hold their place against the per-IP limit.
    responder: { perIpLimit: DEMO.perIpLimit, idleTimeout: 600_000, halfOpenTimeout: 600_000 },
  });
  let runtime: Runtime | undefined;
  try {
    const config = loadConfigText(demoConfigYaml(farm.ikePort, farm.natTPort), '<demo>');
    runtime = new Runtime({
      config,
      logger: createLogger({ level: 'warn', destination: logStream }),
      createDataPlane,
      admin: options.admin === false ? false : { host: '127.0.0.1', port: 0 },
      // No token file (no root, no configuration): the dashboard is opened with a one-time link.
      adminCredentials: AdminCredentials.ephemeral(),
    });
    await runtime.start();
    const adminUrl = runtime.adminAddress?.url ?? null;
    emit({
      type: 'started',
      adminUrl,
      loginUrl: runtime.adminLoginUrl() ?? null,
      warnings: [...warnings],
    });
    const phaseMs = options.durationMs / 2;
    const relayOf = (name: string): UdpRelay => {
      const dp = runtime!.dataPlanes().get(name);
      if (!(dp instanceof UdpRelay)) throw new Error(`${name}: expected the userspace relay`);
      return dp;
    };
    const n = options.clientsPerPhase ?? DEMO.clientsPerPhase;
    const fullNat = await runPhase(
      'fullNat',
      'full NAT from one address',
      'ikev2-fullnat',
      DEMO.vipFullNat,
      '127.1.1',
      relayOf('ikev2-fullnat'),
      farm,
      n,
      phaseMs,
      emit,
    );
    const snatPool = await runPhase(
      'snatPool',
      `SNAT pool (${DEMO.snatAddresses.length} addresses, ${DEMO.perIpLimit} per server)`,
      'ikev2-snatpool',
      DEMO.vipSnatPool,
      '127.1.2',
      relayOf('ikev2-snatpool'),
      farm,
      n,
      phaseMs,
      emit,
    );
    return {
      adminUrl,
      durationMs: options.durationMs,
      perIpLimit: DEMO.perIpLimit,
      phases: { fullNat, snatPool },
    };
  } finally {
    await runtime?.stop();
    await farm.close();
  }
}

async function runPhase(
  phase: PhaseKey,
  title: string,
  service: string,
  vip: string,
  clientPrefix: string,
  relay: UdpRelay,
  farm: SimFarm,
  clients: number,
  phaseMs: number,
  emit: (e: DemoEvent) => void,
): Promise<PhaseResult> {
  for (const s of farm.servers) s.reset();
  emit({ type: 'phase-start', phase, title, service });
  const ports = relay.ports();
  const server = { address: vip, ikePort: ports.ike, natTPort: ports.natT };
  const results: IkeClientResult[] = [];
  let started = 0;
  const t0 = Date.now();
  // Spread the arrivals over the first part of the phase, leaving time for the last to finish.
  const window = Math.max(0, phaseMs - CLIENT_WORST_CASE_MS) * 0.6;
  const tick = setInterval(
    () =>
      emit({
        type: 'tick',
        phase,
        elapsedMs: Date.now() - t0,
        progress: progress(results, started, farm),
      }),
    1000,
  );
  try {
    const running: Promise<void>[] = [];
    for (let i = 0; i < clients; i++) {
      const at = t0 + (clients > 1 ? (window * i) / (clients - 1) : 0);
      const wait = at - Date.now();
      if (wait > 0) await sleep(wait);
      started++;
      running.push(
        runIkeClient({
          localAddress: `${clientPrefix}.${i + 1}`,
          server,
          retransmitTimeouts: RETRANSMITS,
          espPackets: 3,
          espTimeout: 500,
        }).then((r) => {
          results.push(r);
        }),
      );
    }
    await Promise.all(running);
    const rest = t0 + phaseMs - Date.now();
    if (rest > 0) await sleep(rest);
  } finally {
    clearInterval(tick);
  }
  emit({
    type: 'tick',
    phase,
    elapsedMs: Date.now() - t0,
    progress: progress(results, started, farm),
  });
  const result = summarize(title, service, results, farm, relay);
  emit({ type: 'phase-end', phase, result });
  return result;
}

/** Names of the servers one client's packets reached: by its SPI, or by its ESP SPI. */
function serversOf(r: IkeClientResult, farm: SimFarm): string[] {
  return farm.servers
    .filter(
      (s) =>
        s.seenSpis().has(r.spiI) ||
        (r.serverEspSpi !== undefined && s.unknownEspSpis().has(r.serverEspSpi)),
    )
    .map((s) => s.name);
}

function isRefused(r: IkeClientResult, farm: SimFarm): boolean {
  return !r.ok && farm.servers.some((s) => s.refusedSpis().has(r.spiI));
}

function progress(
  results: readonly IkeClientResult[],
  started: number,
  farm: SimFarm,
): PhaseProgress {
  const connected = results.filter((r) => r.ok).length;
  return {
    started,
    attempted: results.length,
    connected,
    failed: results.length - connected,
    failedByPerIpLimit: results.filter((r) => isRefused(r, farm)).length,
    splitHandshakes: results.filter((r) => serversOf(r, farm).length > 1).length,
    servers: farm.servers.map((s) => ({
      name: s.name,
      sas: s.stats().activeSas,
      sourceAddresses: s.clientAddresses().length,
      refused: s.stats().refusedByPerIpLimit,
    })),
  };
}

function summarize(
  title: string,
  service: string,
  results: readonly IkeClientResult[],
  farm: SimFarm,
  relay: UdpRelay,
): PhaseResult {
  const p = progress(results, results.length, farm);
  const backends: Record<
    string,
    { clients: number; refusedByPerIpLimit: number; sourceAddresses: number }
  > = {};
  for (const s of farm.servers) {
    backends[s.name] = {
      clients: 0,
      refusedByPerIpLimit: s.stats().refusedByPerIpLimit,
      sourceAddresses: s.clientAddresses().length,
    };
  }
  for (const r of results) {
    if (!r.ok) continue;
    const [name] = serversOf(r, farm);
    if (name && backends[name]) backends[name].clients++;
  }
  const times = results
    .filter((r) => r.ok)
    .map((r) => r.totalMs)
    .sort((a, b) => a - b);
  const dropped = Object.fromEntries(
    Object.entries(relay.stats().dropped).filter(([, v]) => v > 0),
  );
  return {
    title,
    service,
    attempted: p.attempted,
    connected: p.connected,
    failed: p.failed,
    failedByPerIpLimit: p.failedByPerIpLimit,
    failedOther: p.failed - p.failedByPerIpLimit,
    splitHandshakes: p.splitHandshakes,
    backends,
    sourceAddresses: [...new Set(farm.servers.flatMap((s) => s.clientAddresses()))].sort(),
    relayDropped: dropped,
    medianConnectMs: times.length ? Math.round(times[Math.floor(times.length / 2)]!) : null,
  };
}
