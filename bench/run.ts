/**
 * `npm run bench`: vpnlb against plain Linux forwarding, nginx stream and HAProxy, in one run
 * on one machine (issue 7). Root only. Installs what it needs (bench/setup.sh), builds the C
 * generators, builds a namespace topology (lib/topology.ts), runs each suite's contenders in turn
 * and writes bench/results/<date>.json, bench/results/latest.json and docs/benchmarks.md.
 *
 * `--only udp,tcp,tls,control` runs some suites and merges their figures into the previous
 * latest.json (lib/merge.ts: the others keep their figures and their run's date); `--quick` is
 * for development (lib/options.ts). Bounded: each window lasts seconds, repeated 3 times, median
 * reported; the default run stays under 10 minutes. A contender that cannot run gives nulls
 * with the reason, never a number.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { cpus, release, tmpdir } from 'node:os';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { canUseNamespaces } from '../lab/netns.js';
import { generateTestCertificate } from '../src/sim/rras/sstp-certs.js';
import type { BenchContext, CertFiles, SuiteOutput } from './lib/context.js';
import { mergeResults } from './lib/merge.js';
import { METHOD } from './lib/method.js';
import { parseOptions, type BenchOptions, type SuiteId } from './lib/options.js';
import { coreSpeeds, speedChange } from './lib/cpu.js';
import { buildCTools } from './lib/proc.js';
import {
  BUSY_LOAD,
  isBusy,
  readAnalysis,
  renderMarkdown,
  type BenchResults,
  type RatioName,
  type ResultRatio,
  type RunInfo,
} from './lib/report.js';
import { createBenchTopology } from './lib/topology.js';
import { runControl } from './suites/run-control.js';
import { runFailover } from './suites/failover.js';
import { runFlowMemory } from './suites/flow-memory.js';
import { runTcp } from './suites/run-tcp.js';
import { runTls } from './suites/run-tls.js';
import { runUdp } from './suites/run-udp.js';
import { NftUdpSink } from './suites/udp-sink.js';

const here = dirname(fileURLToPath(import.meta.url));
const REPO = resolve(here, here.includes('/dist/') ? '../..' : '..');
const started = Date.now();
const readLoad = () => readFileSync('/proc/loadavg', 'utf8').trim();
/** The load average when the first suite starts (after set-up, see `settle`). */
let loadAtStart = readLoad();
const log = (m: string) =>
  process.stderr.write(`[bench +${Math.round((Date.now() - started) / 1000)}s] ${m}\n`);

const RUNNERS: Record<SuiteId, (ctx: BenchContext) => Promise<SuiteOutput>> = {
  udp: runUdp,
  tcp: runTcp,
  tls: runTls,
  control: runControl,
  failover: runFailover,
  memory: runFlowMemory,
};

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
    'load average at end': readFileSync('/proc/loadavg', 'utf8')
      .trim()
      .split(' ')
      .slice(0, 3)
      .join(' '),
    'CPU speed at start (SHA-256 MiB/s per core)': fmtSpeeds(speedAtStart),
    'CPU speed at end': fmtSpeeds(speedAtEnd),
  };
}

function makeCerts(dir: string): { ec: CertFiles; rsa: CertFiles } {
  const mk = (name: string, keyType: 'ec' | 'rsa') => {
    const made = generateTestCertificate('vpn.bench.test', { keyType });
    const key = join(dir, `${name}.key`);
    const cert = join(dir, `${name}.crt`);
    writeFileSync(key, made.key);
    writeFileSync(cert, made.cert);
    made.dispose();
    const pem = join(dir, `${name}.pem`);
    writeFileSync(pem, readFileSync(cert, 'utf8') + readFileSync(key, 'utf8'));
    return { cert, key, pem };
  };
  return { ec: mk('p256', 'ec'), rsa: mk('rsa', 'rsa') };
}

