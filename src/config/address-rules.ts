/**
 * Which addresses a configuration may use where, and their canonical form.
 *
 * Why (issue 11): `0.0.0.0`/`::`, multicast, broadcast and zone-ID addresses passed `check`
 * as virtual IPs or backends. None can be a VPN server or a virtual service: the unspecified
 * address means "any" to a listener and "this host" as a destination (RFC 1122 §3.2.1.3, RFC
 * 4291 §2.5.2), multicast addresses are never a unicast destination (RFC 1112, RFC 4291 §2.7),
 * 255.255.255.255 is limited broadcast (RFC 919), and a zone ID (`fe80::1%eth0`, RFC 4007 §11)
 * was rendered verbatim into the nftables ruleset. The same host written in two notations
 * (`::ffff:198.18.1.10` and `198.18.1.10`, RFC 4291 §2.5.5.2) must count as one.
 */
import { isIP } from 'node:net';

/** What an address is, for the rules below. */
export interface AddressInfo {
  /** 4 or 6 (an IPv4-mapped IPv6 address is 6: that is how it is written and bound). */
  readonly family: 4 | 6;
  /** One spelling per host: lower-case compressed IPv6, IPv4-mapped IPv6 as dotted IPv4. */
  readonly canonical: string;
  readonly isLoopback: boolean;
}

/** The address, or why it cannot be a virtual IP, backend or SNAT address. */
export function checkUnicastAddress(address: string): AddressInfo | { readonly problem: string } {
  if (address.length > 64)
    return {
      problem: `${JSON.stringify(address.slice(0, 64))}… (${address.length} characters) is not an IPv4 or IPv6 address`,
    };
  if (address.includes('%'))
    return {
      problem: `"${address}" has a zone ID (%...): use a global or unique-local address, not a link-local one with its interface`,
    };
  const family = isIP(address);
  if (family === 0) return { problem: `"${address}" is not an IPv4 or IPv6 address` };
  const canonical = canonicalAddress(address);
  const v4 = family === 4 || !canonical.includes(':') ? canonical : undefined;
  if (v4 !== undefined) {
    const first = Number(v4.split('.')[0]);
    if (v4 === '0.0.0.0')
      return { problem: `${address} is the unspecified address ("any"), not a host` };
    if (v4 === '255.255.255.255')
      return { problem: `${address} is the limited broadcast address, not a host` };
    if (first >= 224 && first <= 239)
      return { problem: `${address} is a multicast address (224.0.0.0/4), not a host` };
    return { family: family === 6 ? 6 : 4, canonical, isLoopback: first === 127 };
  }
  if (canonical === '::')
    return { problem: `${address} is the unspecified address ("any"), not a host` };
  if (canonical.startsWith('ff'))
    return { problem: `${address} is a multicast address (ff00::/8), not a host` };
  return { family: 6, canonical, isLoopback: canonical === '::1' };
}

/** The canonical spelling of a valid IP address (see `AddressInfo.canonical`). */
export function canonicalAddress(address: string): string {
  if (isIP(address) !== 6 || address.includes('%')) return address; // zone IDs are refused, not compared
  // WHATWG URL host serialisation is RFC 5952's: lower case, longest zero run compressed.
  const h = new URL(`http://[${address}]/`).hostname.slice(1, -1);
  const mapped = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(h);
  if (!mapped) return h;
  const hi = parseInt(mapped[1]!, 16);
  const lo = parseInt(mapped[2]!, 16);
  return `${hi >> 8}.${hi & 0xff}.${lo >> 8}.${lo & 0xff}`;
}
