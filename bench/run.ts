/**
 * `npm run bench`: vpnlb against plain Linux forwarding, nginx stream and HAProxy, in one run
 * on one machine (issue 7). Root only. Installs what it needs (bench/setup.sh), builds the C
 * generators, builds a namespace topology (lib/topology.ts), runs each suite's contenders in turn
 * and writes bench/results/<date>.json, bench/results/latest.json and docs/benchmarks.md.
 *
 * Bounded: each measurement lasts seconds, repeated BENCH_REPEATS (default 3) times, median
 * reported; the default run stays under 10 minutes. BENCH_QUICK=1 shortens everything (1 repeat)
 * for development. A contender that cannot run gives nulls with the reason, never a number.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { cpus, release, tmpdir } from 'node:os';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { canUseNamespaces } from '../lab/netns.js';
import { startHaproxy } from './contenders/haproxy.js';
import { startNginx } from './contenders/nginx.js';
import { startVpnlb, vpnlbAvailable, type VpnlbCase } from './contenders/vpnlb.js';
import { buildCTools, type Daemon } from './lib/proc.js';
import { renderMarkdown, type BenchResults, type Row, type Section } from './lib/report.js';
import { lowerRatio, ratio, type Ratio } from './lib/stats.js';
import { BALANCER_CPU, SERVER_ADDRS, VIP, createBenchTopology, type BenchTopology } from './lib/topology.js';
import { NftUdpSink } from './suites/udp-sink.js';
import { findPeak, measureUdp, repeat, type PeakResult, type UdpFigure } from './suites/udp-forwarding.js';
import { measureConnRate, measureHandshakes, measureStream, measureTlsStream, medianOf } from './suites/tcp-passthrough.js';
import { fullRewrite, incrementalRewrite, maglevBuildTimes, referenceRuleset, timeNft } from './suites/control-plane.js';
import { runFlowMemory } from './suites/flow-memory.js';

const here = dirname(fileURLToPath(import.meta.url));
const REPO = resolve(here, here.includes('/dist/') ? '../..' : '..');
const QUICK = process.env.BENCH_QUICK === '1';
const REPEATS = Number(process.env.BENCH_REPEATS ?? (QUICK ? 1 : 3));
const SECS = QUICK ? 2 : 3;
const started = Date.now();
const loadAtStart = readFileSync('/proc/loadavg', 'utf8').trim();
const log = (m: string) => process.stderr.write(`[bench +${Math.round((Date.now() - started) / 1000)}s] ${m}\n`);

type Outcome<T> = { ok: true; value: T } | { ok: false; error: string };

/** Runs `body` with a contender started by `start`, always stopping it. */
async function withContender<T>(name: string, start: () => Promise<Daemon | undefined>, body: (d: Daemon | undefined) => Promise<T>): Promise<Outcome<T>> {
  let d: Daemon | undefined;
  try {
    d = await start();
    const value = await body(d);
    if (d && !d.alive) throw new Error(`${name} died during the measurement: ${(d.stderr || d.stdout).slice(-400)}`);
    return { ok: true, value };
  } catch (err) {
    const msg = (err as Error).message.replace(/\s+/g, ' ').slice(0, 400);
    log(`  ${name}: FAILED: ${msg}`);
    return { ok: false, error: msg };
  } finally {
    await d?.stop().catch(() => undefined);
  }
}

function vpnlbStarter(t: BenchTopology, c: VpnlbCase, dir: string, nodeArgs: readonly string[] = []) {
  return async () => {
    const avail = vpnlbAvailable(c);
    if (!avail.ok) throw new Error(avail.reason);
    return startVpnlb(t.lb, BALANCER_CPU, c, dir, nodeArgs);
  };
}

