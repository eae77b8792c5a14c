/**
 * Suite `udp`: IKEv2 / ESP-in-UDP forwarding, 100 B and 1400 B (see udp-forwarding.ts).
 *
 * Kernel routing (baseline) and the vpnlb kernel plane are compared at the SAME offered load:
 * the generator's flood through plain routing is measured first (its maximum on this machine),
 * then both are paced at 90 % of it, in the same topology with the same RPS settings, the same
 * generator and packet mix; the conditions (RPS masks, sysctls, nft tables in lb) are recorded
 * before each and compared. Both are also flooded once ("delivered at max flood").
 */
import { startNginx } from '../contenders/nginx.js';
import { startVpnlb, vpnlbAvailable, type VpnlbCase } from '../contenders/vpnlb.js';
import {
  errorOf,
  warmupPlan,
  withContender,
  type BenchContext,
  type Outcome,
  type SuiteOutput,
} from '../lib/context.js';
import type { Daemon } from '../lib/proc.js';
import type { Row } from '../lib/report.js';
import { ratioOfRepeats } from '../lib/stats.js';
import {
  BALANCER_CPU,
  SERVER_ADDRS,
  VIP,
  XDP_NAPI_MODERATION,
  startXdpPass,
  type BenchTopology,
} from '../lib/topology.js';
import {
  findPeak,
  measureUdp,
  repeat,
  type PeakResult,
  type UdpFigure,
  type UdpSample,
} from './udp-forwarding.js';

interface KernelClass {
  readonly paced: UdpFigure;
  readonly flood: UdpSample;
  readonly conditions: Record<string, string>;
}

/** What could make routing and the kernel plane differ other than the contender itself. */
export async function readConditions(t: BenchTopology): Promise<Record<string, string>> {
  const sh = async (cmd: string) =>
    (await t.lb.exec('sh', ['-c', cmd]).catch((e: Error) => `error: ${e.message}`))
      .trim()
      .replace(/\s+/g, ' ');
  return {
    rps: await sh(
      `for f in /sys/class/net/*/queues/rx-*/rps_cpus; do echo "$f=$(cat $f)"; done | sed 's#/sys/class/net/##; s#/queues##'`,
    ),
    sysctls: await sh(
      'sysctl -e net.ipv4.ip_forward net.ipv4.conf.all.rp_filter net.ipv4.conf.default.rp_filter net.netfilter.nf_conntrack_udp_timeout; sysctl -n net.core.netdev_max_backlog net.core.rmem_max 2>/dev/null',
    ),
    nftTables: await sh('nft list tables'),
  };
}

