/**
 * The SNAT pool of the userspace relay (full NAT): which local source address the relay uses
 * towards a backend for a given client session.
 *
 * Why: a VPN server limits the IKE SAs it accepts from one source address (Windows RRAS:
 * IKEEXT `IkeNumEstablishedForInitialQuery`; strongSwan: `charon.block_threshold`). Behind full
 * NAT every client comes from the balancer's address, so under load new clients fail with
 * error 809 (DESIGN.md §1). Spreading sessions over several source addresses, with at most
 * `maxPerPair` concurrent sessions per (source address, backend) pair, keeps each address below
 * the server's limit.
 *
 * A lease is taken per (session, backend) — a session is one IKE SA (affinity ike-spi) or one
 * client address (affinity source-ip) — and reference-counted by the flows that use it (the IKE
 * flow on 500, the IKE/ESP flow on 4500 from another source port): it is released when the last
 * of them expires.
 */
import { isIP } from 'node:net';

/** One session's use of a source address towards a backend. */
export interface SnatLease {
  /** Local source address; undefined = the relay's default (no pool configured). */
  readonly address: string | undefined;
  readonly backend: string;
  readonly session: string;
  /** Flows using the lease (mutable; managed by the pool). */
  refs: number;
}

/** Current use of one (address, backend) pair. */
export interface SnatPairUsage {
  readonly address: string;
  readonly backend: string;
  readonly sessions: number;
}

export class SnatPool {
  // Immutable configuration.
  readonly #addresses4: readonly string[];
  readonly #addresses6: readonly string[];
  readonly maxPerPair: number;
  readonly isPool: boolean;
  // Mutable state.
  readonly #leases = new Map<string, SnatLease>();
  /** Sessions per `address|backend`. */
  readonly #pairs = new Map<string, number>();

  /**
   * @param addresses the pool (undefined or empty: one source address, the relay's default,
   *   without a cap — what plain full NAT does)
   * @param maxPerPair most concurrent sessions per (address, backend) pair
   */
  constructor(addresses: readonly string[] | undefined, maxPerPair: number) {
    const list = addresses ?? [];
    this.#addresses4 = list.filter((a) => isIP(a) === 4);
    this.#addresses6 = list.filter((a) => isIP(a) === 6);
    this.maxPerPair = maxPerPair;
    this.isPool = list.length > 0;
  }

  /** Number of leases held (sessions with at least one flow). */
  get size(): number {
    return this.#leases.size;
  }

  /**
   * Takes (or shares) the lease of `session` towards `backend`. Returns undefined when every
   * address of the backend's family is at the cap for that backend (or the pool has no address
   * of that family): the caller refuses the new flow.
   */
  acquire(session: string, backend: string, family: 4 | 6): SnatLease | undefined {
    const key = `${session}\u0000${backend}`;
    const existing = this.#leases.get(key);
    if (existing !== undefined) {
      existing.refs++;
      return existing;
    }
    let address: string | undefined;
    if (this.isPool) {
      // Least-used address for this backend, first in configuration order on ties: spreads
      // sessions evenly, so no address approaches the server's limit before the others.
      let best = -1;
      let bestCount = Infinity;
      const candidates = family === 6 ? this.#addresses6 : this.#addresses4;
      for (let i = 0; i < candidates.length; i++) {
        const n = this.#pairs.get(`${candidates[i]}\u0000${backend}`) ?? 0;
        if (n < this.maxPerPair && n < bestCount) {
          best = i;
          bestCount = n;
        }
      }
      if (best < 0) return undefined;
      address = candidates[best];
    }
    const lease: SnatLease = { address, backend, session, refs: 1 };
    this.#leases.set(key, lease);
    if (address !== undefined) {
      const pair = `${address}\u0000${backend}`;
      this.#pairs.set(pair, (this.#pairs.get(pair) ?? 0) + 1);
    }
    return lease;
  }

  /** Drops one reference; the pair's slot is freed with the last one. */
  release(lease: SnatLease): void {
    if (lease.refs <= 0) return;
    lease.refs--;
    if (lease.refs > 0) return;
    this.#leases.delete(`${lease.session}\u0000${lease.backend}`);
    if (lease.address !== undefined) {
      const pair = `${lease.address}\u0000${lease.backend}`;
      const n = (this.#pairs.get(pair) ?? 1) - 1;
      if (n <= 0) this.#pairs.delete(pair);
      else this.#pairs.set(pair, n);
    }
  }

  /** Sessions currently held on `address` towards `backend`. */
  sessions(address: string, backend: string): number {
    return this.#pairs.get(`${address}\u0000${backend}`) ?? 0;
  }

  /** Every pair in use. */
  usage(): SnatPairUsage[] {
    return [...this.#pairs].map(([pair, sessions]) => {
      const [address = '', backend = ''] = pair.split('\u0000');
      return { address, backend, sessions };
    });
  }
}
