/**
 * Rise/fall thresholds as counts of consecutive results (what HAProxy, F5 and Pingora do):
 * `rise` successes in a row turn a down backend up, `fall` failures in a row turn an up backend
 * down; any opposite result resets the streak, so a flapping server (alternating results) never
 * changes state.
 *
 * The first verdict, from `unknown`, takes a single result. At start every monitored backend is
 * treated as up until proven otherwise (controller.ts), so waiting `fall` results would send
 * clients to a dead server for `fall × interval` after every restart of vpnlb; one result ends
 * that window at the first probe. A live server that fails its very first probe by accident is
 * then down for `rise` probes — the cheaper mistake.
 */

/** The verdict of a threshold: `unknown` until the first result. */
export type Verdict = 'unknown' | 'up' | 'down';

/** What one recorded result did. */
export interface ThresholdStep {
  /** Verdict before this result. */
  readonly from: Verdict;
  /** Verdict after this result. */
  readonly verdict: Verdict;
  /** True when this result changed the verdict. */
  readonly changed: boolean;
  /** Length of the current streak of identical results (this one included). */
  readonly streak: number;
}

/** Consecutive-count thresholds for one backend. */
export class Thresholds {
  readonly rise: number;
  readonly fall: number;
  #verdict: Verdict = 'unknown';
  #streak = 0;
  #lastOk: boolean | undefined;

  /**
   * `initial`: the verdict already known (a configuration reload restarts the monitors; a
   * backend known up must still fail `fall` probes before it goes down, not one).
   */
  constructor(rise: number, fall: number, initial: Verdict = 'unknown') {
    if (!Number.isInteger(rise) || rise < 1 || !Number.isInteger(fall) || fall < 1) {
      throw new RangeError(`rise and fall must be integers >= 1 (got ${rise}, ${fall})`);
    }
    this.rise = rise;
    this.fall = fall;
    this.#verdict = initial;
  }

  get verdict(): Verdict {
    return this.#verdict;
  }

  /** Records one probe result. */
  record(ok: boolean): ThresholdStep {
    this.#streak = this.#lastOk === ok ? this.#streak + 1 : 1;
    this.#lastOk = ok;
    const before = this.#verdict;
    if (before === 'unknown') this.#verdict = ok ? 'up' : 'down';
    else if (before === 'down' && ok && this.#streak >= this.rise) this.#verdict = 'up';
    else if (before === 'up' && !ok && this.#streak >= this.fall) this.#verdict = 'down';
    return {
      from: before,
      verdict: this.#verdict,
      changed: this.#verdict !== before,
      streak: this.#streak,
    };
  }
}
