/**
 * `node --import tsx bench/relay-micro.ts`: a quick, repeatable micro-benchmark of the userspace
 * IKEv2 relay (issues 3 and 7) on loopback, without namespaces.
 *
 *   udpgen (CPU 1) ──ESP-in-UDP──► relay child process (CPU 0) ──► udpsink (CPU 1)
 *
 * - The relay runs in a child process of its own (`--serve ROOT`: the tree whose
 *   src/dataplane/relay/udp-relay.ts is loaded, so an older copy of the tree can be measured
 *   against the current one in the same time window: `--baseline DIR`), pinned to CPU 0, with
 *   the real configuration loader and controller (maglev, affinity ike-spi, full NAT).
 * - The generator is bench/c/udpgen.c (raw socket: root) sending from 127.3.0.0/16 to the
 *   relay's NAT-T port: per flow an IKE packet first (the relay sets the flow up), then ESP
 *   round-robin over the flows, paced at each offered rate; without root, a Node generator
 *   (`--gen`, far weaker: only low rates are meaningful).
 * - The sink (`--sink`): as root an nftables netdev ingress chain on `lo` that counts and drops
 *   (`nft`, like the namespace bench's sink; default as root), or bench/c/udpsink.c on the
 *   backends' port pinned to CPU 1 (`udpsink`: costs the relay a cross-CPU wake-up per packet).
 *
 * Reported per run: offered and sent pps, what the relay forwarded (its own per-backend counter,
 * sampled inside the ESP phase), what the sink received, the relay process's CPU (user + sys from
 * process.cpuUsage, which on loopback includes the softirq work of its sends) as a fraction of a
 * core and in µs per forwarded packet, and the relay's drop counters. Other sessions share this
 * machine: compare variants A/B in the same window (`--baseline`), repeat, prefer µs/packet.
 *
 * Options: --rates 20000,40000,0 (0 = flood) --seconds 4 --flows 256 --size 100 --repeat 1
 *   --baseline DIR (a copy of the tree, with node_modules) --prof DIR (node --cpu-prof for the
 *   relay) --sink nft|udpsink|none --nginx (adds nginx stream UDP, configured as in the namespace
 *   bench, pinned like the relay; needs the nft sink) --bare (adds the floor of any Node dgram
 *   relay: listener, Map, connected send, nothing else) --new-flows RATE (a second generator floods
 *   the NAT-T port with IKE_SA_INITs from new source ports at RATE/s during the ESP phase: does
 *   new-flow work starve established flows?) --json (one JSON line per run only) --fastpath
 *   auto|on|off|both (the relay's native fast path, fastpath/: `on` fails when the addon is not
 *   built; `both` measures the relay forwarding in JavaScript (`js`) and natively (`native`)
 *   back to back in each round). Bounded: each run lasts `seconds` + ~2 s.
 */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { createSocket } from 'node:dgram';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { coreBusy, processCpuSeconds, readCoreTimes } from './lib/cpu.js';
import { nginxConfig } from './contenders/nginx.js';
import { sleep } from '../src/util/wait.js';

const here = dirname(fileURLToPath(import.meta.url));
const REPO = resolve(here, here.includes('/dist/') ? '../..' : '..');
const VIP = '127.0.66.1';
const BACKENDS = ['127.0.67.2', '127.0.67.3', '127.0.67.4', '127.0.67.5'];
const SRC_BASE = '127.3.0.1';
const FLOOD_SRC_BASE = '127.4.0.1';
const RELAY_CPU = 0;
const LOAD_CPU = 1;

interface RelayStats {
  forwarded: number;
  replies: number;
  cpuMicros: number;
  flows: number;
  dropped: Record<string, number>;
}

// --- relay child ----------------------------------------------------------------------------

/**
 * The floor of any Node dgram relay: one listener, a `Map` from source port to a connected
 * upstream socket, one `send` per datagram, nothing else (no parsing, affinity, bounds or
 * counters beyond one number). What the product costs above it is the product's; what it costs
 * is Node's and the kernel's.
 */
