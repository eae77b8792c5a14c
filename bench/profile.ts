/**
 * `node dist/bench/profile.js`: profiles the vpnlb contenders that missed a target (root).
 * Runs the userspace relay under its sweep's load (40 kpps, 100 B) and the SSTP offload under
 * the handshake load, each with `node --cpu-prof`, and writes the top self-time frames to
 * bench/results/profile.json (docs/benchmarks.md quotes them).
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { startVpnlb, type VpnlbCase } from './contenders/vpnlb.js';
import { topFrames, type CpuProfile, type Frame } from './lib/cpuprofile.js';
import { buildCTools } from './lib/proc.js';
import { sleep } from '../src/util/wait.js';
import { BALANCER_CPU, SERVER_ADDRS, VIP, createBenchTopology } from './lib/topology.js';
import { NftUdpSink } from './suites/udp-sink.js';
import { measureUdp, type UdpSample } from './suites/udp-forwarding.js';
import { measureHandshakes, startServers, type RateSample } from './suites/tcp-passthrough.js';

const here = dirname(fileURLToPath(import.meta.url));
const REPO = resolve(here, here.includes('/dist/') ? '../..' : '..');

async function profiled<T>(
  label: string,
  dir: string,
  start: (args: string[]) => ReturnType<typeof startVpnlb>,
  load: () => Promise<T>,
): Promise<{ label: string; load: T; top: Frame[] }> {
  const profDir = join(dir, `prof-${label}`);
  mkdirSync(profDir, { recursive: true });
  const d = await start(['--cpu-prof', `--cpu-prof-dir=${profDir}`]);
  let result: T;
  try {
    await sleep(500);
    result = await load();
  } finally {
    await d.stop(10_000);
  }
  const file = readdirSync(profDir).find((f) => f.endsWith('.cpuprofile'));
  if (!file) throw new Error(`${label}: no profile written`);
  return {
    label,
    load: result,
    top: topFrames(JSON.parse(readFileSync(join(profDir, file), 'utf8')) as CpuProfile, 15),
  };
}

async function main(): Promise<void> {
  const work = mkdtempSync(join(tmpdir(), 'vpnlb-prof-'));
  const tools = await buildCTools(join(REPO, 'bench/c'), join(work, 'bin'));
  const t = await createBenchTopology();
  const out: unknown[] = [];
  try {
    const srvIf = (await t.srv.exec('ls', ['/sys/class/net']))
      .split(/\s+/)
      .find((x) => x.startsWith('v'))!;
    const sink = new NftUdpSink(t.srv, srvIf);
    await sink.install();
    const relay: VpnlbCase = {
      kind: 'ikev2',
      dataplane: 'userspace',
      vip: VIP,
      backends: SERVER_ADDRS,
      table: 'unused',
    };
    out.push(
      await profiled<UdpSample>(
        'relay-40kpps-100B',
        work,
        (a) => startVpnlb(t.lb, BALANCER_CPU, relay, join(work, 'r'), a),
        () =>
          measureUdp(t, tools, sink, {
            dst: VIP,
            size: 100,
            rate: 40_000,
            seconds: 6,
            flows: 256,
            warmupSeconds: 2,
          }),
      ),
    );
    const key = join(work, 'p256.key');
    const cert = join(work, 'p256.crt');
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-nodes',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:P-256',
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
    const off: VpnlbCase = {
      kind: 'sstp',
      mode: 'offload',
      vip: VIP,
      port: 443,
      backends: SERVER_ADDRS,
      backendPort: 80,
      cert,
      key,
    };
    const servers = await startServers(t, tools, 80);
    try {
      out.push(
        await profiled<RateSample>(
          'offload-handshakes-p256',
          work,
          (a) => startVpnlb(t.lb, BALANCER_CPU, off, join(work, 'o'), a),
          () => measureHandshakes(t, VIP, 443, 8, 6),
        ),
      );
    } finally {
      await servers.stop();
    }
  } finally {
    await t.destroy();
    rmSync(work, { recursive: true, force: true });
  }
  mkdirSync(join(REPO, 'bench/results'), { recursive: true });
  writeFileSync(join(REPO, 'bench/results/profile.json'), JSON.stringify(out, null, 2));
  console.log(JSON.stringify(out, null, 2));
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
