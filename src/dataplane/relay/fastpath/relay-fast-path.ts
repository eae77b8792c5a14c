/**
 * The glue between the userspace relay (udp-relay.ts) and its native fast path (fast-path.ts):
 * which of the relay's flows the addon forwards, and how what it did comes back into the
 * relay's own bookkeeping — per-backend counters, each flow's `lastSeen`/`referenced` (idle
 * expiry and second-chance eviction), and drops by reason — so that the relay behaves, counts
 * and expires exactly as it does when it forwards in JavaScript.
 *
 * When the fast path is off (`fastPath: 'off'`, `VPNLB_RELAY_FASTPATH=0`) or unavailable (addon
 * not built, failed to load, Node internals changed), every method is a no-op and the relay
 * forwards in JavaScript; unavailability is said once, as a warning.
 */
import type { RemoteInfo, Socket } from 'node:dgram';
import type { Metrics } from '../../../observability/metrics.js';
import type { Logger } from '../../../log/logger.js';
import type { Clock } from '../../../util/clock.js';
import type { RelayDrops } from '../relay-drops.js';
import type { RelayFlow } from '../relay-flow.js';
import { FastPath, type FastPathTotals } from './fast-path.js';
import { FASTPATH_ENV, fastPathEnabledByEnv, type HandoffPacket } from './native-binding.js';

/** `auto`: use the addon when it loads (unless `VPNLB_RELAY_FASTPATH=0`); `off`: never. */
export type FastPathMode = 'auto' | 'off';

/** Whether established flows are forwarded natively, and why not. */
export interface FastPathStatus {
  readonly active: boolean;
  /** Why it is not active (disabled or unavailable). */
  readonly reason?: string;
  /** Flows currently forwarded natively. */
  readonly flows: number;
  /** Datagrams forwarded natively since start, each direction. */
  readonly forwardedIn: number;
  readonly forwardedOut: number;
}

export interface RelayFastPathOptions {
  readonly mode: FastPathMode;
  readonly serviceName: string;
  readonly ike: Socket;
  readonly natT: Socket;
  readonly maxFlows: number;
  readonly logger: Logger;
  readonly metrics: Metrics;
  readonly drops: RelayDrops;
  /** The relay's coarse clock (the one its flows' `lastSeen` use). */
  readonly clock: Clock;
  /** The relay's per-datagram entry points (datagrams the addon did not forward). */
  readonly onDatagram: (msg: Buffer, rinfo: RemoteInfo, isNatT: boolean) => void;
  /** Where the one-time "unavailable" warning goes (the relay's status().warnings). */
  readonly warnings: string[];
}

const NO_TOTALS: FastPathTotals = { flows: 0, forwardedIn: 0, forwardedOut: 0, handoffBytes: 0 };

export class RelayFastPath {
  readonly #fast: FastPath | undefined;
  readonly #reason: string | undefined;
  readonly #drops: RelayDrops;
  readonly #clock: Clock;
  readonly #serviceName: string;
  readonly #active;
  readonly #flowsGauge;
  /** Installed flows by native slot. */
  readonly #bySlot: (RelayFlow | undefined)[] = [];
  #totals: FastPathTotals = NO_TOTALS;