async function serveBare(sinkPort: number): Promise<void> {
  const listener = createSocket('udp4');
  await new Promise<void>((r) => listener.bind({ address: VIP, port: 0 }, r));
  const up = new Map<number, ReturnType<typeof createSocket>>();
  let forwarded = 0;
  listener.on('message', (msg, rinfo) => {
    let s = up.get(rinfo.port);
    if (s === undefined) {
      const sock = createSocket('udp4');
      up.set(rinfo.port, sock);
      sock.connect(sinkPort, BACKENDS[rinfo.port % BACKENDS.length]!);
      s = sock;
      return;
    }
    try {
      s.send(msg);
      forwarded++;
    } catch {
      // not connected yet
    }
  });
  process.stdout.write(
    JSON.stringify({ ready: true, ike: 0, natT: listener.address().port }) + '\n',
  );
  for await (const line of createInterface({ input: process.stdin })) {
    if (line === 's') {
      const cpu = process.cpuUsage();
      process.stdout.write(
        JSON.stringify({
          forwarded,
          replies: 0,
          cpuMicros: cpu.user + cpu.system,
          flows: up.size,
          dropped: {},
        }) + '\n',
      );
    }
    if (line === 'q') break;
  }
  process.exit(0);
}

async function serve(
  root: string,
  sinkPort: number,
  fastPath: 'auto' | 'off' | 'on',
): Promise<void> {
  if (root === 'bare') return serveBare(sinkPort);
  // Under tsx the tree's sources; compiled (dist/bench/relay-micro.js) the tree's dist/.
  const compiled = !fileURLToPath(import.meta.url).endsWith('.ts');
  const file = (p: string) => join(root, compiled ? join('dist', p.replace(/\.ts$/, '.js')) : p);
  // The first path that exists in that tree: a baseline from before a file moved has it at the older path.
  const imp = (...paths: string[]) =>
    import(pathToFileURL(file(paths.find((p) => existsSync(file(p))) ?? paths[0]!)).href);
  const { loadConfigText } = await imp('src/config/load-config.ts');
  const { Controller } = await imp('src/control/controller.ts');
  const { Metrics } = await imp('src/observability/metrics.ts', 'src/admin/metrics.ts');
  const { silentLogger } = await imp('src/log/logger.ts');
  const { UdpRelay } = await imp(
    'src/dataplane/relay/udp-relay.ts',
    'src/dataplane/userspace/udp-relay.ts',
  );
  const yaml = `pools:
  farm:
    backends:
${BACKENDS.map((a, i) => `      - { name: s${i + 1}, address: ${a} }`).join('\n')}
services:
  ikev2:
    - name: ike
      virtualIp: ${VIP}
      ikePort: 0
      natTPort: 0
      backendIkePort: ${sinkPort}
      backendNatTPort: ${sinkPort}
      pool: farm
      dataplane: userspace
      nat: full
      affinity: ike-spi
      method: maglev
      maxFlows: 200000
`;
  const config = loadConfigText(yaml);
  const controller = new Controller(config);
  const service = config.services.ikev2[0];
  const relay = new UdpRelay(
    service,
    { config, controller, logger: silentLogger(), metrics: new Metrics() },
    { fastPath: fastPath === 'off' ? 'off' : 'auto', kernelShed: 'off' },
  );
  await relay.start(controller.service(service.name));
  const fast = (relay.stats() as { fastPath?: { active: boolean; reason?: string } }).fastPath;
  if (fastPath === 'on' && !fast?.active)
    throw new Error(
      `--fastpath on: the native fast path is not active (${fast?.reason ?? 'this tree has none'})`,
    );
  const ports = relay.ports() as { ike: number; natT: number };
  process.stdout.write(JSON.stringify({ ready: true, ...ports }) + '\n');
  const stats = (): RelayStats => {
    const st = relay.status() as {
      backends: Record<string, { packetsIn?: number; packetsOut?: number }>;
    };
    const s = relay.stats() as { flows: number; dropped: Record<string, number> };
    const cpu = process.cpuUsage();
    let forwarded = 0;
    let replies = 0;
    for (const b of Object.values(st.backends)) {
      forwarded += b.packetsIn ?? 0;
      replies += b.packetsOut ?? 0;
    }
    const dropped: Record<string, number> = {};
    for (const [k, v] of Object.entries(s.dropped)) if (v > 0) dropped[k] = v;
    return { forwarded, replies, cpuMicros: cpu.user + cpu.system, flows: s.flows, dropped };
  };
  for await (const line of createInterface({ input: process.stdin })) {
    if (line === 's') process.stdout.write(JSON.stringify(stats()) + '\n');
    if (line === 'q') break;
  }
  await relay.stop();
  process.exit(0); // writes the --cpu-prof profile
}

// --- Node generator (fallback without root) -------------------------------------------------

