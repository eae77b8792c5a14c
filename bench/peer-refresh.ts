/**
 * `node dist/bench/peer-refresh.js [--seconds S] [--repeats N] [--rate PPS]` (root): the
 * per-packet cost of the kernel plane's client-placement refresh with the shared-address
 * detection (`natt_flows`, `natt_addrs`, `natt_shared`: render-ruleset.ts; until 2 December it
 * was a `ct count`), side by side with the rule set without it (the same rendered table with
 * those statements, the detection rules and the `natt_shared` condition removed),
 * through the forwarding topology of the `udp` suite (bench/lib/topology.ts).
 *
 * What is measured: CPU time per packet of the sending thread, which here includes the whole
 * forwarding path. RPS is turned off on lb's veths, so a packet the generator sends is received,
 * run through lb's nftables (dnat_in, track) and forwarded to srv's counting sink in the
 * generator's own softirq, on its own core, before its send returns (veth → netif_rx → the
 * softirq that runs when the sender re-enables bottom halves), and the kernel charges that time
 * to the sender (tick accounting adds softirq time to the current task's system time). A CPU
 * time, not a rate: other work on a shared machine slows it but is not counted in it, and the
 * two rule sets differ only by the flow count. Paced below the generator's limit so that
 * ksoftirqd does not take the work over (its time would not be counted). Two packet
 * mixes: ESP-in-UDP (one packet in ESP_SAMPLE refreshes, as on a busy tunnel) and IKE on the
 * NAT-T port (every packet refreshes: the worst case), each with 1, 16 and 256 NAT-T flows per
 * client address (256 flows in all: 256 home clients, 16 CGNAT addresses of 16, one CGNAT
 * address of 256 — `ct count` walks the address's list of flows). The rule sets alternate
 * within each repeat so that a change of machine load hits both.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Metrics } from '../src/observability/metrics.js';
import { loadConfigText } from '../src/config/load-config.js';
import { Controller } from '../src/control/controller.js';
import type { ServiceSnapshot } from '../src/control/snapshot.js';
import { KernelIkeDataPlane } from '../src/dataplane/kernel/kernel-dataplane.js';
import {
  assignBackendIds,
  chainSpecs,
  renderRuleset,
} from '../src/dataplane/kernel/render-ruleset.js';
import { silentLogger } from '../src/log/logger.js';
import { sleep } from '../src/util/wait.js';
import { buildCTools, startTool } from './lib/proc.js';
import { median } from './lib/stats.js';
import {
  FLOW_SRC_BASE,
  GENERATOR_CPU,
  SERVER_ADDRS,
  VIP,
  createBenchTopology,
  type BenchTopology,
} from './lib/topology.js';
import { NftUdpSink } from './suites/udp-sink.js';

const here = dirname(fileURLToPath(import.meta.url));
const REPO = resolve(here, here.includes('/dist/') ? '../..' : '..');
const TABLE = 'benchpeer';

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '3' },
    repeats: { type: 'string', default: '5' },
    rate: { type: 'string', default: '50000' },
  },
});
const SECONDS = Number(values.seconds);
const REPEATS = Number(values.repeats);
const RATE = Number(values.rate);

/** The rule set without the shared-address detection: what the kernel plane rendered before it. */
export function withoutFlowCount(ruleset: string): string {
  return ruleset
    .replace(
      / update @natt_flows \{ ip6? saddr \. udp sport \} update @natt_addrs \{ ip6? saddr \}/g,
      '',
    )
    .replace(/^.*update @natt_shared.*\n/gm, '')
    .replace(/ ip6? saddr != @natt_shared/g, '');
}

interface GenReport {
  readonly warmupSent: number;
  readonly espWarmupSent: number;
  readonly sent: number;
  readonly cpuUser: number;
  readonly cpuSys: number;
}

interface Sample {
  readonly packets: number;
  /** Sender CPU (user + system, which includes the forwarding softirq) per packet, ns. */
  readonly nsPerPacket: number;
  /** Share of the packets the sink counted. */
  readonly delivered: number;
}

async function measure(
  t: BenchTopology,
  udpgen: string,
  sink: NftUdpSink,
  flowsPerAddress: number,
  ikeOnly: boolean,
): Promise<Sample> {
  const args = [
    '-d',
    VIP,
    '-s',
    FLOW_SRC_BASE,
    '-l',
    '100',
    '-f',
    '256',
    '-P',
    String(flowsPerAddress),
  ];
  // -i: IKE only, sent as the paced warm-up rounds (one packet per flow each).
  const rounds = Math.ceil((RATE * SECONDS) / 256);
  const full = ikeOnly
    ? [...args, '-i', '-w', String(rounds), '-W', String(RATE)]
    : [...args, '-r', String(RATE), '-t', String(SECONDS)];
  const s0 = await sink.read();
  const r = await startTool<GenReport>(t.snd, GENERATOR_CPU, udpgen, full, (SECONDS + 60) * 1000)
    .done;
  await sleep(200);
  const s1 = await sink.read();
  const packets = r.warmupSent + r.espWarmupSent + r.sent;
  const counted = s1.ike - s0.ike + (s1.esp - s0.esp);
  return {
    packets,
    nsPerPacket: ((r.cpuUser + r.cpuSys) * 1e9) / packets,
    delivered: counted / packets,
  };
}

