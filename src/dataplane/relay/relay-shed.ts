/**
 * The relay's side of kernel shedding (relay-kernel-shed.ts, relay-shed-limit.ts): decides
 * whether it can run, ticks the adaptive limit, keeps the `established` set in step, exports
 * metrics, and says once why it does not run. The relay calls `flowReady`/`flowGone` and gives
 * it, per tick, how many datagrams it forwarded towards the servers in total.
 */
import type { Metrics } from '../../observability/metrics.js';
import type { Logger } from '../../log/logger.js';
import { NftCliApplier, type NftApplier } from '../kernel/nft-applier.js';
import {
  KernelShed,
  procOverflowReader,
  shedTableName,
  type OverflowReader,
  type ShedCounts,
} from './relay-kernel-shed.js';
import { ShedLimit } from './relay-shed-limit.js';

/** `auto` (default): shed in the kernel when nft and CAP_NET_ADMIN are there; `off`: never. */
export type KernelShedMode = 'auto' | 'off';

/** What `stats()` reports. */
export interface RelayShedStatus {
  readonly active: boolean;
  readonly reason?: string;
  /** Established flows' datagrams/s let through (undefined: no limit now). */
  readonly limit?: number;
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
  readonly logger: Logger;
  readonly metrics: Metrics;
  /** Whether nft may be used (CAP_NET_ADMIN, nft present), with the reason when not. */
  readonly availability: () => Promise<{ ok: true } | { ok: false; reason: string }>;
  /** Injected for tests. */
  readonly nft?: NftApplier;
  readonly overflows?: OverflowReader;
  /** Tick period, ms (default 500). */
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
  #shed: KernelShed | undefined;
  #limit: ShedLimit | undefined;
  #reason: string | undefined;
  #timer: NodeJS.Timeout | undefined;
  #busy = false;
  #ticks = 0;
  #lastForwarded = 0;
  #lastOverflows: number | undefined;
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

  /** Installs the table when it can; `forwarded` returns the relay's total datagrams forwarded towards servers. */
  async start(ports: readonly number[], forwarded: () => number): Promise<void> {
    const o = this.#o;
    this.#forwarded = forwarded;
    if (o.mode === 'off') {
      this.#reason = 'disabled (kernelShed: off)';
      return;
    }
    const avail = await o.availability();
    if (!avail.ok) {
      this.#reason = `unavailable: ${avail.reason}`;
      o.logger.info(
        { kernelShed: false },
        `${o.serviceName}: flood shedding in the kernel ${this.#reason}; a flood is shed by the relay's sockets`,
      );
      return;
    }
    const unknownPerSecond = Math.max(100, o.maxNewFlowsPerSecond * DATAGRAMS_PER_NEW_FLOW);
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
      return;
    }
    this.#shed = shed;
    // Floor: the unknown budget; a quiet tick must not shut established flows out.
    this.#limit = new ShedLimit({ floor: unknownPerSecond });
    this.#lastForwarded = forwarded();
    this.#lastOverflows = await (o.overflows ?? procOverflowReader)();
    this.#lastTickAt = Date.now();
    o.logger.info(
      { kernelShed: true, table: shed.config.table, unknownPerSecond },
      `${o.serviceName}: flood shedding in the kernel active (nftables table inet ${shed.config.table})`,
    );
    this.#timer = setInterval(() => void this.tick(), o.tickMs ?? 500);
    this.#timer.unref();
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
      if (++this.#ticks % COUNTER_EVERY_TICKS === 0) await this.#readCounters();
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
        `${this.#o.serviceName}: could not remove nftables table inet ${shed.config.table}: ${r.error}`,
      );
    this.#limitGauge.set({ service: this.#o.serviceName }, 0);
  }

  status(): RelayShedStatus {
    const shed = this.#shed;
    return {
      active: shed !== undefined,
      ...(this.#reason !== undefined ? { reason: this.#reason } : {}),
      ...(shed?.limit !== undefined ? { limit: shed.limit } : {}),
      established: shed?.members ?? 0,
      dropped: this.#dropped,
    };
  }
}