function machine(): Record<string, string | number> {
  const v = (cmd: string, args: string[]) => {
    const r = spawnSync(cmd, args, { encoding: 'utf8' });
    return `${r.stdout}${r.stderr}`.split('\n')[0]!.trim();
  };
  return {
    cores: cpus().length,
    'CPU model': cpus()[0]?.model ?? 'unknown',
    kernel: release(),
    node: process.version,
    nginx: v('nginx', ['-v']).replace('nginx version: ', ''),
    haproxy: v('haproxy', ['-v']).split(' - ')[0] ?? '',
    openssl: v('openssl', ['version']),
    nftables: v('nft', ['--version']),
    'load average at start (1/5/15 min)': loadAtStart.split(' ').slice(0, 3).join(' '),
    'load average at end': readFileSync('/proc/loadavg', 'utf8').trim().split(' ').slice(0, 3).join(' '),
  };
}

function makeCerts(dir: string): { ec: { cert: string; key: string; pem: string }; rsa: { cert: string; key: string; pem: string } } {
  const mk = (name: string, keyArgs: string[]) => {
    const key = join(dir, `${name}.key`);
    const cert = join(dir, `${name}.crt`);
    execFileSync('openssl', ['req', '-x509', '-nodes', '-newkey', ...keyArgs, '-keyout', key, '-out', cert, '-days', '2', '-subj', '/CN=vpn.bench.test'], { stdio: 'ignore' });
    const pem = join(dir, `${name}.pem`);
    writeFileSync(pem, readFileSync(cert, 'utf8') + readFileSync(key, 'utf8'));
    return { cert, key, pem };
  };
  return { ec: mk('p256', ['ec', '-pkeyopt', 'ec_paramgen_curve:P-256']), rsa: mk('rsa', ['rsa:2048']) };
}