async function nodeGen(
  port: number,
  rate: number,
  seconds: number,
  flows: number,
  size: number,
): Promise<void> {
  const socks = await Promise.all(
    Array.from({ length: flows }, (_, i) => {
      const s = createSocket('udp4');
      return new Promise<ReturnType<typeof createSocket>>((r) =>
        s.bind({ address: `127.3.${(i >> 8) & 255}.${(i & 255) + 1}`, port: 0 }, () =>
          s.connect(port, VIP, () => r(s)),
        ),
      );
    }),
  );
  const ike = Buffer.alloc(Math.max(32, size));
  ike.writeUInt32BE(0x20000000, 4);
  ike[20] = 33;
  ike[21] = 0x20;
  ike[22] = 34;
  ike[23] = 0x08;
  ike.writeUInt32BE(ike.length - 4, 28);
  socks.forEach((s, i) => {
    const m = Buffer.from(ike);
    m.writeUInt32BE(0x10000000 + i, 4);
    s.send(m);
  });
  await new Promise((r) => setTimeout(r, 200));
  const esp = Buffer.alloc(Math.max(16, size), 0xab);
  let sent = 0;
  let flow = 0;
  const t0 = performance.now();
  const end = t0 + seconds * 1000;
  while (performance.now() < end) {
    const due = rate > 0 ? ((performance.now() - t0) / 1000) * rate - sent : 256;
    for (let i = 0; i < Math.min(256, due); i++) {
      esp.writeUInt32BE(0x10000000 + flow, 0);
      socks[flow]!.send(esp);
      flow = (flow + 1) % flows;
      sent++;
    }
    await new Promise((r) => setImmediate(r));
  }
  const cpu = process.cpuUsage();
  process.stdout.write(
    JSON.stringify({
      warmupSent: flows,
      sent,
      errors: 0,
      seconds: (performance.now() - t0) / 1000,
      cpuUser: cpu.user / 1e6,
      cpuSys: cpu.system / 1e6,
    }) + '\n',
  );
  process.exit(0);
}

// --- orchestrator ---------------------------------------------------------------------------

function pinned(cpu: number, argv: string[]): [string, string[]] {
  try {
    execFileSync('taskset', ['-c', String(cpu), 'true'], { stdio: 'ignore' });
    return ['taskset', ['-c', String(cpu), ...argv]];
  } catch {
    return [argv[0]!, argv.slice(1)];
  }
}

function collect(child: ChildProcess): { lines: string[]; next(): Promise<string> } {
  const lines: string[] = [];
  const waiters: ((l: string) => void)[] = [];
  createInterface({ input: child.stdout! }).on('line', (l) => {
    const w = waiters.shift();
    if (w) w(l);
    else lines.push(l);
  });
  return {
    lines,
    next: () => {
      const l = lines.shift();
      if (l !== undefined) return Promise.resolve(l);
      return new Promise((resolve, reject) => {
        const t = setTimeout(() => reject(new Error('relay child did not answer')), 15_000);
        waiters.push((x) => {
          clearTimeout(t);
          resolve(x);
        });
      });
    },
  };
}

function exited(child: ChildProcess, ms: number): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    const t = setTimeout(() => {
      child.kill('SIGKILL');
      resolve();
    }, ms);
    child.once('exit', () => {
      clearTimeout(t);
      resolve();
    });
  });
}

async function freePort(): Promise<number> {
  const s = createSocket('udp4');
  await new Promise<void>((r) => s.bind({ port: 0, address: '127.0.0.1' }, r));
  const p = s.address().port;
  s.close();
  return p;
}

interface RunResult {
  variant: string;
  offered: number;
  sentPps: number;
  forwardedPps: number;
  sinkPps: number | null;
  relayCpu: number;
  /** Busy fraction of the relay's core and of the load core (/proc/stat: every process + softirq). */
  relayCoreBusy: number;
  loadCoreBusy: number;
  cpuMicrosPerPacket: number | null;
  flows: number;
  dropped: Record<string, number>;
}

