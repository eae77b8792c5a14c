/**
 * The userspace relay's flow keys: which flow a datagram belongs to, from the client address
 * and port Node reports and the virtual port it arrived on.
 *
 * Why numbers: the per-datagram path looks a flow up for every packet. A string key
 * (`'n' + address + ':' + port`) allocates a concatenation, flattens it and hashes it on every
 * lookup; an IPv4 flow key is instead one exact number — address (32 bits) × 2^17 + port
 * (16 bits) × 2 + port kind (1 bit) < 2^49 < 2^53, so no two flows share a key — computed by
 * an allocation-free scan of the dotted quad. IPv6 (and anything that is not a canonical
 * dotted quad) keeps a string key; numbers and strings never compare equal in a `Map`.
 */

/** A flow key: a number for IPv4 clients, a string otherwise. */
export type FlowKey = number | string;

/**
 * The dotted-quad IPv4 address `address` as an unsigned 32-bit number, or -1 when it is not
 * one (IPv6, IPv4-mapped IPv6, leading zeros, out-of-range octets). Allocation-free.
 */
export function ipv4ToNumber(address: string): number {
  const n = address.length;
  if (n < 7 || n > 15) return -1;
  let value = 0;
  let octet = 0;
  let digits = 0;
  let dots = 0;
  for (let i = 0; i < n; i++) {
    const c = address.charCodeAt(i);
    if (c === 46 /* . */) {
      if (digits === 0 || dots === 3) return -1;
      value = value * 256 + octet;
      octet = 0;
      digits = 0;
      dots++;
    } else if (c >= 48 && c <= 57) {
      // Node prints canonical quads: a leading zero ("01") is not one of them.
      if (digits > 0 && octet === 0) return -1;
      octet = octet * 10 + (c - 48);
      if (++digits > 3 || octet > 255) return -1;
    } else {
      return -1;
    }
  }
  if (dots !== 3 || digits === 0) return -1;
  return value * 256 + octet;
}

/** The key of the flow of client `address`:`port` on the IKE (500) or NAT-T (4500) port. */
export function flowKey(address: string, port: number, isNatT: boolean): FlowKey {
  const ip = ipv4ToNumber(address);
  if (ip >= 0) return (ip * 65536 + port) * 2 + (isNatT ? 1 : 0);
  return (isNatT ? 'n' : 'i') + address + '|' + port;
}
