/**
 * Builds IKEv2 messages on the wire (RFC 7296 §3.1 header, §3.2 payload chain) for the simulated
 * RRAS server, the simulated client and the IKEv2 health probe. Control plane: throws
 * `RangeError` for arguments that cannot be encoded. It encodes structure only and does not
 * enforce exchange rules (SPI, flag and message-ID rules are the parser's): tests build messages
 * the parser must reject.
 */
import { concatBytes, writeU16, writeU32, writeU64 } from './bytes.js';
import {
  IKE_HEADER_LENGTH,
  IKE_MAJOR_VERSION,
  IKE_MAX_MESSAGE_LENGTH,
  IKE_PAYLOAD,
} from './constants.js';
import { NON_ESP_MARKER_LENGTH } from './nat-t.js';
import {
  GENERIC_PAYLOAD_HEADER_LENGTH,
  MAX_PAYLOAD_BODY_LENGTH,
  type IkePayload,
} from './payloads.js';

/** What `buildIkeMessage` encodes. */
export interface IkeMessageSpec {
  /** Initiator's SPI (unsigned 64-bit). */
  readonly spiI: bigint;
  /** Responder's SPI; 0 (the default) in an IKE_SA_INIT request. */
  readonly spiR?: bigint;
  /** Exchange type (`IKE_EXCHANGE`), 0–255. */
  readonly exchange: number;
  /** Flags octet: OR of `IKE_FLAG` bits. Default 0. */
  readonly flags?: number;
  /** Message ID; default 0 (IKE_SA_INIT). */
  readonly messageId?: number;
  /** Payloads in order; an SK/SKF payload must be last. */
  readonly payloads?: readonly IkePayload[];
  /** Minor version; RFC 7296 §3.1 says send 0 (the default). */
  readonly minorVersion?: number;
}

const MAX_U64 = (1n << 64n) - 1n;

function checkUint(name: string, value: number, max: number): void {
  if (!Number.isInteger(value) || value < 0 || value > max) {
    throw new RangeError(`${name} must be an integer in 0..${max}, got ${value}`);
  }
}

function isEncrypted(type: number): boolean {
  return type === IKE_PAYLOAD.SK || type === IKE_PAYLOAD.SKF;
}

/**
 * Encodes a whole IKE message: the header, then each payload behind a generic payload header
 * whose Next Payload names the following payload (0 after the last; for SK/SKF the first inner
 * payload). Every Length field is computed.
 */
export function buildIkeMessage(spec: IkeMessageSpec): Uint8Array {
  const spiR = spec.spiR ?? 0n;
  const flags = spec.flags ?? 0;
  const messageId = spec.messageId ?? 0;
  const minorVersion = spec.minorVersion ?? 0;
  const payloads = spec.payloads ?? [];
  if (spec.spiI < 0n || spec.spiI > MAX_U64) throw new RangeError('spiI must fit in 64 bits');
  if (spiR < 0n || spiR > MAX_U64) throw new RangeError('spiR must fit in 64 bits');
  checkUint('exchange', spec.exchange, 0xff);
  checkUint('flags', flags, 0xff);
  checkUint('messageId', messageId, 0xffffffff);
  checkUint('minorVersion', minorVersion, 0x0f);

  let length = IKE_HEADER_LENGTH;
  payloads.forEach((p, index) => {
    checkUint('payload type', p.type, 0xff);
    if (p.type === IKE_PAYLOAD.NONE) throw new RangeError('payload type 0 means "no next payload"');
    if (p.innerNextPayload !== undefined) checkUint('innerNextPayload', p.innerNextPayload, 0xff);
    if (p.body.length > MAX_PAYLOAD_BODY_LENGTH)
      throw new RangeError(`payload ${index} body is too long`);
    if (isEncrypted(p.type) && index !== payloads.length - 1) {
      // RFC 7296 §3.14: "the Encrypted payload, if present in a message, MUST be the last payload".
      throw new RangeError('an SK/SKF payload must be the last payload of the message');
    }
    length += GENERIC_PAYLOAD_HEADER_LENGTH + p.body.length;
  });
  if (length > IKE_MAX_MESSAGE_LENGTH) {
    throw new RangeError(`message of ${length} octets exceeds ${IKE_MAX_MESSAGE_LENGTH}`);
  }

  const out = new Uint8Array(length);
  writeU64(out, 0, spec.spiI);
  writeU64(out, 8, spiR);
  out[16] = payloads[0]?.type ?? IKE_PAYLOAD.NONE;
  out[17] = (IKE_MAJOR_VERSION << 4) | minorVersion;
  out[18] = spec.exchange;
  out[19] = flags;
  writeU32(out, 20, messageId);
  writeU32(out, 24, length);
  let offset = IKE_HEADER_LENGTH;
  payloads.forEach((p, index) => {
    const following = payloads[index + 1]?.type ?? IKE_PAYLOAD.NONE;
    out[offset] = isEncrypted(p.type) ? (p.innerNextPayload ?? IKE_PAYLOAD.NONE) : following;
    out[offset + 1] = p.isCritical === true ? 0x80 : 0; // RFC 7296 §3.2: RESERVED bits sent as 0
    writeU16(out, offset + 2, GENERIC_PAYLOAD_HEADER_LENGTH + p.body.length);
    out.set(p.body, offset + GENERIC_PAYLOAD_HEADER_LENGTH);
    offset += GENERIC_PAYLOAD_HEADER_LENGTH + p.body.length;
  });
  return out;
}

/**
 * Prefixes the RFC 3948 §2.2 non-ESP marker (four zero octets) for sending IKE on UDP 4500
 * (RFC 7296 §2.23: after NAT detection, or from the start when using port 4500).
 */
export function withNonEspMarker(message: Uint8Array): Uint8Array {
  return concatBytes([new Uint8Array(NON_ESP_MARKER_LENGTH), message]);
}
