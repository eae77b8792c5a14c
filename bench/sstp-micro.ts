/**
 * `node --import tsx bench/sstp-micro.ts`: a repeatable micro-benchmark of the SSTP proxy on
 * loopback (no root, no namespaces), built to compare versions of the code A/B in the same time
 * window on a shared 2-vCPU machine (issue 7).
 *
 * Each contender (a vpnlb source tree, HAProxy, nginx) runs pinned to CPU 0; load generators and
 * sinks run pinned to CPU 1. Suites:
 * - `stream`: N parallel TCP streams through passthrough (bench/c/tcpbench.c: a real TLS
 *   ClientHello first, then 256 KiB writes), bytes counted at the sink.
 * - `conn`: connect → ClientHello → the server's 7-byte answer → close, 64 in parallel.
 * - `hs`: full TLS handshakes through offload (`openssl s_time -new`, several processes), P-256
 *   and RSA 2048.
 * - `bulk`: offload bulk (4 `openssl s_client` pipes streaming zeros), bytes at the plain sink.
 *
 * Besides raw rates (noisy when others share the machine) it reports the contender's own CPU
 * time per unit of work (from /proc/PID/stat): ns per byte, µs per connection or handshake;
 * those are what to compare. Rounds are interleaved (A, B, A, B...) so that a change of
 * background load hits every contender alike.
 *
 * Options: `--tree NAME=DIR` (repeatable; a vpnlb tree, e.g. a baseline made with
 * `git archive HEAD src lab package.json | tar -x -C /tmp/base && ln -s $PWD/node_modules /tmp/base/`),
 * `--haproxy`, `--nginx`, `--node-floor` (a bare Node `pipe` proxy: what Node itself costs), `--suites stream,conn,hs,bulk`, `--seconds 3`, `--repeats 3`,
 * `--streams 16`, `--warmup 1` (seconds of the same load first, not counted), `--prof DIR` (vpnlb runs under `node --cpu-prof`; top self-time frames printed),
 * `--splice-ab` (each tree twice: `NAME-splice`, the native splice path of established
 * passthrough tunnels, and `NAME-pipes` with `VPNLB_SSTP_SPLICE=0`; the native thread's CPU is
 * in the process's /proc figures like the rest).
 */
import { execFileSync, spawn } from 'node:child_process';
import {
  chmodSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { haproxyConfig } from './contenders/haproxy.js';
import { nginxConfig } from './contenders/nginx.js';
import { vpnlbConfig } from './contenders/vpnlb.js';
import { processCpuSeconds } from './lib/cpu.js';
import { topFrames, type CpuProfile } from './lib/cpuprofile.js';
import { buildCTools, collect, Daemon, lastJson, safeKill } from './lib/proc.js';
import { sleep } from '../src/util/wait.js';

const here = dirname(fileURLToPath(import.meta.url));
const REPO = resolve(here, here.includes('/dist/') ? '../..' : '..');
const PROXY_CPU = '0';
const LOAD_CPU = '1';
const BACKENDS = ['127.0.0.10', '127.0.0.11', '127.0.0.12', '127.0.0.13'];

interface Options {
  trees: Array<[string, string]>;
  haproxy: boolean;
  nginx: boolean;
  nodeFloor: boolean;
  suites: string[];
  seconds: number;
  repeats: number;
  streams: number;
  warmup: number;
  prof?: string;
  spliceAb: boolean;
}

function parseArgs(argv: string[]): Options {
  const o: Options = {
    trees: [],
    haproxy: false,
    nginx: false,
    nodeFloor: false,
    suites: ['stream', 'conn', 'hs', 'bulk'],
    seconds: 3,
    repeats: 3,
    streams: 16,
    warmup: 1,
    spliceAb: false,
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const v = () => argv[++i] ?? '';
    if (a === '--tree') {
      const [name, dir] = v().split('=');
      o.trees.push([name!, resolve(dir!)]);
    } else if (a === '--haproxy') o.haproxy = true;
    else if (a === '--nginx') o.nginx = true;
    else if (a === '--node-floor') o.nodeFloor = true;
    else if (a === '--suites') o.suites = v().split(',');
    else if (a === '--seconds') o.seconds = Number(v());
    else if (a === '--repeats') o.repeats = Number(v());
    else if (a === '--streams') o.streams = Number(v());
    else if (a === '--warmup') o.warmup = Number(v());
    else if (a === '--prof') o.prof = resolve(v());
    else if (a === '--splice-ab') o.spliceAb = true;
    else throw new Error(`unknown option ${a}`);
  }
  if (o.trees.length === 0) o.trees.push(['current', REPO]);
  return o;
}

/** A free loopback port (bound then released: a tiny race, acceptable for a benchmark). */
async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const p = (s.address() as net.AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return p;
}

async function waitConnect(port: number, d: Daemon, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!d.alive) throw new Error(`${d.label} exited: ${(d.stderr || d.stdout).slice(-800)}`);
    const ok = await new Promise<boolean>((r) => {
      const s = net.connect({ host: '127.0.0.1', port }, () => {
        s.destroy();
        r(true);
      });
      s.on('error', () => r(false));
    });
    if (ok) return;
    await sleep(100);
  }
  throw new Error(`${d.label}: nothing listens on ${port}`);
}