async function runOnce(o: {
  variant: string;
  root: string;
  fastPath: 'auto' | 'off' | 'on';
  tools: { udpgen: string; udpsink: string } | undefined;
  sink: 'nft' | 'udpsink' | 'none';
  newFlowRate: number;
  rate: number;
  seconds: number;
  flows: number;
  size: number;
  prof?: string;
}): Promise<RunResult> {
  const sinkPort = await freePort();
  const self = fileURLToPath(import.meta.url);
  const nodeArgs = [
    ...(self.endsWith('.ts') ? ['--import', 'tsx'] : []),
    ...(o.prof ? ['--cpu-prof', `--cpu-prof-dir=${o.prof}`] : []),
  ];
  const nftSink = o.sink === 'nft' ? await NftLoSink.install(sinkPort) : undefined;
  const sink =
    o.tools && o.sink === 'udpsink'
      ? spawn(
          ...pinned(LOAD_CPU, [
            o.tools.udpsink,
            '-p',
            String(sinkPort),
            '-t',
            String(o.seconds + 30),
          ]),
          { stdio: ['ignore', 'pipe', 'inherit'] },
        )
      : undefined;
  const isNginx = o.variant === 'nginx';
  if (isNginx && !nftSink) throw new Error('the nginx variant needs the nft sink (root)');
  const vipPort = isNginx ? await freePort() : 0;
  const ngDir = isNginx ? mkdtempSync(join(tmpdir(), 'relay-micro-nginx-')) : '';
  if (isNginx)
    writeFileSync(
      join(ngDir, 'nginx.conf'),
      nginxConfig(
        { kind: 'udp', vip: VIP, port: vipPort, backends: BACKENDS, backendPort: sinkPort },
        ngDir,
      ),
    );
  const [rc, ra] = isNginx
    ? pinned(RELAY_CPU, [
        'nginx',
        '-c',
        join(ngDir, 'nginx.conf'),
        '-p',
        ngDir,
        '-e',
        join(ngDir, 'error.log'),
      ])
    : pinned(RELAY_CPU, [
        process.execPath,
        ...nodeArgs,
        self,
        '--serve',
        o.root,
        String(sinkPort),
        o.fastPath,
      ]);
  const relay = spawn(rc, ra, {
    stdio: ['pipe', 'pipe', 'inherit'],
    cwd: isNginx ? ngDir : o.root === 'bare' ? REPO : o.root,
  });
  const out = collect(relay);
  const sinkOut = sink ? collect(sink) : undefined;
  if (sinkOut) await sinkOut.next(); // {"ready":true}
  let gen: ChildProcess | undefined;
  let flood: ChildProcess | undefined;
  try {
    if (isNginx) await sleep(500);
    const ready = isNginx ? { natT: vipPort } : (JSON.parse(await out.next()) as { natT: number });
    const q = async (): Promise<RelayStats> => {
      if (isNginx) {
        // nginx counts nothing itself: the sink's count, and the CPU of the master and its worker.
        const pids = [
          relay.pid!,
          ...readFileSync(`/proc/${relay.pid}/task/${relay.pid}/children`, 'utf8')
            .trim()
            .split(/\s+/)
            .filter(Boolean)
            .map(Number),
        ];
        const cpu = pids.reduce((n, pid) => n + (processCpuSeconds(pid) ?? 0), 0);
        return {
          forwarded: nftSink!.read(),
          replies: 0,
          cpuMicros: cpu * 1e6,
          flows: 0,
          dropped: {},
        };
      }
      relay.stdin!.write('s\n');
      return JSON.parse(await out.next()) as RelayStats;
    };
    const genArgv = o.tools
      ? [
          o.tools.udpgen,
          '-d',
          VIP,
          '-s',
          SRC_BASE,
          '-p',
          String(ready.natT),
          '-l',
          String(o.size),
          '-r',
          String(o.rate),
          '-t',
          String(o.seconds),
          '-f',
          String(o.flows),
          '-P',
          '50000',
        ]
      : [
          process.execPath,
          ...nodeArgs.filter((a) => !a.startsWith('--cpu-prof')),
          self,
          '--gen',
          String(ready.natT),
          String(o.rate),
          String(o.seconds),
          String(Math.min(o.flows, 64)),
          String(o.size),
        ];
    gen = spawn(...pinned(LOAD_CPU, genArgv), { stdio: ['ignore', 'pipe', 'inherit'] });
    const genOut = collect(gen);
    // A flood of new flows (IKE_SA_INITs from as many source ports) during the ESP phase.
    if (o.newFlowRate > 0 && o.tools) {
      const n = Math.round(o.newFlowRate * (o.seconds - 0.5));
      const argvF = [
        o.tools.udpgen,
        '-d',
        VIP,
        '-s',
        FLOOD_SRC_BASE,
        '-p',
        String(ready.natT),
        '-l',
        '100',
        '-i',
        '-w',
        '1',
        '-W',
        String(o.newFlowRate),
        '-f',
        String(n),
        '-P',
        '50000',
      ];
      flood = spawn(...pinned(LOAD_CPU, argvF), { stdio: ['ignore', 'ignore', 'inherit'] });
    }
    await sleep(600); // warm-up IKE per flow + the generator's 200 ms settle
    const n0 = nftSink?.read();
    const a = await q();
    const c0 = readCoreTimes();
    const t0 = performance.now();
    await sleep(Math.max(500, o.seconds * 1000 - 1000));
    const b = await q();
    const busy = coreBusy(c0, readCoreTimes());
    const n1 = nftSink?.read();
    const dt = (performance.now() - t0) / 1000;
    const g = JSON.parse(await genOut.next()) as { sent: number; seconds: number };
    await exited(gen, 5000);
    const fwd = b.forwarded - a.forwarded;
    const cpu = b.cpuMicros - a.cpuMicros;
    let sinkPps: number | null = n0 !== undefined && n1 !== undefined ? (n1 - n0) / dt : null;
    if (sink && sinkOut) {
      sink.kill('SIGTERM');
      const line = await sinkOut.next().catch(() => '{}');
      const s = JSON.parse(line) as { esp?: number };
      sinkPps = s.esp !== undefined ? s.esp / g.seconds : null;
    }
    const dropped: Record<string, number> = {};
    for (const [k, v] of Object.entries(b.dropped))
      if (v - (a.dropped[k] ?? 0) > 0) dropped[k] = v - (a.dropped[k] ?? 0);
    return {
      variant: o.variant,
      offered: o.rate,
      sentPps: Math.round(g.sent / g.seconds),
      forwardedPps: Math.round(fwd / dt),
      sinkPps: sinkPps === null ? null : Math.round(sinkPps),
      relayCpu: Math.round((cpu / 1e6 / dt) * 100) / 100,
      relayCoreBusy: Math.round((busy[RELAY_CPU] ?? NaN) * 100) / 100,
      loadCoreBusy: Math.round((busy[LOAD_CPU] ?? NaN) * 100) / 100,
      cpuMicrosPerPacket: fwd > 0 ? Math.round((cpu / fwd) * 100) / 100 : null,
      flows: b.flows,
      dropped,
    };
  } finally {
    if (isNginx) relay.kill('SIGTERM');
    else relay.stdin!.write('q\n');
    await exited(relay, 10_000);
    if (isNginx) rmSync(ngDir, { recursive: true, force: true });
    if (gen) await exited(gen, 1000);
    if (flood) {
      flood.kill('SIGTERM');
      await exited(flood, 1000);
    }
    if (sink) {
      sink.kill('SIGTERM');
      await exited(sink, 2000);
    }
    nftSink?.remove();
  }
}