const load1AtStart = () => Number(loadAtStart.split(' ')[0]);
/** Each core's speed when the first suite starts and after the last (see `coreSpeeds`). */
let speedAtStart: (number | undefined)[] = [];
let speedAtEnd: (number | undefined)[] = [];
const fmtSpeeds = (v: readonly (number | undefined)[]) =>
  v.map((x) => (x === undefined ? '?' : String(x))).join(', ');

/**
 * Set-up (npm ci, the build, apt-get, the C tools) is work of the bench itself and raises the
 * 1-minute load: wait, bounded, until it has decayed below the busy mark, so that a quiet
 * machine is judged quiet; work of others keeps it up and the run is marked busy.
 */
async function settle(): Promise<void> {
  const deadline = Date.now() + 150_000;
  let load = Number(readLoad().split(' ')[0]);
  if (isBusy(load)) log(`waiting for the load of the set-up to decay (load ${load})`);
  while (isBusy(load) && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 5000));
    load = Number(readLoad().split(' ')[0]);
  }
  loadAtStart = readLoad();
  log(`load average at start: ${loadAtStart.split(' ').slice(0, 3).join(' ')}`);
  speedAtStart = coreSpeeds(cpus().length);
  log(`CPU speed at start (SHA-256 MiB/s per core): ${fmtSpeeds(speedAtStart)}`);
}

function loadFinding(): string[] {
  return isBusy(load1AtStart())
    ? [
        `The machine was busy (load average ${loadAtStart.split(' ').slice(0, 3).join(' ')} at start, above ${BUSY_LOAD}): pinning keeps the bench's own processes apart, but other work also ran on the balancer core, so "balancer core %" includes it and absolute figures and ratios are noisy. Its ratios are shown but not compared with their targets; compare runs on an idle machine.`,
      ]
    : [];
}

