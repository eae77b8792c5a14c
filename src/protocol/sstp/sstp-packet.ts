/**
 * SSTP packets ([MS-SSTP] §2.2.2–§2.2.13): encoders for data and control packets and their
 * attributes, a parser for one whole packet, and `SstpPacketReader`, an incremental reader
 * that splits the byte stream inside the TLS (or plain HTTP) tunnel into packets across chunk
 * boundaries. Parsers return tagged results and never throw.
 */
import {
  CRYPTO_BINDING_LENGTH,
  CRYPTO_BINDING_REQ_LENGTH,
  SSTP_ATTRIB,
  SSTP_CONTROL_HEADER_LENGTH,
  SSTP_ENCAPSULATED_PPP,
  SSTP_HEADER_LENGTH,
  SSTP_MAX_PACKET_LENGTH,
  SSTP_VERSION,
} from './sstp-constants.js';

/** One attribute of a control packet ([MS-SSTP] §2.2.4). */
export interface SstpAttribute {
  readonly id: number;
  readonly value: Uint8Array;
}

export type SstpPacket =
  | { readonly kind: 'data'; readonly payload: Uint8Array }
  | {
      readonly kind: 'control';
      readonly messageType: number;
      readonly attributes: readonly SstpAttribute[];
    };

/**
 * Why a packet was rejected.
 * - `bad-version`: Version is not 0x10.
 * - `bad-length`: the 12-bit length is shorter than the header (or than a control header).
 * - `bad-attribute`: an attribute's length is below 4 or runs past the packet, or the count
 *   of attributes disagrees with the packet's contents.
 */
export const SSTP_INVALID_CODES = ['bad-version', 'bad-length', 'bad-attribute'] as const;
export type SstpInvalidCode = (typeof SSTP_INVALID_CODES)[number];
export interface SstpInvalid {
  readonly kind: 'invalid';
  readonly code: SstpInvalidCode;
  readonly detail: string;
}

export type SstpParseResult = { readonly kind: 'ok'; readonly packet: SstpPacket } | SstpInvalid;

function header(isControl: boolean, length: number): Buffer {
  const h = Buffer.alloc(SSTP_HEADER_LENGTH);
  h[0] = SSTP_VERSION;
  h[1] = isControl ? 0x01 : 0x00; // reserved 7 bits, then the C bit
  h.writeUInt16BE(length & SSTP_MAX_PACKET_LENGTH, 2);
  return h;
}

/**
 * A data packet carrying one PPP frame ([MS-SSTP] §2.2.3). The frame is the raw PPP frame
 * (address/control `ff 03` and protocol included, no HDLC flags, escapes or FCS — sstpc strips
 * those from pppd's async HDLC before sending).
 * @throws RangeError when the frame does not fit the 12-bit length (callers build frames).
 */
export function encodeDataPacket(payload: Uint8Array): Uint8Array {
  const length = SSTP_HEADER_LENGTH + payload.length;
  if (length > SSTP_MAX_PACKET_LENGTH)
    throw new RangeError(`SSTP data packet of ${length} octets exceeds 4095`);
  return Uint8Array.from(Buffer.concat([header(false, length), payload]));
}

/** An attribute's octets: reserved (1), id (1), R + 12-bit length (2), value. */
export function encodeAttribute(attr: SstpAttribute): Buffer {
  const h = Buffer.alloc(4);
  h[1] = attr.id;
  h.writeUInt16BE((4 + attr.value.length) & SSTP_MAX_PACKET_LENGTH, 2);
  return Buffer.concat([h, attr.value]);
}

/** A control packet ([MS-SSTP] §2.2.2): header, message type, attribute count, attributes. */
export function encodeControlPacket(
  messageType: number,
  attributes: readonly SstpAttribute[] = [],
): Uint8Array {
  const attrs = attributes.map(encodeAttribute);
  const length = SSTP_CONTROL_HEADER_LENGTH + attrs.reduce((n, a) => n + a.length, 0);
  if (length > SSTP_MAX_PACKET_LENGTH)
    throw new RangeError(`SSTP control packet of ${length} octets exceeds 4095`);
  const mh = Buffer.alloc(4);
  mh.writeUInt16BE(messageType, 0);
  mh.writeUInt16BE(attributes.length, 2);
  return Uint8Array.from(Buffer.concat([header(true, length), mh, ...attrs]));
}