/**
 * A counting sink as cheap as the namespace bench's (suites/udp-sink.ts): an nftables netdev
 * ingress chain on `lo` that counts and drops what the relay sends to the backends' addresses
 * and port; ESP is counted apart from IKE (non-ESP marker, RFC 3948 §2.2). A socket reader on the other core would instead make every relay send pay for a
 * cross-CPU wake-up (an inter-processor interrupt, expensive in a VM): a quarter of the relay's
 * samples in perf. The table has a per-run name and is removed after the run.
 */
class NftLoSink {
  static async install(port: number): Promise<NftLoSink> {
    const name = `relaymicro_${process.pid}_${port}`;
    execFileSync('nft', ['-f', '-'], {
      input: `table netdev ${name} {
  counter pkts {}
  counter ike {}
  chain in {
    type filter hook ingress device "lo" priority -500; policy accept;
    ip daddr 127.0.67.0/24 udp dport ${port} @th,64,32 0 counter name "ike" drop
    ip daddr 127.0.67.0/24 udp dport ${port} counter name "pkts" drop
  }
}
`,
    });
    liveTables.add(name);
    return new NftLoSink(name);
  }

  private constructor(readonly name: string) {}

  read(): number {
    const out = execFileSync('nft', ['-j', 'list', 'counter', 'netdev', this.name, 'pkts'], {
      encoding: 'utf8',
    });
    const json = JSON.parse(out) as { nftables: Array<{ counter?: { packets: number } }> };
    return json.nftables.find((x) => x.counter)?.counter?.packets ?? 0;
  }

