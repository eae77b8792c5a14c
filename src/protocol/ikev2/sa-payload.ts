/**
 * The Security Association payload (RFC 7296 §3.3): proposals, each a list of transforms, each
 * with optional attributes (only Key Length is used by IKEv2). Encoder for simulated peers and
 * the health probe; a bounded decoder (never throws) for the simulated server.
 *
 * Proposal substructure (§3.3.1):           Transform substructure (§3.3.2):
 *   Last Substruc (0 last, 2 more) | RES      Last Substruc (0 last, 3 more) | RES
 *   Proposal Length (2)                       Transform Length (2)
 *   Proposal Num | Protocol ID                Transform Type | RESERVED
 *   SPI Size | Num Transforms                 Transform ID (2)
 *   SPI (SPI Size) | Transforms ...           Transform Attributes ...
 */
import { readU16, writeU16 } from './bytes.js';
import { IKE_ATTRIBUTE, IKE_PAYLOAD } from './constants.js';
import { MAX_PAYLOAD_BODY_LENGTH, type IkePayload } from './payloads.js';

/** One transform: type (`IKE_TRANSFORM`), ID (`ENCR`, `PRF`, `INTEG`, `DH_GROUP`), key length. */
export interface IkeTransform {
  readonly type: number;
  readonly id: number;
  /** Key Length attribute in bits (RFC 7296 §3.3.5), for variable-length ciphers such as AES. */
  readonly keyLength?: number;
}

/** One proposal: a protocol (`IKE_PROTOCOL`), its SPI (empty in IKE_SA_INIT), its transforms. */
export interface IkeProposal {
  /** Proposal Num; defaults to the position (1-based) as RFC 7296 §3.3.1 requires. */
  readonly number?: number;
  readonly protocolId: number;
  readonly spi?: Uint8Array;
  readonly transforms: readonly IkeTransform[];
}

// RFC 7296 §3.3.1 and §3.3.2: values of the Last Substruc field.
const LAST = 0;
const MORE_PROPOSALS = 2;
const MORE_TRANSFORMS = 3;
// RFC 7296 §3.3.5: Attribute Format bit; set = TV (2-octet value in the header).
const ATTRIBUTE_TV = 0x8000;

function checkUint(name: string, value: number, max: number): void {
  if (!Number.isInteger(value) || value < 0 || value > max) {
    throw new RangeError(`${name} must be an integer in 0..${max}, got ${value}`);
  }
}

function transformLength(t: IkeTransform): number {
  return 8 + (t.keyLength === undefined ? 0 : 4);
}

function proposalLength(p: IkeProposal): number {
  let length = 8 + (p.spi?.length ?? 0);
  for (const t of p.transforms) length += transformLength(t);
  return length;
}

/**
 * SA payload with the given proposals in order of preference. An IKE_SA_INIT request usually
 * carries one IKE proposal with no SPI; a CREATE_CHILD_SA / IKE_AUTH one, ESP with a 4-octet SPI.
 */
