/**
 * The relay's side of kernel shedding (relay-kernel-shed.ts: nftables; relay-xdp-shed.ts: XDP;
 * relay-shed-limit.ts: the limit): decides whether and where it can run, ticks the adaptive
 * limit, keeps the established flows in step, exports metrics, and says once why it does not
 * run. The relay calls `flowReady`/`flowGone` and gives it, per tick, how many datagrams it
 * forwarded towards the servers in total.
 */
import type { Metrics } from '../../observability/metrics.js';
import type { Logger } from '../../log/logger.js';
import { NftCliApplier, type NftApplier, type NftResult } from '../kernel/nft-applier.js';
import {
  KernelShed,
  procOverflowReader,
  shedTableName,
  type OverflowReader,
  type ShedCounts,
  type ShedFlowKey,
} from './relay-kernel-shed.js';
import { ShedLimit } from './relay-shed-limit.js';
import { XdpShed, loadNativeXdpShed, type NativeXdpShed } from './relay-xdp-shed.js';

/**
 * `auto` (default): shed in an nftables table when nft and CAP_NET_ADMIN are there; `xdp`: at
 * the driver of `kernelShedInterfaces` (XDP), else as `auto`; `off`: never.
 */
export type KernelShedMode = 'auto' | 'xdp' | 'off';

/** What the two kernel sides (nftables table, XDP program) have in common. */
interface ShedBackend {
  add(k: ShedFlowKey): void;
  remove(k: ShedFlowKey): void;
  flush(): Promise<NftResult>;
  setLimit(limit: number | undefined): Promise<NftResult>;
  counts(): Promise<ShedCounts | undefined>;
  uninstall(): Promise<NftResult<boolean>>;
  readonly limit: number | undefined;
  readonly members: number;
  /** Flow changes the kernel refused (XDP: e.g. a full map), and the last reason. */
  readonly flowErrors?: { readonly count: number; readonly last?: string };
}

/** What `stats()` reports. */
export interface RelayShedStatus {
  readonly active: boolean;
  /** Where it sheds: `nftables table inet …` or `XDP on eth0 (native)`. */
  readonly where?: string;
  readonly reason?: string;
  /** Why `kernelShed: xdp` sheds with nftables instead. */
  readonly xdpFallback?: string;
  /** Established flows' datagrams/s let through (undefined: no limit now). */
  readonly limit?: number;
  /** Flow changes the kernel refused (an established flow then counts as a stranger). */
  readonly flowErrors?: number;
  /** Established flows in the kernel's set. */
  readonly established: number;
  /** Datagrams dropped in the kernel by each limit (last read). */
  readonly dropped: ShedCounts;
}

export interface RelayShedOptions {
  readonly mode: KernelShedMode;
  readonly serviceName: string;
  readonly family: 4 | 6;
  readonly virtualIp: string;
  readonly maxNewFlowsPerSecond: number;
  /** `kernelShed: xdp`: the interfaces the clients' datagrams arrive on. */
  readonly interfaces?: readonly string[];
  /** The relay's `maxFlows` (size of the XDP program's flows map). */
  readonly maxFlows?: number;
  readonly logger: Logger;
  readonly metrics: Metrics;
  /** Whether nft may be used (CAP_NET_ADMIN, nft present), with the reason when not. */
  readonly availability: () => Promise<{ ok: true } | { ok: false; reason: string }>;
  /** Injected for tests. */
  readonly nft?: NftApplier;
  readonly overflows?: OverflowReader;
  readonly xdp?: NativeXdpShed;
  /** Tick period, ms (default 500 with nftables, 100 with XDP). */
  readonly tickMs?: number;
}

/** Datagrams a new flow may need before it is established (IKE_SA_INIT and retransmissions, both ports). */
const DATAGRAMS_PER_NEW_FLOW = 4;
/** Read the kernel's drop counters every this many ticks (one nft process). */
const COUNTER_EVERY_TICKS = 10;

export class RelayShed {
  readonly #o: RelayShedOptions;
  readonly #limitGauge;
  readonly #droppedCounter;
  #shed: ShedBackend | undefined;
  #where: string | undefined;
  /** Counters read every tick (XDP: a memory read) or every COUNTER_EVERY_TICKS (nft: a process). */
  #countEveryTick = false;
  #limit: ShedLimit | undefined;
  #reason: string | undefined;
  #xdpFallback: string | undefined;
  #timer: NodeJS.Timeout | undefined;
  #busy = false;
  #ticks = 0;
  #lastForwarded = 0;
  #lastOverflows: number | undefined;
  #flowErrorsLogged = 0;
  #lastTickAt = 0;
  #dropped: ShedCounts = { established: 0, unknown: 0 };
  #forwarded: () => number = () => 0;