  constructor(o: RelayFastPathOptions) {
    this.#drops = o.drops;
    this.#clock = o.clock;
    this.#serviceName = o.serviceName;
    this.#active = o.metrics.gauge({
      name: 'vpnlb_relay_fastpath_active',
      help: 'Whether the userspace IKEv2 relay forwards established flows in its native fast path (1) or in JavaScript (0).',
      labelNames: ['service'],
    });
    this.#flowsGauge = o.metrics.gauge({
      name: 'vpnlb_relay_fastpath_flows',
      help: 'Flows of the userspace IKEv2 relay forwarded by its native fast path.',
      labelNames: ['service'],
    });
    const family = o.ike.address().family === 'IPv6' ? 'IPv6' : 'IPv4';
    if (o.mode === 'off' || !fastPathEnabledByEnv()) {
      this.#reason =
        o.mode === 'off'
          ? 'disabled by the relay options'
          : `disabled by ${FASTPATH_ENV}=${process.env[FASTPATH_ENV]}`;
      o.logger.info(
        { fastPath: false },
        `${o.serviceName}: native fast path ${this.#reason}; forwarding in JavaScript`,
      );
    } else {
      const onHandoff = (packets: HandoffPacket[]): void => {
        if (this.#fast === undefined || this.#fast.isClosed) return;
        for (const [msg, address, port, isNatT] of packets)
          o.onDatagram(msg, { address, port, family, size: msg.length }, isNatT);
      };
      const opened = FastPath.open({ ike: o.ike, natT: o.natT, maxFlows: o.maxFlows, onHandoff });
      if (opened instanceof FastPath) {
        this.#fast = opened;
        o.logger.info(
          { fastPath: true },
          `${o.serviceName}: native fast path active (established flows forwarded with recvmmsg/sendmmsg)`,
        );
      } else {
        this.#reason = `unavailable: ${opened.unavailable}`;
        const text = `native fast path unavailable: ${opened.unavailable}; forwarding in JavaScript`;
        o.warnings.push(text);
        o.logger.warn({ fastPath: false }, `${o.serviceName}: ${text}`);
      }
    }
    this.#active.set({ service: o.serviceName }, this.#fast ? 1 : 0);
  }

  get isActive(): boolean {
    return this.#fast !== undefined && !this.#fast.isClosed;
  }

  /** Hands a flow whose upstream socket just got connected to the native thread. */
  install(flow: RelayFlow): void {
    const fast = this.#fast;
    if (fast === undefined || flow.socket === undefined || flow.isClosed) return;
    const slot = fast.install(flow.isNatT, flow.clientAddress, flow.clientPort, flow.socket);
    // Refused (table full, an address the addon cannot parse): the flow stays in JavaScript.
    if (typeof slot === 'string') return;
    flow.fastSlot = slot;
    this.#bySlot[slot] = flow;
  }

  /** Takes a flow back before its socket is closed, with what it did since the last sync. */
  remove(flow: RelayFlow): void {
    const slot = flow.fastSlot;
    if (slot < 0 || this.#fast === undefined) return;
    flow.fastSlot = -1;
    this.#bySlot[slot] = undefined;
    const d = this.#fast.remove(slot);
    if (d === undefined) return;
    const t = flow.backend.traffic;
    t.packetsIn += d.packetsIn;
    t.bytesIn += d.bytesIn;
    t.packetsOut += d.packetsOut;
    t.bytesOut += d.bytesOut;
    if (d.errors > 0)
      this.#drops.dropMany(
        'socket-error',
        d.errors,
        flow.clientAddress,
        `${flow.backend.name}: native send/receive error`,
      );
  }

  /**
   * Brings the native counters into the relay: traffic per backend, each active flow's
   * `lastSeen` (the native time, as an age, on the relay's clock) and `referenced`, and drops.
   * Cost: the flows active since the last sync, plus one native call.
   */
  sync(): void {
    const fast = this.#fast;
    if (fast === undefined) return;
    const now = this.#clock.now();
    const nativeNow = fast.now();
    this.#totals = fast.poll(
      (slot, packetsIn, bytesIn, packetsOut, bytesOut, errors, lastSeenMs) => {
        const flow = this.#bySlot[slot];
        if (flow === undefined) return;
        const t = flow.backend.traffic;
        t.packetsIn += packetsIn;
        t.bytesIn += bytesIn;
        t.packetsOut += packetsOut;
        t.bytesOut += bytesOut;
        flow.lastSeen = Math.max(flow.lastSeen, now - Math.max(0, nativeNow - lastSeenMs));
        flow.referenced = true;
        if (errors > 0)
          this.#drops.dropMany(
            'socket-error',
            errors,
            flow.clientAddress,
            `${flow.backend.name}: native send/receive error`,
          );
      },
      (reason, count, from) =>
        this.#drops.dropMany(
          reason,
          count,
          from || 'unknown',
          reason === 'new-flow-shed' ? 'native hand-off queue full' : undefined,
        ),
    );
    this.#flowsGauge.set({ service: this.#serviceName }, this.#totals.flows);
  }

  /** Stops the native thread (sync first); installed flows must still be `remove`d. */
  close(): void {
    if (this.#fast === undefined || this.#fast.isClosed) return;
    this.sync();
    this.#fast.close();
    this.#active.set({ service: this.#serviceName }, 0);
  }

  status(): FastPathStatus {
    const t = this.#totals;
    return {
      active: this.isActive,
      ...(this.#reason !== undefined ? { reason: this.#reason } : {}),
      flows: t.flows,
      forwardedIn: t.forwardedIn,
      forwardedOut: t.forwardedOut,
    };
  }
}
