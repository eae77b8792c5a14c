/**
 * A bounded table of idle-expiring entries: the userspace relay's flows (client address:port ↔
 * backend + upstream socket), its affinity sessions (IKE SPI or client IP ↔ backend) and its
 * client-IP pins all live in one of these.
 *
 * Memory is bounded by `maxEntries`: a flood of new source ports cannot grow it. When the table
 * is full, room is made with the second-chance ("CLOCK") algorithm, scanning at most
 * `scanLimit` entries from the oldest:
 * - an entry idle for longer than `idleTimeout` is removed (`idle`);
 * - an entry used since the hand last passed it (`referenced`) gets a second chance: the flag
 *   is cleared and it moves to the back;
 * - otherwise it is evicted (`evicted`).
 * New entries start unreferenced, so a flood of one-packet flows evicts itself while flows that
 * carry traffic (every packet sets `referenced`) survive. When the scan finds nothing to remove,
 * the insertion is refused and the caller drops the packet: the work per new flow is bounded.
 */

import { MONOTONIC_CLOCK, type Clock } from '../../util/clock.js';

/**
 * A clock read on every datagram without a system call: it returns the time of its last
 * `refresh()`, which its owner calls from a timer and where it does per-flow work anyway.
 * Idle timeouts are seconds to hours, so a reading up to one refresh period old is exact enough
 * (a flow may look that much older than it is), and a clock read per datagram is saved.
 */
export class CoarseClock implements Clock {
  readonly #source: Clock;
  #now: number;

  constructor(source: Clock = MONOTONIC_CLOCK) {
    this.#source = source;
    this.#now = source.now();
  }

  now(): number {
    return this.#now;
  }

  /** Reads the source clock; returns the new time. */
  refresh(): number {
    this.#now = this.#source.now();
    return this.#now;
  }
}

/** The fields the table manages on each entry; the owner sets them on every packet. */
export interface TableEntry {
  /** Time of the last packet (ms, from the table's clock). */
  lastSeen: number;
  /** Set on every use; cleared by the eviction hand (second chance). */
  referenced: boolean;
}

/** Why an entry left the table. */
export type RemovalReason = 'idle' | 'evicted' | 'flushed' | 'stopped' | 'error';

/** Keys a table accepts: strings, or numbers (the relay's allocation-free flow keys). */
export type TableKey = string | number;

export interface FlowTableOptions<V extends TableEntry, K extends TableKey = string> {
  /** Most entries held; insertions beyond it evict or are refused. */
  readonly maxEntries: number;
  /** An entry unused for this long (ms) is removed by `sweep` and preferred for eviction. */
  readonly idleTimeout: number;
  readonly clock?: Clock;
  /** Most entries examined to make room for one insertion (bounds the work per new flow). */
  readonly scanLimit?: number;
  /** Called once for every entry that leaves the table, whatever the reason. */
  readonly onRemove?: (key: K, entry: V, reason: RemovalReason) => void;
}

/** Bounded map of idle-expiring entries with second-chance eviction. */
export class FlowTable<V extends TableEntry, K extends TableKey = string> {
  // Immutable configuration.
  readonly maxEntries: number;
  readonly idleTimeout: number;
  readonly #clock: Clock;
  readonly #scanLimit: number;
  readonly #onRemove: ((key: K, entry: V, reason: RemovalReason) => void) | undefined;
  // Mutable state: Map iteration order is insertion order, which is the CLOCK hand's order.
  readonly #map = new Map<K, V>();

  constructor(options: FlowTableOptions<V, K>) {
    if (!(options.maxEntries >= 1)) throw new RangeError('maxEntries must be at least 1');
    this.maxEntries = options.maxEntries;
    this.idleTimeout = options.idleTimeout;
    this.#clock = options.clock ?? MONOTONIC_CLOCK;
    this.#scanLimit = Math.max(1, options.scanLimit ?? 32);
    this.#onRemove = options.onRemove;
  }

  get size(): number {
    return this.#map.size;
  }

  /** The entry under `key` (no side effect: the caller marks use by setting its fields). */
  get(key: K): V | undefined {
    return this.#map.get(key);
  }

  /** Marks an entry used now. */
  touch(entry: V): void {
    entry.lastSeen = this.#clock.now();
    entry.referenced = true;
  }

  /**
   * Inserts a new entry (unreferenced, seen now). Returns false, and inserts nothing, when the
   * table is full and no entry could be removed within the scan limit.
   */
  insert(key: K, entry: V): boolean {
    const existing = this.#map.get(key);
    if (existing !== undefined) this.delete(key, 'flushed');
    if (this.#map.size >= this.maxEntries && !this.#makeRoom()) return false;
    entry.lastSeen = this.#clock.now();
    entry.referenced = false;
    this.#map.set(key, entry);
    return true;
  }

  /** Removes `key`; returns whether it was present. */
  delete(key: K, reason: RemovalReason): boolean {
    const entry = this.#map.get(key);
    if (entry === undefined) return false;
    this.#map.delete(key);
    this.#onRemove?.(key, entry, reason);
    return true;
  }

  /** Removes every entry idle for longer than `idleTimeout`; returns how many. */
  sweep(): number {
    const deadline = this.#clock.now() - this.idleTimeout;
    let removed = 0;
    for (const [key, entry] of this.#map) {
      if (entry.lastSeen <= deadline) {
        this.delete(key, 'idle');
        removed++;
      }
    }
    return removed;
  }

  /** Removes every entry matching `predicate`; returns how many. */
  removeWhere(predicate: (entry: V, key: K) => boolean, reason: RemovalReason): number {
    let removed = 0;
    for (const [key, entry] of this.#map) {
      if (predicate(entry, key)) {
        this.delete(key, reason);
        removed++;
      }
    }
    return removed;
  }

  /** Removes everything. */
  clear(reason: RemovalReason): void {
    for (const key of [...this.#map.keys()]) this.delete(key, reason);
  }

  entries(): IterableIterator<[K, V]> {
    return this.#map.entries();
  }

  values(): IterableIterator<V> {
    return this.#map.values();
  }

  /** One bounded pass of the CLOCK hand; true when an entry was removed. */
  #makeRoom(): boolean {
    const deadline = this.#clock.now() - this.idleTimeout;
    let scanned = 0;
    for (const [key, entry] of this.#map) {
      if (scanned++ >= this.#scanLimit) break;
      if (entry.lastSeen <= deadline) {
        this.delete(key, 'idle');
        return true;
      }
      if (!entry.referenced) {
        this.delete(key, 'evicted');
        return true;
      }
      // Second chance: clear the flag and move to the back (delete + set re-inserts last).
      entry.referenced = false;
      this.#map.delete(key);
      this.#map.set(key, entry);
    }
    return false;
  }
}