export async function runUdp(ctx: BenchContext): Promise<SuiteOutput> {
  const { t, tools, sink, opts, log } = ctx;
  const raw: Record<string, unknown> = {};
  const sections: SuiteOutput['sections'] = [];
  const findings: string[] = [];
  const ratios: SuiteOutput['ratios'] = {};
  const starter = (c: VpnlbCase, dir: string) => async () => {
    const a = vpnlbAvailable(c);
    if (!a.ok) throw new Error(a.reason);
    return startVpnlb(t.lb, BALANCER_CPU, c, `${ctx.work}/${dir}`);
  };
  const results: Record<number, Record<string, Outcome<KernelClass | PeakResult>>> = {};
  for (const size of [100, 1400]) {
    log(`UDP ${size} B`);
    const res: Record<string, Outcome<KernelClass | PeakResult>> = {};
    const udp = (dst: string, rate: number, seconds: number, warm: () => number) =>
      measureUdp(t, tools, sink, { dst, size, rate, seconds, flows: 256, warmupSeconds: warm() });

    // Routing first: its flood is the generator's maximum; both kernel-class contenders are then paced at 90 % of it.
    let pacedRate = 0;
    res.routing = await withContender(
      log,
      'routing',
      async () => undefined,
      async () => {
        const warm = warmupPlan(opts);
        const conditions = await readConditions(t);
        const flood = await udp(SERVER_ADDRS[0], 0, opts.seconds, warm);
        pacedRate = Math.max(10_000, Math.floor((flood.sentPps * 0.9) / 1000) * 1000);
        log(
          `  routing flood: ${Math.round(flood.sentPps / 1000)} kpps sent → paced comparison at ${pacedRate / 1000} kpps`,
        );
        const paced = await repeat(opts.repeats, () =>
          udp(SERVER_ADDRS[0], pacedRate, opts.seconds, warm),
        );
        return { paced, flood, conditions };
      },
    );
    const kcase: VpnlbCase = {
      kind: 'ikev2',
      dataplane: 'kernel',
      vip: VIP,
      backends: SERVER_ADDRS,
      table: `bench${size}`,
    };
    res.kernel = await withContender(log, 'vpnlb kernel', starter(kcase, `k${size}`), async () => {
      if (pacedRate === 0)
        throw new Error('routing (the baseline that sets the offered load) did not run');
      const warm = warmupPlan(opts);
      const conditions = await readConditions(t);
      const paced = await repeat(opts.repeats, () => udp(VIP, pacedRate, opts.seconds, warm));
      const flood = await udp(VIP, 0, opts.seconds, warm);
      return { paced, flood, conditions };
    });
    // Up to the generator's rate: a sweep that ends before the contender's limit finds no peak
    // (on a faster host the relay delivered 200,000/s, the former last rate, at 46 % of its core).
    const rates = [
      20e3, 40e3, 60e3, 80e3, 100e3, 130e3, 160e3, 200e3, 250e3, 320e3, 400e3, 500e3, 640e3,
    ];
    const peak = () => {
      const warm = warmupPlan(opts);
      return findPeak(
        (rate, s) => udp(VIP, rate, s, warm),
        { rates, sweepSeconds: opts.sweepSeconds, seconds: opts.seconds, repeats: opts.repeats },
        log,
      );
    };
    const rcase: VpnlbCase = {
      kind: 'ikev2',
      dataplane: 'userspace',
      vip: VIP,
      backends: SERVER_ADDRS,
      table: 'unused',
      // Shed a flood at the driver of the interface the clients' datagrams arrive on, as an
      // operator who expects floods would (docs/operations.md, "Shedding a flood in the kernel").
      xdpShedOn: t.lbIn,
    };
    res.relay = await withContender(log, 'vpnlb relay', starter(rcase, `r${size}`), peak);
    // nginx receives through the same path: a pass-everything XDP program on the same
    // interface, its NAPI on the balancer's core (see startXdpPass).
    let xdpPass: Daemon | undefined;
    try {
      res.nginx = await withContender(
        log,
        'nginx',
        async () => {
          xdpPass = await startXdpPass(t.lb, t.lbIn, VIP);
          return startNginx(
            t.lb,
            BALANCER_CPU,
            { kind: 'udp', vip: VIP, port: 4500, backends: SERVER_ADDRS, backendPort: 4500 },
            `${ctx.work}/nu${size}`,
          );
        },
        peak,
      );
    } finally {
      await xdpPass?.stop();
    }
    results[size] = res;

    const rc = res.routing.ok ? (res.routing.value as KernelClass).conditions : undefined;
    const kc = res.kernel.ok ? (res.kernel.value as KernelClass).conditions : undefined;
    if (rc && kc) {
      const differs = Object.keys(rc).filter((k) => k !== 'nftTables' && rc[k] !== kc[k]);
      if (differs.length)
        findings.push(
          `UDP ${size} B: routing and vpnlb kernel were measured under different ${differs.join(', ')} (routing: ${differs.map((k) => rc[k]).join('; ')}; kernel: ${differs.map((k) => kc[k]).join('; ')}).`,
        );
      if (rc.nftTables)
        findings.push(
          `UDP ${size} B: nft tables were present in lb during the routing baseline: ${rc.nftTables}.`,
        );
    }
    sections.push(udpSection(size, res, pacedRate));
  }
  raw.results = results;

  const fig = (o: Outcome<KernelClass | PeakResult> | undefined): UdpFigure | undefined =>
    o?.ok ? ('peak' in o.value ? o.value.peak : o.value.paced) : undefined;
  // Each ratio with its spread over the repeats (repeat i against repeat i).
  const delivered = (f: UdpFigure | undefined) => f?.samples.map((x) => x.deliveredPps);
  const u100 = results[100]!;
  ratios.kernelVsRouting = ratioOfRepeats(
    delivered(fig(u100.kernel)),
    delivered(fig(u100.routing)),
    { numerator: errorOf(u100.kernel) ?? 'n/a', denominator: errorOf(u100.routing) ?? 'n/a' },
  );
  const peakOf = (o: Outcome<KernelClass | PeakResult> | undefined) =>
    o?.ok && 'peak' in o.value ? o.value : undefined;
  const relayPeak = peakOf(u100.relay);
  const unsaturated = (['relay', 'nginx'] as const).filter(
    (k) => peakOf(u100[k])?.saturated === false,
  );
  const lowerBound =
    unsaturated.length > 0
      ? `${unsaturated.map((k) => NAMES[k]).join(' and ')} did not reach ${unsaturated.length > 1 ? 'their' : 'its'} limit within the generator's rates: ${unsaturated.length > 1 ? 'their peaks are lower bounds' : 'its peak is a lower bound'}`
      : undefined;
  const relayVsNginx = ratioOfRepeats(delivered(fig(u100.relay)), delivered(fig(u100.nginx)), {
    numerator: errorOf(u100.relay) ?? 'n/a',
    denominator: errorOf(u100.nginx) ?? 'n/a',
  });
  ratios.relayVsNginx = lowerBound ? { ...relayVsNginx, caveat: lowerBound } : relayVsNginx;
  // Retention needs a flood: twice a load the relay was not saturated at is not one.
  ratios.relayFloodRetention =
    relayPeak?.saturated === false
      ? {
          value: null,
          reason: `no flood: the relay delivered every rate the sweep offered (up to ${Math.round(relayPeak.sweep.at(-1)!.offeredPps).toLocaleString('en-US')}/s), so twice its best is not twice its peak`,
        }
      : ratioOfRepeats(delivered(relayPeak?.flood2x), delivered(relayPeak?.peak), {
          numerator: errorOf(u100.relay) ?? 'n/a',
          denominator: errorOf(u100.relay) ?? 'n/a',
        });
  return { sections, ratios, findings, raw };
}

