/**
 * The IKEv2 header (RFC 7296 §3.1): a data-plane parser that never throws, reads at most the
 * 28 header octets, and returns a tagged result.
 *
 *                      1                   2                   3
 *  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |                       IKE SA Initiator's SPI                  |
 * |                                                               |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |                       IKE SA Responder's SPI                  |
 * |                                                               |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |  Next Payload | MjVer | MnVer | Exchange Type |     Flags     |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |                          Message ID                           |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |                            Length                             |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 */
import {
  IKE_EXCHANGE,
  IKE_FLAG,
  IKE_HEADER_LENGTH,
  IKE_MAJOR_VERSION,
  IKE_MAX_MESSAGE_LENGTH,
  IKE_MIN_EXCHANGE_TYPE,
  exchangeName,
  type IkeExchangeName,
} from './constants.js';
import { isZeroRange, readU32, readU64 } from './bytes.js';
import { IKE_HEADER_INVALID_CODES, type IkeHeaderInvalidCode } from './parse-codes.js';
import type { IkeParseStats } from './parse-stats.js';

/** A decoded, validated IKEv2 header. */
export interface IkeHeader {
  /** Initiator's SPI (never 0). */
  readonly spiI: bigint;
  /** Responder's SPI (0 in an IKE_SA_INIT request and in stateless IKE_SA_INIT replies). */
  readonly spiR: bigint;
  /** Type of the first payload (0 = none). */
  readonly nextPayload: number;
  /** Always 2 in an accepted header. */
  readonly majorVersion: number;
  /** RFC 7296 §3.1: sent as 0, ignored on receipt; reported as received. */
  readonly minorVersion: number;
  /** Raw exchange type (34–255). */
  readonly exchangeType: number;
  /** Name of a known exchange type; undefined for one vpnlb does not know (still accepted). */
  readonly exchange: IkeExchangeName | undefined;
  /** Raw flags octet, reserved bits included. */
  readonly flags: number;
  /** I flag: sent by the original initiator of the IKE SA. */
  readonly isInitiator: boolean;
  /** R flag: this message is a response. */
  readonly isResponse: boolean;
  /** V flag: the sender can speak a higher major version. */
  readonly hasHigherVersion: boolean;
  /** Message ID (unsigned 32-bit). */
  readonly messageId: number;
  /** Length field: the whole message, header included (28–65527). */
  readonly length: number;
}

/** A complete, valid header. */
export interface IkeHeaderOk {
  readonly kind: 'ok';
  readonly header: IkeHeader;
}
/** More input is needed (stream reading only): at least `needed` more octets. */
export interface IkeNeedMore {
  readonly kind: 'need-more';
  readonly needed: number;
}
/** The input is not an acceptable IKEv2 message; `code` says why. */
export interface IkeHeaderInvalid {
  readonly kind: 'invalid';
  readonly code: IkeHeaderInvalidCode;
}

/** Result of reading an IKE header from a stream or a datagram. */
export type IkeParseResult = IkeHeaderOk | IkeNeedMore | IkeHeaderInvalid;
/** Result of parsing a whole datagram: never `need-more` (a datagram does not grow). */
export type IkeHeaderResult = IkeHeaderOk | IkeHeaderInvalid;

// One frozen object per code: rejecting garbage allocates nothing.
const INVALID = Object.fromEntries(
  IKE_HEADER_INVALID_CODES.map((code) => [code, Object.freeze({ kind: 'invalid', code })]),
) as unknown as Record<IkeHeaderInvalidCode, IkeHeaderInvalid>;

/** The shared rejection object for `code` (frozen). */
export function ikeHeaderInvalid(code: IkeHeaderInvalidCode): IkeHeaderInvalid {
  return INVALID[code];
}

/**
 * Decodes and validates the 28-octet header at the start of `bytes`, without requiring that
 * `bytes` hold the whole message (the stream reader validates a header before its body
 * arrives). Checks run in a fixed order, so a header with several faults always gets the same
 * code: version, length, SPIi, exchange type, then the IKE_SA_INIT / in-SA rules.
 */