async function main(): Promise<void> {
  const can = canUseNamespaces();
  if (!can.ok) {
    console.error(`bench: ${can.reason}`);
    process.exit(2);
  }
  log('setup (bench/setup.sh)');
  execFileSync('sh', [join(REPO, 'bench/setup.sh')], { stdio: 'inherit' });
  const work = mkdtempSync(join(tmpdir(), 'vpnlb-bench-'));
  const tools = await buildCTools(join(REPO, 'bench/c'), join(work, 'bin'));
  const certs = makeCerts(work);
  const t = await createBenchTopology();
  const raw: Record<string, unknown> = {};
  const sections: Section[] = [];
  const findings: string[] = [];
  const ratios = {} as Record<string, Ratio>;
  try {
    const srvIf = (await t.srv.exec('ls', ['/sys/class/net'])).split(/\s+/).find((x) => x.startsWith('v'))!;
    const sink = new NftUdpSink(t.srv, srvIf);
    await sink.install();

    // ---- 1. IKEv2 / ESP-in-UDP ----
    const udp: Record<string, Record<string, Outcome<UdpFigure | PeakResult>>> = {};
    for (const size of [100, 1400]) {
      log(`UDP ${size} B`);
      const res: Record<string, Outcome<UdpFigure | PeakResult>> = {};
      const flood = (dst: string) => () => repeat(REPEATS, () => measureUdp(t, tools, sink, { dst, size, rate: 0, seconds: SECS, flows: 256 }));
      res.routing = await withContender('routing', async () => undefined, flood(SERVER_ADDRS[0]));
      const kcase: VpnlbCase = { kind: 'ikev2', dataplane: 'kernel', vip: VIP, backends: SERVER_ADDRS, table: `bench${size}` };
      res.kernel = await withContender('vpnlb kernel', vpnlbStarter(t, kcase, join(work, `k${size}`)), flood(VIP));
      const rates = size === 100 ? [20e3, 40e3, 60e3, 80e3, 100e3, 130e3, 160e3, 200e3] : [20e3, 40e3, 60e3, 80e3, 100e3, 130e3, 160e3];
      const peak = () => findPeak((rate, s) => measureUdp(t, tools, sink, { dst: VIP, size, rate, seconds: s, flows: 256 }), { rates, sweepSeconds: QUICK ? 1.5 : 2, seconds: SECS, repeats: REPEATS }, log);
      const rcase: VpnlbCase = { kind: 'ikev2', dataplane: 'userspace', vip: VIP, backends: SERVER_ADDRS, table: 'unused' };
      res.relay = await withContender('vpnlb relay', vpnlbStarter(t, rcase, join(work, `r${size}`)), peak);
      res.nginx = await withContender('nginx', () => startNginx(t.lb, BALANCER_CPU, { kind: 'udp', vip: VIP, port: 4500, backends: SERVER_ADDRS, backendPort: 4500 }, join(work, `nu${size}`)), peak);
      udp[size] = res;
    }
    raw.udp = udp;
    const fig = (o: Outcome<UdpFigure | PeakResult> | undefined): UdpFigure | undefined => (o?.ok ? ('peak' in o.value ? o.value.peak : o.value) : undefined);
    const err = (o: Outcome<unknown> | undefined) => (o && !o.ok ? o.error : undefined);
    for (const size of [100, 1400]) {
      const r = udp[size]!;
      const rows: Row[] = ['routing', 'kernel', 'relay', 'nginx'].map((c) => {
        const o = r[c];
        const f = fig(o);
        const p = o?.ok && 'peak' in o.value ? o.value : undefined;
        const name = { routing: 'kernel routing (baseline)', kernel: 'vpnlb kernel (nftables DNAT, ike-spi, Maglev 65537)', relay: 'vpnlb userspace relay', nginx: 'nginx stream udp (hash $remote_addr consistent)' }[c]!;
        return {
          contender: name,
          figures: {
            offered: f?.offeredPps ?? null,
            pps: f?.deliveredPps ?? null,
            loss: f ? f.loss * 100 : null,
            cpu: f ? f.balancerCpu * 100 : null,
            cpuPerMpps: f?.balancerCpuPerMpps ?? null,
            flood2x: p ? p.flood2x.deliveredPps : null,
            floodMax: p ? p.floodMax.deliveredPps : null,
            gen: f ? f.generatorCpu * 100 : null,
          },
          ...(err(o) ? { error: err(o)! } : {}),
        };
      });
      sections.push({
        title: `IKEv2 / ESP-in-UDP forwarding, ${size} B payload`,
        columns: { offered: 'offered pkt/s', pps: 'delivered pkt/s (peak)', loss: 'loss %', cpu: 'balancer core %', cpuPerMpps: 'balancer core-s per Mpkt', flood2x: 'delivered at 2× peak load', floodMax: 'delivered at max flood', gen: 'generator CPU %' },
        rows,
        baseline: { contender: 'kernel routing (baseline)', figure: 'pps' },
        notes: ['routing and vpnlb kernel: offered = the generator flood (same for both); userspace contenders: offered = the rate of their best delivery in a sweep.'],
      });
    }
    const u100 = udp[100]!;
    ratios.kernelVsRouting = ratio(fig(u100.kernel)?.deliveredPps, fig(u100.routing)?.deliveredPps, { numerator: err(u100.kernel) ?? 'n/a', denominator: err(u100.routing) ?? 'n/a' });
    ratios.relayVsNginx = ratio(fig(u100.relay)?.deliveredPps, fig(u100.nginx)?.deliveredPps, { numerator: err(u100.relay) ?? 'n/a', denominator: err(u100.nginx) ?? 'n/a' });
    const relayPeak = u100.relay?.ok && 'peak' in u100.relay.value ? u100.relay.value : undefined;
    ratios.relayFloodRetention = ratio(relayPeak?.flood2x.deliveredPps, relayPeak?.peak.deliveredPps, { numerator: err(u100.relay) ?? 'n/a', denominator: err(u100.relay) ?? 'n/a' });

    // ---- 2. SSTP passthrough (TCP) ----
    log('TCP passthrough');
    const tcpCases: Array<[string, () => Promise<Daemon | undefined>, string]> = [
      ['direct (baseline)', async () => undefined, SERVER_ADDRS[0]],
      ['vpnlb passthrough', vpnlbStarter(t, { kind: 'sstp', mode: 'passthrough', vip: VIP, port: 443, backends: SERVER_ADDRS, backendPort: 443 }, join(work, 'sp')), VIP],
      ['HAProxy mode tcp', () => startHaproxy(t.lb, BALANCER_CPU, { vip: VIP, port: 443, backends: SERVER_ADDRS, backendPort: 443 }, join(work, 'hp')), VIP],
      ['nginx stream', () => startNginx(t.lb, BALANCER_CPU, { kind: 'tcp', vip: VIP, port: 443, backends: SERVER_ADDRS, backendPort: 443 }, join(work, 'np')), VIP],
    ];
    const tcpRows: Row[] = [];
    const tcpRaw: Record<string, unknown> = {};
    for (const [name, start, dst] of tcpCases) {
      log(`  ${name}`);
      const o = await withContender(name, start, async () => {
        const one = [], many = [], conn = [];
        for (let i = 0; i < REPEATS; i++) one.push(await measureStream(t, tools, dst, 443, 443, 1, SECS));
        for (let i = 0; i < REPEATS; i++) many.push(await measureStream(t, tools, dst, 443, 443, 16, SECS));
        for (let i = 0; i < REPEATS; i++) conn.push(await measureConnRate(t, tools, dst, 443, 443, 64, SECS));
        return { one, many, conn };
      });
      tcpRaw[name] = o;
      tcpRows.push({
        contender: name,
        figures: o.ok
          ? {
              one: medianOf(o.value.one, (s) => s.gbps),
              many: medianOf(o.value.many, (s) => s.gbps),
              cpuMany: medianOf(o.value.many, (s) => s.balancerCpu * 100),
              conn: medianOf(o.value.conn, (s) => s.perSecond),
              connFailed: medianOf(o.value.conn, (s) => s.failed),
              cpuConn: medianOf(o.value.conn, (s) => s.balancerCpu * 100),
              gen: medianOf(o.value.conn, (s) => s.generatorCpu * 100),
            }
          : {},
        ...(o.ok ? {} : { error: o.error }),
      });
    }
    raw.tcp = tcpRaw;
    sections.push({
      title: 'SSTP passthrough (TCP 443)',
      columns: { one: 'Gbit/s, 1 stream', many: 'Gbit/s, 16 streams', cpuMany: 'balancer core % (16 streams)', conn: 'new connections/s', connFailed: 'failed', cpuConn: 'balancer core % (connections)', gen: 'generator CPU % (connections)' },
      rows: tcpRows,
      baseline: { contender: 'direct (baseline)', figure: 'many' },
    });
    const tf = (n: string, k: string) => tcpRows.find((r) => r.contender === n)?.figures[k] ?? null;
    const te = (n: string) => tcpRows.find((r) => r.contender === n)?.error;
    ratios.sstpVsHaproxyThroughput = ratio(tf('vpnlb passthrough', 'many'), tf('HAProxy mode tcp', 'many'), { numerator: te('vpnlb passthrough') ?? 'n/a', denominator: te('HAProxy mode tcp') ?? 'n/a' });
    ratios.sstpVsHaproxyConnRate = ratio(tf('vpnlb passthrough', 'conn'), tf('HAProxy mode tcp', 'conn'), { numerator: te('vpnlb passthrough') ?? 'n/a', denominator: te('HAProxy mode tcp') ?? 'n/a' });

    // ---- 3. TLS offload ----
    log('TLS offload');
    const tlsRows: Row[] = [];
    const tlsRaw: Record<string, unknown> = {};
    const hsProcs = 8;
    for (const name of ['vpnlb offload', 'nginx stream ssl', 'HAProxy ssl']) {
      const figures: Record<string, number | null> = {};
      let error: string | undefined;
      for (const [kind, c] of [['p256', certs.ec], ['rsa', certs.rsa]] as const) {
        const start =
          name === 'vpnlb offload'
            ? vpnlbStarter(t, { kind: 'sstp', mode: 'offload', vip: VIP, port: 443, backends: SERVER_ADDRS, backendPort: 80, cert: c.cert, key: c.key }, join(work, `vo${kind}`))
            : name === 'nginx stream ssl'
              ? () => startNginx(t.lb, BALANCER_CPU, { kind: 'tls', vip: VIP, port: 443, backends: SERVER_ADDRS, backendPort: 80, cert: c.cert, key: c.key }, join(work, `nt${kind}`))
              : () => startHaproxy(t.lb, BALANCER_CPU, { vip: VIP, port: 443, backends: SERVER_ADDRS, backendPort: 80, pem: c.pem }, join(work, `ht${kind}`));
        log(`  ${name} ${kind}`);
        const o = await withContender(`${name} ${kind}`, start, async () => {
          const hs = [], bulk = [];
          const { startServers } = await import('./suites/tcp-passthrough.js');
          const servers = await startServers(t, tools, 80);
          try {
            for (let i = 0; i < REPEATS; i++) hs.push(await measureHandshakes(t, VIP, 443, hsProcs, SECS + 1));
          } finally {
            await servers.stop();
          }
          if (kind === 'p256') for (let i = 0; i < REPEATS; i++) bulk.push(await measureTlsStream(t, tools, VIP, 443, 80, 4, SECS));
          return { hs, bulk };
        });
        tlsRaw[`${name} ${kind}`] = o;
        if (!o.ok) {
          error = o.error;
          continue;
        }
        figures[kind] = medianOf(o.value.hs, (s) => s.perSecond);
        figures[`${kind}Cpu`] = medianOf(o.value.hs, (s) => s.balancerCpu * 100);
        figures[`${kind}Gen`] = medianOf(o.value.hs, (s) => s.generatorCpu * 100);
        if (kind === 'p256') figures.gbps = medianOf(o.value.bulk, (s) => s.gbps);
      }
      tlsRows.push({ contender: name, figures, ...(error && figures.p256 === undefined ? { error } : {}) });
    }
    raw.tls = tlsRaw;
    sections.push({
      title: 'TLS offload (terminate, forward plain TCP to :80)',
      columns: { p256: 'handshakes/s ECDSA P-256', p256Cpu: 'balancer core %', p256Gen: 'generator core %', rsa: 'handshakes/s RSA 2048', rsaCpu: 'balancer core %', rsaGen: 'generator core %', gbps: 'Gbit/s, 4 tunnels' },
      rows: tlsRows,
      baseline: { contender: 'nginx stream ssl', figure: 'p256' },
    });
    const hf = (n: string, k: string) => tlsRows.find((r) => r.contender === n)?.figures[k] ?? null;
    const he = (n: string) => tlsRows.find((r) => r.contender === n)?.error;
    ratios.offloadVsNginxHandshakes = lowerRatio(
      ratio(hf('vpnlb offload', 'p256'), hf('nginx stream ssl', 'p256'), { numerator: he('vpnlb offload') ?? 'n/a', denominator: he('nginx stream ssl') ?? 'n/a' }),
      ratio(hf('vpnlb offload', 'rsa'), hf('nginx stream ssl', 'rsa'), { numerator: he('vpnlb offload') ?? 'n/a', denominator: he('nginx stream ssl') ?? 'n/a' }),
    );

    // ---- 4. Control plane ----
    log('control plane');
    const maglev = maglevBuildTimes([10, 100, 1000], QUICK ? 1 : 3);
    const ctl: Record<string, number | null> = {};
    let ctlError: string | undefined;
    try {
      await t.lb.exec('nft', ['-f', '-'], referenceRuleset('benchref', VIP, SERVER_ADDRS));
      ctl.full = await timeNft(t.lb, [0, 1, 2].map((i) => fullRewrite('benchref', SERVER_ADDRS, i + 1)));
      ctl.incr16k = await timeNft(t.lb, [0, 1, 2].map((i) => incrementalRewrite('benchref', SERVER_ADDRS, 16384, i + 1)));
      ctl.incr100 = await timeNft(t.lb, [0, 1, 2].map((i) => incrementalRewrite('benchref', SERVER_ADDRS, 100, i + 1)));
      const base = await repeat(1, () => measureUdp(t, tools, sink, { dst: VIP, size: 100, rate: 0, seconds: SECS, flows: 256 }));
      let stop = false;
      let rewrites = 0;
      const loop = (async () => {
        while (!stop) {
          await t.lb.exec('nft', ['-f', '-'], fullRewrite('benchref', SERVER_ADDRS, rewrites % 4));
          rewrites++;
        }
      })();
      const during = await repeat(1, () => measureUdp(t, tools, sink, { dst: VIP, size: 100, rate: 0, seconds: SECS, flows: 256 }));
      stop = true;
      await loop;
      ctl.ppsBase = base.deliveredPps;
      ctl.ppsDuring = during.deliveredPps;
      ctl.rewritesPerS = rewrites / SECS;
      await t.lb.exec('nft', ['delete', 'table', 'ip', 'benchref']);
    } catch (e) {
      ctlError = (e as Error).message.slice(0, 300);
    }
    const mem = await runFlowMemory(t, tools, sink, work, QUICK ? 20_000 : 100_000, log);
    raw.control = { maglev, ctl, ctlError, mem };
    sections.push({
      title: 'Control plane',
      columns: { value: 'value' },
      rows: [
        ...Object.entries(maglev).map(([n, ms]) => ({ contender: `Maglev table build, ${n} backends (ms)`, figures: { value: ms } })),
        { contender: 'nft map full rewrite, 65537 slots, one transaction (ms)', figures: { value: ctl.full ?? null } },
        { contender: 'nft map incremental, 16384 slots (one backend of 4) (ms)', figures: { value: ctl.incr16k ?? null } },
        { contender: 'nft map incremental, 100 slots (ms)', figures: { value: ctl.incr100 ?? null } },
        { contender: 'DNAT-through-map pkt/s, map idle', figures: { value: ctl.ppsBase ?? null } },
        { contender: 'DNAT-through-map pkt/s, map rewritten continuously', figures: { value: ctl.ppsDuring ?? null } },
        { contender: 'full map rewrites per second during that flood', figures: { value: ctl.rewritesPerS ?? null } },
        { contender: 'userspace relay memory per tracked flow (bytes)', figures: { value: mem.ok ? mem.value.bytesPerFlow : null }, ...(mem.ok ? {} : { error: mem.error }) },
        { contender: 'userspace relay flows tracked for that figure', figures: { value: mem.ok ? mem.value.flows : null }, ...(mem.ok ? {} : { error: mem.error }) },
        { contender: 'failover (server killed → first new client elsewhere)', figures: { value: null }, error: 'not measured in this version of the bench (needs the health checker and a reachable admin API; see Findings)' },
      ],
      notes: [
        'nft figures use a table of the same shape as the kernel data plane (DESIGN §4 reference ruleset: jhash of the IKE SPI mod 65537 → map @slots, DNAT in prerouting), driven by `nft -f` as the data plane does.',
        ...(ctlError ? [`nft measurements failed: ${ctlError}`] : []),
      ],
    });
  } finally {
    await t.destroy();
    rmSync(work, { recursive: true, force: true });
  }

  const results: BenchResults = {
    date: new Date().toISOString(),
    durationSeconds: (Date.now() - started) / 1000,
    machine: machine(),
    method: METHOD,
    sections,
    ratios: ratios as BenchResults['ratios'],
    findings: [...findings, ...findingsFrom(ratios)],
    raw,
  };
  const outDir = join(REPO, 'bench/results');
  mkdirSync(outDir, { recursive: true });
  const json = JSON.stringify(results, null, 2);
  writeFileSync(join(outDir, `${results.date.slice(0, 19).replace(/:/g, '-')}.json`), json);
  writeFileSync(join(outDir, 'latest.json'), json);
  writeFileSync(join(REPO, 'docs/benchmarks.md'), renderMarkdown(results));
  log(`done: bench/results/latest.json, docs/benchmarks.md`);
  console.log(JSON.stringify(results.ratios, null, 2));
}

