/**
 * IKEv2 payloads as the builder takes them, and the encoders / decoders of the simple payload
 * bodies: KE (RFC 7296 §3.4), Nonce (§3.9), Notify (§3.10), Vendor ID (§3.12) and the
 * Encrypted payload (§3.14, carried opaque: vpnlb does no IKE cryptography). SA is in
 * sa-payload.ts. Encoders are control-plane helpers (simulated peers, health probe): they throw
 * `RangeError` on arguments that cannot be encoded. Decoders never throw.
 */
import { readU16, writeU16 } from './bytes.js';
import { IKE_NOTIFY, IKE_PAYLOAD, IKE_PROTOCOL } from './constants.js';

/** RFC 7296 §3.2: the generic payload header is 4 octets (Next Payload, C + RESERVED, Length). */
export const GENERIC_PAYLOAD_HEADER_LENGTH = 4;
/** Largest payload body: Payload Length is 16 bits and includes the generic header. */
export const MAX_PAYLOAD_BODY_LENGTH = 0xffff - GENERIC_PAYLOAD_HEADER_LENGTH;

/** One payload of a message: its type and body (what follows the generic payload header). */
export interface IkePayload {
  /** Payload type (`IKE_PAYLOAD`). */
  readonly type: number;
  /** The octets after the generic payload header. */
  readonly body: Uint8Array;
  /** RFC 7296 §3.2 C bit; MUST be 0 for the payload types RFC 7296 defines. */
  readonly isCritical?: boolean;
  /**
   * SK and SKF only (RFC 7296 §3.14, RFC 7383 §2.5): their Next Payload field names the first
   * payload *inside* the encrypted data, since they are always last in the message.
   */
  readonly innerNextPayload?: number;
}

/** A decoded Notify payload (RFC 7296 §3.10). */
export interface IkeNotify {
  /** 0 when no SPI is carried (notifications about the IKE SA itself), else 1 IKE, 2 AH, 3 ESP. */
  readonly protocolId: number;
  /** Notify message type (`IKE_NOTIFY`); below 16384 an error. */
  readonly type: number;
  /** The SPI the notification is about (empty when SPI Size is 0). */
  readonly spi: Uint8Array;
  /** Notification data (for COOKIE the cookie, for INVALID_KE_PAYLOAD the 2-octet group). */
  readonly data: Uint8Array;
}

/** A decoded KE payload (RFC 7296 §3.4). */
export interface IkeKeyExchange {
  readonly dhGroup: number;
  readonly keyData: Uint8Array;
}

function checkUint(name: string, value: number, max: number): void {
  if (!Number.isInteger(value) || value < 0 || value > max) {
    throw new RangeError(`${name} must be an integer in 0..${max}, got ${value}`);
  }
}

function checkBodyLength(name: string, length: number): void {
  if (length > MAX_PAYLOAD_BODY_LENGTH) {
    throw new RangeError(
      `${name} body is ${length} octets; at most ${MAX_PAYLOAD_BODY_LENGTH} fit a payload`,
    );
  }
}

/**
 * KE payload (RFC 7296 §3.4): Diffie-Hellman Group Num (2), RESERVED (2), Key Exchange Data.
 * vpnlb's peers do no real Diffie-Hellman: any key data of the group's size looks right.
 */
export function kePayload(dhGroup: number, keyData: Uint8Array): IkePayload {
  checkUint('dhGroup', dhGroup, 0xffff);
  checkBodyLength('KE', 4 + keyData.length);
  const body = new Uint8Array(4 + keyData.length);
  writeU16(body, 0, dhGroup);
  body.set(keyData, 4);
  return { type: IKE_PAYLOAD.KE, body };
}

// RFC 7296 §3.9: "The size of the Nonce Data MUST be between 16 and 256 octets, inclusive."
/** Smallest nonce (RFC 7296 §3.9). */
export const NONCE_MIN_LENGTH = 16;
/** Largest nonce (RFC 7296 §3.9). */
export const NONCE_MAX_LENGTH = 256;

/** Nonce payload (RFC 7296 §3.9): the nonce data only; 16 to 256 octets. */
export function noncePayload(nonce: Uint8Array): IkePayload {
  if (nonce.length < NONCE_MIN_LENGTH || nonce.length > NONCE_MAX_LENGTH) {
    throw new RangeError(
      `a nonce is ${NONCE_MIN_LENGTH}..${NONCE_MAX_LENGTH} octets (RFC 7296 §3.9), got ${nonce.length}`,
    );
  }
  return { type: IKE_PAYLOAD.NONCE, body: nonce.slice() };
}

