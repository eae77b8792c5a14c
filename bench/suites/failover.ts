/**
 * Suite `failover`: server killed → first new client connected elsewhere, in ms, with vpnlb's
 * `ikev2` monitor at its defaults and at a fast setting.
 *
 * Each trial: three simulated RRAS servers (src/sim/rras) on their own loopback addresses, a
 * `vpnlb run` process (userspace relay, full NAT, Maglev by IKE SPI, pinned to the balancer
 * core) in front of them, and simulated IKEv2 clients (src/sim/client) — no namespace needed.
 * The clients use initiator SPIs that the service's Maglev table maps to the victim (computed
 * with the product's balancer from the same candidates and seed, then checked: the first ones
 * must land on the victim). The victim is killed the way a crashed host dies: its sockets close
 * and its ports are taken by sockets that swallow every datagram (no ICMP "port unreachable",
 * which a real dead host never sends). From then on a new client starts every 50 ms with one
 * transmission per exchange (400 ms wait); the figure is the time from the kill to the
 * completion of the first client that connected (IKE_SA_INIT, IKE_AUTH, one ESP echo) on
 * another server. It is bounded below by detection (`fall` failed probes, each ending at the
 * probe's timeout) and includes the snapshot's trip to the relay.
 *
 * Trials are independent (own servers, own vpnlb process, own addresses) and run concurrently:
 * the processes are idle apart from the probes and 20 clients/s, and the figure is made of
 * seconds of monitor timers, not of CPU.
 */
