/**
 * The configuration check behind reply NAT (dataplane/kernel/reply-nat.ts), shared by `bgp:` and
 * `ha:`.
 */
import { isIP } from 'node:net';
import { canonicalAddress } from './address-rules.js';
import { arr, isObj } from './raw-shape.js';
import type { AddIssue } from './semantic-checks.js';

/**
 * Reply NAT gives a server's packet from port P the address of the service it serves: a server
 * address and port that two transparent IKEv2 services with different virtual IPs share would
 * leave the node guessing which one.
 */
export function checkReplyNatAmbiguity(
  raw: Record<string, unknown>,
  add: AddIssue,
  option: 'bgp.replyNat' | 'ha.replyNat',
): void {
  const services = isObj(raw.services) ? raw.services : {};
  const pools = isObj(raw.pools) ? raw.pools : {};
  const owner = new Map<string, { vip: string; i: number }>();
  arr(services.ikev2).forEach((s, i) => {
    if (
      !isObj(s) ||
      s.nat === 'full' ||
      s.dataplane === 'userspace' ||
      typeof s.virtualIp !== 'string' ||
      typeof s.pool !== 'string'
    )
      return;
    const pool = pools[s.pool];
    const vip = canonicalAddress(s.virtualIp);
    const ports = [
      typeof s.backendIkePort === 'number' ? s.backendIkePort : 500,
      typeof s.backendNatTPort === 'number' ? s.backendNatTPort : 4500,
    ];
    for (const b of isObj(pool) ? arr(pool.backends) : []) {
      if (!isObj(b) || typeof b.address !== 'string' || isIP(b.address) === 0) continue;
      for (const port of ports) {
        const key = `${canonicalAddress(b.address)} ${port}`;
        const prev = owner.get(key);
        if (prev && prev.vip !== vip) {
          add(
            'error',
            ['services', 'ikev2', i, 'pool'],
            `server ${b.address} port ${port} also serves services.ikev2[${prev.i}] (${prev.vip}): with ${option} a node cannot tell which virtual IP its packets answer for (give the server one address per service, or set ${option}: false)`,
          );
          return;
        }
        owner.set(key, { vip, i });
      }
    }
  });
}