function pinned(
  cpu: string,
  cmd: string,
  args: readonly string[],
  label: string,
  opts: { detached?: boolean; env?: NodeJS.ProcessEnv } = {},
): Daemon {
  return new Daemon(
    spawn('taskset', ['-c', cpu, cmd, ...args], { stdio: ['ignore', 'pipe', 'pipe'], ...opts }),
    label,
  );
}

type Mode = 'passthrough' | 'offload';
interface Contender {
  readonly name: string;
  start(
    mode: Mode,
    port: number,
    backendPort: number,
    cert: { cert: string; key: string; pem: string } | undefined,
    dir: string,
  ): Promise<Daemon>;
}

function vpnlbContender(
  name: string,
  tree: string,
  prof: string | undefined,
  env: NodeJS.ProcessEnv = process.env,
): Contender {
  return {
    name,
    async start(mode, port, backendPort, cert, dir) {
      mkdirSync(dir, { recursive: true });
      const file = join(dir, 'vpnlb.yaml');
      writeFileSync(
        file,
        vpnlbConfig({
          kind: 'sstp',
          mode,
          vip: '127.0.0.1',
          port,
          backends: BACKENDS,
          backendPort,
          ...(cert ? { cert: cert.cert, key: cert.key } : {}),
        }),
      );
      const profArgs = prof
        ? ['--cpu-prof', `--cpu-prof-dir=${join(prof, `${name}-${mode}`)}`]
        : [];
      const d = pinned(
        PROXY_CPU,
        process.execPath,
        [...profArgs, '--import', 'tsx', join(tree, 'src/cli/run-cli.ts'), 'run', '--config', file],
        `vpnlb ${name}`,
        { env },
      );
      await d.waitFor((o) => o.includes('vpnlb running'), 30_000);
      await waitConnect(port, d);
      return d;
    },
  };
}

const haproxyContender: Contender = {
  name: 'haproxy',
  async start(mode, port, backendPort, cert, dir) {
    mkdirSync(dir, { recursive: true });
    const file = join(dir, 'haproxy.cfg');
    writeFileSync(
      file,
      haproxyConfig({
        vip: '127.0.0.1',
        port,
        backends: BACKENDS,
        backendPort,
        ...(mode === 'offload' && cert ? { pem: cert.pem } : {}),
      }),
    );
    const d = pinned(PROXY_CPU, 'haproxy', ['-f', file, '-db'], 'haproxy');
    await waitConnect(port, d);
    return d;
  },
};

const nginxContender: Contender = {
  name: 'nginx',
  async start(mode, port, backendPort, cert, dir) {
    mkdirSync(dir, { recursive: true });
    const conf = join(dir, 'nginx.conf');
    const c =
      mode === 'offload' && cert
        ? {
            kind: 'tls' as const,
            vip: '127.0.0.1',
            port,
            backends: BACKENDS,
            backendPort,
            cert: cert.cert,
            key: cert.key,
          }
        : { kind: 'tcp' as const, vip: '127.0.0.1', port, backends: BACKENDS, backendPort };
    writeFileSync(conf, nginxConfig(c, dir));
    const d = pinned(
      PROXY_CPU,
      'nginx',
      ['-c', conf, '-p', dir, '-e', join(dir, 'error.log')],
      'nginx',
    );
    await waitConnect(port, d);
    return d;
  },
};