export function decodeIkeHeader(bytes: Uint8Array): IkeHeaderResult {
  if (bytes.length < IKE_HEADER_LENGTH) return INVALID['too-short'];
  const version = bytes[17]!;
  // RFC 7296 §3.1: "MUST reject or ignore messages containing a version number greater than 2";
  // major 1 is IKEv1 (ISAKMP), whose header has the same size but other semantics.
  if (version >> 4 !== IKE_MAJOR_VERSION) return INVALID['bad-version'];
  const length = readU32(bytes, 24);
  if (length < IKE_HEADER_LENGTH || length > IKE_MAX_MESSAGE_LENGTH) return INVALID['bad-length'];
  // RFC 7296 §3.1: Initiator's SPI "This value MUST NOT be zero."
  if (isZeroRange(bytes, 0, 8)) return INVALID['zero-spi'];
  const exchangeType = bytes[18]!;
  // RFC 7296 §3.1: exchange types 0-33 are reserved. 38-255 are accepted but flagged (stats).
  if (exchangeType < IKE_MIN_EXCHANGE_TYPE) return INVALID['bad-exchange-type'];
  const flags = bytes[19]!;
  const isInitiator = (flags & IKE_FLAG.INITIATOR) !== 0;
  const isResponse = (flags & IKE_FLAG.RESPONSE) !== 0;
  const messageId = readU32(bytes, 20);
  const isSpiRZero = isZeroRange(bytes, 8, 8);
  if (exchangeType === IKE_EXCHANGE.IKE_SA_INIT) {
    // RFC 7296 §3.1: the I flag is set by the original initiator, cleared by the original
    // responder; IKE_SA_INIT requests always come from the former, responses from the latter.
    if (isInitiator === isResponse) return INVALID['bad-flags'];
    // RFC 7296 §2.2: IKE_SA_INIT (and its retries after COOKIE / INVALID_KE_PAYLOAD) is message 0.
    if (messageId !== 0) return INVALID['bad-message-id'];
    // RFC 7296 §3.1: Responder's SPI "MUST be zero in the first message of an IKE initial
    // exchange (including repeats of that message including a cookie)". A response may carry
    // zero too: stateless replies (COOKIE, INVALID_MAJOR_VERSION) echo the request's SPIs.
    if (!isResponse && !isSpiRZero) return INVALID['nonzero-spi-r'];
  } else if (exchangeName(exchangeType) !== undefined && isSpiRZero) {
    // IKE_AUTH, CREATE_CHILD_SA, INFORMATIONAL and IKE_INTERMEDIATE run inside an IKE SA whose
    // responder SPI was chosen in IKE_SA_INIT. Unknown exchanges are not judged (RFC 5723's
    // IKE_SESSION_RESUME, for one, starts with a zero SPIr like IKE_SA_INIT).
    return INVALID['zero-spi-r'];
  }
  return {
    kind: 'ok',
    header: {
      spiI: readU64(bytes, 0),
      spiR: isSpiRZero ? 0n : readU64(bytes, 8),
      nextPayload: bytes[16]!,
      majorVersion: version >> 4,
      minorVersion: version & 0x0f,
      exchangeType,
      exchange: exchangeName(exchangeType),
      flags,
      isInitiator,
      isResponse,
      hasHigherVersion: (flags & IKE_FLAG.VERSION) !== 0,
      messageId,
      length,
    },
  };
}

/** Adds one header outcome to `stats` (shared by the datagram parser and the stream reader). */
export function countIkeHeaderOutcome(
  stats: IkeParseStats | undefined,
  result: IkeParseResult,
): void {
  if (stats === undefined) return;
  if (result.kind === 'invalid') stats.header[result.code]++;
  else if (result.kind === 'need-more') stats.header['need-more']++;
  else {
    stats.header.ok++;
    if (result.header.exchange === undefined) stats.unknownExchange++;
  }
}

/**
 * Parses the IKE header of a UDP datagram (port 500, or port 4500 after the non-ESP marker).
 * The datagram is one whole message (RFC 7296 §2: IKE messages are not split across UDP
 * datagrams; RFC 7383 fragments are each a whole message), so its size must equal the Length
 * field. Never throws; reads only the header. Use `IkeHeaderReader` for byte streams.
 */
export function parseIkeHeader(datagram: Uint8Array, stats?: IkeParseStats): IkeHeaderResult {
  let result = decodeIkeHeader(datagram);
  if (result.kind === 'ok' && result.header.length !== datagram.length)
    result = INVALID['length-mismatch'];
  countIkeHeaderOutcome(stats, result);
  return result;
}

/** Formats an SPI as 16 lowercase hex digits (logs, admin API, map keys). */
export function formatSpi(spi: bigint): string {
  return spi.toString(16).padStart(16, '0');
}
