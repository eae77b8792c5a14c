/**
 * How many datagrams per second of established flows the kernel lets through to the relay
 * (relay-kernel-shed.ts), adapted to what the relay can actually forward. Pure: one `update`
 * per tick with what the tick saw; unit-tested without a kernel.
 *
 * Why adapt instead of a configured rate: the relay's capacity depends on the CPU it gets (the
 * receive work of every offered packet lands on the relay's core, bench/analysis.md), so no
 * number holds for every machine or every moment. The signal is the one the kernel gives when
 * the relay falls behind: its UDP receive queues overflow (`RcvbufErrors`). An overflowed
 * datagram has already cost the full receive path (device, IP, UDP lookup, queueing) on the
 * relay's core and is thrown away anyway; a datagram dropped by the limit costs a fraction of
 * that. So, additive-increase/multiplicative-decrease as in TCP congestion control (RFC 5681
 * §3.1 halves; here the cut is to what was forwarded, since the forwarded rate is measured):
 * - overflow in a tick: limit = `cut` × the rate the relay forwarded in that tick (at most a
 *   quarter below the previous limit). The first cut of a flood is at least `cut` × the best
 *   rate forwarded without overflow in the last `releaseTicks` ticks: the tick in which a flood
 *   starts is the one in which it starves the relay most (everything is admitted), so its
 *   forwarded rate says least about the relay's capacity, and climbing back from it took
 *   seconds;
 * - no overflow and the limit was binding (forwarded ≥ `bindingShare` × limit): probe upwards
 *   by `increase` (capacity may have grown: other work left the core);
 * - no overflow and the limit not binding for `releaseTicks` ticks: no limit at all (normal
 *   operation pays nothing but the rule's match).
 */

export interface ShedLimitOptions {
  /** Lowest limit ever set, datagrams/s (a tick of little traffic must not close the door). */
  readonly floor: number;
  /** Factor applied to the forwarded rate on overflow (default 0.95). */
  readonly cut?: number;
  /** Factor per tick while the limit binds without overflow (default 1.04). */
  readonly increase?: number;
  /** Share of the limit above which it counts as binding (default 0.9). */
  readonly bindingShare?: number;
  /** Ticks without overflow or binding after which the limit is lifted (default 20). */
  readonly releaseTicks?: number;
}

/** What one tick saw. */
export interface ShedTick {
  /** Receive-queue overflows since the last tick (the relay fell behind). */
  readonly overflows: number;
  /** Datagrams the relay forwarded towards the servers per second in this tick. */
  readonly forwardedPerSecond: number;
}

/** Smallest factor one overflowing tick applies to an existing limit. */
const MAX_CUT = 0.75;

export class ShedLimit {
  readonly #floor: number;
  readonly #cut: number;
  readonly #increase: number;
  readonly #bindingShare: number;
  readonly #releaseTicks: number;
  /** Datagrams/s, or undefined when nothing is limited. */
  #limit: number | undefined;
  #quietTicks = 0;
  /** Forwarded rates of the last `releaseTicks` ticks without overflow (newest last). */
  readonly #recent: number[] = [];

  constructor(o: ShedLimitOptions) {
    if (!(o.floor > 0)) throw new RangeError('ShedLimit: floor must be positive');
    this.#floor = o.floor;
    this.#cut = o.cut ?? 0.95;
    this.#increase = o.increase ?? 1.04;
    this.#bindingShare = o.bindingShare ?? 0.9;
    this.#releaseTicks = o.releaseTicks ?? 20;
  }

  /** The current limit in datagrams/s (undefined: none). */
  get limit(): number | undefined {
    return this.#limit;
  }

  /** Takes one tick's observations; returns the new limit (undefined: none). */
  update(tick: ShedTick): number | undefined {
    if (tick.overflows > 0) {
      this.#quietTicks = 0;
      const best = this.#limit === undefined ? Math.max(0, ...this.#recent) : 0;
      this.#recent.length = 0;
      const measured = Math.max(
        this.#floor,
        Math.floor(Math.max(tick.forwardedPerSecond, best) * this.#cut),
      );
      // Never raise the limit because of an overflow (a tick may forward more than the limit
      // when a burst was queued before the limit took effect), and never cut it by more than
      // `MAX_CUT` in one tick: a tick in which other work starved the relay says little about
      // its capacity, and climbing back at +4 % a tick is slow.
      this.#limit =
        this.#limit === undefined
          ? measured
          : Math.max(
              this.#floor,
              Math.min(this.#limit, Math.max(measured, Math.floor(this.#limit * MAX_CUT))),
            );
      return this.#limit;
    }
    this.#recent.push(tick.forwardedPerSecond);
    if (this.#recent.length > this.#releaseTicks) this.#recent.shift();
    if (this.#limit === undefined) return undefined;
    if (tick.forwardedPerSecond >= this.#bindingShare * this.#limit) {
      this.#quietTicks = 0;
      this.#limit = Math.ceil(this.#limit * this.#increase);
      return this.#limit;
    }
    if (++this.#quietTicks >= this.#releaseTicks) {
      this.#limit = undefined;
      this.#quietTicks = 0;
    }
    return this.#limit;
  }
}
