/**
 * Admin credentials: the operator token and the optional read-only token, each kept in a
 * root-only file that vpnlb creates at first start (32 random bytes, base64url, mode 0600 in a
 * 0700 directory) — the way HAProxy protects its stats socket and strongSwan its secrets.
 * Tokens are compared in constant time through their SHA-256 digests, so neither the length
 * nor a common prefix leaks through timing.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { VpnlbError } from '../errors.js';

/** `read-only`: status, metrics, which, events. `operator`: also drain/disable/enable and reload. */
export type AdminRole = 'read-only' | 'operator';

/** A token needs this many characters at least (a generated one has 43). */
export const MIN_TOKEN_LENGTH = 16;

export function generateToken(): string {
  return randomBytes(32).toString('base64url');
}

export class AdminCredentials {
  readonly #digests: readonly { role: AdminRole; digest: Buffer }[];

  constructor(tokens: { operator: string; readOnly?: string }) {
    const list: { role: AdminRole; digest: Buffer }[] = [
      { role: 'operator', digest: digest(tokens.operator) },
    ];
    if (tokens.readOnly !== undefined)
      list.push({ role: 'read-only', digest: digest(tokens.readOnly) });
    this.#digests = list;
  }

  /** In-memory tokens nobody wrote down (the demo logs in with a one-time ticket instead). */
  static ephemeral(): AdminCredentials {
    return new AdminCredentials({ operator: generateToken() });
  }

  /** The role a presented token grants, or undefined. Every entry is compared (constant time). */
  roleOf(token: string): AdminRole | undefined {
    const d = digest(token);
    let role: AdminRole | undefined;
    for (const e of this.#digests)
      if (timingSafeEqual(d, e.digest) && role === undefined) role = e.role;
    return role;
  }
}

function digest(token: string): Buffer {
  return createHash('sha256').update(token, 'utf8').digest();
}

/** What `loadOrCreateToken` found. */
export interface TokenFile {
  readonly token: string;
  readonly created: boolean;
  /** Set when the file can be read by other users than its owner. */
  readonly warning?: string;
}

/**
 * Reads the token in `file`, or creates the file with a new token when it does not exist.
 * Creation is exclusive (`wx`): of two processes starting at once, the second reads the first's.
 */
export function loadOrCreateToken(file: string): TokenFile {
  try {
    return readToken(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw tokenError(file, err);
  }
  try {
    mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
    writeFileSync(file, `${generateToken()}\n`, { mode: 0o600, flag: 'wx' });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw tokenError(file, err);
    return readToken(file);
  }
  return { ...readToken(file), created: true };
}

function readToken(file: string): TokenFile {
  const token = readFileSync(file, 'utf8').trim();
  if (token.length < MIN_TOKEN_LENGTH || /\s/.test(token)) {
    throw new VpnlbError(
      'VPNLB_ADMIN_TOKEN_FILE',
      `admin token file ${file}: expected one token of at least ${MIN_TOKEN_LENGTH} characters without spaces (delete the file to have a new one generated)`,
      'client',
    );
  }
  const mode = statSync(file).mode & 0o777;
  return {
    token,
    created: false,
    ...(mode & 0o077
      ? {
          warning: `admin token file ${file} is readable by other users (mode ${mode.toString(8)}): chmod 600 it`,
        }
      : {}),
  };
}

function tokenError(file: string, err: unknown): VpnlbError {
  if (err instanceof VpnlbError) return err;
  const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
  return new VpnlbError(
    'VPNLB_ADMIN_TOKEN_FILE',
    `admin token file ${file}: ${code} (run as root, or set admin.tokenFile to a file this user may create)`,
    'internal',
    { cause: err },
  );
}