  constructor(o: RelayShedOptions) {
    this.#o = o;
    this.#limitGauge = o.metrics.gauge({
      name: 'vpnlb_relay_shed_limit',
      help: 'Datagrams per second of established flows the kernel lets through to the userspace IKEv2 relay (0: no limit now; adapts to what the relay forwards).',
      labelNames: ['service'],
    });
    this.#droppedCounter = o.metrics.counter({
      name: 'vpnlb_relay_shed_dropped_total',
      help: 'Datagrams to the userspace IKEv2 relay dropped in the kernel before its sockets, by class (established: over the adaptive limit; unknown: over the budget of sources without a flow).',
      labelNames: ['service', 'class'],
    });
    for (const c of ['established', 'unknown'])
      this.#droppedCounter.inc({ service: o.serviceName, class: c }, 0);
    this.#limitGauge.set({ service: o.serviceName }, 0);
  }

  /** Installs the table or program when it can; `forwarded` returns the relay's total datagrams forwarded towards servers. */
  async start(ports: readonly number[], forwarded: () => number): Promise<void> {
    const o = this.#o;
    this.#forwarded = forwarded;
    if (o.mode === 'off') {
      this.#reason = 'disabled (kernelShed: off)';
      return;
    }
    const unknownPerSecond = Math.max(100, o.maxNewFlowsPerSecond * DATAGRAMS_PER_NEW_FLOW);
    const shed =
      (o.mode === 'xdp' ? await this.#startXdp(ports, unknownPerSecond) : undefined) ??
      (await this.#startNft(ports, unknownPerSecond));
    if (!shed) return;
    this.#shed = shed;
    // Floor: the unknown budget; a quiet tick must not shut established flows out.
    this.#limit = new ShedLimit({ floor: unknownPerSecond });
    this.#lastForwarded = forwarded();
    this.#lastOverflows = await (o.overflows ?? procOverflowReader)();
    this.#lastTickAt = Date.now();
    o.logger.info(
      { kernelShed: true, where: this.#where, unknownPerSecond },
      `${o.serviceName}: flood shedding in the kernel active (${this.#where})`,
    );
    // XDP: a tick costs a file read and a memory write, so the limit can follow a flood more
    // closely; nftables: each change is an nft process.
    this.#timer = setInterval(
      () => void this.tick(),
      o.tickMs ?? (this.#countEveryTick ? 100 : 500),
    );
    this.#timer.unref();
  }

  async #startXdp(
    ports: readonly number[],
    unknownPerSecond: number,
  ): Promise<ShedBackend | undefined> {
    const o = this.#o;
    const native = o.xdp ?? loadNativeXdpShed();
    const fallback = (why: string) => {
      this.#xdpFallback = why;
      o.logger.warn(
        { kernelShed: 'xdp' },
        `${o.serviceName}: XDP flood shedding unavailable: ${why}; shedding with nftables instead`,
      );
      return undefined;
    };
    if ('unavailable' in native) return fallback(native.unavailable);
    const binding = 'binding' in native ? native.binding : native;
    const xdp = new XdpShed(binding, {
      family: o.family,
      virtualIp: o.virtualIp,
      ports,
      unknownPerSecond,
      interfaces: o.interfaces ?? [],
      maxFlows: o.maxFlows ?? 200_000,
    });
    const r = await xdp.install();
    if (!r.ok) return fallback(r.error);
    const generic = xdp.genericInterfaces;
    if (generic.length)
      o.logger.warn(
        { kernelShed: 'xdp', generic },
        `${o.serviceName}: ${generic.join(', ')} ha${generic.length > 1 ? 've' : 's'} no native XDP: the program runs in generic mode, after the kernel has built a socket buffer, and saves less`,
      );
    this.#where = xdp.where;
    this.#countEveryTick = true;
    // A table left by an earlier run with nftables (killed, or fallen back) would still see
    // the datagrams XDP passes, with a stale set of established flows: remove it.
    if ((await o.availability()).ok) {
      const table = shedTableName(o.serviceName);
      const nft = o.nft ?? new NftCliApplier();
      const found = await nft.list(['table', 'inet', table]);
      if (found.ok && (await nft.apply(`delete table inet ${table}\n`)).ok)
        o.logger.info(
          { kernelShed: 'xdp', table },
          `${o.serviceName}: removed the nftables table inet ${table} left by an earlier run`,
        );
    }
    return xdp;
  }

  async #startNft(
    ports: readonly number[],
    unknownPerSecond: number,
  ): Promise<ShedBackend | undefined> {
    const o = this.#o;
    const avail = await o.availability();
    if (!avail.ok) {
      this.#reason = `unavailable: ${avail.reason}`;
      o.logger.info(
        { kernelShed: false },
        `${o.serviceName}: flood shedding in the kernel ${this.#reason}; a flood is shed by the relay's sockets`,
      );
      return undefined;
    }
    const shed = new KernelShed(o.nft ?? new NftCliApplier(), {
      table: shedTableName(o.serviceName),
      family: o.family,
      virtualIp: o.virtualIp,
      ports,
      unknownPerSecond,
    });
    const r = await shed.install();
    if (!r.ok) {
      this.#reason = `unavailable: nft failed: ${r.error}`;
      o.logger.warn(
        { kernelShed: false },
        `${o.serviceName}: flood shedding in the kernel ${this.#reason}`,
      );
      return undefined;
    }
    this.#where = `nftables table inet ${shed.config.table}`;
    return shed;
  }

  flowReady(address: string, port: number, dport: number): void {
    this.#shed?.add({ address, port, dport });
  }

  flowGone(address: string, port: number, dport: number): void {
    this.#shed?.remove({ address, port, dport });
  }

  /** One adaptation step (also called by tests). Ticks never overlap. */
  async tick(): Promise<void> {
    const shed = this.#shed;
    const limit = this.#limit;
    if (!shed || !limit || this.#busy) return;
    this.#busy = true;
    try {
      const now = Date.now();
      const seconds = Math.max(0.001, (now - this.#lastTickAt) / 1000);
      this.#lastTickAt = now;
      const total = this.#forwarded();
      const forwardedPerSecond = Math.max(0, total - this.#lastForwarded) / seconds;
      this.#lastForwarded = total;
      const ov = await (this.#o.overflows ?? procOverflowReader)();
      const overflows =
        ov !== undefined && this.#lastOverflows !== undefined
          ? Math.max(0, ov - this.#lastOverflows)
          : 0;
      this.#lastOverflows = ov;
      const next = limit.update({ overflows, forwardedPerSecond });
      const set = await shed.setLimit(next);
      if (!set.ok)
        this.#o.logger.warn(
          { kernelShed: true },
          `${this.#o.serviceName}: could not change the kernel shedding limit: ${set.error}`,
        );
      this.#limitGauge.set({ service: this.#o.serviceName }, shed.limit ?? 0);
      const f = await shed.flush();
      if (!f.ok)
        this.#o.logger.warn(
          { kernelShed: true },
          `${this.#o.serviceName}: could not update the kernel's established flows: ${f.error}`,
        );
      const fe = shed.flowErrors;
      if (fe && fe.count > this.#flowErrorsLogged) {
        this.#o.logger.warn(
          { kernelShed: true, flowErrors: fe.count },
          `${this.#o.serviceName}: the kernel refused ${fe.count - this.#flowErrorsLogged} established flow change(s) (those flows count as strangers): ${fe.last}`,
        );
        this.#flowErrorsLogged = fe.count;
      }
      if (this.#countEveryTick || ++this.#ticks % COUNTER_EVERY_TICKS === 0)
        await this.#readCounters();
    } finally {
      this.#busy = false;
    }
  }

  async #readCounters(): Promise<void> {
    const c = await this.#shed?.counts();
    if (!c) return;
    const service = this.#o.serviceName;
    const d = this.#dropped;
    if (c.established > d.established)
      this.#droppedCounter.inc({ service, class: 'established' }, c.established - d.established);
    if (c.unknown > d.unknown)
      this.#droppedCounter.inc({ service, class: 'unknown' }, c.unknown - d.unknown);
    this.#dropped = c;
  }

  async stop(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
    const shed = this.#shed;
    if (!shed) return;
    await this.#readCounters();
    this.#shed = undefined;
    const r = await shed.uninstall();
    if (!r.ok)
      this.#o.logger.warn(
        { kernelShed: true },
        `${this.#o.serviceName}: could not remove the flood shedding (${this.#where}): ${r.error}`,
      );
    this.#limitGauge.set({ service: this.#o.serviceName }, 0);
  }

  status(): RelayShedStatus {
    const shed = this.#shed;
    return {
      active: shed !== undefined,
      ...(shed && this.#where ? { where: this.#where } : {}),
      ...(this.#reason !== undefined ? { reason: this.#reason } : {}),
      ...(this.#xdpFallback !== undefined ? { xdpFallback: this.#xdpFallback } : {}),
      ...(shed?.limit !== undefined ? { limit: shed.limit } : {}),
      ...(shed?.flowErrors?.count ? { flowErrors: shed.flowErrors.count } : {}),
      established: shed?.members ?? 0,
      dropped: this.#dropped,
    };
  }
}