import { randomBytes } from 'node:crypto';
import { createSocket, type Socket } from 'node:dgram';
import { spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { ConnectionCounts, createBalancer, ikeSpiKey } from '../../src/balancer/index.js';
import { startSimFarm, type SimFarm } from '../../src/sim/rras/sim-farm.js';
import { runIkeClient, type IkeClientResult } from '../../src/sim/client/ike-client.js';
import { vpnlbArgv } from '../../lab/vpnlb-process.js';
import { vpnlbAvailable, vpnlbConfig, type VpnlbCase } from '../contenders/vpnlb.js';
import type { BenchContext, SuiteOutput } from '../lib/context.js';
import { Daemon } from '../lib/proc.js';
import { sleep } from '../../src/util/wait.js';
import { median } from '../lib/stats.js';
import { BALANCER_CPU } from '../lib/topology.js';

export interface MonitorSetting {
  readonly key: string;
  readonly label: string;
  /** The `monitors.ike` YAML value. */
  readonly yaml: string;
  readonly intervalMs: number;
  readonly timeoutMs: number;
  readonly fall: number;
}

export const SETTINGS: readonly MonitorSetting[] = [
  {
    key: 'defaults',
    label: 'ikev2 monitor at its defaults (interval 5 s, timeout 2 s, fall 3, jitter 0.1)',
    yaml: '{ type: ikev2 }',
    intervalMs: 5000,
    timeoutMs: 2000,
    fall: 3,
  },
  {
    key: 'fast',
    label: 'ikev2 monitor fast (interval 1 s, timeout 0.5 s, fall 2)',
    yaml: '{ type: ikev2, interval: 1s, timeout: 500ms, fall: 2 }',
    intervalMs: 1000,
    timeoutMs: 500,
    fall: 2,
  },
];

const SEED = 0x5eed1234;
const NAMES = ['s1', 's2', 's3'];
const VICTIM = 's2';

/** A free UDP port on `address` right now (the vpnlb process binds it a moment later). */
async function freePort(address: string): Promise<number> {
  const s = createSocket('udp4');
  await new Promise<void>((resolve, reject) => {
    s.once('error', reject);
    s.bind(0, address, () => resolve());
  });
  const port = s.address().port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

/** Binds sockets that swallow everything on the victim's ports: it is gone, silently. */
async function blackHole(address: string, ports: readonly number[]): Promise<Socket[]> {
  const out: Socket[] = [];
  for (const port of ports) {
    const s = createSocket('udp4');
    s.on('message', () => undefined);
    await new Promise<void>((resolve, reject) => {
      s.once('error', reject);
      s.bind(port, address, () => resolve());
    });
    out.push(s);
  }
  return out;
}

/** Initiator SPIs that the Maglev table over `candidates` maps to `victim` (pure but for randomness). */
export function spisFor(victim: string, addresses: readonly string[], count: number): bigint[] {
  const balancer = createBalancer('maglev', {
    candidates: NAMES.map((name, i) => ({ name, address: addresses[i]!, weight: 1 })),
    seed: SEED,
    connections: new ConnectionCounts(),
  });
  const out: bigint[] = [];
  while (out.length < count) {
    const b = randomBytes(8);
    if (balancer.pick(ikeSpiKey(b))?.name === victim) out.push(b.readBigUInt64BE(0));
  }
  return out;
}

interface Trial {
  readonly ms?: number;
  readonly error?: string;
  readonly clientsAfterKill: number;
  /** The reason vpnlb logged when it marked the victim down. */
  readonly downReason?: string;
}

async function trial(ctx: BenchContext, setting: MonitorSetting, index: number): Promise<Trial> {
  const net = `127.73.${index + 1}`;
  const addresses = NAMES.map((_, i) => `${net}.${i + 1}`);
  const vip = `${net}.100`;
  let farm: SimFarm | undefined;
  let d: Daemon | undefined;
  let holes: Socket[] = [];
  let clientSeq = 0;
  try {
    farm = await startSimFarm({ addresses, names: NAMES });
    const ports = {
      ike: await freePort(vip),
      natT: await freePort(vip),
      backendIke: farm.ikePort,
      backendNatT: farm.natTPort,
    };
    const c: VpnlbCase = {
      kind: 'ikev2',
      dataplane: 'userspace',
      vip,
      backends: addresses,
      table: 'unused',
      ports,
      hashSeed: SEED,
      top: `monitors:\n  ike: ${setting.yaml}`,
      extra: 'monitor: ike',
    };
    const a = vpnlbAvailable(c);
    if (!a.ok) throw new Error(a.reason);
    const dir = join(ctx.work, `failover-${setting.key}-${index}`);
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'vpnlb.yaml'), vpnlbConfig(c));
    const [node, ...args] = vpnlbArgv(['run', '--config', join(dir, 'vpnlb.yaml')]);
    d = new Daemon(
      spawn('taskset', ['-c', String(BALANCER_CPU), node!, ...args], {
        stdio: ['ignore', 'pipe', 'pipe'],
        env: { ...process.env, NODE_ENV: 'production' },
      }),
      `vpnlb failover ${setting.key}`,
    );
    await d.waitFor((o) => o.includes('vpnlb running'), 20_000);
    // Steady state: every backend's first probe (within min(1 s, interval) of the start, answered
    // in ms) has given its verdict; a kill before it would be a start-up case, not a failover.
    await sleep(Math.min(1000, setting.intervalMs) + 500);

    const victim = farm.servers[NAMES.indexOf(VICTIM)]!;
    const serverOf = (r: IkeClientResult) =>
      farm!.servers.find((s) => s.seenSpis().has(r.spiI))?.name;
    const spis = spisFor(VICTIM, addresses, 1000);
    let next = 0;
    const client = (timeouts: readonly number[]) =>
      runIkeClient({
        localAddress: `127.74.${index + 1}.${(clientSeq++ % 250) + 1}`,
        server: { address: vip, ...{ ikePort: ports.ike, natTPort: ports.natT } },
        spiI: spis[next++ % spis.length]!,
        espPackets: 1,
        espTimeout: 400,
        retransmitTimeouts: timeouts,
      });
    // Up and mapped as predicted: victim-mapped clients land on the victim.
    const deadline = performance.now() + 15_000;
    let onVictim = 0;
    while (onVictim < 3) {
      if (performance.now() > deadline)
        throw new Error(
          'victim-mapped clients did not reach the victim before the kill (Maglev prediction or start-up failed)',
        );
      const r = await client([300, 300]);
      if (r.ok && serverOf(r) === VICTIM) onVictim++;
      else if (r.ok)
        throw new Error(
          `a client whose SPI maps to ${VICTIM} landed on ${serverOf(r) ?? '?'}: the prediction does not match the service`,
        );
    }
    // Kill at a random phase of the probe schedule.
    await sleep(Math.random() * setting.intervalMs);
    const killedAt = performance.now();
    await victim.close();
    holes = await blackHole(victim.address, [farm.ikePort, farm.natTPort]);
    const bound = setting.intervalMs * (setting.fall + 2) + setting.timeoutMs + 10_000;
    let firstOk: number | undefined;
    let started = 0;
    const pending: Promise<void>[] = [];
    while (firstOk === undefined && performance.now() - killedAt < bound) {
      started++;
      pending.push(
        client([400]).then((r) => {
          if (r.ok && serverOf(r) !== VICTIM)
            firstOk = Math.min(firstOk ?? Infinity, performance.now() - killedAt);
        }),
      );
      await sleep(50);
    }
    await Promise.all(pending);
    const transition = /"reason":"([^"]*)"[^\n]*"msg":"ike\/s2: up -> down/.exec(
      d.stderr + d.stdout,
    )?.[1];
    if (!d.alive) throw new Error(`vpnlb exited: ${d.stderr.slice(-300)}`);
    if (firstOk === undefined)
      return {
        error: `no victim-mapped client connected elsewhere within ${bound} ms`,
        clientsAfterKill: started,
      };
    return {
      ms: firstOk,
      clientsAfterKill: started,
      ...(transition ? { downReason: transition } : {}),
    };
  } catch (err) {
    return {
      error: (err as Error).message.replace(/\s+/g, ' ').slice(0, 300),
      clientsAfterKill: 0,
    };
  } finally {
    await d?.stop();
    for (const h of holes) await new Promise<void>((r) => h.close(() => r()));
    await farm?.close().catch(() => undefined);
  }
}