async function main(): Promise<void> {
  execFileSync('sh', [join(REPO, 'bench/setup.sh')], { stdio: 'inherit' });
  const work = mkdtempSync(join(tmpdir(), 'vpnlb-bench-peer-'));
  const tools = await buildCTools(join(REPO, 'bench/c'), join(work, 'bin'));
  const t = await createBenchTopology();
  process.once('SIGINT', () => void t.destroy().finally(() => process.exit(130)));
  let dp: KernelIkeDataPlane | undefined;
  try {
    const srvIf = (await t.srv.exec('ls', ['/sys/class/net']))
      .split(/\s+/)
      .find((x) => x.startsWith('v'))!;
    const sink = new NftUdpSink(t.srv, srvIf);
    await sink.install();
    const lbIfs = (await t.lb.exec('ls', ['/sys/class/net']))
      .split(/\s+/)
      .filter((x) => x.startsWith('v'));
    for (const i of lbIfs)
      await t.lb.exec('sh', [
        '-c',
        `for q in /sys/class/net/${i}/queues/rx-*; do echo 0 > $q/rps_cpus; done`,
      ]);
    const backends = SERVER_ADDRS.map(
      (a, i) => `      - { name: s${i + 1}, address: "${a}" }`,
    ).join('\n');
    const config = loadConfigText(
      `pools:\n  farm:\n    backends:\n${backends}\nservices:\n  ikev2:\n    - { name: ike, virtualIp: "${VIP}", pool: farm, affinity: ike-spi, table: ${TABLE} }\n`,
    );
    const controller = new Controller(config);
    const snap = controller.service('ike') as ServiceSnapshot;
    dp = new KernelIkeDataPlane(
      snap.service as never,
      { config, controller, logger: silentLogger(), metrics: new Metrics() },
      { netns: t.lb.name, pollIntervalMs: 0 },
    );
    await dp.start(snap);
    const rendered = renderRuleset({
      service: snap.service as never,
      backends: assignBackendIds(config.pools.farm!.backends),
    });
    const chains = chainSpecs(snap.service as never)
      .map((c) => `flush chain ip ${TABLE} ${c.name}`)
      .join('\n');
    const rulesets = { current: withoutFlowCount(rendered), counting: rendered };
    const use = async (which: keyof typeof rulesets) => {
      await t.lb.exec('nft', ['-f', '-'], `${chains}\n${rulesets[which]}`);
      // A clean start: no flows, no pins, no counts.
      for (const set of JSON.parse(
        await t.lb.exec('nft', ['-j', 'list', 'sets', 'table', 'ip', TABLE]),
      ).nftables.filter((x: { set?: unknown }) => x.set)) {
        await t.lb
          .exec('nft', ['flush', 'set', 'ip', TABLE, (set as { set: { name: string } }).set.name])
          .catch(() => '');
      }
      await t.lb.exec('conntrack', ['-F']).catch(() => '');
    };
    const rows: string[] = [
      '| packets | NAT-T flows per address | rule set | sender + forwarding CPU ns per packet | delivered | samples (ns) |',
      '|---|---|---|---|---|---|',
    ];
    for (const ikeOnly of [false, true]) {
      for (const perAddress of [1, 16, 256]) {
        const samples: Record<string, Sample[]> = { current: [], counting: [] };
        for (let r = 0; r < REPEATS; r++) {
          for (const which of (r % 2 === 0
            ? ['current', 'counting']
            : ['counting', 'current']) as (keyof typeof rulesets)[]) {
            await use(which);
            samples[which]!.push(await measure(t, tools.udpgen, sink, perAddress, ikeOnly));
          }
        }
        for (const which of ['current', 'counting']) {
          const s = samples[which]!;
          const m = (f: (x: Sample) => number) => median(s.map(f));
          const row = `| ${ikeOnly ? 'IKE on 4500 (each refreshes)' : 'ESP (1 in 32 refreshes)'} | ${perAddress} | ${which === 'current' ? 'without the flow count' : 'with the flow count'} | ${m((x) => x.nsPerPacket).toFixed(0)} | ${(m((x) => x.delivered) * 100).toFixed(1)} % | ${s.map((x) => x.nsPerPacket.toFixed(0)).join(', ')} |`;
          rows.push(row);
          console.log(row);
        }
      }
    }
    console.log(
      `\n${RATE} pkt/s offered, ${SECONDS} s windows, median of ${REPEATS}; load average ${readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')}\n`,
    );
    console.log(rows.join('\n'));
  } finally {
    await dp?.stop().catch(() => undefined);
    await t.destroy();
    rmSync(work, { recursive: true, force: true });
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === resolve(process.argv[1])) {
  main().catch((err) => {
    console.error(err);
    process.exitCode = 1;
  });
}