const NAMES: Record<string, string> = {
  routing: 'kernel routing (baseline)',
  kernel: 'vpnlb kernel (nftables DNAT, ike-spi, Maglev 65537)',
  relay: 'vpnlb userspace relay',
  nginx: 'nginx stream udp (hash $remote_addr consistent)',
};

function udpSection(
  size: number,
  r: Record<string, Outcome<KernelClass | PeakResult>>,
  pacedRate: number,
): SuiteOutput['sections'][number] {
  const rows: Row[] = ['routing', 'kernel', 'relay', 'nginx'].map((c) => {
    const o = r[c];
    const v = o?.ok ? o.value : undefined;
    const f = v ? ('peak' in v ? v.peak : v.paced) : undefined;
    const p = v && 'peak' in v ? v : undefined;
    const k = v && 'paced' in v ? v : undefined;
    return {
      contender: NAMES[c]!,
      figures: {
        offered: f?.offeredPps ?? null,
        sent: f?.sentPps ?? null,
        pps: f?.deliveredPps ?? null,
        loss: f ? f.loss * 100 : null,
        cpu: f ? f.balancerCpu * 100 : null,
        cpuPerMpps: f?.balancerCpuPerMpps ?? null,
        flood2x: p ? p.flood2x.deliveredPps : null,
        floodMax: p ? p.floodMax.deliveredPps : k ? k.flood.deliveredPps : null,
        floodMaxCpu: p ? p.floodMax.balancerCpu * 100 : k ? k.flood.balancerCpu * 100 : null,
        gen: f ? f.generatorCpu * 100 : null,
      },
      ...(errorOf(o) ? { error: errorOf(o)! } : {}),
    };
  });
  return {
    title: `IKEv2 / ESP-in-UDP forwarding, ${size} B payload`,
    suite: 'udp',
    columns: {
      offered: 'offered pkt/s',
      sent: 'sent pkt/s',
      pps: 'delivered pkt/s',
      loss: 'loss %',
      cpu: 'balancer core %',
      cpuPerMpps: 'balancer core-s per Mpkt',
      flood2x: 'delivered at 2× peak load',
      floodMax: 'delivered at max flood',
      floodMaxCpu: 'balancer core % at max flood',
      gen: 'generator CPU %',
    },
    rows,
    baseline: { contender: NAMES.routing!, figure: 'pps' },
    notes: [
      `routing and vpnlb kernel: the same paced offered load for both (${pacedRate ? `${pacedRate.toLocaleString('en-US')} pkt/s = 90 % of the generator's flood through routing` : 'not set: routing did not run'}), so 'balancer core-s per Mpkt' (balancer core busy time per million packets delivered) is the figure that separates them; their 'delivered at max flood' is one unpaced sample (bounded by the generator). Userspace contenders: offered = the rate of their best delivery in a sweep.`,
      "loss % = 1 − delivered / sent in the same window (the generator counts what it sent, an nftables counter on the servers' side what arrived).",
      `vpnlb relay and nginx receive the same way: an XDP program on the balancer's client-side veth (the relay's shedding; a pass-everything program for nginx), whose NAPI is a thread on the balancer core, moderated as a NIC moderates its interrupts (re-polled on a ${XDP_NAPI_MODERATION.flushTimeoutNs / 1000} µs timer while frames keep coming, woken again after ${XDP_NAPI_MODERATION.deferHardIrqs} empty polls).`,
    ],
  };
}
