/**
 * Parsers for the bodies of the two hello messages (the octets after the 4-byte handshake
 * header), once `TlsHelloReader` has reassembled them from records. Pure functions over a
 * complete body; they return tagged results and never throw.
 *
 * What a load balancer needs from them:
 * - ClientHello: the SNI (RFC 6066 §3), the legacy session id the client offers to resume
 *   (RFC 5246 §7.4.1.2), whether it carries a session ticket (RFC 5077 §3.2) or a pre-shared key
 *   (RFC 8446 §4.2.11) — both resumption mechanisms that a balancer cannot map to a server — and
 *   the versions it supports (RFC 8446 §4.2.1).
 * - ServerHello: the session id the server assigned and the version it selected (TLS 1.3
 *   selects through supported_versions; its legacy_session_id_echo is the client's value, not a
 *   server-issued session, RFC 8446 §4.1.3 and Appendix D.4).
 */
import {
  EXT_ALPN,
  EXT_PRE_SHARED_KEY,
  EXT_SERVER_NAME,
  EXT_SESSION_TICKET,
  EXT_SUPPORTED_VERSIONS,
  HELLO_RETRY_REQUEST_RANDOM,
  MAX_SESSION_ID_LENGTH,
  RANDOM_LENGTH,
  SNI_HOST_NAME,
  type TlsInvalid,
} from './tls-constants.js';

/** What vpnlb reads from a ClientHello. */
export interface ClientHelloInfo {
  /** legacy_version (0x0303 for TLS 1.2 and 1.3 clients). */
  readonly legacyVersion: number;
  readonly random: Uint8Array;
  /** legacy_session_id: a TLS 1.2 session to resume, or 32 random octets (TLS 1.3 compatibility mode), or empty. */
  readonly sessionId: Uint8Array;
  /** host_name from server_name, when present. */
  readonly serverName?: string;
  /** ALPN protocol names, when present. */
  readonly alpn?: readonly string[];
  /** True when a session_ticket extension is present; `sessionTicketLength > 0` means the client resumes with a ticket. */
  readonly hasSessionTicket: boolean;
  readonly sessionTicketLength: number;
  /** True when pre_shared_key is present (TLS 1.3 resumption). */
  readonly hasPreSharedKey: boolean;
  /** Versions from supported_versions (empty when the extension is absent: a TLS ≤ 1.2 client). */
  readonly supportedVersions: readonly number[];
  /** Highest version offered: max of supported_versions, else legacyVersion. */
  readonly maxVersion: number;
  readonly cipherSuiteCount: number;
  /** Extension types in the order sent. */
  readonly extensions: readonly number[];
}

/** What vpnlb reads from a ServerHello. */
export interface ServerHelloInfo {
  readonly legacyVersion: number;
  /** The session id the server assigned (TLS ≤ 1.2) or echoed (TLS 1.3). */
  readonly sessionId: Uint8Array;
  /** selected_version from supported_versions, else legacyVersion. */
  readonly selectedVersion: number;
  readonly cipherSuite: number;
  /** True for a TLS 1.3 HelloRetryRequest (RFC 8446 §4.1.3). */
  readonly isHelloRetryRequest: boolean;
  readonly extensions: readonly number[];
}

export type HelloParseResult<T> = { readonly kind: 'ok'; readonly value: T } | TlsInvalid;

function malformed(detail: string): TlsInvalid {
  return { kind: 'invalid', code: 'malformed', detail };
}

