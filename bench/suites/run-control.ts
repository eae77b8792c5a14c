/**
 * Suite `control`: Maglev table build time, nftables map update time (full and incremental) and
 * DNAT-through-map forwarding while the map is rewritten continuously (control-plane.ts).
 */
import { warmupPlan, type BenchContext, type SuiteOutput } from '../lib/context.js';
import { SERVER_ADDRS, VIP } from '../lib/topology.js';
import {
  fullRewrite,
  incrementalRewrite,
  maglevBuildTimes,
  referenceRuleset,
  timeNft,
} from './control-plane.js';
import { measureUdp } from './udp-forwarding.js';

export async function runControl(ctx: BenchContext): Promise<SuiteOutput> {
  const { t, tools, sink, opts, log } = ctx;
  log('control plane: Maglev, nft map updates');
  const maglev = maglevBuildTimes([10, 100, 1000], Math.max(3, opts.repeats));
  const ctl: Record<string, number | null> = {};
  let ctlError: string | undefined;
  try {
    await t.lb.exec('nft', ['-f', '-'], referenceRuleset('benchref', VIP, SERVER_ADDRS));
    const n = Math.max(3, opts.repeats);
    const shifts = Array.from({ length: n }, (_, i) => i + 1);
    ctl.full = await timeNft(
      t.lb,
      shifts.map((i) => fullRewrite('benchref', SERVER_ADDRS, i)),
    );
    ctl.incr16k = await timeNft(
      t.lb,
      shifts.map((i) => incrementalRewrite('benchref', SERVER_ADDRS, 16384, i)),
    );
    ctl.incr100 = await timeNft(
      t.lb,
      shifts.map((i) => incrementalRewrite('benchref', SERVER_ADDRS, 100, i)),
    );
    const warm = warmupPlan(opts);
    const base = await measureUdp(t, tools, sink, {
      dst: VIP,
      size: 100,
      rate: 0,
      seconds: opts.seconds,
      flows: 256,
      warmupSeconds: warm(),
    });
    let stop = false;
    let rewrites = 0;
    let t0 = 0;
    const loop = (async () => {
      while (!stop) {
        await t.lb.exec('nft', ['-f', '-'], fullRewrite('benchref', SERVER_ADDRS, rewrites % 4));
        if (rewrites === 0) t0 = performance.now();
        rewrites++;
      }
    })();
    const during = await measureUdp(t, tools, sink, {
      dst: VIP,
      size: 100,
      rate: 0,
      seconds: opts.seconds,
      flows: 256,
      warmupSeconds: warm(),
    });
    stop = true;
    await loop;
    ctl.ppsBase = base.deliveredPps;
    ctl.ppsDuring = during.deliveredPps;
    ctl.rewritesPerS = rewrites > 1 ? (rewrites - 1) / ((performance.now() - t0) / 1000) : null;
  } catch (e) {
    ctlError = (e as Error).message.slice(0, 300);
  } finally {
    await t.lb.exec('nft', ['delete', 'table', 'ip', 'benchref']).catch(() => undefined);
  }
  return {
    sections: [
      {
        title: 'Control plane',
        suite: 'control',
        columns: { value: 'value' },
        rows: [
          ...Object.entries(maglev).map(([n, ms]) => ({
            contender: `Maglev table build, ${n} backends (ms)`,
            figures: { value: ms },
          })),
          {
            contender: 'nft map full rewrite, 65537 slots, one transaction (ms)',
            figures: { value: ctl.full ?? null },
          },
          {
            contender: 'nft map incremental, 16384 slots (one backend of 4) (ms)',
            figures: { value: ctl.incr16k ?? null },
          },
          {
            contender: 'nft map incremental, 100 slots (ms)',
            figures: { value: ctl.incr100 ?? null },
          },
          {
            contender: 'DNAT-through-map pkt/s, map idle',
            figures: { value: ctl.ppsBase ?? null },
          },
          {
            contender: 'DNAT-through-map pkt/s, map rewritten continuously',
            figures: { value: ctl.ppsDuring ?? null },
          },
          {
            contender: 'full map rewrites per second during that flood',
            figures: { value: ctl.rewritesPerS ?? null },
          },
        ],
        notes: [
          'nft figures use a table of the same shape as the kernel data plane (DESIGN §4 reference ruleset: jhash of the IKE SPI mod 65537 → map @slots, DNAT in prerouting), driven by `nft -f` as the data plane does; the DNAT floods get the same uncounted warm-up as the forwarding suite.',
          ...(ctlError ? [`nft measurements failed: ${ctlError}`] : []),
        ],
      },
    ],
    ratios: {},
    findings: [],
    raw: { maglev, ctl, ctlError },
  };
}
