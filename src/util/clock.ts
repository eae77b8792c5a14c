/**
 * The one clock interface. Every duration vpnlb measures (flow idle timeouts, drop-log windows,
 * probe intervals) is read from a monotonic source, like the native addons' CLOCK_MONOTONIC: a
 * wall-clock step (NTP, an administrator's `date -s`) must not expire every flow at once or keep
 * a dead one forever. Injected so that tests can drive time.
 */

/** Milliseconds on a monotonic scale (only differences mean something). */
export interface Clock {
  now(): number;
}

/** A clock that also schedules (the health checker's timers). */
export interface TimerClock extends Clock {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

/** The process's monotonic clock (`performance.now()`). */
export const MONOTONIC_CLOCK: Clock = { now: () => performance.now() };

/** The monotonic clock with the real timers. */
export const REAL_TIMER_CLOCK: TimerClock = {
  now: () => performance.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout),
};