export function saPayload(proposals: IkeProposal | readonly IkeProposal[]): IkePayload {
  const list: readonly IkeProposal[] = Array.isArray(proposals)
    ? proposals
    : [proposals as IkeProposal];
  if (list.length === 0 || list.length > 255)
    throw new RangeError('an SA payload carries 1..255 proposals');
  let total = 0;
  for (const p of list) {
    if (p.transforms.length === 0 || p.transforms.length > 255) {
      throw new RangeError('a proposal carries 1..255 transforms');
    }
    if ((p.spi?.length ?? 0) > 255) throw new RangeError('a proposal SPI is at most 255 octets');
    checkUint('proposal number', p.number ?? 1, 0xff);
    checkUint('protocolId', p.protocolId, 0xff);
    for (const t of p.transforms) {
      checkUint('transform type', t.type, 0xff);
      checkUint('transform id', t.id, 0xffff);
      if (t.keyLength !== undefined) checkUint('keyLength', t.keyLength, 0xffff);
    }
    total += proposalLength(p);
  }
  if (total > MAX_PAYLOAD_BODY_LENGTH)
    throw new RangeError(`SA body of ${total} octets does not fit a payload`);
  const body = new Uint8Array(total);
  let offset = 0;
  list.forEach((p, index) => {
    const spi = p.spi ?? new Uint8Array(0);
    body[offset] = index === list.length - 1 ? LAST : MORE_PROPOSALS;
    writeU16(body, offset + 2, proposalLength(p));
    // RFC 7296 §3.3.1: "The first Proposal MUST have a Proposal Num of one (1)".
    body[offset + 4] = p.number ?? index + 1;
    body[offset + 5] = p.protocolId;
    body[offset + 6] = spi.length;
    body[offset + 7] = p.transforms.length;
    body.set(spi, offset + 8);
    offset += 8 + spi.length;
    p.transforms.forEach((t, ti) => {
      body[offset] = ti === p.transforms.length - 1 ? LAST : MORE_TRANSFORMS;
      writeU16(body, offset + 2, transformLength(t));
      body[offset + 4] = t.type;
      writeU16(body, offset + 6, t.id);
      if (t.keyLength !== undefined) {
        writeU16(body, offset + 8, ATTRIBUTE_TV | IKE_ATTRIBUTE.KEY_LENGTH);
        writeU16(body, offset + 10, t.keyLength);
      }
      offset += transformLength(t);
    });
  });
  return { type: IKE_PAYLOAD.SA, body };
}

/**
 * Decodes an SA body into its proposals, or undefined if any length, count or Last Substruc
 * field is inconsistent. Attributes other than a TV Key Length are skipped.
 */
export function decodeSaBody(body: Uint8Array): IkeProposal[] | undefined {
  const proposals: IkeProposal[] = [];
  let offset = 0;
  for (;;) {
    if (offset + 8 > body.length) return undefined;
    const last = body[offset]!;
    const length = readU16(body, offset + 2);
    const spiSize = body[offset + 6]!;
    const count = body[offset + 7]!;
    const end = offset + length;
    if ((last !== LAST && last !== MORE_PROPOSALS) || length < 8 + spiSize || end > body.length)
      return undefined;
    const transforms = decodeTransforms(body.subarray(offset + 8 + spiSize, end), count);
    if (transforms === undefined) return undefined;
    proposals.push({
      number: body[offset + 4]!,
      protocolId: body[offset + 5]!,
      spi: body.slice(offset + 8, offset + 8 + spiSize),
      transforms,
    });
    offset = end;
    if (last === LAST) return offset === body.length ? proposals : undefined;
  }
}

function decodeTransforms(bytes: Uint8Array, count: number): IkeTransform[] | undefined {
  const transforms: IkeTransform[] = [];
  let offset = 0;
  for (let i = 0; i < count; i++) {
    if (offset + 8 > bytes.length) return undefined;
    const last = bytes[offset]!;
    const length = readU16(bytes, offset + 2);
    const end = offset + length;
    const isLast = i === count - 1;
    if (last !== (isLast ? LAST : MORE_TRANSFORMS) || length < 8 || end > bytes.length)
      return undefined;
    let keyLength: number | undefined;
    for (let a = offset + 8; a < end; ) {
      if (a + 4 > end) return undefined;
      const attrType = readU16(bytes, a);
      if ((attrType & ATTRIBUTE_TV) !== 0) {
        if ((attrType & ~ATTRIBUTE_TV) === IKE_ATTRIBUTE.KEY_LENGTH)
          keyLength = readU16(bytes, a + 2);
        a += 4;
      } else {
        a += 4 + readU16(bytes, a + 2); // TLV: the length counts the value only (§3.3.5)
        if (a > end) return undefined;
      }
    }
    const type = bytes[offset + 4]!;
    const id = readU16(bytes, offset + 6);
    transforms.push(keyLength === undefined ? { type, id } : { type, id, keyLength });
    offset = end;
  }
  return offset === bytes.length ? transforms : undefined;
}
