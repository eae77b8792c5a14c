/**
 * Development probe for the relay's flood retention (bench issue 17, item 4): the bench
 * topology, one vpnlb relay, offered rates given on the command line, one line per sample.
 *   node dist/bench/flood-probe.js --rates 100000,200000 [--xdp] [--extra 'yaml line'] [--lb-cmd 'sh cmd run in lb']
 * --xdp: the relay sheds in XDP on the balancer's client-side interface (kernelShed: xdp).
 * In --lb-cmd, LBIN stands for that interface.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startVpnlb } from './contenders/vpnlb.js';
import { buildCTools } from './lib/proc.js';
import { BALANCER_CPU, SERVER_ADDRS, VIP, createBenchTopology } from './lib/topology.js';
import { measureUdp } from './suites/udp-forwarding.js';
import { NftUdpSink } from './suites/udp-sink.js';

const here = dirname(fileURLToPath(import.meta.url));
const REPO = resolve(here, here.includes('/dist/') ? '../..' : '..');
const arg = (n: string) => {
  const i = process.argv.indexOf(n);
  return i >= 0 ? process.argv[i + 1] : undefined;
};
const rates = (arg('--rates') ?? '100000,200000').split(',').map(Number);
const extra = arg('--extra');
const lbCmd = arg('--lb-cmd');
const seconds = Number(arg('--seconds') ?? 3);

const work = mkdtempSync(join(tmpdir(), 'vpnlb-flood-'));
const tools = await buildCTools(join(REPO, 'bench/c'), join(work, 'bin'));
const t = await createBenchTopology();
try {
  const srvIf = (await t.srv.exec('ls', ['/sys/class/net']))
    .split(/\s+/)
    .find((x) => x.startsWith('v'))!;
  const sink = new NftUdpSink(t.srv, srvIf);
  await sink.install();
  if (lbCmd) await t.lb.exec('sh', ['-c', lbCmd.replaceAll('LBIN', t.lbIn)]);
  const d = await startVpnlb(
    t.lb,
    BALANCER_CPU,
    {
      kind: 'ikev2',
      dataplane: 'userspace',
      vip: VIP,
      backends: SERVER_ADDRS,
      table: 'unused',
      ...(extra ? { extra } : {}),
      ...(process.argv.includes('--xdp') ? { xdpShedOn: t.lbIn } : {}),
    },
    join(work, 'r'),
  );
  try {
    let first = true;
    for (const rate of rates) {
      const s = await measureUdp(t, tools, sink, {
        dst: VIP,
        size: 100,
        rate,
        seconds,
        flows: 256,
        warmupSeconds: first ? 2 : 0.5,
      });
      first = false;
      console.log(
        `offered ${rate} sent ${Math.round(s.sentPps)} delivered ${Math.round(s.deliveredPps)} cpu ${(s.balancerCpu * 100).toFixed(0)}% gen ${(s.generatorCoreCpu * 100).toFixed(0)}%`,
      );
    }
    if (lbCmd)
      console.log(
        await t.lb.exec('sh', [
          '-c',
          'nft list ruleset 2>&1 | head -40; cat /proc/net/udp | head -5',
        ]),
      );
  } finally {
    await d.stop();
  }
} finally {
  await t.destroy();
  rmSync(work, { recursive: true, force: true });
}
