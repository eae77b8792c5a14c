/**
 * Walks the payload chain of a whole IKE message (RFC 7296 §3.2) and decodes its Notify
 * payloads, so a health probe or simulated peer can recognise NO_PROPOSAL_CHOSEN,
 * INVALID_KE_PAYLOAD or COOKIE replies. Never throws; bounded by the message size and
 * `IKE_MAX_PAYLOADS`; payload bodies are views into the message (no copies).
 *
 * Generic payload header (§3.2):
 *   Next Payload (1) | C (1 bit) + RESERVED (7 bits) | Payload Length (2, header included)
 */
import { readU16 } from './bytes.js';
import { IKE_HEADER_LENGTH, IKE_PAYLOAD } from './constants.js';
import { parseIkeHeader, type IkeHeader } from './ike-header.js';
import type { IkeMessageInvalidCode } from './parse-codes.js';
import type { IkeParseStats } from './parse-stats.js';
import {
  GENERIC_PAYLOAD_HEADER_LENGTH,
  decodeNotifyBody,
  type IkeNotify,
  type IkePayload,
} from './payloads.js';

/**
 * Most payloads walked in one message. Real IKE_SA_INIT messages carry about 10 (SA, KE, Nonce,
 * a few Notifies and Vendor IDs); later exchanges put everything inside SK.
 */
export const IKE_MAX_PAYLOADS = 64;

// RFC 7296 §3.2: the C bit is the high bit of the second octet.
const CRITICAL_BIT = 0x80;

/** One payload found in a message; `body` is a view into the message. */
export interface IkePayloadView extends IkePayload {
  readonly isCritical: boolean;
  /** Offset of the payload's generic header within the message. */
  readonly offset: number;
}

/** A message whose header and payload chain are well formed. */
export interface IkeMessageOk {
  readonly kind: 'ok';
  readonly header: IkeHeader;
  /** Payloads in wire order; an SK/SKF payload, if any, is last and not looked into. */
  readonly payloads: readonly IkePayloadView[];
  /** The Notify payloads among them, decoded, in wire order. */
  readonly notifies: readonly IkeNotify[];
}
/** A message rejected by its header or its payload chain. */
export interface IkeMessageInvalid {
  readonly kind: 'invalid';
  readonly code: IkeMessageInvalidCode;
}
/** Result of `parsePayloads`. */
export type IkeMessageResult = IkeMessageOk | IkeMessageInvalid;

function invalid(code: IkeMessageInvalidCode): IkeMessageInvalid {
  return { kind: 'invalid', code };
}

function walk(message: Uint8Array): IkeMessageResult {
  const parsed = parseIkeHeader(message);
  if (parsed.kind === 'invalid') return parsed;
  const end = parsed.header.length; // equals message.length: parseIkeHeader checked it
  const payloads: IkePayloadView[] = [];
  const notifies: IkeNotify[] = [];
  let next = parsed.header.nextPayload;
  let offset = IKE_HEADER_LENGTH;
  while (next !== IKE_PAYLOAD.NONE) {
    if (payloads.length === IKE_MAX_PAYLOADS) return invalid('too-many-payloads');
    if (offset + GENERIC_PAYLOAD_HEADER_LENGTH > end) return invalid('payload-truncated');
    const nextField = message[offset]!;
    const isCritical = (message[offset + 1]! & CRITICAL_BIT) !== 0;
    const length = readU16(message, offset + 2);
    if (length < GENERIC_PAYLOAD_HEADER_LENGTH || offset + length > end)
      return invalid('bad-payload-length');
    const body = message.subarray(offset + GENERIC_PAYLOAD_HEADER_LENGTH, offset + length);
    if (next === IKE_PAYLOAD.NOTIFY) {
      const notify = decodeNotifyBody(body);
      if (notify === undefined) return invalid('bad-notify');
      notifies.push(notify);
    }
    if (next === IKE_PAYLOAD.SK || next === IKE_PAYLOAD.SKF) {
      // RFC 7296 §3.14: SK "MUST be the last payload in the message"; its Next Payload field
      // names the first payload inside the ciphertext (RFC 7383 §2.5: the same for SKF).
      payloads.push({ type: next, body, isCritical, offset, innerNextPayload: nextField });
      offset += length;
      break;
    }
    payloads.push({ type: next, body, isCritical, offset });
    next = nextField;
    offset += length;
  }
  if (offset !== end) return invalid('trailing-bytes');
  return { kind: 'ok', header: parsed.header, payloads, notifies };
}

/**
 * Parses a whole IKE message (no non-ESP marker: use `classifyNatT`'s `message` view on port
 * 4500): validates the header as `parseIkeHeader` does, then walks the payload chain until Next
 * Payload 0 or an SK/SKF payload, which must end exactly at the end of the message. Counts the
 * outcome in `stats.payloads` only.
 */
export function parsePayloads(message: Uint8Array, stats?: IkeParseStats): IkeMessageResult {
  const result = walk(message);
  if (stats !== undefined) stats.payloads[result.kind === 'ok' ? 'ok' : result.code]++;
  return result;
}

/** The first Notify of `type` in a parsed message, if any. */
export function findNotify(message: IkeMessageOk, type: number): IkeNotify | undefined {
  return message.notifies.find((n) => n.type === type);
}

/** The first payload of `type` in a parsed message, if any. */
export function findPayload(message: IkeMessageOk, type: number): IkePayloadView | undefined {
  return message.payloads.find((p) => p.type === type);
}