/** [MS-SSTP] §2.2.5: Encapsulated Protocol ID = PPP (the Call Connect Request's one attribute). */
export function encapsulatedPppAttribute(): SstpAttribute {
  const v = Buffer.alloc(2);
  v.writeUInt16BE(SSTP_ENCAPSULATED_PPP, 0);
  return { id: SSTP_ATTRIB.ENCAPSULATED_PROTOCOL_ID, value: v };
}

/** [MS-SSTP] §2.2.6: Crypto Binding Request: reserved (3), hash protocol bitmask (1), nonce (32). */
export function cryptoBindingRequestAttribute(
  hashBitmask: number,
  nonce: Uint8Array,
): SstpAttribute {
  if (nonce.length !== 32) throw new RangeError('the crypto binding nonce is 32 octets');
  return {
    id: SSTP_ATTRIB.CRYPTO_BINDING_REQ,
    value: Buffer.concat([Buffer.from([0, 0, 0, hashBitmask & 0xff]), nonce]),
  };
}

/** [MS-SSTP] §2.2.8: Status Info: reserved (3), attribute id (1), status (4), value. */
export function statusInfoAttribute(
  attributeId: number,
  status: number,
  value: Uint8Array = new Uint8Array(0),
): SstpAttribute {
  const v = Buffer.alloc(8);
  v[3] = attributeId;
  v.writeUInt32BE(status >>> 0, 4);
  return { id: SSTP_ATTRIB.STATUS_INFO, value: Buffer.concat([v, value]) };
}

/** The fields of a Crypto Binding Request attribute value. */
export function readCryptoBindingRequest(
  attr: SstpAttribute,
): { hashBitmask: number; nonce: Uint8Array } | undefined {
  if (
    attr.id !== SSTP_ATTRIB.CRYPTO_BINDING_REQ ||
    attr.value.length !== CRYPTO_BINDING_REQ_LENGTH - 4
  )
    return undefined;
  return { hashBitmask: attr.value[3] as number, nonce: attr.value.subarray(4, 36) };
}

/** The fields of a Crypto Binding attribute value ([MS-SSTP] §2.2.7), sent in Call Connected. */
export function readCryptoBinding(
  attr: SstpAttribute,
):
  | { hashProtocol: number; nonce: Uint8Array; certHash: Uint8Array; compoundMac: Uint8Array }
  | undefined {
  if (attr.id !== SSTP_ATTRIB.CRYPTO_BINDING || attr.value.length !== CRYPTO_BINDING_LENGTH - 4)
    return undefined;
  const v = attr.value;
  return {
    hashProtocol: v[3] as number,
    nonce: v.subarray(4, 36),
    certHash: v.subarray(36, 68),
    compoundMac: v.subarray(68, 100),
  };
}

function invalid(code: SstpInvalidCode, detail: string): SstpInvalid {
  return { kind: 'invalid', code, detail };
}

/** Checks a packet's first 4 octets; returns its total length or a rejection. */
export function checkSstpHeader(
  h: Uint8Array,
): { length: number; isControl: boolean } | SstpInvalid {
  if (h[0] !== SSTP_VERSION)
    return invalid('bad-version', `version 0x${(h[0] ?? 0).toString(16)} (expected 0x10)`);
  const isControl = ((h[1] as number) & 0x01) === 1;
  const length = (((h[2] as number) << 8) | (h[3] as number)) & SSTP_MAX_PACKET_LENGTH;
  const min = isControl ? SSTP_CONTROL_HEADER_LENGTH : SSTP_HEADER_LENGTH;
  if (length < min)
    return invalid(
      'bad-length',
      `length ${length} below the ${isControl ? 'control' : 'data'} header size ${min}`,
    );
  return { length, isControl };
}

