/**
 * Suites 2 and 3: TCP passthrough (SSTP) and TLS offload.
 *
 * Passthrough — same byte stream for every contender (tcpbench, bench/c/tcpbench.c): each
 * connection sends one real TLS ClientHello record first (vpnlb passthrough inspects it to
 * choose a backend; the other contenders just forward it), then bulk bytes; the server answers
 * one 7-byte TLS alert record so the client knows the backend was reached. Throughput is what
 * the servers received over the window; connection rate counts complete
 * connect → ClientHello → server reply → close transactions.
 *
 * Offload — full handshakes/s with `openssl s_time -new` (C, several processes on the
 * generator core, no session reuse: every connection is a full handshake), ECDSA P-256 and
 * RSA 2048 certificates; then Gbit/s on established tunnels: `openssl s_client` streams an
 * SSTP_DUPLEX_POST request and bulk bytes, the contender decrypts and forwards plain TCP to
 * tcpbench servers (port 80).
 */
import { spawn } from 'node:child_process';
import { readCoreTimes, coreBusy } from '../lib/cpu.js';
import {
  collect,
  runTool,
  startDaemon,
  safeKill,
  lastJson,
  type CTools,
  type Daemon,
} from '../lib/proc.js';
import { sleep } from '../../src/util/wait.js';
import { median } from '../lib/stats.js';
import {
  BALANCER_CPU,
  GENERATOR_CPU,
  SERVER_ADDRS,
  VIP,
  type BenchTopology,
} from '../lib/topology.js';

/** vpnlb's SSTP passthrough in the bench's topology (the userspace proxy, one process). */
export const PASSTHROUGH_CASE = {
  kind: 'sstp',
  mode: 'passthrough',
  vip: VIP,
  port: 443,
  backends: SERVER_ADDRS,
  backendPort: 443,
} as const;

export interface TcpServers {
  readonly daemons: readonly Daemon[];
  /** Total bytes/connections the servers saw (they report at exit). */
  stop(): Promise<{ bytes: number; connections: number; cpu: number }>;
}

/** One tcpbench server per backend address port (all in srv, generator core). */
export async function startServers(
  t: BenchTopology,
  tools: CTools,
  port: number,
  cpus: number | string = GENERATOR_CPU,
): Promise<TcpServers> {
  const d = startDaemon(
    t.srv,
    cpus,
    tools.tcpbench,
    ['server', '-p', String(port)],
    `tcpbench server :${port}`,
  );
  await d.waitFor((o) => o.includes('"ready"'), 5000);
  return {
    daemons: [d],
    async stop() {
      const out = await d.stop();
      const j = lastJson<{ bytes: number; connections: number; cpuUser: number; cpuSys: number }>(
        out,
      );
      return {
        bytes: j?.bytes ?? NaN,
        connections: j?.connections ?? NaN,
        cpu: (j?.cpuUser ?? NaN) + (j?.cpuSys ?? NaN),
      };
    },
  };
}

export interface ThroughputSample {
  readonly gbps: number;
  readonly balancerCpu: number;
  readonly generatorCpu: number;
}

/** Gbit/s through `dst:port` with `streams` connections (bytes counted at the servers). */
export async function measureStream(
  t: BenchTopology,
  tools: CTools,
  dst: string,
  port: number,
  backendPort: number,
  streams: number,
  seconds: number,
): Promise<ThroughputSample> {
  const servers = await startServers(t, tools, backendPort);
  try {
    const c0 = readCoreTimes();
    const gen = await runTool<{ bytes: number; seconds: number; cpuUser: number; cpuSys: number }>(
      t.snd,
      GENERATOR_CPU,
      tools.tcpbench,
      ['stream', '-d', dst, '-p', String(port), '-n', String(streams), '-t', String(seconds)],
      (seconds + 15) * 1000,
    );
    const busy = coreBusy(c0, readCoreTimes());
    await sleep(200);
    const srv = await servers.stop();
    return {
      gbps: (srv.bytes * 8) / gen.seconds / 1e9,
      balancerCpu: busy[BALANCER_CPU] ?? NaN,
      generatorCpu: (gen.cpuUser + gen.cpuSys) / gen.seconds,
    };
  } finally {
    await servers.stop();
  }
}

export interface RateSample {
  readonly perSecond: number;
  readonly failed: number;
  readonly balancerCpu: number;
  /**
   * The generator process's CPU (user + system) per second; for `measureHandshakes`, whose
   * clients are several short `openssl` processes, its core's busy time (as `generatorCore`).
   */
  readonly generatorCpu: number;
  /** The generator core's busy time: the generator, the servers, their share of the kernel. */
  readonly generatorCore: number;
}

/**
 * Which cores a connection-rate measurement uses: the balancer's (whose busy time is summed),
 * one generator process per generator core, and the servers' cores. Default: the bench's two
 * (BALANCER_CPU; one generator and the servers on GENERATOR_CPU).
 */
export interface ConnRatePlacement {
  readonly balancer: readonly number[];
  readonly generators: readonly number[];
  readonly servers: string;
}

const DEFAULT_PLACEMENT: ConnRatePlacement = {
  balancer: [BALANCER_CPU],
  generators: [GENERATOR_CPU],
  servers: String(GENERATOR_CPU),
};

