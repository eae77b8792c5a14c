/**
 * The closed sets of outcomes of the IKEv2 parsers. Metrics label by these strings, so they are
 * part of the public contract: add codes at the end, never rename one (docs/protocol-ikev2.md
 * describes each).
 */

/**
 * Why `parseIkeHeader` / `IkeHeaderReader` rejected a message (RFC 7296 §3.1).
 * - `too-short`: a datagram shorter than the 28-octet header (datagram parser only).
 * - `bad-version`: major version is not 2 (IKEv1, or a future version).
 * - `bad-length`: the Length field is below 28 or above `IKE_MAX_MESSAGE_LENGTH`.
 * - `length-mismatch`: the Length field differs from the datagram size (datagram parser only).
 * - `zero-spi`: the initiator's SPI is zero ("This value MUST NOT be zero").
 * - `bad-exchange-type`: exchange type 0–33 (reserved; IKEv1 numbers).
 * - `bad-flags`: an IKE_SA_INIT whose I and R flags are both set or both clear.
 * - `bad-message-id`: an IKE_SA_INIT with a message ID other than 0.
 * - `nonzero-spi-r`: an IKE_SA_INIT request with a non-zero responder SPI.
 * - `zero-spi-r`: IKE_AUTH, CREATE_CHILD_SA, INFORMATIONAL or IKE_INTERMEDIATE with a zero
 *   responder SPI (these run inside an established IKE SA).
 */
export const IKE_HEADER_INVALID_CODES = [
  'too-short',
  'bad-version',
  'bad-length',
  'length-mismatch',
  'zero-spi',
  'bad-exchange-type',
  'bad-flags',
  'bad-message-id',
  'nonzero-spi-r',
  'zero-spi-r',
] as const;

/** A reason the IKE header parsers give for rejecting a message. */
export type IkeHeaderInvalidCode = (typeof IKE_HEADER_INVALID_CODES)[number];

/**
 * Why `classifyNatT` rejected a UDP 4500 payload (RFC 3948 §2.2, §2.3).
 * - `empty`: a zero-length datagram.
 * - `esp-too-short`: not a keepalive, no non-ESP marker, and shorter than ESP's SPI + sequence
 *   number (8 octets). (A zero "SPI" is by definition the non-ESP marker, so there is no
 *   zero-SPI code: RFC 3948 §2.2.)
 * - `ike-<code>`: a non-ESP marker followed by an IKE message that `parseIkeHeader` rejected.
 */
export const NAT_T_INVALID_CODES = [
  'empty',
  'esp-too-short',
  ...IKE_HEADER_INVALID_CODES.map((code) => `ike-${code}` as const),
] as const;

/** A reason `classifyNatT` gives for rejecting a datagram. */
export type NatTInvalidCode = 'empty' | 'esp-too-short' | `ike-${IkeHeaderInvalidCode}`;

/**
 * Why `parsePayloads` rejected a message whose header was valid (RFC 7296 §3.2).
 * - `payload-truncated`: fewer than 4 octets remain for the next generic payload header.
 * - `bad-payload-length`: a Payload Length below 4 or running past the end of the message.
 * - `too-many-payloads`: more than `IKE_MAX_PAYLOADS` payloads in the chain.
 * - `trailing-bytes`: the chain ended (Next Payload 0, or an SK/SKF payload, which must be
 *   last) before the end of the message.
 * - `bad-notify`: a Notify body shorter than 4 octets or than its declared SPI.
 */
export const PAYLOAD_INVALID_CODES = [
  'payload-truncated',
  'bad-payload-length',
  'too-many-payloads',
  'trailing-bytes',
  'bad-notify',
] as const;

/** A reason `parsePayloads` gives for rejecting the payload chain. */
export type PayloadInvalidCode = (typeof PAYLOAD_INVALID_CODES)[number];

/** Every reason `parsePayloads` gives: header problems first, then payload-chain problems. */
export const IKE_MESSAGE_INVALID_CODES = [
  ...IKE_HEADER_INVALID_CODES,
  ...PAYLOAD_INVALID_CODES,
] as const;

/** A reason `parsePayloads` gives for rejecting a message. */
export type IkeMessageInvalidCode = IkeHeaderInvalidCode | PayloadInvalidCode;

/** Outcomes counted for the header parsers: every result kind and invalid code. */
export const IKE_HEADER_OUTCOMES = ['ok', 'need-more', ...IKE_HEADER_INVALID_CODES] as const;
/** Outcome label of a header parse. */
export type IkeHeaderOutcome = (typeof IKE_HEADER_OUTCOMES)[number];

/** Outcomes counted for `classifyNatT`. */
export const NAT_T_OUTCOMES = ['keepalive', 'ike', 'esp', ...NAT_T_INVALID_CODES] as const;
/** Outcome label of a NAT-T classification. */
export type NatTOutcome = (typeof NAT_T_OUTCOMES)[number];

/** Outcomes counted for `parsePayloads`. */
export const PAYLOAD_OUTCOMES = ['ok', ...IKE_MESSAGE_INVALID_CODES] as const;
/** Outcome label of a payload walk. */
export type PayloadOutcome = (typeof PAYLOAD_OUTCOMES)[number];