export async function runFailover(ctx: BenchContext): Promise<SuiteOutput> {
  const { opts, log } = ctx;
  log(`failover: ${opts.repeats} trial(s) per monitor setting, concurrently`);
  const jobs = SETTINGS.flatMap((s, si) =>
    Array.from({ length: opts.repeats }, (_, r) => ({ s, index: si * 20 + r })),
  );
  const trials = await Promise.all(
    jobs.map(async (j) => ({ key: j.s.key, t: await trial(ctx, j.s, j.index) })),
  );
  const rows = SETTINGS.map((s) => {
    const mine = trials.filter((x) => x.key === s.key).map((x) => x.t);
    const ms = mine.map((x) => x.ms).filter((x): x is number => x !== undefined);
    const errors = mine.map((x) => x.error).filter((x): x is string => x !== undefined);
    log(
      `  ${s.key}: ${ms.map((x) => Math.round(x)).join(', ') || '—'} ms${errors.length ? `; failed: ${errors[0]}` : ''}`,
    );
    return {
      contender: s.label,
      figures: {
        median: ms.length ? median(ms) : null,
        min: ms.length ? Math.min(...ms) : null,
        max: ms.length ? Math.max(...ms) : null,
        trials: ms.length,
        detectBound: (s.fall - 1) * s.intervalMs + s.timeoutMs,
        detectBoundMax: s.fall * s.intervalMs * 1.1 + s.timeoutMs,
      },
      ...(ms.length === 0 && errors.length ? { error: errors[0]! } : {}),
    };
  });
  const failures = trials.filter((x) => x.t.error).map((x) => `${x.key}: ${x.t.error}`);
  return {
    sections: [
      {
        title: 'Failover: server killed → first new client connected elsewhere',
        suite: 'failover',
        columns: {
          median: 'median ms',
          min: 'min ms',
          max: 'max ms',
          trials: 'trials',
          detectBound: 'detection lower bound ms',
          detectBoundMax: 'detection upper bound ms',
        },
        rows,
        notes: [
          'Userspace relay, simulated RRAS servers and clients on loopback; vpnlb is a separate `vpnlb run` process on the balancer core. The victim dies silently (its ports swallow datagrams, no ICMP). Clients whose IKE SPI the Maglev table maps to the victim start every 50 ms; the figure ends when the first of them completes IKE_SA_INIT, IKE_AUTH and an ESP echo on another server.',
          'Detection bounds: the victim is marked down at the `fall`-th failed probe, each failing at its timeout: between (fall − 1) × interval + timeout (the kill just before a probe) and fall × interval × (1 + jitter) + timeout. The kernel data plane detects the same way and then applies the map change (see the nft figures of the control-plane section).',
          ...(failures.length ? [`Failed trials: ${failures.join(' · ')}`] : []),
        ],
      },
    ],
    ratios: {},
    findings: [],
    raw: { trials },
  };
}
