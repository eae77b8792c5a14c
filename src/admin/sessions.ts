/**
 * Dashboard sessions: a browser logs in once with a token and then carries a random session id
 * in a cookie (`HttpOnly`, `SameSite=Strict`, `Secure` with TLS); every state change it makes
 * must also send the session's CSRF token in a header, which another site's page can neither
 * read nor guess (OWASP CSRF cheat sheet: synchronizer token pattern). One-time login tickets
 * let `vpnlb demo` print a URL that logs its reader in without showing a token.
 */
import { randomBytes } from 'node:crypto';
import type { AdminRole } from './credentials.js';

export interface Session {
  readonly id: string;
  readonly role: AdminRole;
  readonly csrf: string;
  readonly expiresAt: number;
}

/** Most live sessions (a login flood must not grow memory without bound). */
const MAX_SESSIONS = 1_000;
/** A ticket is good for one use within this time. */
const TICKET_TTL_MS = 10 * 60_000;

export class SessionStore {
  readonly #ttlMs: number;
  readonly #now: () => number;
  readonly #sessions = new Map<string, Session>();
  readonly #tickets = new Map<string, { role: AdminRole; expiresAt: number }>();

  constructor(ttlMs: number, now: () => number = Date.now) {
    this.#ttlMs = ttlMs;
    this.#now = now;
  }

  create(role: AdminRole): Session {
    this.#sweep();
    if (this.#sessions.size >= MAX_SESSIONS) {
      // Evict the oldest (Map iteration order is insertion order).
      const oldest = this.#sessions.keys().next().value;
      if (oldest !== undefined) this.#sessions.delete(oldest);
    }
    const s: Session = {
      id: randomId(),
      role,
      csrf: randomId(),
      expiresAt: this.#now() + this.#ttlMs,
    };
    this.#sessions.set(s.id, s);
    return s;
  }

  get(id: string | undefined): Session | undefined {
    if (id === undefined) return undefined;
    const s = this.#sessions.get(id);
    if (s && s.expiresAt <= this.#now()) {
      this.#sessions.delete(id);
      return undefined;
    }
    return s;
  }

  delete(id: string): void {
    this.#sessions.delete(id);
  }

  get ttlMs(): number {
    return this.#ttlMs;
  }

  /** A single-use login ticket for `role`. */
  issueTicket(role: AdminRole): string {
    this.#sweep();
    const t = randomId();
    this.#tickets.set(t, { role, expiresAt: this.#now() + TICKET_TTL_MS });
    return t;
  }

  /** Consumes a ticket: a session when it was valid, else undefined. */
  redeemTicket(ticket: string): Session | undefined {
    const t = this.#tickets.get(ticket);
    this.#tickets.delete(ticket);
    if (!t || t.expiresAt <= this.#now()) return undefined;
    return this.create(t.role);
  }

  #sweep(): void {
    const now = this.#now();
    for (const [id, s] of this.#sessions) if (s.expiresAt <= now) this.#sessions.delete(id);
    for (const [id, t] of this.#tickets) if (t.expiresAt <= now) this.#tickets.delete(id);
  }
}

function randomId(): string {
  return randomBytes(24).toString('base64url');
}