/**
 * Complete passthrough transactions per second, from one generator process per generator core
 * (`concurrency` connections in flight each), summed.
 */
export async function measureConnRate(
  t: BenchTopology,
  tools: CTools,
  dst: string,
  port: number,
  backendPort: number,
  concurrency: number,
  seconds: number,
  placement: ConnRatePlacement = DEFAULT_PLACEMENT,
): Promise<RateSample> {
  const servers = await startServers(t, tools, backendPort, placement.servers);
  try {
    const c0 = readCoreTimes();
    const gens = await Promise.all(
      placement.generators.map((cpu) =>
        runTool<{
          completed: number;
          failed: number;
          seconds: number;
          cpuUser: number;
          cpuSys: number;
        }>(
          t.snd,
          cpu,
          tools.tcpbench,
          [
            'connrate',
            '-d',
            dst,
            '-p',
            String(port),
            '-n',
            String(concurrency),
            '-t',
            String(seconds),
          ],
          (seconds + 15) * 1000,
        ),
      ),
    );
    const busy = coreBusy(c0, readCoreTimes());
    const sum = (f: (g: (typeof gens)[number]) => number) => gens.reduce((n, g) => n + f(g), 0);
    const window = Math.max(...gens.map((g) => g.seconds));
    const cores = (list: readonly number[]) => list.reduce((n, c) => n + (busy[c] ?? NaN), 0);
    return {
      perSecond: sum((g) => g.completed) / window,
      failed: sum((g) => g.failed),
      balancerCpu: cores(placement.balancer),
      generatorCpu: sum((g) => g.cpuUser + g.cpuSys) / window,
      generatorCore: cores(placement.generators) / placement.generators.length,
    };
  } finally {
    await servers.stop();
  }
}

/**
 * Full TLS handshakes/s: `procs` parallel `openssl s_time -new` clients for `seconds`.
 * s_time prints "N connections in T real seconds"; the generator's CPU is read from
 * /proc/stat of its core (it shares it with nothing else during the run).
 */
export async function measureHandshakes(
  t: BenchTopology,
  dst: string,
  port: number,
  procs: number,
  seconds: number,
): Promise<RateSample> {
  const c0 = readCoreTimes();
  const runs = Array.from({ length: procs }, () =>
    collect(
      spawn(
        'ip',
        [
          'netns',
          'exec',
          t.snd.name,
          'taskset',
          '-c',
          String(GENERATOR_CPU),
          'openssl',
          's_time',
          '-connect',
          `${dst}:${port}`,
          '-new',
          '-time',
          String(seconds),
        ],
        {
          stdio: ['ignore', 'pipe', 'pipe'],
        },
      ),
      (seconds + 20) * 1000,
    ),
  );
  const outs = await Promise.all(runs);
  const busy = coreBusy(c0, readCoreTimes());
  let conns = 0;
  let failed = 0;
  for (const o of outs) {
    // "1234 connections in 5.01s; 246.31 connections/user sec, bytes read 0" then
    // "1234 connections in 6 real seconds, 0 bytes read per connection"
    const m = /(\d+) connections in (\d+) real seconds/.exec(o.stdout);
    if (m) conns += Number(m[1]);
    else failed++;
  }
  return {
    perSecond: conns / seconds,
    failed,
    balancerCpu: busy[BALANCER_CPU] ?? NaN,
    generatorCpu: busy[GENERATOR_CPU] ?? NaN,
    generatorCore: busy[GENERATOR_CPU] ?? NaN,
  };
}

/** Gbit/s through a TLS-terminating contender: `streams` s_client pipes of SSTP-like bulk. */
export async function measureTlsStream(
  t: BenchTopology,
  tools: CTools,
  dst: string,
  port: number,
  backendPort: number,
  streams: number,
  seconds: number,
): Promise<ThroughputSample> {
  const servers = await startServers(t, tools, backendPort);
  const req =
    'SSTP_DUPLEX_POST /sra_{BA195980-CD49-458b-9E23-C84EE0ADCD75}/ HTTP/1.1\\r\\nHost: vpn.bench.test\\r\\n' +
    'Content-Length: 18446744073709551615\\r\\nSSTPCORRELATIONID: {00000000-0000-0000-0000-000000000001}\\r\\n\\r\\n';
  const c0 = readCoreTimes();
  const kids = Array.from({ length: streams }, () =>
    spawn(
      'ip',
      [
        'netns',
        'exec',
        t.snd.name,
        'taskset',
        '-c',
        String(GENERATOR_CPU),
        'sh',
        '-c',
        `{ printf '${req}'; exec cat /dev/zero; } | exec openssl s_client -quiet -connect ${dst}:${port} >/dev/null 2>&1`,
      ],
      { stdio: 'ignore', detached: true },
    ),
  );
  await sleep(seconds * 1000);
  const busy = coreBusy(c0, readCoreTimes());
  for (const k of kids) if (k.pid) safeKill(-k.pid, 'SIGKILL');
  await sleep(300);
  const srv = await servers.stop();
  return {
    gbps: (srv.bytes * 8) / seconds / 1e9,
    balancerCpu: busy[BALANCER_CPU] ?? NaN,
    generatorCpu: busy[GENERATOR_CPU] ?? NaN,
  };
}

export function medianOf<T>(samples: readonly T[], f: (s: T) => number): number {
  return median(samples.map(f));
}
