/**
 * Development probe for the relay's flood retention (bench issue 17, item 4): the bench
 * topology, one vpnlb relay, offered rates given on the command line, one line per sample.
 *   node dist/bench/flood-probe.js --rates 100000,200000 [--xdp [--moderation-us N]] [--extra 'yaml line'] [--lb-cmd 'sh cmd run in lb']
 * --xdp: the relay sheds in XDP on the balancer's client-side interface (kernelShed: xdp), its
 * NAPI moderated as in the bench (XDP_NAPI_MODERATION); --moderation-us 0: a wake-up per burst.
 * In --lb-cmd, LBIN stands for that interface. Each sample also gives, per second, the
 * datagrams the generator's veth dropped because lb's receive ring was full (before any XDP
 * program: free to the balancer) and the receive-buffer overflows of lb's UDP sockets.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startVpnlb } from './contenders/vpnlb.js';
import { buildCTools } from './lib/proc.js';
import {
  BALANCER_CPU,
  SERVER_ADDRS,
  VIP,
  XDP_NAPI_MODERATION,
  createBenchTopology,
  keepXdpOnBalancerCore,
} from './lib/topology.js';
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
const moderationUs = arg('--moderation-us');

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
    if (moderationUs !== undefined && process.argv.includes('--xdp')) {
      const us = Number(moderationUs);
      const m = us > 0 ? { ...XDP_NAPI_MODERATION, flushTimeoutNs: us * 1000 } : null;
      await keepXdpOnBalancerCore(t.lb, t.lbIn, BALANCER_CPU, m);
    }
    const counters = async () => {
      const udp = (await t.lb.exec('sh', ['-c', 'grep Udp: /proc/net/snmp | tail -1'])).trim();
      const links = JSON.parse(await t.snd.exec('ip', ['-s', '-j', 'link'])) as {
        ifname: string;
        stats64: { tx: { dropped: number } };
      }[];
      return {
        at: performance.now(),
        rcvbufErrors: Number(udp.split(/\s+/)[5]),
        ringFull: links.reduce((a, l) => a + (l.ifname === 'lo' ? 0 : l.stats64.tx.dropped), 0),
      };
    };
    let first = true;
    for (const rate of rates) {
      const c0 = await counters();
      const s = await measureUdp(t, tools, sink, {
        dst: VIP,
        size: 100,
        rate,
        seconds,
        flows: 256,
        warmupSeconds: first ? 2 : 0.5,
      });
      first = false;
      const c1 = await counters();
      const perS = (n: number) => Math.round((n * 1000) / (c1.at - c0.at));
      console.log(
        `offered ${rate} sent ${Math.round(s.sentPps)} delivered ${Math.round(s.deliveredPps)} cpu ${(s.balancerCpu * 100).toFixed(0)}% gen ${(s.generatorCoreCpu * 100).toFixed(0)}% ring-full/s ${perS(c1.ringFull - c0.ringFull)} rcvbuf-errors/s ${perS(c1.rcvbufErrors - c0.rcvbufErrors)}`,
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
