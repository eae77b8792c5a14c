/**
 * The userspace relay's budget of new flows per second (a token bucket).
 *
 * Why: setting a flow up (placement, session, SNAT lease, and an upstream socket created, bound
 * and connected: three system calls and several event-loop turns) costs the relay about 50 µs
 * of CPU on the reference machine, against 7–10 µs to forward one datagram of an established
 * flow (docs/operations.md, "The userspace IKEv2 relay"). Bounding only the setups *in
 * progress* (`maxPendingSetups`) does not bound that work: setups finish quickly, so a flood of
 * IKE_SA_INITs from new source ports at ~20 000/s fills the core with setups and starves the
 * ESP of connected clients. The budget caps the rate; beyond it new flows are shed
 * (`new-flow-shed`, the client retransmits) while existing flows keep their share of the core.
 *
 * The bucket holds at most `burst` tokens and gains `perSecond` tokens a second; one new flow
 * takes one token. Time comes from the caller (the relay's clock), so tests drive it.
 */
export class NewFlowBudget {
  // Immutable configuration.
  readonly perSecond: number;
  readonly burst: number;
  // Mutable state.
  #tokens: number;
  #last: number;

  /**
   * @param perSecond sustained new flows per second (Infinity: no limit)
   * @param burst most new flows at once after a quiet period (default: one second's worth)
   * @param now the current time in ms
   */
  constructor(perSecond: number, now: number, burst = perSecond) {
    if (!(perSecond > 0)) throw new RangeError('perSecond must be positive');
    this.perSecond = perSecond;
    this.burst = Math.max(1, burst);
    this.#tokens = this.burst;
    this.#last = now;
  }

  /** Takes one token at time `now` (ms); false when the budget is spent. */
  take(now: number): boolean {
    if (now > this.#last) {
      this.#tokens = Math.min(
        this.burst,
        this.#tokens + ((now - this.#last) * this.perSecond) / 1000,
      );
      this.#last = now;
    }
    if (this.#tokens < 1) return false;
    this.#tokens -= 1;
    return true;
  }

  /** Tokens left (for tests and status). */
  get tokens(): number {
    return this.#tokens;
  }
}