async function runSuites(
  opts: BenchOptions,
): Promise<{ outputs: Partial<Record<SuiteId, SuiteOutput>>; seconds: Record<string, number> }> {
  log('setup (bench/setup.sh)');
  execFileSync('sh', [join(REPO, 'bench/setup.sh')], { stdio: 'inherit' });
  const work = mkdtempSync(join(tmpdir(), 'vpnlb-bench-'));
  const outputs: Partial<Record<SuiteId, SuiteOutput>> = {};
  const seconds: Record<string, number> = {};
  try {
    const tools = await buildCTools(join(REPO, 'bench/c'), join(work, 'bin'));
    const certs = makeCerts(work);
    await settle();
    const t = await createBenchTopology();
    try {
      const srvIf = (await t.srv.exec('ls', ['/sys/class/net']))
        .split(/\s+/)
        .find((x) => x.startsWith('v'))!;
      const sink = new NftUdpSink(t.srv, srvIf);
      await sink.install();
      const ctx: BenchContext = { t, tools, sink, work, certs, opts, log };
      for (const suite of opts.suites) {
        const t0 = Date.now();
        try {
          outputs[suite] = await RUNNERS[suite](ctx);
        } catch (err) {
          log(`suite ${suite} FAILED: ${(err as Error).stack ?? String(err)}`);
          outputs[suite] = {
            sections: [],
            ratios: {},
            findings: [`Suite ${suite} failed: ${(err as Error).message.slice(0, 300)}`],
            raw: { error: String(err) },
          };
        }
        seconds[suite] = (Date.now() - t0) / 1000;
        log(`suite ${suite}: ${Math.round(seconds[suite]!)} s`);
      }
    } finally {
      await t.destroy();
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  return { outputs, seconds };
}

async function main(): Promise<void> {
  const parsed = parseOptions(process.argv.slice(2), process.env);
  if (!parsed.ok) {
    console.error(parsed.error);
    process.exit(2);
  }
  const opts = parsed.options;
  const can = canUseNamespaces();
  if (!can.ok) {
    console.error(`bench: ${can.reason}`);
    process.exit(2);
  }
  log(
    `suites: ${opts.suites.join(', ')}; repeats ${opts.repeats}; windows ${opts.seconds} s; warm-up ${opts.warmupSeconds} s${opts.quick ? ' (quick)' : ''}`,
  );
  const { outputs, seconds } = await runSuites(opts);
  speedAtEnd = coreSpeeds(cpus().length);
  log(`CPU speed at end (SHA-256 MiB/s per core): ${fmtSpeeds(speedAtEnd)}`);
  const speedFinding = speedChange(speedAtStart, speedAtEnd);

  const date = new Date().toISOString();
  const ratios = {} as Record<RatioName, ResultRatio>;
  for (const o of Object.values(outputs)) Object.assign(ratios, o.ratios);
  // A busy machine's figures are kept (with their load) but never judged against a target.
  if (isBusy(load1AtStart()))
    for (const [k, v] of Object.entries(ratios))
      if (v.value !== null) ratios[k as RatioName] = { ...v, busyLoad: load1AtStart() };
  const m = machine();
  const run: RunInfo & { suiteSeconds: Record<string, number> } = {
    date,
    durationSeconds: (Date.now() - started) / 1000,
    suites: opts.suites,
    repeats: opts.repeats,
    quick: opts.quick,
    machine: m,
    suiteSeconds: seconds,
  };
  const current: BenchResults = {
    date,
    durationSeconds: run.durationSeconds,
    machine: m,
    method: METHOD,
    sections: opts.suites.flatMap((s) => outputs[s]?.sections ?? []),
    ratios,
    findings: [
      ...loadFinding().map((text) => ({ text, date })),
      ...(speedFinding ? [{ text: speedFinding, date }] : []),
      ...opts.suites.flatMap((s) =>
        (outputs[s]?.findings ?? []).map((text) => ({ text, date, suite: s })),
      ),
      ...Object.entries(ratios)
        .filter(([, v]) => v.value === null)
        .map(([k, v]) => ({ text: `${k}: not computed (${v.reason}).`, date })),
    ],
    raw: Object.fromEntries(opts.suites.map((s) => [s, outputs[s]?.raw])),
    runs: [run],
    ...(opts.quick ? { quick: true } : {}),
  };

  const outDir = opts.outDir ? resolve(opts.outDir) : join(REPO, 'bench/results');
  mkdirSync(outDir, { recursive: true });
  if (opts.quick) {
    // Development figures: never merged into the published ones.
    const file = join(outDir, 'quick-latest.json');
    writeFileSync(file, JSON.stringify(current, null, 2));
    writeFileSync(join(outDir, 'quick-latest.md'), renderMarkdown(current));
    log(`done (quick): ${file} and quick-latest.md; latest.json and docs untouched`);
  } else {
    const latestFile = join(outDir, 'latest.json');
    const previous =
      !opts.full && existsSync(latestFile)
        ? (JSON.parse(readFileSync(latestFile, 'utf8')) as BenchResults)
        : undefined;
    const merged = mergeResults(previous, current, opts.suites);
    const json = JSON.stringify(merged, null, 2);
    writeFileSync(
      join(
        outDir,
        `${date.slice(0, 19).replace(/:/g, '-')}${opts.full ? '' : `-${opts.suites.join('-')}`}.json`,
      ),
      JSON.stringify(current, null, 2),
    );
    writeFileSync(latestFile, json);
    const docs = opts.docsPath ? resolve(opts.docsPath) : join(REPO, 'docs/benchmarks.md');
    writeFileSync(docs, renderMarkdown(merged, readAnalysis(REPO)));
    log(`done: ${latestFile}${previous ? ' (merged with the previous results)' : ''}, ${docs}`);
  }
  log(
    `per suite (s): ${Object.entries(seconds)
      .map(([k, v]) => `${k} ${Math.round(v)}`)
      .join(', ')}; total ${Math.round((Date.now() - started) / 1000)} s`,
  );
  console.log(
    JSON.stringify(
      Object.fromEntries(Object.entries(ratios).map(([k, v]) => [k, v.value ?? v.reason])),
      null,
      2,
    ),
  );
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
