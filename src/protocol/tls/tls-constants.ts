/**
 * TLS protocol constants used by the hello parsers (RFC 8446, RFC 5246, RFC 6066, RFC 5077),
 * and the closed set of reasons the parsers give for rejecting input. Metrics label by these
 * codes, so they are part of the public contract: add codes at the end, never rename one.
 */

/** RFC 8446 §5.1 ContentType. */
export const CONTENT_TYPE_CHANGE_CIPHER_SPEC = 20;
export const CONTENT_TYPE_ALERT = 21;
export const CONTENT_TYPE_HANDSHAKE = 22;
export const CONTENT_TYPE_APPLICATION_DATA = 23;

/** RFC 8446 §5.1: a record header is type (1) + legacy_record_version (2) + length (2). */
export const RECORD_HEADER_LENGTH = 5;
/**
 * RFC 8446 §5.1: "The length MUST NOT exceed 2^14 bytes" for plaintext; RFC 5246 §6.2.3 allows
 * compressed/protected records up to 2^14 + 2048. The hellos are plaintext, but we accept the
 * larger bound so that no peer a real server accepts is refused here.
 */
export const MAX_RECORD_LENGTH = 16_384 + 2_048;

/** RFC 8446 §4 HandshakeType. */
export const HANDSHAKE_CLIENT_HELLO = 1;
export const HANDSHAKE_SERVER_HELLO = 2;
/** RFC 8446 §4: a handshake header is msg_type (1) + length (3). */
export const HANDSHAKE_HEADER_LENGTH = 4;

/**
 * The largest hello vpnlb buffers (message body, without the 4-byte handshake header). Real
 * ClientHellos are a few hundred octets (post-quantum key shares bring them near 2 KiB); 64 KiB
 * leaves room for any legitimate one while bounding what a hostile client can make us hold.
 */
export const MAX_HELLO_LENGTH = 65_536;

/** RFC 8446 §4.1.2 / RFC 5246 §7.4.1.2: legacy_session_id<0..32>. */
export const MAX_SESSION_ID_LENGTH = 32;
/** The `random` field of both hellos. */
export const RANDOM_LENGTH = 32;

/** Extension numbers (IANA "TLS ExtensionType Values"). */
export const EXT_SERVER_NAME = 0; // RFC 6066 §3
export const EXT_ALPN = 16; // RFC 7301
export const EXT_SESSION_TICKET = 35; // RFC 5077 §3.2
export const EXT_PRE_SHARED_KEY = 41; // RFC 8446 §4.2.11
export const EXT_SUPPORTED_VERSIONS = 43; // RFC 8446 §4.2.1

/** RFC 6066 §3 NameType host_name. */
export const SNI_HOST_NAME = 0;

/** Protocol versions as they appear on the wire. */
export const TLS_1_0 = 0x0301;
export const TLS_1_1 = 0x0302;
export const TLS_1_2 = 0x0303;
export const TLS_1_3 = 0x0304;

/**
 * RFC 8446 §4.1.3: a ServerHello whose random is this value is a HelloRetryRequest
 * (SHA-256 of "HelloRetryRequest").
 */
export const HELLO_RETRY_REQUEST_RANDOM = Uint8Array.from(
  Buffer.from('cf21ad74e59a6111be1d8c021e65b891c2a211167abb8c5e079e09e2c8a8339c', 'hex'),
);

/**
 * Why a hello parser rejected its input.
 * - `not-tls`: the first record's type is not handshake or its version's major is not 3 (plain
 *   HTTP, SSH, SSLv2-compatible hello, random bytes).
 * - `bad-record`: a record length of 0 or above `MAX_RECORD_LENGTH`, or a later record that is
 *   not a handshake record while the hello is incomplete (RFC 8446 §5.1: handshake messages
 *   may only be interleaved with other handshake records).
 * - `alert`: the peer sent an alert instead of a hello.
 * - `unexpected-message`: the first handshake message is not the expected hello.
 * - `too-large`: the hello announces more than `MAX_HELLO_LENGTH` octets.
 * - `malformed`: the hello's structure is inconsistent (a vector running past its end, a
 *   session id longer than 32, a duplicated extension, bad SNI or supported_versions).
 * - `truncated`: the stream ended before the hello was complete.
 */
export const TLS_INVALID_CODES = [
  'not-tls',
  'bad-record',
  'alert',
  'unexpected-message',
  'too-large',
  'malformed',
  'truncated',
] as const;

export type TlsInvalidCode = (typeof TLS_INVALID_CODES)[number];

/** A rejection: the code and, for logs, a short description of what was wrong. */
export interface TlsInvalid {
  readonly kind: 'invalid';
  readonly code: TlsInvalidCode;
  readonly detail: string;
}

/** Names a version for logs: `TLS 1.2`, or the hex value when unknown. */
export function tlsVersionName(version: number): string {
  switch (version) {
    case TLS_1_0:
      return 'TLS 1.0';
    case TLS_1_1:
      return 'TLS 1.1';
    case TLS_1_2:
      return 'TLS 1.2';
    case TLS_1_3:
      return 'TLS 1.3';
    default:
      return `0x${version.toString(16).padStart(4, '0')}`;
  }
}
