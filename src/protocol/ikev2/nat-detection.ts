/**
 * NAT detection (RFC 7296 §2.23): the NAT_DETECTION_SOURCE_IP / _DESTINATION_IP notifies carry
 * SHA-1(SPIi | SPIr | IP | Port) of the address and port the packet is sent from / to. A peer
 * that recomputes a different hash from what it sees knows a NAT is in between, and moves to
 * UDP 4500 (which, behind vpnlb's destination NAT, always happens).
 */
import { createHash } from 'node:crypto';
import { isIPv4, isIPv6 } from 'node:net';

import { writeU16, writeU64 } from './bytes.js';
import { IKE_NOTIFY } from './constants.js';
import { notifyPayload, type IkePayload } from './payloads.js';

/** An IP address (text or 4 / 16 octets) and a UDP port. */
export interface IkeEndpoint {
  readonly address: string | Uint8Array;
  readonly port: number;
}

/**
 * The octets of an IPv4 (4) or IPv6 (16) address in network order; undefined if `address` is
 * neither. An IPv6 zone (`%eth0`) is ignored.
 */
export function ipAddressBytes(address: string): Uint8Array | undefined {
  const text = address.split('%')[0] ?? '';
  if (isIPv4(text)) return Uint8Array.from(text.split('.').map(Number));
  if (!isIPv6(text)) return undefined;
  const out = new Uint8Array(16);
  let words = text;
  // An embedded IPv4 tail (::ffff:192.0.2.1) is two 16-bit groups.
  const lastColon = words.lastIndexOf(':');
  const tail = words.slice(lastColon + 1);
  if (tail.includes('.')) {
    const v4 = tail.split('.').map(Number);
    const hi = ((v4[0] ?? 0) << 8) | (v4[1] ?? 0);
    const lo = ((v4[2] ?? 0) << 8) | (v4[3] ?? 0);
    words = `${words.slice(0, lastColon + 1)}${hi.toString(16)}:${lo.toString(16)}`;
  }
  const [head = '', rest] = words.split('::');
  const headGroups = head === '' ? [] : head.split(':');
  const restGroups = rest === undefined || rest === '' ? [] : rest.split(':');
  const groups = [
    ...headGroups,
    ...new Array<string>(8 - headGroups.length - restGroups.length).fill('0'),
    ...restGroups,
  ];
  for (const [i, g] of groups.entries()) writeU16(out, i * 2, parseInt(g, 16));
  return out;
}

function addressBytes(address: string | Uint8Array): Uint8Array {
  if (typeof address !== 'string') {
    if (address.length !== 4 && address.length !== 16)
      throw new RangeError('an IP address is 4 or 16 octets');
    return address;
  }
  const bytes = ipAddressBytes(address);
  if (bytes === undefined) throw new RangeError(`"${address}" is not an IPv4 or IPv6 address`);
  return bytes;
}

/**
 * SHA-1(SPIi | SPIr | IP | Port) as RFC 7296 §2.23 defines it: SPIs "in the order they appear
 * in the header" (SPIr is 0 in an IKE_SA_INIT request), IP as 4 or 16 octets, port as 2 octets.
 * Returns the 20-octet digest.
 */
export function natDetectionHash(spiI: bigint, spiR: bigint, endpoint: IkeEndpoint): Uint8Array {
  const ip = addressBytes(endpoint.address);
  if (!Number.isInteger(endpoint.port) || endpoint.port < 0 || endpoint.port > 0xffff) {
    throw new RangeError(`port must be 0..65535, got ${endpoint.port}`);
  }
  const input = new Uint8Array(16 + ip.length + 2);
  writeU64(input, 0, spiI);
  writeU64(input, 8, spiR);
  input.set(ip, 16);
  writeU16(input, 16 + ip.length, endpoint.port);
  return new Uint8Array(createHash('sha1').update(input).digest());
}

/**
 * The NAT_DETECTION_SOURCE_IP and NAT_DETECTION_DESTINATION_IP notifies (in that order) for a
 * message sent from `source` to `destination` with the given SPIs.
 */
export function natDetectionPayloads(spec: {
  readonly spiI: bigint;
  readonly spiR: bigint;
  readonly source: IkeEndpoint;
  readonly destination: IkeEndpoint;
}): [IkePayload, IkePayload] {
  return [
    notifyPayload({
      type: IKE_NOTIFY.NAT_DETECTION_SOURCE_IP,
      data: natDetectionHash(spec.spiI, spec.spiR, spec.source),
    }),
    notifyPayload({
      type: IKE_NOTIFY.NAT_DETECTION_DESTINATION_IP,
      data: natDetectionHash(spec.spiI, spec.spiR, spec.destination),
    }),
  ];
}