/** A bounds-checked reader over a body; every read returns undefined past the end. */
class Cursor {
  #at: number;
  constructor(
    readonly bytes: Uint8Array,
    start = 0,
    readonly end = bytes.length,
  ) {
    this.#at = start;
  }
  get at(): number {
    return this.#at;
  }
  get remaining(): number {
    return this.end - this.#at;
  }
  u8(): number | undefined {
    if (this.remaining < 1) return undefined;
    return this.bytes[this.#at++];
  }
  u16(): number | undefined {
    if (this.remaining < 2) return undefined;
    const v = ((this.bytes[this.#at] as number) << 8) | (this.bytes[this.#at + 1] as number);
    this.#at += 2;
    return v;
  }
  take(n: number): Uint8Array | undefined {
    if (n < 0 || this.remaining < n) return undefined;
    const v = this.bytes.subarray(this.#at, this.#at + n);
    this.#at += n;
    return v;
  }
  /** A sub-cursor over a vector with an `lengthBytes`-octet length prefix; advances past it. */
  vector(lengthBytes: 1 | 2): Cursor | undefined {
    const len = lengthBytes === 1 ? this.u8() : this.u16();
    if (len === undefined || this.remaining < len) return undefined;
    const sub = new Cursor(this.bytes, this.#at, this.#at + len);
    this.#at += len;
    return sub;
  }
}

interface Extension {
  readonly type: number;
  readonly data: Cursor;
}

/** RFC 8446 §4.2: extensions<...> of {type(2), opaque data<0..2^16-1>}; no type twice. */
function readExtensions(c: Cursor): Extension[] | TlsInvalid {
  // RFC 5246 §7.4.1.2: a TLS ≤ 1.2 hello may end before the extensions block.
  if (c.remaining === 0) return [];
  const block = c.vector(2);
  if (!block) return malformed('extensions block runs past the end of the hello');
  if (c.remaining !== 0) return malformed(`${c.remaining} octets after the extensions block`);
  const out: Extension[] = [];
  const seen = new Set<number>();
  while (block.remaining > 0) {
    const type = block.u16();
    const data = type === undefined ? undefined : block.vector(2);
    if (type === undefined || !data)
      return malformed('extension header or data runs past the extensions block');
    // RFC 8446 §4.2: "There MUST NOT be more than one extension of the same type".
    if (seen.has(type)) return malformed(`extension ${type} appears twice`);
    seen.add(type);
    out.push({ type, data });
  }
  return out;
}

function readSessionId(c: Cursor): Uint8Array | TlsInvalid {
  const v = c.vector(1);
  if (!v) return malformed('session id runs past the end of the hello');
  if (v.remaining > MAX_SESSION_ID_LENGTH)
    return malformed(`session id of ${v.remaining} octets (max 32)`);
  const id = v.take(v.remaining);
  return id ? new Uint8Array(id) : new Uint8Array(0); // a copy (also of a Buffer, whose slice is a view)
}

/** RFC 6066 §3: server_name_list<1..2^16-1> of {name_type(1), HostName<1..2^16-1>}. */
function readServerName(data: Cursor): string | undefined | TlsInvalid {
  const list = data.vector(2);
  if (!list || list.remaining === 0 || data.remaining !== 0)
    return malformed('server_name list is empty or inconsistent');
  let name: string | undefined;
  while (list.remaining > 0) {
    const type = list.u8();
    const host = list.vector(2);
    if (type === undefined || !host || host.remaining === 0)
      return malformed('server_name entry runs past its list');
    // "The ServerNameList MUST NOT contain more than one name of the same name_type."
    if (type === SNI_HOST_NAME) {
      if (name !== undefined) return malformed('two host_name entries in server_name');
      name = Buffer.from(host.take(host.remaining) ?? []).toString('latin1');
    }
  }
  return name;
}

/** RFC 7301 §3.1: ProtocolNameList protocol_name_list<2..2^16-1> of ProtocolName<1..2^8-1>. */
function readAlpn(data: Cursor): string[] | TlsInvalid {
  const list = data.vector(2);
  if (!list || data.remaining !== 0) return malformed('ALPN list inconsistent');
  const names: string[] = [];
  while (list.remaining > 0) {
    const p = list.vector(1);
    if (!p || p.remaining === 0) return malformed('ALPN protocol name runs past its list');
    names.push(Buffer.from(p.take(p.remaining) ?? []).toString('latin1'));
  }
  return names;
}

/** Parses a ClientHello body (RFC 8446 §4.1.2, RFC 5246 §7.4.1.2). */
export function parseClientHello(body: Uint8Array): HelloParseResult<ClientHelloInfo> {
  const c = new Cursor(body);
  const legacyVersion = c.u16();
  const random = c.take(RANDOM_LENGTH);
  if (legacyVersion === undefined || !random)
    return malformed('ClientHello shorter than version + random');
  const sessionId = readSessionId(c);
  if (!(sessionId instanceof Uint8Array)) return sessionId;
  const suites = c.vector(2);
  // cipher_suites<2..2^16-2>: an even, non-zero number of octets.
  if (!suites || suites.remaining === 0 || suites.remaining % 2 !== 0)
    return malformed('cipher_suites missing, empty or odd-sized');
  const compression = c.vector(1);
  if (!compression || compression.remaining === 0)
    return malformed('compression_methods missing or empty');
  const extensions = readExtensions(c);
  if (!Array.isArray(extensions)) return extensions;

  let serverName: string | undefined;
  let alpn: string[] | undefined;
  let hasSessionTicket = false;
  let sessionTicketLength = 0;
  let hasPreSharedKey = false;
  const supportedVersions: number[] = [];
  for (const ext of extensions) {
    switch (ext.type) {
      case EXT_SERVER_NAME: {
        // RFC 6066 §3: only the server's acknowledgement is empty; a client's carries a name list.
        const n = readServerName(ext.data);
        if (n !== undefined && typeof n !== 'string') return n;
        serverName = n;
        break;
      }
      case EXT_ALPN: {
        const a = readAlpn(ext.data);
        if (!Array.isArray(a)) return a;
        alpn = a;
        break;
      }
      case EXT_SESSION_TICKET:
        // RFC 5077 §3.2: empty = "I support tickets"; non-empty = the ticket being resumed.
        hasSessionTicket = true;
        sessionTicketLength = ext.data.remaining;
        break;
      case EXT_PRE_SHARED_KEY:
        hasPreSharedKey = true;
        break;
      case EXT_SUPPORTED_VERSIONS: {
        // RFC 8446 §4.2.1: ProtocolVersion versions<2..254> in the ClientHello.
        const list = ext.data.vector(1);
        if (!list || list.remaining < 2 || list.remaining % 2 !== 0 || ext.data.remaining !== 0) {
          return malformed('supported_versions list inconsistent');
        }
        while (list.remaining > 0) supportedVersions.push(list.u16() as number);
        break;
      }
      default:
        break;
    }
  }
  // GREASE values (RFC 8701, 0x?a?a) are never the highest real version we care about.
  const real = supportedVersions.filter((v) => (v & 0x0f0f) !== 0x0a0a);
  const maxVersion = real.length > 0 ? Math.max(...real) : legacyVersion;
  return {
    kind: 'ok',
    value: {
      legacyVersion,
      random: new Uint8Array(random), // a copy
      sessionId,
      ...(serverName !== undefined ? { serverName } : {}),
      ...(alpn !== undefined ? { alpn } : {}),
      hasSessionTicket,
      sessionTicketLength,
      hasPreSharedKey,
      supportedVersions,
      maxVersion,
      cipherSuiteCount: suites.remaining / 2,
      extensions: extensions.map((e) => e.type),
    },
  };
}

/** Parses a ServerHello body (RFC 8446 §4.1.3, RFC 5246 §7.4.1.3). */
export function parseServerHello(body: Uint8Array): HelloParseResult<ServerHelloInfo> {
  const c = new Cursor(body);
  const legacyVersion = c.u16();
  const random = c.take(RANDOM_LENGTH);
  if (legacyVersion === undefined || !random)
    return malformed('ServerHello shorter than version + random');
  const sessionId = readSessionId(c);
  if (!(sessionId instanceof Uint8Array)) return sessionId;
  const cipherSuite = c.u16();
  const compression = c.u8();
  if (cipherSuite === undefined || compression === undefined)
    return malformed('ServerHello ends before cipher_suite / compression_method');
  const extensions = readExtensions(c);
  if (!Array.isArray(extensions)) return extensions;
  let selectedVersion = legacyVersion;
  for (const ext of extensions) {
    if (ext.type === EXT_SUPPORTED_VERSIONS) {
      // RFC 8446 §4.2.1: the ServerHello carries one selected_version.
      const v = ext.data.u16();
      if (v === undefined || ext.data.remaining !== 0)
        return malformed('ServerHello supported_versions is not one version');
      selectedVersion = v;
    }
  }
  const isHelloRetryRequest = Buffer.from(random).equals(HELLO_RETRY_REQUEST_RANDOM);
  return {
    kind: 'ok',
    value: {
      legacyVersion,
      sessionId,
      selectedVersion,
      cipherSuite,
      isHelloRetryRequest,
      extensions: extensions.map((e) => e.type),
    },
  };
}