/** What `notifyPayload` encodes; `protocolId` and `spi` default to none (IKE SA notifications). */
export interface NotifySpec {
  readonly type: number;
  readonly protocolId?: number;
  readonly spi?: Uint8Array;
  readonly data?: Uint8Array;
}

/**
 * Notify payload (RFC 7296 §3.10): Protocol ID (1), SPI Size (1), Notify Message Type (2),
 * SPI, Notification Data.
 */
export function notifyPayload(spec: NotifySpec): IkePayload {
  const spi = spec.spi ?? new Uint8Array(0);
  const data = spec.data ?? new Uint8Array(0);
  // RFC 7296 §3.10: "If the SPI field is empty, this field [Protocol ID] MUST be sent as zero".
  const protocolId = spec.protocolId ?? (spi.length === 0 ? IKE_PROTOCOL.NONE : IKE_PROTOCOL.IKE);
  checkUint('notify type', spec.type, 0xffff);
  checkUint('protocolId', protocolId, 0xff);
  checkUint('SPI size', spi.length, 0xff);
  checkBodyLength('Notify', 4 + spi.length + data.length);
  const body = new Uint8Array(4 + spi.length + data.length);
  body[0] = protocolId;
  body[1] = spi.length;
  writeU16(body, 2, spec.type);
  body.set(spi, 4);
  body.set(data, 4 + spi.length);
  return { type: IKE_PAYLOAD.NOTIFY, body };
}

/** INVALID_KE_PAYLOAD notify (RFC 7296 §1.2, §3.10.1): data is the 2-octet group the responder wants. */
export function invalidKeNotify(acceptedGroup: number): IkePayload {
  checkUint('acceptedGroup', acceptedGroup, 0xffff);
  const data = new Uint8Array(2);
  writeU16(data, 0, acceptedGroup);
  return notifyPayload({ type: IKE_NOTIFY.INVALID_KE_PAYLOAD, data });
}

/** Vendor ID payload (RFC 7296 §3.12): opaque octets, usually a hash or a product string. */
export function vendorIdPayload(vendorId: Uint8Array): IkePayload {
  checkBodyLength('Vendor ID', vendorId.length);
  return { type: IKE_PAYLOAD.VENDOR_ID, body: vendorId.slice() };
}

/**
 * Encrypted payload SK (RFC 7296 §3.14) carrying `data` as is (IV, ciphertext, padding and ICV
 * in a real one). `firstInnerPayload` goes into its Next Payload field; the builder places SK
 * last, as RFC 7296 §3.14 requires.
 */
export function encryptedPayload(firstInnerPayload: number, data: Uint8Array): IkePayload {
  checkUint('firstInnerPayload', firstInnerPayload, 0xff);
  checkBodyLength('SK', data.length);
  return { type: IKE_PAYLOAD.SK, body: data.slice(), innerNextPayload: firstInnerPayload };
}

/** Decodes a Notify body (RFC 7296 §3.10); undefined if shorter than its fixed part or its SPI. */
export function decodeNotifyBody(body: Uint8Array): IkeNotify | undefined {
  if (body.length < 4) return undefined;
  const spiSize = body[1]!;
  if (4 + spiSize > body.length) return undefined;
  return {
    protocolId: body[0]!,
    type: readU16(body, 2),
    spi: body.subarray(4, 4 + spiSize),
    data: body.subarray(4 + spiSize),
  };
}

/** Decodes a KE body (RFC 7296 §3.4); undefined if shorter than its 4-octet fixed part. */
export function decodeKeBody(body: Uint8Array): IkeKeyExchange | undefined {
  if (body.length < 4) return undefined;
  return { dhGroup: readU16(body, 0), keyData: body.subarray(4) };
}

/** The group an INVALID_KE_PAYLOAD notify asks for, or undefined if it is not one (or malformed). */
export function acceptedKeGroup(notify: IkeNotify): number | undefined {
  if (notify.type !== IKE_NOTIFY.INVALID_KE_PAYLOAD || notify.data.length !== 2) return undefined;
  return readU16(notify.data, 0);
}