/**
 * The floor for Node: the smallest proxy Node can be (no hello parsing, no balancing, no
 * metrics): `net`/`tls` server, connect to one backend, `pipe` both ways. What vpnlb costs above
 * this is vpnlb's own; what this costs above HAProxy/nginx is Node's.
 */
const NODE_FLOOR = `
const net = require('node:net'), tls = require('node:tls'), fs = require('node:fs');
const [mode, port, bport, cert, key] = process.argv.slice(1);
const relay = (s) => { const up = net.connect({ host: '127.0.0.10', port: +bport, allowHalfOpen: true }); s.on('error', () => up.destroy()); up.on('error', () => s.destroy()); s.pipe(up); up.pipe(s); };
const srv = mode === 'offload' ? tls.createServer({ cert: fs.readFileSync(cert), key: fs.readFileSync(key), allowHalfOpen: true }, relay) : net.createServer({ allowHalfOpen: true }, relay);
srv.listen(+port, '127.0.0.1');
`;

const nodeFloorContender: Contender = {
  name: 'node-floor',
  async start(mode, port, backendPort, cert) {
    const d = pinned(
      PROXY_CPU,
      process.execPath,
      [
        '-e',
        NODE_FLOOR,
        mode,
        String(port),
        String(backendPort),
        cert?.cert ?? '',
        cert?.key ?? '',
      ],
      'node-floor',
    );
    await waitConnect(port, d);
    return d;
  },
};

/** CPU seconds of a contender: the process and (nginx/haproxy master + workers) its children. */
function treeCpu(pid: number): number {
  let sum = processCpuSeconds(pid) ?? 0;
  try {
    for (const t of readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8')
      .trim()
      .split(/\s+/)
      .filter(Boolean))
      sum += treeCpu(Number(t));
  } catch {
    /* gone */
  }
  return sum;
}

interface Sample {
  readonly suite: string;
  readonly contender: string;
  readonly rate: number;
  readonly unit: string;
  readonly cpuPerUnit: number;
  readonly cpuUnit: string;
  readonly proxyCpu: number;
}

/** Starts the sink (tcpbench server: answers 7 octets, discards the rest), then the contender (so
 * that a contender with passive health checks never sees a dead backend), measures, stops both. */
async function measure(
  suite: string,
  c: Contender,
  mode: Mode,
  cert: { cert: string; key: string; pem: string } | undefined,
  dir: string,
  o: Options,
  tcpbench: string,
): Promise<Sample> {
  const port = await freePort();
  const backendPort = await freePort();
  const startSink = async () => {
    const sink = pinned(LOAD_CPU, tcpbench, ['server', '-p', String(backendPort)], 'sink');
    await sink.waitFor((out) => out.includes('"ready"'), 5_000);
    return sink;
  };
  let sink = await startSink();
  let d: Daemon | undefined;
  try {
    d = await c.start(mode, port, backendPort, cert, dir);
    if (o.warmup > 0) {
      // The same load, not counted: a fresh Node process is still compiling its hot paths.
      await load(suite, d, port, { ...o, seconds: o.warmup }, tcpbench);
      await sink.stop();
      sink = await startSink();
    }
    const r = await load(suite, d, port, o, tcpbench);
    await d.stop(10_000);
    await sleep(200);
    const j = lastJson<{ bytes: number }>(await sink.stop());
    const bytes = j?.bytes ?? NaN;
    const work = r.work ?? bytes;
    const rate = r.rate ?? (bytes * 8) / r.seconds / 1e9;
    return {
      suite,
      contender: c.name,
      rate,
      unit: r.unit,
      cpuPerUnit: (r.cpu / work) * r.scale,
      cpuUnit: r.cpuUnit,
      proxyCpu: r.cpu / r.seconds,
    };
  } finally {
    await d?.stop(10_000);
    await sink.stop();
  }
}