function findingsFrom(r: Record<string, Ratio>): string[] {
  const load = Number(loadAtStart.split(' ')[0]);
  const shared =
    load > 1
      ? [
          `The machine was not idle (load average ${loadAtStart.split(' ').slice(0, 3).join(' ')} at start): pinning keeps the bench's own processes apart, but other work also ran on the balancer core, so "balancer core %" includes it and absolute figures and ratios are noisy; compare runs on an idle machine.`,
        ]
      : [];
  return shared.concat(Object.entries(r)
    .filter(([, v]) => v.value === null)
    .map(([k, v]) => `${k}: not computed (${v.reason}).`));
}

const METHOD = [
  'Topology: three network namespaces joined by routed veth pairs (no bridges): snd (generators) — lb (contender) — srv (servers/sinks), addresses from 198.18.0.0/15, VIP 198.19.0.1 on lb. Created and removed by the run (lab/netns.ts, unique prefix).',
  'CPU placement (2 vCPUs): every contender runs on CPU 0 (taskset; nginx 1 worker, HAProxy 1 thread, vpnlb one Node process). veth has no IRQ: the receiving side of a veth is processed in the softirq of the CPU that sent the packet; Receive Packet Steering (rps_cpus) on lb\'s two veths moves all of lb\'s receive, NAT/conntrack and forwarding work to CPU 0, and rps_cpus on snd\'s and srv\'s veths keeps generator/sink work on CPU 1. "balancer core %" is CPU 0\'s busy time from /proc/stat (process + softirq). Cost of this method: each RPS hand-off to a CPU that is not already polling needs an inter-processor interrupt, expensive in a VM, paid by the generator core.',
  'UDP generator: bench/c/udpgen.c (built with gcc at run time), one raw socket, sendmmsg batches of 64; 256 flows (source port and SPI per flow, from 198.18.16.1); each flow first sends IKE_SA_INIT-looking packets with the RFC 3948 non-ESP marker (so balancers create their state from IKE as with real clients), then ESP-in-UDP (non-zero SPI + sequence) on port 4500, paced or flood. Packets are counted at the servers by an nftables netdev ingress counter (IKE vs ESP) that drops them — cheaper for the generator core than a socket reader (bench/c/udpsink.c, kept for socket-level checks). Only ESP packets inside the measurement window count.',
  'IKEv2 figures: routing = the generator sends to a server address directly through lb (plain forwarding); vpnlb kernel = vpnlb run with dataplane: kernel, nat: transparent, affinity ike-spi, method maglev (65537 slots); vpnlb relay = dataplane: userspace (full NAT); nginx = stream udp, hash $remote_addr consistent, 1 worker. Kernel-class contenders are measured at the generator\'s maximum (same offered load for both); userspace contenders are swept over offered rates, the best delivered rate is their peak (median of repeats at that offered load), flood retention is what they deliver at twice that offered load divided by the peak.',
  'TCP passthrough: bench/c/tcpbench.c gives every contender the same byte stream: a real TLS ClientHello record first (so vpnlb can inspect it; the others forward it), then bulk bytes (stream mode, 1 and 16 connections, bytes counted at the servers) or, for the connection rate, connect → ClientHello → wait for the server\'s 7-byte TLS alert record → close, 64 in parallel (only transactions that reached a server count). HAProxy mode tcp (balance leastconn, 1 thread), nginx stream (least_conn, 1 worker), vpnlb sstp passthrough (least-connections, persistence none). Baseline: direct to a server through lb\'s plain routing.',
  'TLS offload: full handshakes with 8 parallel `openssl s_time -new` clients (no session reuse, no tickets) pinned to the generator core; the handshake CPU of the client is reported ("generator core %"): where it is near 100 %, the generator (not the contender) limits the figure. Bulk: 4 `openssl s_client` pipes sending an SSTP_DUPLEX_POST request then zeros; contenders decrypt and forward plain TCP to tcpbench servers on :80, bytes counted there.',
  'Every figure is the median of the repeats of the same run (default 3); each measurement lasts 2–4 s.',
];

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
