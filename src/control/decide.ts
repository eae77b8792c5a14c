/**
 * The one decision function: "which server will this client get?". Every data plane uses it
 * (the kernel plane by rendering the same Maglev table and hash into nftables), and so do the
 * `which` command and the status API, so the question has one answer.
 */
import type { Candidate } from '../balancer/balancer.js';
import { ikeSpiKey, sourceIpKey } from '../balancer/affinity.js';
import { slotOf } from '../balancer/jhash.js';
import type { ServiceSnapshot } from './snapshot.js';

export interface ClientIdentity {
  /** The client's source address as the balancer sees it (after any NAT in front of it). */
  readonly address: string;
  /** The IKE initiator SPI (8 bytes), for `affinity: ike-spi`. */
  readonly spi?: Uint8Array;
  /** Another affinity key (e.g. a TLS session id), used as is when given. */
  readonly key?: Uint8Array;
}

export interface Decision {
  readonly backend: Candidate | undefined;
  /** What was hashed: `ike-spi`, `source-ip` or `session`. */
  readonly keyKind: 'ike-spi' | 'source-ip' | 'session';
  readonly key: Uint8Array;
  /** The Maglev slot, for consistent methods (the same slot number as in the kernel map). */
  readonly slot?: number;
}

/** Builds the affinity key a service uses for a client. */
export function affinityKeyOf(s: ServiceSnapshot, client: ClientIdentity): Pick<Decision, 'key' | 'keyKind'> {
  if (client.key) return { key: client.key, keyKind: 'session' };
  if (s.kind === 'ikev2' && s.service.affinity === 'ike-spi' && client.spi) {
    return { key: ikeSpiKey(client.spi), keyKind: 'ike-spi' };
  }
  return { key: sourceIpKey(client.address), keyKind: 'source-ip' };
}

/** Decides the backend for a new client of a service, from the service's current snapshot. */
export function decide(s: ServiceSnapshot, client: ClientIdentity): Decision {
  const { key, keyKind } = affinityKeyOf(s, client);
  const backend = s.balancer.pick(key);
  const seed = s.kind === 'ikev2' ? s.service.hashSeed : 0;
  return s.balancer.isConsistent ? { backend, key, keyKind, slot: slotOf(key, seed) } : { backend, key, keyKind };
}

/** One line of a "which" answer (CLI and admin API). */
export interface WhichAnswer {
  readonly service: string;
  readonly backend: string | null;
  readonly address: string | null;
  readonly keyKind: Decision['keyKind'];
  readonly slot: number | null;
  /** Set when the answer cannot be given from the address alone (ike-spi affinity without --spi). */
  readonly note?: string;
}

export function whichAnswer(s: ServiceSnapshot, address: string, spi?: Uint8Array): WhichAnswer {
  if (s.kind === 'ikev2' && s.service.affinity === 'ike-spi' && !spi) {
    return {
      service: s.name,
      backend: null,
      address: null,
      keyKind: 'ike-spi',
      slot: null,
      note: 'affinity ike-spi: each IKE SA of this client is placed by its initiator SPI; pass the SPI (--spi) to get the answer',
    };
  }
  const d = decide(s, { address, ...(spi ? { spi } : {}) });
  return { service: s.name, backend: d.backend?.name ?? null, address: d.backend?.address ?? null, keyKind: d.keyKind, slot: d.slot ?? null };
}