interface Load {
  work?: number;
  rate?: number;
  seconds: number;
  unit: string;
  cpuUnit: string;
  scale: number;
  cpu: number;
}

async function load(
  suite: string,
  d: Daemon,
  port: number,
  o: Options,
  tcpbench: string,
): Promise<Load> {
  const cpu0 = treeCpu(d.pid);
  if (suite === 'stream' || suite === 'conn') {
    const args =
      suite === 'stream'
        ? [
            'stream',
            '-d',
            '127.0.0.1',
            '-p',
            String(port),
            '-n',
            String(o.streams),
            '-t',
            String(o.seconds),
          ]
        : ['connrate', '-d', '127.0.0.1', '-p', String(port), '-n', '64', '-t', String(o.seconds)];
    const out = await collect(
      spawn('taskset', ['-c', LOAD_CPU, tcpbench, ...args], { stdio: ['ignore', 'pipe', 'pipe'] }),
      (o.seconds + 15) * 1000,
    );
    const cpu = treeCpu(d.pid) - cpu0;
    const j = lastJson<{ completed?: number; seconds: number }>(out.stdout);
    const seconds = j?.seconds ?? o.seconds;
    if (suite === 'stream') return { seconds, unit: 'Gbit/s', cpuUnit: 'ns/byte', scale: 1e9, cpu };
    return {
      work: j?.completed ?? NaN,
      rate: (j?.completed ?? NaN) / seconds,
      seconds,
      unit: 'conn/s',
      cpuUnit: 'µs/conn',
      scale: 1e6,
      cpu,
    };
  }
  if (suite.startsWith('hs')) {
    const procs = 6;
    const runs = Array.from({ length: procs }, () =>
      collect(
        spawn(
          'taskset',
          [
            '-c',
            LOAD_CPU,
            'openssl',
            's_time',
            '-connect',
            `127.0.0.1:${port}`,
            '-new',
            '-time',
            String(o.seconds),
          ],
          { stdio: ['ignore', 'pipe', 'pipe'] },
        ),
        (o.seconds + 20) * 1000,
      ),
    );
    let conns = 0;
    for (const out of await Promise.all(runs))
      conns += Number(/(\d+) connections in (\d+) real seconds/.exec(out.stdout)?.[1] ?? NaN);
    return {
      work: conns,
      rate: conns / o.seconds,
      seconds: o.seconds,
      unit: 'handshakes/s',
      cpuUnit: 'µs/handshake',
      scale: 1e6,
      cpu: treeCpu(d.pid) - cpu0,
    };
  }
  // bulk: offload tunnels carrying zeros after an SSTP_DUPLEX_POST.
  const req =
    'SSTP_DUPLEX_POST /sra_{BA195980-CD49-458b-9E23-C84EE0ADCD75}/ HTTP/1.1\\r\\nHost: vpn.bench.test\\r\\nContent-Length: 18446744073709551615\\r\\n\\r\\n';
  const kids = Array.from({ length: 4 }, () =>
    spawn(
      'taskset',
      [
        '-c',
        LOAD_CPU,
        'sh',
        '-c',
        `{ printf '${req}'; exec cat /dev/zero; } | exec openssl s_client -quiet -connect 127.0.0.1:${port} >/dev/null 2>&1`,
      ],
      { stdio: 'ignore', detached: true },
    ),
  );
  await sleep(o.seconds * 1000);
  const cpu = treeCpu(d.pid) - cpu0;
  for (const k of kids) if (k.pid) safeKill(-k.pid, 'SIGKILL');
  await sleep(300);
  return { seconds: o.seconds, unit: 'Gbit/s', cpuUnit: 'ns/byte', scale: 1e9, cpu };
}

function makeCert(
  dir: string,
  name: string,
  keyArgs: string[],
): { cert: string; key: string; pem: string } {
  const key = join(dir, `${name}.key`);
  const cert = join(dir, `${name}.crt`);
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-nodes',
      '-newkey',
      ...keyArgs,
      '-keyout',
      key,
      '-out',
      cert,
      '-days',
      '2',
      '-subj',
      '/CN=vpn.bench.test',
    ],
    { stdio: 'ignore' },
  );
  const pem = join(dir, `${name}.pem`);
  writeFileSync(pem, readFileSync(cert, 'utf8') + readFileSync(key, 'utf8'));
  return { cert, key, pem };
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