/** Parses one whole packet (exactly its length octets). */
export function parseSstpPacket(bytes: Uint8Array): SstpParseResult {
  if (bytes.length < SSTP_HEADER_LENGTH)
    return invalid('bad-length', `${bytes.length} octets, shorter than the header`);
  const h = checkSstpHeader(bytes);
  if ('kind' in h) return h;
  if (h.length !== bytes.length)
    return invalid('bad-length', `length field ${h.length}, packet of ${bytes.length} octets`);
  if (!h.isControl)
    return { kind: 'ok', packet: { kind: 'data', payload: bytes.subarray(SSTP_HEADER_LENGTH) } };
  const messageType = ((bytes[4] as number) << 8) | (bytes[5] as number);
  const count = ((bytes[6] as number) << 8) | (bytes[7] as number);
  const attributes: SstpAttribute[] = [];
  let at = SSTP_CONTROL_HEADER_LENGTH;
  while (at < bytes.length) {
    if (bytes.length - at < 4)
      return invalid(
        'bad-attribute',
        `${bytes.length - at} trailing octets, shorter than an attribute header`,
      );
    const len =
      (((bytes[at + 2] as number) << 8) | (bytes[at + 3] as number)) & SSTP_MAX_PACKET_LENGTH;
    if (len < 4 || at + len > bytes.length)
      return invalid('bad-attribute', `attribute length ${len} at offset ${at}`);
    attributes.push({ id: bytes[at + 1] as number, value: bytes.subarray(at + 4, at + len) });
    at += len;
  }
  if (attributes.length !== count)
    return invalid('bad-attribute', `${attributes.length} attributes, header says ${count}`);
  return { kind: 'ok', packet: { kind: 'control', messageType, attributes } };
}

export type SstpReaderResult =
  | { readonly kind: 'packets'; readonly packets: readonly SstpPacket[] }
  | SstpInvalid;

/**
 * Splits an SSTP byte stream into packets: a state machine (header, then body) that accepts
 * chunks of any size. Holds at most one packet (4095 octets). After `invalid` the stream has
 * lost its framing and the reader keeps answering `invalid`.
 */
export class SstpPacketReader {
  readonly #header = new Uint8Array(SSTP_HEADER_LENGTH);
  #headerFilled = 0;
  #packet: Uint8Array | undefined;
  #packetFilled = 0;
  #failure: SstpInvalid | undefined;

  /** Feeds a chunk; returns every packet it completed (possibly none). */
  push(chunk: Uint8Array): SstpReaderResult {
    if (this.#failure) return this.#failure;
    const packets: SstpPacket[] = [];
    let i = 0;
    while (i < chunk.length) {
      if (this.#packet === undefined) {
        const n = Math.min(SSTP_HEADER_LENGTH - this.#headerFilled, chunk.length - i);
        this.#header.set(chunk.subarray(i, i + n), this.#headerFilled);
        this.#headerFilled += n;
        i += n;
        if (this.#headerFilled < SSTP_HEADER_LENGTH) break;
        const h = checkSstpHeader(this.#header);
        if ('kind' in h) return (this.#failure = h);
        this.#packet = new Uint8Array(h.length);
        this.#packet.set(this.#header, 0);
        this.#packetFilled = SSTP_HEADER_LENGTH;
      }
      const p = this.#packet;
      const n = Math.min(p.length - this.#packetFilled, chunk.length - i);
      p.set(chunk.subarray(i, i + n), this.#packetFilled);
      this.#packetFilled += n;
      i += n;
      if (this.#packetFilled === p.length) {
        const parsed = parseSstpPacket(p);
        if (parsed.kind === 'invalid') return (this.#failure = parsed);
        packets.push(parsed.packet);
        this.#packet = undefined;
        this.#headerFilled = 0;
      }
    }
    return { kind: 'packets', packets };
  }
}
