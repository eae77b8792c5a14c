/**
 * Affinity keys: the exact bytes the kernel data plane hashes, so that `slotOf(key, seed)` in
 * userspace names the slot the nftables rule picks (DESIGN.md §4).
 *
 * - `ike-spi`: `jhash @th,64,64` on UDP 500 and `jhash @th,96,64` on UDP 4500 (after the
 *   4-byte non-ESP marker, RFC 3948 §2.2) hash the 8-byte IKE initiator SPI (RFC 7296 §3.1)
 *   exactly as it is on the wire. Clients behind one carrier-grade NAT spread over the farm,
 *   and a MOBIKE address change (RFC 4555) keeps the SPI, hence the backend.
 * - `source-ip`: `jhash ip saddr` / `jhash ip6 saddr` hash the address in network byte order,
 *   4 or 16 bytes — what the vendors' source-IP persistence does, and what keeps a client's
 *   UDP 500 and UDP 4500 halves together.
 */
import { isIP } from 'node:net';

/**
 * How a service places a client's IKE SAs.
 * - `ike-spi` (default): by initiator SPI, except that a new IKE SA from an address whose live
 *   NAT-T flows all sit on one server joins that server (Always On VPN device + user tunnels
 *   share one NAT-T flow, which can reach one server only; docs/balancing.md "Affinity").
 * - `ike-spi-hash`: by initiator SPI only (the plain SPI hash, kept for comparison).
 * - `source-ip`: by client address.
 */
export type AffinityMode = 'ike-spi' | 'ike-spi-hash' | 'source-ip';

/** Whether the mode hashes IKE SPIs (both SPI modes); `source-ip` hashes the address. */
export function isSpiAffinity(mode: AffinityMode): boolean {
  return mode !== 'source-ip';
}

/** RFC 7296 §3.1: the IKE SA initiator's SPI is 8 octets. */
export const IKE_SPI_LENGTH = 8;

/**
 * The affinity key of an IKE initiator SPI: its 8 bytes unchanged (a copy, so the key stays
 * valid when the packet buffer it came from is reused).
 *
 * @throws RangeError when `spi` is not 8 bytes long (the IKEv2 parser guarantees it).
 */
export function ikeSpiKey(spi: Uint8Array): Uint8Array {
  if (spi.length !== IKE_SPI_LENGTH) {
    throw new RangeError(`an IKE SPI is ${IKE_SPI_LENGTH} bytes, got ${spi.length}`);
  }
  return new Uint8Array(spi);
}

/**
 * The affinity key of a client address: 4 bytes for IPv4, 16 for IPv6, network byte order.
 *
 * An IPv4-mapped IPv6 address (`::ffff:198.18.0.10`, what a dual-stack socket reports for an
 * IPv4 client; RFC 4291 §2.5.5.2) gives the 4-byte IPv4 form: the packet the kernel sees is
 * IPv4 and hashes `ip saddr`, so both planes must agree. A zone index (`fe80::1%eth0`) is
 * ignored.
 *
 * @throws TypeError when `address` is not an IPv4 or IPv6 address (socket addresses always are).
 */
export function sourceIpKey(address: string): Uint8Array {
  const percent = address.indexOf('%');
  const bare = percent >= 0 ? address.slice(0, percent) : address;
  const family = isIP(bare);
  if (family === 4) return parseIpv4(bare);
  if (family === 6) {
    const bytes = parseIpv6(bare);
    return isIpv4Mapped(bytes) ? bytes.slice(12) : bytes;
  }
  throw new TypeError(`not an IP address: "${address}"`);
}

/** Parses an address `net.isIP` already accepted as IPv4 (four decimal parts, no error handling). */
function parseIpv4(text: string): Uint8Array {
  // By hand rather than split/parseInt: this runs for every new connection and flow.
  const bytes = new Uint8Array(4);
  let part = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 46) part++;
    else bytes[part] = (bytes[part] as number) * 10 + (c - 48);
  }
  return bytes;
}

/** Parses an address `net.isIP` already accepted as IPv6 (so no error handling is needed). */
function parseIpv6(text: string): Uint8Array {
  const bytes = new Uint8Array(16);
  const doubleColon = text.indexOf('::');
  const headText = doubleColon >= 0 ? text.slice(0, doubleColon) : text;
  const tailText = doubleColon >= 0 ? text.slice(doubleColon + 2) : '';
  const head = groupsOf(headText);
  const tail = groupsOf(tailText);
  // RFC 4291 §2.2: "::" stands for as many zero groups as are missing.
  const groups = [...head, ...new Array<number>(8 - head.length - tail.length).fill(0), ...tail];
  groups.forEach((group, i) => {
    bytes[2 * i] = group >>> 8;
    bytes[2 * i + 1] = group & 0xff;
  });
  return bytes;
}

/** 16-bit groups of one side of "::"; a trailing dotted quad (RFC 4291 §2.2 form 3) is two groups. */
function groupsOf(text: string): number[] {
  if (text === '') return [];
  const groups: number[] = [];
  for (const part of text.split(':')) {
    if (part.includes('.')) {
      const [a = 0, b = 0, c = 0, d = 0] = parseIpv4(part);
      groups.push((a << 8) | b, (c << 8) | d);
    } else {
      groups.push(Number.parseInt(part, 16));
    }
  }
  return groups;
}

/** RFC 4291 §2.5.5.2: `::ffff:0:0/96`. */
function isIpv4Mapped(bytes: Uint8Array): boolean {
  for (let i = 0; i < 10; i++) if (bytes[i] !== 0) return false;
  return bytes[10] === 0xff && bytes[11] === 0xff;
}