async function main(): Promise<void> {
  const o = parseArgs(process.argv.slice(2));
  const work = mkdtempSync(join(tmpdir(), 'vpnlb-sstp-micro-'));
  chmodSync(work, 0o755); // nginx workers run as nobody when started by root
  const tools = await buildCTools(join(REPO, 'bench/c'), join(work, 'bin'));
  const certs = {
    p256: makeCert(work, 'p256', ['ec', '-pkeyopt', 'ec_paramgen_curve:P-256']),
    rsa: makeCert(work, 'rsa', ['rsa:2048']),
  };
  const contenders: Contender[] = [
    ...o.trees.flatMap(([n, d]) =>
      o.spliceAb
        ? [
            vpnlbContender(`${n}-splice`, d, o.prof, { ...process.env, VPNLB_SSTP_SPLICE: '1' }),
            vpnlbContender(`${n}-pipes`, d, o.prof, { ...process.env, VPNLB_SSTP_SPLICE: '0' }),
          ]
        : [vpnlbContender(n, d, o.prof)],
    ),
    ...(o.haproxy ? [haproxyContender] : []),
    ...(o.nginx ? [nginxContender] : []),
    ...(o.nodeFloor ? [nodeFloorContender] : []),
  ];
  const samples: Sample[] = [];
  const plan: Array<[string, Mode, keyof typeof certs | undefined]> = [];
  if (o.suites.includes('stream')) plan.push(['stream', 'passthrough', undefined]);
  if (o.suites.includes('conn')) plan.push(['conn', 'passthrough', undefined]);
  if (o.suites.includes('hs'))
    plan.push(['hs-p256', 'offload', 'p256'], ['hs-rsa', 'offload', 'rsa']);
  if (o.suites.includes('bulk')) plan.push(['bulk', 'offload', 'p256']);
  try {
    for (const [suite, mode, certName] of plan) {
      const cert = certName ? certs[certName] : undefined;
      // Interleaved rounds: every contender once per round, so background load hits all alike.
      for (let r = 0; r < o.repeats; r++) {
        for (const c of contenders) {
          const s = await measure(
            suite,
            c,
            mode,
            cert,
            join(work, `${c.name}-${suite}-${r}`),
            o,
            tools.tcpbench,
          );
          samples.push(s);
          process.stderr.write(
            `${suite} r${r} ${c.name}: ${s.rate.toFixed(2)} ${s.unit}, ${s.cpuPerUnit.toFixed(3)} ${s.cpuUnit}, proxy CPU ${(s.proxyCpu * 100).toFixed(0)} %\n`,
          );
        }
      }
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  const summary: Record<
    string,
    Record<
      string,
      { rate: number; unit: string; cpuPerUnit: number; cpuUnit: string; proxyCpu: number }
    >
  > = {};
  for (const s of samples) {
    const key = `${s.suite}`;
    summary[key] ??= {};
    if (summary[key][s.contender]) continue;
    const mine = samples.filter((x) => x.suite === s.suite && x.contender === s.contender);
    summary[key][s.contender] = {
      rate: median(mine.map((x) => x.rate)),
      unit: s.unit,
      cpuPerUnit: median(mine.map((x) => x.cpuPerUnit)),
      cpuUnit: s.cpuUnit,
      proxyCpu: median(mine.map((x) => x.proxyCpu)),
    };
  }
  const profiles: Record<string, unknown> = {};
  if (o.prof) {
    for (const sub of readdirSync(o.prof)) {
      const files = readdirSync(join(o.prof, sub)).filter((f) => f.endsWith('.cpuprofile'));
      const top = files.flatMap((f) =>
        topFrames(JSON.parse(readFileSync(join(o.prof!, sub, f), 'utf8')) as CpuProfile, 12),
      );
      profiles[sub] = top;
    }
  }
  console.log(
    JSON.stringify(
      {
        date: new Date().toISOString(),
        loadavg: readFileSync('/proc/loadavg', 'utf8').trim(),
        summary,
        ...(o.prof ? { profiles } : {}),
      },
      null,
      2,
    ),
  );
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
