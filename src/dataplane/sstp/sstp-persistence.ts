/**
 * SSTP persistence tables: which backend a returning client should reach.
 *
 * - TLS session ids (TLS ≤ 1.2): learned from the ServerHello of each passthrough connection
 *   (RFC 5246 §7.4.1.3: the server's session_id is the identity of the session it will resume);
 *   a ClientHello offering that id in legacy_session_id goes back to the server that issued it,
 *   which is the only one able to resume it.
 * - Client addresses: the fallback where the session cannot be identified — TLS 1.3 resumes
 *   with tickets carried inside pre_shared_key (RFC 8446 §4.2.11) and TLS 1.2 with session
 *   tickets (RFC 5077), both opaque to a balancer.
 *
 * Entries expire `timeout` ms after their last use; each table is bounded (oldest evicted
 * first: a Map keeps insertion order, and a refreshed entry is re-inserted at the end).
 */

export class PersistenceTable {
  // Immutable.
  readonly #timeout: number;
  readonly #maxEntries: number;
  readonly #now: () => number;
  // Mutable: key → backend name and expiry (ms since epoch), oldest first.
  readonly #entries = new Map<string, { backend: string; expires: number }>();

  /** Told of every entry learned here (not of replicas): worker processes share what they learn. */
  readonly #onLearn: ((key: string, backend: string) => void) | undefined;

  constructor(options: {
    timeout: number;
    maxEntries?: number;
    now?: () => number;
    onLearn?: (key: string, backend: string) => void;
  }) {
    this.#timeout = options.timeout;
    this.#maxEntries = options.maxEntries ?? 100_000;
    this.#now = options.now ?? Date.now;
    this.#onLearn = options.onLearn;
  }

  get size(): number {
    return this.#entries.size;
  }

  /** The backend remembered for `key`, refreshing its expiry; undefined when absent or expired. */
  get(key: string): string | undefined {
    const e = this.#entries.get(key);
    if (!e) return undefined;
    const now = this.#now();
    this.#entries.delete(key);
    if (e.expires <= now) return undefined;
    e.expires = now + this.#timeout;
    this.#entries.set(key, e);
    return e.backend;
  }

  /** Remembers `key` → `backend`. */
  set(key: string, backend: string): void {
    if (this.#timeout <= 0) return;
    const had = this.#entries.get(key)?.backend;
    this.learnReplica(key, backend);
    if (had !== backend) this.#onLearn?.(key, backend);
  }

  /** Remembers an entry another process learned (not reported back through `onLearn`). */
  learnReplica(key: string, backend: string): void {
    if (this.#timeout <= 0) return;
    this.#entries.delete(key);
    this.#entries.set(key, { backend, expires: this.#now() + this.#timeout });
    this.#evict();
  }

  /** Live entries, oldest first (a new worker process starts with them). */
  entries(): [string, string][] {
    const now = this.#now();
    const out: [string, string][] = [];
    for (const [k, e] of this.#entries) if (e.expires > now) out.push([k, e.backend]);
    return out;
  }

  /** Forgets every entry pointing at `backend` (removed from the configuration). */
  forgetBackend(backend: string): void {
    for (const [k, e] of this.#entries) if (e.backend === backend) this.#entries.delete(k);
  }

  /** Drops expired entries and keeps the table within its bound. */
  #evict(): void {
    const now = this.#now();
    for (const [k, e] of this.#entries) {
      if (this.#entries.size <= this.#maxEntries && e.expires > now) break;
      this.#entries.delete(k);
    }
  }
}
