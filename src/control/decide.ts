/**
 * The one decision function: "which server will this client get?". Every data plane uses it
 * (the kernel plane by rendering the same Maglev table and hash into nftables), and so do the
 * `which` command and the status API, so the question has one answer.
 */
import type { Candidate } from '../balancer/balancer.js';
import { ikeSpiKey, isSpiAffinity, sourceIpKey } from '../balancer/affinity.js';
import { slotOf } from '../balancer/jhash.js';
import type { ServiceSnapshot } from './snapshot.js';

export interface ClientIdentity {
  /** The client's source address as the balancer sees it (after any NAT in front of it). */
  readonly address: string;
  /** The IKE initiator SPI (8 bytes), for `affinity: ike-spi`. */
  readonly spi?: Uint8Array;
  /** Another affinity key (e.g. a TLS session id), used as is when given. */
  readonly key?: Uint8Array;
  /**
   * Names of the servers that hold live NAT-T flows from this client address (the kernel's
   * `peer_<server>` sets, the relay's index). With `affinity: ike-spi`, a new IKE SA from an
   * address whose flows are all on one server joins it: its IKE_AUTH and ESP will arrive on
   * the client's existing NAT-T flow, which reaches that server only (Always On VPN device +
   * user tunnels). Several servers (a shared, carrier-grade NAT address) or none: by SPI.
   */
  readonly natTServers?: readonly string[];
  /**
   * How many live NAT-T flows (client address:port) come from this address, on all servers
   * (the kernel's `natt_flows` / `natt_shared` sets, the relay's index); unknown: one. One
   * device has one, however many tunnels it runs (an Always On VPN client's device and user
   * tunnels share it); two or more are several devices behind one NAT (a carrier-grade NAT):
   * their new SAs are placed by SPI, so that they spread even while all sit on one server.
   */
  readonly natTFlows?: number;
}

export interface Decision {
  readonly backend: Candidate | undefined;
  /** What was hashed: `ike-spi`, `source-ip` or `session`; `natt-flow`: joined the server of the client's NAT-T flows. */
  readonly keyKind: 'ike-spi' | 'source-ip' | 'session' | 'natt-flow';
  readonly key: Uint8Array;
  /** The Maglev slot, for consistent methods (the same slot number as in the kernel map). */
  readonly slot?: number;
}

/**
 * The server a new IKE SA joins because the client address's NAT-T flows are all on it
 * (`affinity: ike-spi` only), if that server is still in the service; a draining one included:
 * the client's flow reaches it whatever the balancer decides.
 */
function natTFlowServer(s: ServiceSnapshot, client: ClientIdentity): Candidate | undefined {
  if (s.kind !== 'ikev2' || s.service.affinity !== 'ike-spi' || client.key) return undefined;
  const names = client.natTServers ?? [];
  if (names.length !== 1 || (client.natTFlows ?? 1) > 1) return undefined;
  const b = s.backends.find((x) => x.name === names[0]);
  if (!b || b.state === 'down' || b.state === 'disabled') return undefined;
  return (
    s.candidates.find((c) => c.name === b.name) ?? { name: b.name, address: b.address, weight: 0 }
  );
}

/** Builds the affinity key a service uses for a client. */
export function affinityKeyOf(
  s: ServiceSnapshot,
  client: ClientIdentity,
): Pick<Decision, 'key' | 'keyKind'> {
  if (client.key) return { key: client.key, keyKind: 'session' };
  if (s.kind === 'ikev2' && isSpiAffinity(s.service.affinity) && client.spi) {
    return { key: ikeSpiKey(client.spi), keyKind: 'ike-spi' };
  }
  return { key: sourceIpKey(client.address), keyKind: 'source-ip' };
}

/** Decides the backend for a new client of a service, from the service's current snapshot. */
export function decide(s: ServiceSnapshot, client: ClientIdentity): Decision {
  const joined = natTFlowServer(s, client);
  if (joined) return { backend: joined, key: sourceIpKey(client.address), keyKind: 'natt-flow' };
  const { key, keyKind } = affinityKeyOf(s, client);
  const backend = s.balancer.pick(key);
  const seed = s.service.hashSeed;
  return s.balancer.isConsistent
    ? { backend, key, keyKind, slot: slotOf(key, seed) }
    : { backend, key, keyKind };
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

export function whichAnswer(
  s: ServiceSnapshot,
  address: string,
  spi?: Uint8Array,
  natTServers?: readonly string[],
  natTFlows?: number,
): WhichAnswer {
  const client = {
    address,
    ...(spi ? { spi } : {}),
    ...(natTServers ? { natTServers } : {}),
    ...(natTFlows !== undefined ? { natTFlows } : {}),
  };
  if (
    s.kind === 'ikev2' &&
    isSpiAffinity(s.service.affinity) &&
    !spi &&
    natTFlowServer(s, client) === undefined
  ) {
    const joins =
      s.service.affinity === 'ike-spi'
        ? "; a new IKE SA from an address with one NAT-T flow (one device) joins that flow's server (name it with --natt-servers, and the address's live NAT-T flows with --natt-flows; the kernel keeps them in the peer_<server> and natt_shared sets)"
        : '';
    return {
      service: s.name,
      backend: null,
      address: null,
      keyKind: 'ike-spi',
      slot: null,
      note: `affinity ${s.service.affinity}: each IKE SA of this client is placed by its initiator SPI${joins}; pass the SPI (--spi) to get the answer`,
    };
  }
  const d = decide(s, client);
  const note =
    d.keyKind === 'natt-flow'
      ? `the client's NAT-T flows are all on ${d.backend?.name}: a new IKE SA joins them there (its IKE_AUTH and ESP share that flow)`
      : natTServers && natTServers.length > 1
        ? `the client's NAT-T flows are on several servers (a shared NAT address): placed by SPI`
        : natTServers && natTServers.length === 1 && (natTFlows ?? 1) > 1
          ? `the address has ${natTFlows} live NAT-T flows (several devices behind one NAT): placed by SPI`
          : undefined;
  return {
    service: s.name,
    backend: d.backend?.name ?? null,
    address: d.backend?.address ?? null,
    keyKind: d.keyKind,
    slot: d.slot ?? null,
    ...(note ? { note } : {}),
  };
}
