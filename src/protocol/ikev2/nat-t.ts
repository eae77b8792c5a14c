/**
 * Classifies a UDP port 4500 payload (RFC 3948 §2): NAT-keepalive, IKE behind the non-ESP
 * marker, or ESP. Data plane: never throws, reads at most the first 4 + 28 octets.
 */
import { readU32 } from './bytes.js';
import { parseIkeHeader, type IkeHeader } from './ike-header.js';
import type { NatTInvalidCode } from './parse-codes.js';
import type { IkeParseStats } from './parse-stats.js';

/** RFC 3948 §2.2: the non-ESP marker is four zero octets where ESP carries its SPI. */
export const NON_ESP_MARKER_LENGTH = 4;
/** RFC 3948 §2.3: a NAT-keepalive is the single octet 0xFF. */
export const NAT_KEEPALIVE_OCTET = 0xff;
/** RFC 4303 §2: ESP starts with SPI (4 octets) and sequence number (4 octets). */
export const ESP_MIN_LENGTH = 8;

/** A NAT-keepalive (RFC 3948 §2.3): keeps the NAT mapping, carries nothing, needs no backend. */
export interface NatTKeepalive {
  readonly kind: 'keepalive';
}
/** An IKE message behind the non-ESP marker; `message` is the view without the marker. */
export interface NatTIke {
  readonly kind: 'ike';
  readonly header: IkeHeader;
  readonly message: Uint8Array;
}
/** An ESP packet (RFC 3948 §2.1, RFC 4303 §2): SPI and sequence number, both unsigned 32-bit. */
export interface NatTEsp {
  readonly kind: 'esp';
  readonly spi: number;
  readonly seq: number;
}
/** Not a valid port 4500 payload; `code` says why (`ike-*` codes come from the IKE header). */
export interface NatTInvalid {
  readonly kind: 'invalid';
  readonly code: NatTInvalidCode;
}

/** Result of `classifyNatT`. */
export type NatTResult = NatTKeepalive | NatTIke | NatTEsp | NatTInvalid;

const KEEPALIVE: NatTKeepalive = Object.freeze({ kind: 'keepalive' });
const EMPTY: NatTInvalid = Object.freeze({ kind: 'invalid', code: 'empty' });
const ESP_TOO_SHORT: NatTInvalid = Object.freeze({ kind: 'invalid', code: 'esp-too-short' });

function classify(datagram: Uint8Array, stats: IkeParseStats | undefined): NatTResult {
  if (datagram.length === 0) return EMPTY;
  // RFC 3948 §2.3: "The sender MUST use a one octet long payload with the value 0xFF."
  if (datagram.length === 1 && datagram[0] === NAT_KEEPALIVE_OCTET) return KEEPALIVE;
  if (datagram.length >= NON_ESP_MARKER_LENGTH && readU32(datagram, 0) === 0) {
    // RFC 3948 §2.2: "The Non-ESP Marker ... 4 zero-valued bytes", then the IKE header.
    const message = datagram.subarray(NON_ESP_MARKER_LENGTH);
    const parsed = parseIkeHeader(message, stats);
    if (parsed.kind === 'invalid') return { kind: 'invalid', code: `ike-${parsed.code}` };
    return { kind: 'ike', header: parsed.header, message };
  }
  // RFC 3948 §2.1: otherwise ESP, whose SPI (non-zero, or it would be the marker) comes first.
  if (datagram.length < ESP_MIN_LENGTH) return ESP_TOO_SHORT;
  return { kind: 'esp', spi: readU32(datagram, 0), seq: readU32(datagram, 4) };
}

/**
 * Classifies a UDP 4500 payload: `keepalive` (the single octet 0xFF), `ike` (four zero octets
 * then a valid IKE message, whose size must match its Length), `esp` (anything else of at least
 * 8 octets), or `invalid`. Counts the outcome in `stats.natT`, and the IKE header parse (if
 * any) in `stats.header`.
 */
export function classifyNatT(datagram: Uint8Array, stats?: IkeParseStats): NatTResult {
  const result = classify(datagram, stats);
  if (stats !== undefined) stats.natT[result.kind === 'invalid' ? result.code : result.kind]++;
  return result;
}