  remove(): void {
    try {
      execFileSync('nft', ['delete', 'table', 'netdev', this.name], { stdio: 'ignore' });
    } catch {
      // already gone
    }
    liveTables.delete(this.name);
  }
}

const liveTables = new Set<string>();
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => {
    for (const t of liveTables) {
      try {
        execFileSync('nft', ['delete', 'table', 'netdev', t], { stdio: 'ignore' });
      } catch {
        // already gone
      }
    }
    process.exit(130);
  });
}

function hasNft(): boolean {
  try {
    execFileSync('nft', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

function arg(name: string, def: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1]! : def;
}

async function main(): Promise<void> {
  const argv = process.argv;
  const i = argv.indexOf('--serve');
  if (i >= 0)
    return serve(
      argv[i + 1]!,
      Number(argv[i + 2]),
      (argv[i + 3] ?? 'auto') as 'auto' | 'off' | 'on',
    );
  const g = argv.indexOf('--gen');
  if (g >= 0) {
    const [port, rate, secs, flows, size] = argv.slice(g + 1, g + 6).map(Number);
    return nodeGen(port!, rate!, secs!, flows!, size!);
  }
  const rates = arg('rates', '20000,40000,0').split(',').map(Number);
  const seconds = Number(arg('seconds', '4'));
  const flows = Number(arg('flows', '256'));
  const size = Number(arg('size', '100'));
  const repeat = Number(arg('repeat', '1'));
  const baseline = argv.includes('--baseline') ? resolve(arg('baseline', '')) : undefined;
  const prof = argv.includes('--prof') ? resolve(arg('prof', '')) : undefined;
  const jsonOnly = argv.includes('--json');
  const work = mkdtempSync(join(tmpdir(), 'relay-micro-'));
  try {
    let tools: { udpgen: string; udpsink: string } | undefined;
    if (process.getuid?.() === 0) {
      tools = { udpgen: join(work, 'udpgen'), udpsink: join(work, 'udpsink') };
      for (const [name, out] of Object.entries(tools))
        execFileSync('gcc', ['-O2', '-o', out, join(REPO, 'bench/c', `${name}.c`)]);
    } else if (!jsonOnly) {
      console.error('not root: Node generator and no sink (only low rates are meaningful)');
    }
    const newFlowRate = Number(arg('new-flows', '0'));
    const sink = arg('sink', tools ? (hasNft() ? 'nft' : 'udpsink') : 'none') as
      | 'nft'
      | 'udpsink'
      | 'none';
    const fastPath = arg('fastpath', 'auto') as 'auto' | 'on' | 'off' | 'both';
    const current: [string, string, 'auto' | 'off' | 'on'][] =
      fastPath === 'both'
        ? [
            ['js', REPO, 'off'],
            ['native', REPO, 'on'],
          ]
        : [['current', REPO, fastPath]];
    const variants: [string, string, 'auto' | 'off' | 'on'][] = baseline
      ? [['baseline', baseline, 'auto'], ...current]
      : current;
    if (argv.includes('--bare')) variants.push(['bare', 'bare', 'off']);
    if (argv.includes('--nginx')) variants.push(['nginx', '', 'off']);
    for (let r = 0; r < repeat; r++) {
      for (const rate of rates) {
        for (const [variant, root, fp] of variants) {
          const res = await runOnce({
            variant,
            root,
            fastPath: fp,
            tools,
            sink,
            newFlowRate,
            rate,
            seconds,
            flows,
            size,
            ...(prof ? { prof: join(prof, variant) } : {}),
          });
          if (jsonOnly) console.log(JSON.stringify(res));
          else
            console.log(
              `${variant.padEnd(8)} offered ${rate === 0 ? 'flood' : `${rate / 1000}k`} sent ${(res.sentPps / 1000).toFixed(1)}k  fwd ${(res.forwardedPps / 1000).toFixed(1)}k  sink esp ${res.sinkPps === null ? '-' : (res.sinkPps / 1000).toFixed(1) + 'k'}  cpu ${(res.relayCpu * 100).toFixed(0)}% (core0 ${(res.relayCoreBusy * 100).toFixed(0)}%, core1 ${(res.loadCoreBusy * 100).toFixed(0)}%)  ${res.cpuMicrosPerPacket ?? '-'} µs/pkt  flows ${res.flows}  drops ${JSON.stringify(res.dropped)}`,
            );
        }
      }
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
