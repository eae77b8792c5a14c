/**
 * Token buckets per source address, for the rate limits that must be fair between clients: the
 * relay's new IKEv2 flows and the SSTP proxy's new connections.
 *
 * Why: one bucket per service lets a single source take the whole budget. Measured before
 * (issue 11): one source at ~490 new flows/s against a budget of 20/s left a second client 0 of
 * 9 handshake retries through, in 3 of 3 runs. With a bucket per source in front of the
 * service's, a flooding source is held to its own rate and the rest of the budget stays for the
 * others.
 *
 * Memory is bounded: at most `maxSources` buckets. When a new source arrives at a full table the
 * oldest bucket is forgotten (a forgotten source starts again with a full bucket, which gives a
 * flooder no more than one burst per `maxSources` other sources: a flood from that many addresses
 * is a volumetric attack, which the service-wide budget and upstream filtering answer).
 */
import { NewFlowBudget } from './relay-new-flow-budget.js';

export interface SourceRateLimiterOptions {
  /** Sustained events per second per source. */
  readonly perSecond: number;
  /** Most events at once from a quiet source (default: one second's worth, at least 1). */
  readonly burst?: number;
  /** Most sources tracked at once (default 65,536). */
  readonly maxSources?: number;
}

export const DEFAULT_MAX_SOURCES = 65_536;

export class SourceRateLimiter {
  // Immutable configuration.
  readonly perSecond: number;
  readonly burst: number;
  readonly maxSources: number;
  // Mutable: one bucket per recently seen source, oldest first (Map insertion order).
  readonly #buckets = new Map<string, NewFlowBudget>();

  constructor(options: SourceRateLimiterOptions) {
    if (!(options.perSecond > 0)) throw new RangeError('perSecond must be positive');
    this.perSecond = options.perSecond;
    this.burst = Math.max(1, options.burst ?? options.perSecond);
    this.maxSources = Math.max(1, options.maxSources ?? DEFAULT_MAX_SOURCES);
  }

  /** Takes one token from `source`'s bucket at time `now` (ms); false when that source's rate is spent. */
  take(source: string, now: number): boolean {
    let bucket = this.#buckets.get(source);
    if (bucket === undefined) {
      if (this.#buckets.size >= this.maxSources) {
        const oldest = this.#buckets.keys().next().value as string;
        this.#buckets.delete(oldest);
      }
      bucket = new NewFlowBudget(this.perSecond, now, this.burst);
      this.#buckets.set(source, bucket);
    }
    return bucket.take(now);
  }

  /** Sources tracked now (status, tests). */
  get size(): number {
    return this.#buckets.size;
  }
}
