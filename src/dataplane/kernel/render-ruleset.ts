/**
 * The pure renderer of the kernel IKEv2 data plane: service + backends → nftables ruleset text.
 *
 * One table per service and address family (`table ip <table>` or `table ip6 <table>`, named by
 * `service.table`): a service has one virtual IP, hence one family, and a per-family table keeps
 * `dnat to`, `jhash ip saddr` and the map's `ip daddr` / `ip6 daddr` types unambiguous (an `inet`
 * table would need `dnat ip to` / `dnat ip6 to` and family-split maps for the same result).
 *
 * What the table does (DESIGN.md §4, verified with nftables 1.0.6):
 * - `dnat_in` (nat prerouting, only a flow's first packet): IKE on the IKE port is hashed on its
 *   initiator SPI (`@th,64,64`: UDP header 8 bytes, then RFC 7296 §3.1 SPIi) — or on the source
 *   address in `source-ip` mode — into `slots`, the 65537-slot Maglev map, and DNATed to the
 *   slot's server. On the NAT-T port, IKE behind the non-ESP marker (`@th,64,32 0`, RFC 3948 §2.2)
 *   is hashed on `@th,96,64`; anything else (ESP, NAT keepalives) that has no conntrack entry
 *   follows the client's pin (below) or is dropped and counted — never sent to a random server,
 *   which could only answer it with INVALID_SPI noise while the client's real server waits.
 * - `track` (filter forward, every packet): per-server packet/byte counters in both directions
 *   (one counter-map lookup each), after which ESP leaves the chain (but for a sampled one in
 *   ESP_SAMPLE), and, in `ike-spi` mode, the pins: each IKE packet on the NAT-T port refreshes
 *   `pin_<server>` with the client's `address . port` (timeout `persistenceTimeout`) and removes
 *   it from every other server's pin set. One set per server rather than one map
 *   `address . port : server`: nft 1.0.6 aborts on a packet-path map update with an IPv6
 *   concatenated key (netlink_linearize.c: "dreg < ctx->reg_low"), and a per-server set can be
 *   flushed in one command when its server goes down.
 * - Handshake integrity (`ike-spi` with both ports; docs/operations.md "Handshake integrity
 *   across failover"): a new conntrack entry is placed by the SPI of the packet that creates
 *   it, and a stale IKE packet of a dead server's SA (DPD or DELETE from the client's port
 *   4500) would create a 4500 entry that captures the client's next IKE_AUTH while its
 *   IKE_SA_INIT went elsewhere. So `track` records every IKE_SA_INIT request (RFC 7296 §1.2:
 *   exchange 34, SPIr 0) in `spi_<server>` of the server it really reached, refreshed by the
 *   SA's later IKE packets; `dnat_in` sends a new flow with a known SPI to that server before
 *   hashing (a map change between IKE_SA_INIT and IKE_AUTH cannot split the handshake), and
 *   drops (`ike_stale`) IKE packets whose SPI is in `spi_dead`, where the control plane moves
 *   the SPIs of a server that went down. Chosen over stateless IKE (no conntrack: full NAT and
 *   refragmentation need it) and over control-plane deletion of mismatched entries (one 4500
 *   flow may carry two live SAs): the kernel decides alone, ESP is untouched. A packet whose SA
 *   belongs to another server than its flow's is only counted (`ike_split`).
 * - Client placement (`ike-spi`, docs/balancing.md "Affinity"): one client NAT-T flow
 *   (address:port) reaches exactly one server — ESP on it follows conntrack, and its SPIs are
 *   chosen by the servers, invisible here — so every IKE SA that will share a client's 4500
 *   flow must start on that flow's server. An Always On VPN client's device and user tunnels
 *   do share it (one IKEEXT, one socket, one NAT mapping), and the user tunnel usually starts
 *   minutes later, when its IKE_SA_INIT on 500 makes a new conntrack entry. So `track` records
 *   in `peer_<server>` the client addresses whose 4500 flows go to that server (refreshed by
 *   IKE and NAT-keepalive packets in both directions and by one ESP packet in 32, timeout
 *   `flowTimeout`), and `dnat_in` sends a new SA from an address found in exactly one
 *   `peer_<server>` to that server, after the known-SPI rules and before the SPI hash — unless
 *   the address is shared: `natt_flows` records each client address . port of a NAT-T flow
 *   and `natt_addrs` its address (refreshed by the same packets that refresh `peer_<server>`),
 *   and an address that shows a second flow (another source port: several devices behind one
 *   NAT, a carrier-grade NAT or two laptops at home) is kept in `natt_shared` (timeout
 *   `flowTimeout`). One device has one NAT-T flow whatever number of tunnels it runs: an Always
 *   On VPN client's device and user tunnels share it. A shared address, and an address in
 *   several `peer_<server>` sets, gets its new SAs hashed by SPI (they keep spreading), and a
 *   second SA that missed its client's
 *   server is learnt: its IKE_AUTH reaches the flow's server X with an SPI that did not start
 *   there, `track` adds the address to `learn_<X>` (timeout LEARN_TIMEOUT_S), and the client's
 *   retry is sent to X — when X is the only server learnt for the address (several clients of
 *   one address that missed at once cannot be told apart: their retries are hashed afresh). A retry must be a new placement, not a stale entry's: port-500 flows
 *   get a short conntrack timeout (IKE_PORT_TIMEOUT_S; the known-SPI rules keep any later
 *   packet of an SA on its server, so nothing needs the entry longer). `ike-spi-hash` is the
 *   plain SPI hash without these sets.
 * - `snat_out` (nat postrouting, `nat: full` only): SNAT to the pool, spread by
 *   `jhash <saddr> mod N` so that a client's 500 and 4500 flows share one source address, or
 *   masquerade when no pool is configured.
 * - Conntrack timeouts: the first rule of `dnat_in` attaches the `ct timeout` object
 *   `udp_<unreplied>_<replied>` to each new flow of the service, so that an idle tunnel's 4500
 *   entry lives `flowTimeout` whatever the host's UDP conntrack sysctls say. It must run after
 *   conntrack created the (still unconfirmed) entry: nft_ct.c (nft_ct_timeout_obj_eval) ignores
 *   packets without an entry or with a confirmed one, so a chain at priority raw (-300, before
 *   conntrack) silently does nothing; the nat prerouting chain sees exactly the new flows.
 * - SNAT cap (`nat: full` with a pool): new flows to the servers' NAT-T port are counted per
 *   (pool address, server) with `ct count` in `sas_<i>` (one set per pool address, keyed by the
 *   server) and dropped above `snat.maxSasPerAddress` (counter `snat_exhausted`). The pool address
 *   of a client is `jhash <saddr> mod N`, the same expression `snat_out` uses, so the count is
 *   exact per pair. Each tunnel holds one 4500 flow for its lifetime (NAT-T keepalives), so live
 *   4500 entries are the pair's IKE SAs.
 *
 * The 65537 slot elements are rendered separately (`renderSlotElements`) so that the structure
 * stays readable in golden files and the map can be updated slot by slot.
 */
import type { Ikev2Service } from '../../config/types.js';
import { MAGLEV_TABLE_SIZE } from '../../balancer/maglev/table-size.js';
import { isSpiAffinity } from '../../balancer/affinity.js';

/** nftables family of a service's table. */
export type NftFamily = 'ip' | 'ip6';

/** A server of the service's pool as the ruleset names it. */
export interface RulesetBackend {
  readonly name: string;
  readonly address: string;
  /** nft-safe identifier used in object names (`pin_<id>`, `b_<id>_in`). */
  readonly id: string;
}

/** Names of the objects the renderer creates; shared with the applier and the status reader. */
export const NFT_OBJECTS = Object.freeze({
  slotsMap: 'slots',
  dnatChain: 'dnat_in',
  trackChain: 'track',
  snatChain: 'snat_out',
  ikeUnrouted: 'ike_unrouted',
  nattUnrouted: 'natt_unrouted',
  snatExhausted: 'snat_exhausted',
  spiDeadSet: 'spi_dead',
  ikeStale: 'ike_stale',
  ikeSplit: 'ike_split',
  nattFlowsSet: 'natt_flows',
  nattAddrsSet: 'natt_addrs',
  sharedSet: 'natt_shared',
});

/** Seconds `natt_flows` outlives `natt_addrs`, so that an address is never known without its flows. */
export const NATT_FLOWS_GRACE_S = 5;
/** Seconds a port-500 conntrack entry lives with `ike-spi` placement (a retry is then a new placement). */
export const IKE_PORT_TIMEOUT_S = 5;
/** Seconds an address stays in `learn_<server>` after a missed second SA (the client's retry must come within). */
export const LEARN_TIMEOUT_S = 60;
/** One ESP packet in ESP_SAMPLE refreshes its client's `peer_<server>` element (NAT-T keepalives only flow on idle tunnels). */
export const ESP_SAMPLE = 32;

/**
 * The IKE initiator SPI as two 32-bit halves, at the IKE port (UDP payload offset 0) and at the
 * NAT-T port (after the 4-byte non-ESP marker). RFC 7296 §3.1: the header starts with SPIi.
 * Two halves because a set key made of one 64-bit raw payload is not a type nft can declare;
 * the concatenation of two 32-bit fields is (verified with nft 1.0.6).
 */
const SPI_AT_IKE_PORT = '@th,64,32 . @th,96,32';
const SPI_AT_NATT_PORT = '@th,96,32 . @th,128,32';
/**
 * A datagram long enough to carry the initiator SPI (UDP header 8 octets, then SPIi 8; on the
 * NAT-T port after the 4-octet non-ESP marker). The hash rules cannot load a shorter one and
 * it ends unrouted; the rules that place by the source address (peer and learn sets) require
 * the same, so that a truncated datagram from an address with a tunnel is dropped and counted
 * like any other, not forwarded to that tunnel's server.
 */
const FULL_SPI_AT_IKE_PORT = 'udp length >= 16';
const FULL_SPI_AT_NATT_PORT = 'udp length >= 20';
/** RFC 7296 §3.1 exchange type (IKE header byte 18), at each port. */
const EXCHANGE_AT_IKE_PORT = '@th,208,8';
const EXCHANGE_AT_NATT_PORT = '@th,240,8';
/** RFC 7296 §3.1 responder SPI (header bytes 8–15) at the IKE port: 0 in an IKE_SA_INIT request. */
const SPI_R_AT_IKE_PORT = '@th,128,64';
/** RFC 7296 §3.2: exchange type 34, IKE_SA_INIT; 35, IKE_AUTH. */
const IKE_SA_INIT = 34;
const IKE_AUTH = 35;

/**
 * Whether the service gets the handshake-integrity objects (`spi_<id>`, `spi_dead`): an SPI
 * affinity (`ike-spi`, `ike-spi-hash`) with both ports. With `source-ip` both ports hash the
 * same address, so a stale packet cannot send a handshake's two halves to different servers.
 */
export function hasSpiSets(
  service: Pick<Ikev2Service, 'affinity' | 'ikePort' | 'natTPort'>,
): boolean {
  return isSpiAffinity(service.affinity) && service.ikePort !== 0 && service.natTPort !== 0;
}

/**
 * Whether the service gets the client-placement sets (`peer_<id>`, `learn_<id>`, `natt_count`,
 * `natt_shared`): `ike-spi`
 * with both ports (`ike-spi-hash` is the plain SPI hash; `source-ip` needs none).
 */
export function hasPeerSets(
  service: Pick<Ikev2Service, 'affinity' | 'ikePort' | 'natTPort'>,
): boolean {
  return service.affinity === 'ike-spi' && service.ikePort !== 0 && service.natTPort !== 0;
}

/** `peer_<id>`: client addresses whose NAT-T flows go to one server. */
export function peerSetName(id: string): string {
  return `peer_${id}`;
}

/** `learn_<id>`: shared (CGNAT) addresses whose last new SA missed that server, their NAT-T flow's. */
export function learnSetName(id: string): string {
  return `learn_${id}`;
}

/** `spi_<id>`: the IKE SAs (initiator SPIs) whose IKE_SA_INIT went to one server. */
export function spiSetName(id: string): string {
  return `spi_${id}`;
}

/** UDP conntrack timeouts (seconds) the service's flows get, for the `ct timeout` object. */
export interface UdpTimeoutPolicy {
  /** Before the server answered: the kernel's default (nf_conntrack_udp_timeout, 30 s), capped by flowTimeout. */
  readonly unreplied: number;
  /** Once answered (the kernel's "stream" state): `flowTimeout`. */
  readonly replied: number;
}

export function udpTimeoutPolicy(service: Pick<Ikev2Service, 'flowTimeout'>): UdpTimeoutPolicy {
  const replied = seconds(service.flowTimeout);
  return { unreplied: Math.min(30, replied), replied };
}

/**
 * The IKE port's timeouts with `ike-spi` placement: short, so that a client's retry after a
 * failed handshake is placed afresh (a new SPI, the learn sets) instead of following the entry
 * of its failed attempt; a port-500 flow carries one IKE_SA_INIT exchange, and any later
 * packet of its SA finds its server through `spi_<server>`.
 */
export function ikePortTimeoutPolicy(
  service: Pick<Ikev2Service, 'flowTimeout' | 'affinity' | 'ikePort' | 'natTPort'>,
): UdpTimeoutPolicy {
  if (!hasPeerSets(service)) return udpTimeoutPolicy(service);
  const t = Math.min(IKE_PORT_TIMEOUT_S, seconds(service.flowTimeout));
  return { unreplied: t, replied: t };
}

/** The `ct timeout` object name of a policy. */
function policyName(p: UdpTimeoutPolicy): string {
  return `udp_${p.unreplied}_${p.replied}`;
}

/**
 * Name of the service's `ct timeout` object (NAT-T port, and IKE port unless it has its own);
 * it carries its values so that a configuration change creates a new object (nft keeps an
 * existing object's policy on re-declaration).
 */
export function ctTimeoutName(service: Pick<Ikev2Service, 'flowTimeout'>): string {
  return policyName(udpTimeoutPolicy(service));
}

/** Every `ct timeout` object the service's table declares. */
export function ctTimeoutNames(
  service: Pick<Ikev2Service, 'flowTimeout' | 'affinity' | 'ikePort' | 'natTPort'>,
): string[] {
  return [...new Set([ctTimeoutName(service), policyName(ikePortTimeoutPolicy(service))])];
}

/** `sas_<i>`: the `ct count` set of pool address number `i` (keyed by server). */
export function sasSetName(index: number): string {
  return `sas_${index}`;
}

/** Whether the SNAT cap is rendered: full NAT with a pool (masquerade has no address to count on). */
export function hasSnatCap(service: Ikev2Service): boolean {
  return (
    service.nat === 'full' &&
    service.natTPort !== 0 &&
    snatAddresses(service).length > 0 &&
    service.snat !== undefined
  );
}

/** The chains a service's table contains, in creation order, with their base-chain headers. */
export interface ChainSpec {
  readonly name: string;
  readonly header: string;
}

export function nftFamilyOf(service: Pick<Ikev2Service, 'family'>): NftFamily {
  return service.family === 6 ? 'ip6' : 'ip';
}

/** `pin_<id>`: the pin set of one server. */
export function pinSetName(id: string): string {
  return `pin_${id}`;
}

/** `b_<id>_in` / `b_<id>_out`: a server's named counters (towards it / back from it). */
export function counterName(id: string, direction: 'in' | 'out'): string {
  return `b_${id}_${direction}`;
}

/**
 * Assigns each backend an nft identifier: its name with characters nft does not accept in an
 * unquoted identifier replaced by `_`, and a numeric suffix on collision (`rras-1` / `rras_1`).
 * Backends are processed in name order so the ids do not depend on configuration order.
 */
export function assignBackendIds(
  backends: readonly { name: string; address: string }[],
): RulesetBackend[] {
  const used = new Set<string>();
  return [...backends]
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
    .map((b) => {
      const base = b.name.replace(/[^a-zA-Z0-9_]/g, '_');
      let id = base;
      for (let n = 2; used.has(id); n++) id = `${base}_${n}`;
      used.add(id);
      return { name: b.name, address: b.address, id };
    });
}

/** An address as `dnat to` wants it with a port: `a.b.c.d:port` or `[v6]:port`. */
function hostPort(family: NftFamily, address: string, port: number): string {
  return family === 'ip6' ? `[${address}]:${port}` : `${address}:${port}`;
}

function seedHex(seed: number): string {
  return `0x${(seed >>> 0).toString(16).padStart(8, '0')}`;
}

/** A duration in whole seconds as nftables timeouts take it (at least 1). */
export function seconds(ms: number): number {
  return Math.max(1, Math.ceil(ms / 1000));
}

/** The chains of a service's table with their hooks (`full` NAT adds `snat_out`). */
export function chainSpecs(service: Pick<Ikev2Service, 'nat'>): ChainSpec[] {
  const chains: ChainSpec[] = [
    {
      name: NFT_OBJECTS.dnatChain,
      header: 'type nat hook prerouting priority dstnat; policy accept;',
    },
    {
      name: NFT_OBJECTS.trackChain,
      header: 'type filter hook forward priority filter; policy accept;',
    },
  ];
  if (service.nat === 'full')
    chains.push({
      name: NFT_OBJECTS.snatChain,
      header: 'type nat hook postrouting priority srcnat; policy accept;',
    });
  return chains;
}

/** Everything the renderer needs; `backends` are every backend of the pool in the service's family. */
export interface RulesetInput {
  readonly service: Ikev2Service;
  readonly backends: readonly RulesetBackend[];
}

/**
 * What the emitters of one service's table share: the service, its servers, the family, the
 * affinity's switches and the line writer.
 */
interface Emit {
  readonly service: Ikev2Service;
  readonly backends: readonly RulesetBackend[];
  readonly f: NftFamily;
  readonly vip: string;
  readonly seed: string;
  readonly size: number;
  readonly isSpi: boolean;
  readonly peers: boolean;
  readonly spiSets: boolean;
  readonly line: (depth: number, text: string) => void;
}

/**
 * Renders the table's structure (maps, sets, counters, chains with their rules) without the
 * slot elements. Applying it to an existing table re-declares objects idempotently; the chains
 * are flushed first in the same transaction (see `renderTransaction`). One emitter per kind of
 * nftables object, in the order the table declares them.
 */
export function renderRuleset(input: RulesetInput): string {
  const { service, backends } = input;
  const out: string[] = [];
  const e: Emit = {
    service,
    backends,
    f: nftFamilyOf(service),
    vip: service.virtualIp,
    seed: seedHex(service.hashSeed),
    size: MAGLEV_TABLE_SIZE,
    isSpi: isSpiAffinity(service.affinity),
    peers: hasPeerSets(service),
    spiSets: hasSpiSets(service),
    line: (depth, text) => out.push(`${'\t'.repeat(depth)}${text}`),
  };
  e.line(0, `table ${e.f} ${service.table} {`);
  emitSlotsMap(e);
  emitPinSets(e);
  emitSpiSets(e);
  emitPeerSets(e);
  emitCounters(e);
  emitTimeouts(e);
  emitSnatCap(e);
  emitDnatChain(e);
  emitTrackChain(e);
  emitSnatChain(e);
  e.line(0, '}');
  return `${out.join('\n')}\n`;
}

/** The Maglev slot map (its 65537 elements come from `renderSlotElements`). */
function emitSlotsMap(e: Emit): void {
  const { service, f, line, size } = e;
  line(1, `map ${NFT_OBJECTS.slotsMap} {`);
  line(2, `typeof numgen inc mod ${size} : ${f} daddr`);
  line(2, `comment "vpnlb ${service.name}: Maglev slot -> server"`);
  line(1, '}');
}

/** `ike-spi`: the NAT-T flows pinned to each server. */
function emitPinSets(e: Emit): void {
  const { service, backends, f, line, isSpi } = e;
  if (isSpi) {
    for (const b of backends) {
      line(1, `set ${pinSetName(b.id)} {`);
      line(2, `typeof ${f} saddr . udp sport`);
      line(2, `size ${service.maxFlows}`);
      line(2, 'flags dynamic,timeout');
      line(2, `timeout ${seconds(service.persistenceTimeout)}s`);
      line(2, `comment "vpnlb ${service.name}: NAT-T flows pinned to ${b.name}"`);
      line(1, '}');
    }
  }
}

/** Handshake integrity: the SAs started on each server, and those of lost servers. */
function emitSpiSets(e: Emit): void {
  const { service, backends, line, spiSets } = e;
  if (spiSets) {
    for (const b of backends) {
      line(1, `set ${spiSetName(b.id)} {`);
      line(2, `typeof ${SPI_AT_IKE_PORT}`);
      line(2, `size ${service.maxFlows}`);
      line(2, 'flags dynamic,timeout');
      line(2, `timeout ${seconds(service.persistenceTimeout)}s`);
      line(2, `comment "vpnlb ${service.name}: IKE SAs (initiator SPI) started on ${b.name}"`);
      line(1, '}');
    }
    line(1, `set ${NFT_OBJECTS.spiDeadSet} {`);
    line(2, `typeof ${SPI_AT_IKE_PORT}`);
    line(2, `size ${service.maxFlows}`);
    line(2, 'flags timeout');
    line(2, `timeout ${seconds(service.persistenceTimeout)}s`);
    line(2, `comment "vpnlb ${service.name}: IKE SAs of servers that went down or were disabled"`);
    line(1, '}');
  }
}

/** Client placement: addresses per server, NAT-T flows per address, shared addresses, learnt misses. */
function emitPeerSets(e: Emit): void {
  const { service, backends, f, line, peers } = e;
  if (peers) {
    for (const b of backends) {
      line(1, `set ${peerSetName(b.id)} {`);
      line(2, `typeof ${f} saddr`);
      line(2, `size ${service.maxFlows}`);
      line(2, 'flags dynamic,timeout');
      line(2, `timeout ${seconds(service.flowTimeout)}s`);
      line(2, `comment "vpnlb ${service.name}: client addresses with NAT-T flows on ${b.name}"`);
      line(1, '}');
    }
    // natt_flows outlives natt_addrs (refreshed together): an address never outlives its flows.
    line(1, `set ${NFT_OBJECTS.nattFlowsSet} {`);
    line(2, `typeof ${f} saddr . udp sport`);
    line(2, `size ${service.maxFlows}`);
    line(2, 'flags dynamic,timeout');
    line(2, `timeout ${seconds(service.flowTimeout) + NATT_FLOWS_GRACE_S}s`);
    line(2, `comment "vpnlb ${service.name}: client NAT-T flows (address . port) seen lately"`);
    line(1, '}');
    line(1, `set ${NFT_OBJECTS.nattAddrsSet} {`);
    line(2, `typeof ${f} saddr`);
    line(2, `size ${service.maxFlows}`);
    line(2, 'flags dynamic,timeout');
    line(2, `timeout ${seconds(service.flowTimeout)}s`);
    line(2, `comment "vpnlb ${service.name}: client addresses with a NAT-T flow seen lately"`);
    line(1, '}');
    line(1, `set ${NFT_OBJECTS.sharedSet} {`);
    line(2, `typeof ${f} saddr`);
    line(2, `size ${service.maxFlows}`);
    line(2, 'flags dynamic,timeout');
    line(2, `timeout ${seconds(service.flowTimeout)}s`);
    line(
      2,
      `comment "vpnlb ${service.name}: client addresses with two or more live NAT-T flows (several devices behind one NAT)"`,
    );
    line(1, '}');
    for (const b of backends) {
      line(1, `set ${learnSetName(b.id)} {`);
      line(2, `typeof ${f} saddr`);
      line(2, `size ${service.maxFlows}`);
      line(2, 'flags dynamic,timeout');
      line(2, `timeout ${LEARN_TIMEOUT_S}s`);
      line(
        2,
        `comment "vpnlb ${service.name}: shared addresses whose last new IKE SA missed ${b.name}, their NAT-T flow's server"`,
      );
      line(1, '}');
    }
  }
}

/** Per-server traffic counters and the drop counters. */
function emitCounters(e: Emit): void {
  const { service, backends, line, spiSets } = e;
  for (const b of backends) {
    line(1, `counter ${counterName(b.id, 'in')} {`);
    line(2, `comment "vpnlb ${service.name}: client -> ${b.name}"`);
    line(1, '}');
    line(1, `counter ${counterName(b.id, 'out')} {`);
    line(2, `comment "vpnlb ${service.name}: ${b.name} -> client"`);
    line(1, '}');
  }
  line(1, `counter ${NFT_OBJECTS.ikeUnrouted} {`);
  line(2, 'comment "IKE-port packets dropped: too short for an SPI, or no server for their slot"');
  line(1, '}');
  line(1, `counter ${NFT_OBJECTS.nattUnrouted} {`);
  line(
    2,
    'comment "NAT-T packets dropped: no conntrack entry, not IKE, and no pin (or no server)"',
  );
  line(1, '}');
  if (spiSets) {
    line(1, `counter ${NFT_OBJECTS.ikeStale} {`);
    line(
      2,
      'comment "IKE packets of SAs whose server went down, dropped before they create a conntrack entry"',
    );
    line(1, '}');
    line(1, `counter ${NFT_OBJECTS.ikeSplit} {`);
    line(
      2,
      'comment "IKE packets on NAT-T forwarded to another server than their SA\'s IKE_SA_INIT (a 4500 flow shared by SAs of two servers)"',
    );
    line(1, '}');
  }
}

/** The service's conntrack timeout policies; a separate one for the IKE port when it differs. */
function timeoutPolicies(service: Ikev2Service): {
  natTPolicy: UdpTimeoutPolicy;
  ikePolicy: UdpTimeoutPolicy;
  hasIkeTimeout: boolean;
} {
  const natTPolicy = udpTimeoutPolicy(service);
  const ikePolicy = ikePortTimeoutPolicy(service);
  const hasIkeTimeout = policyName(ikePolicy) !== policyName(natTPolicy) && service.ikePort !== 0;
  return { natTPolicy, ikePolicy, hasIkeTimeout };
}

/** The conntrack timeout objects of the service's flows. */
function emitTimeouts(e: Emit): void {
  const { service, f, line } = e;
  const { natTPolicy, ikePolicy, hasIkeTimeout } = timeoutPolicies(service);
  const timeouts: [UdpTimeoutPolicy, string][] = [
    [
      natTPolicy,
      hasIkeTimeout ? 'conntrack timeouts of its NAT-T flows' : 'conntrack timeouts of its flows',
    ],
  ];
  if (hasIkeTimeout)
    timeouts.push([
      ikePolicy,
      'conntrack timeouts of its IKE-port flows (a retry is a new placement)',
    ]);
  for (const [policy, what] of timeouts) {
    line(1, `ct timeout ${policyName(policy)} {`);
    line(2, 'protocol udp');
    line(2, `l3proto ${f}`);
    line(2, `policy = { unreplied : ${policy.unreplied}, replied : ${policy.replied} }`);
    line(2, `comment "vpnlb ${service.name}: ${what}"`);
    line(1, '}');
  }
}

/** Full NAT with a pool: NAT-T flows per pool address and server, and the refusal counter. */
function emitSnatCap(e: Emit): void {
  const { service, backends, f, line } = e;
  const pool = snatAddresses(service);
  const isCapped = hasSnatCap(service);
  if (isCapped) {
    for (const [i, a] of pool.entries()) {
      line(1, `set ${sasSetName(i)} {`);
      line(2, `typeof ${f} daddr`);
      line(2, `size ${Math.max(backends.length, 1) * 4}`);
      line(2, 'flags dynamic');
      line(2, `comment "vpnlb ${service.name}: NAT-T flows from ${a}, counted per server"`);
      line(1, '}');
    }
    line(1, `counter ${NFT_OBJECTS.snatExhausted} {`);
    line(
      2,
      'comment "new NAT-T flows dropped: their SNAT address is at snat.maxSasPerAddress for that server"',
    );
    line(1, '}');
  }
}

/** `dnat_in`: the first packet of each flow. */
function emitDnatChain(e: Emit): void {
  const { service, backends, f, line, vip, seed, size, isSpi, peers, spiSets } = e;
  const dnat = chainSpecs(service)[0];
  const { ikePolicy, hasIkeTimeout } = timeoutPolicies(service);
  line(1, `chain ${dnat!.name} {`);
  line(2, dnat!.header);
  const match = (port: number) => `${f} daddr ${vip} udp dport ${port}`;
  if (hasIkeTimeout) {
    line(2, `${match(service.ikePort)} ct timeout set "${policyName(ikePolicy)}"`);
    if (service.natTPort !== 0)
      line(2, `${match(service.natTPort)} ct timeout set "${ctTimeoutName(service)}"`);
  } else {
    const ports = [service.ikePort, service.natTPort].filter((p) => p !== 0);
    if (ports.length > 0)
      line(
        2,
        `${f} daddr ${vip} udp dport ${ports.length === 1 ? ports[0] : `{ ${ports.join(', ')} }`} ct timeout set "${ctTimeoutName(service)}"`,
      );
  }
  // A new SA (unknown SPI) from an address with one device behind it whose NAT-T flows are all
  // on one server joins that server; a shared address that just missed one is sent to the
  // server it missed.
  const placeByPeer = (head: string, port: number) => {
    if (!peers) return;
    for (const b of backends) {
      const notElsewhere = backends
        .filter((o) => o !== b)
        .map((o) => ` ${f} saddr != @${peerSetName(o.id)}`)
        .join('');
      line(
        2,
        `${head} ${f} saddr @${peerSetName(b.id)}${notElsewhere} ${f} saddr != @${NFT_OBJECTS.sharedSet} dnat to ${hostPort(f, b.address, port)}`,
      );
    }
    // Learnt for one server only: several clients of the address missed at once, and the
    // address alone cannot tell whose retry this is — hashed like a first attempt. A learnt
    // miss serves one retry (deleted as it places it): kept for its whole timeout, it would
    // still be there when the site's next client misses on another server, and that client's
    // retry, its address now learnt for two servers, would be hashed afresh (measured: one
    // of three CGNAT clients missing one after the other never connected in 4 attempts).
    for (const b of backends) {
      const notElsewhere = backends
        .filter((o) => o !== b)
        .map((o) => ` ${f} saddr != @${learnSetName(o.id)}`)
        .join('');
      line(
        2,
        `${head} ${f} saddr @${learnSetName(b.id)}${notElsewhere} delete @${learnSetName(b.id)} { ${f} saddr } dnat to ${hostPort(f, b.address, port)}`,
      );
    }
  };
  const byAddress = `jhash ${f} saddr mod ${size} seed ${seed} map @${NFT_OBJECTS.slotsMap}`;
  if (service.ikePort !== 0) {
    const key = isSpi
      ? `jhash @th,64,64 mod ${size} seed ${seed} map @${NFT_OBJECTS.slotsMap}`
      : byAddress;
    if (spiSets) {
      // A known SA follows the server its IKE_SA_INIT went to, whatever the map says now; an SA
      // of a dead server is dropped (an IKE_SA_INIT retransmission is a new start: hashed).
      for (const b of backends)
        line(
          2,
          `${match(service.ikePort)} ${SPI_AT_IKE_PORT} @${spiSetName(b.id)} dnat to ${hostPort(f, b.address, service.backendIkePort)}`,
        );
      line(
        2,
        `${match(service.ikePort)} ${EXCHANGE_AT_IKE_PORT} != ${IKE_SA_INIT} ${SPI_AT_IKE_PORT} @${NFT_OBJECTS.spiDeadSet} counter name ${NFT_OBJECTS.ikeStale} drop`,
      );
    }
    placeByPeer(`${match(service.ikePort)} ${FULL_SPI_AT_IKE_PORT}`, service.backendIkePort);
    line(2, `${match(service.ikePort)} dnat to ${key} : ${service.backendIkePort}`);
    line(2, `${match(service.ikePort)} counter name ${NFT_OBJECTS.ikeUnrouted} drop`);
  }
  if (service.natTPort !== 0) {
    if (isSpi) {
      if (spiSets) {
        const ikeMsg = `${match(service.natTPort)} @th,64,32 0`;
        for (const b of backends)
          line(
            2,
            `${ikeMsg} ${SPI_AT_NATT_PORT} @${spiSetName(b.id)} dnat to ${hostPort(f, b.address, service.backendNatTPort)}`,
          );
        line(
          2,
          `${ikeMsg} ${EXCHANGE_AT_NATT_PORT} != ${IKE_SA_INIT} ${SPI_AT_NATT_PORT} @${NFT_OBJECTS.spiDeadSet} counter name ${NFT_OBJECTS.ikeStale} drop`,
        );
        placeByPeer(`${ikeMsg} ${FULL_SPI_AT_NATT_PORT}`, service.backendNatTPort);
      }
      line(
        2,
        `${match(service.natTPort)} @th,64,32 0 dnat to jhash @th,96,64 mod ${size} seed ${seed} map @${NFT_OBJECTS.slotsMap} : ${service.backendNatTPort}`,
      );
      for (const b of backends) {
        line(
          2,
          `${match(service.natTPort)} ${f} saddr . udp sport @${pinSetName(b.id)} dnat to ${hostPort(f, b.address, service.backendNatTPort)}`,
        );
      }
    } else {
      line(2, `${match(service.natTPort)} dnat to ${byAddress} : ${service.backendNatTPort}`);
    }
    line(2, `${match(service.natTPort)} counter name ${NFT_OBJECTS.nattUnrouted} drop`);
  }
  line(1, '}');
}

/** `track`: every forwarded packet of the service's flows. */
function emitTrackChain(e: Emit): void {
  const { service, backends, f, line, vip, seed, isSpi, peers, spiSets } = e;
  const track = chainSpecs(service)[1]!;
  line(1, `chain ${track.name} {`);
  line(2, track.header);
  const ours = `ct original ${f} daddr ${vip}`;
  const pool = snatAddresses(service);
  const isCapped = hasSnatCap(service);
  if (isCapped) {
    // First, so that a refused flow is neither counted as forwarded nor pinned. The pool index
    // is the very hash snat_out computes (same expression, modulus and seed).
    const cap = service.snat?.maxSasPerAddress ?? 0;
    for (let i = 0; i < pool.length; i++) {
      const which = pool.length > 1 ? ` jhash ${f} saddr mod ${pool.length} seed ${seed} ${i}` : '';
      line(
        2,
        `ct state new ${ours} udp dport ${service.backendNatTPort}${which} add @${sasSetName(i)} { ${f} daddr ct count over ${cap} } counter name ${NFT_OBJECTS.snatExhausted} drop`,
      );
    }
  }
  // Every packet of the service's flows passes here, ESP above all (the bulk of the traffic):
  // one counter lookup per direction instead of one rule per server, then ESP leaves the chain
  // at once, except a sample of the clients' (one in ESP_SAMPLE) that refreshes its address
  // below. Every further rule concerns IKE packets, NAT keepalives or new flows. (Measured: the
  // per-server rules walked by every ESP packet cost the kernel plane more than conntrack and
  // NAT together, docs/benchmarks.md.)
  const counters = (dir: 'in' | 'out') =>
    backends.map((b) => `${b.address} : "${counterName(b.id, dir)}"`).join(', ');
  if (backends.length > 0) {
    line(2, `ct direction original ${ours} counter name ${f} daddr map { ${counters('in')} }`);
    line(2, `ct direction reply ${ours} counter name ${f} saddr map { ${counters('out')} }`);
  }
  if ((isSpi || peers || spiSets) && service.natTPort !== 0) {
    const esp = '@th,64,32 != 0';
    line(
      2,
      `ct direction original ${ours} udp dport ${service.backendNatTPort} ${esp} numgen random mod ${ESP_SAMPLE} != 0 return`,
    );
    line(2, `ct direction reply ${ours} udp sport ${service.backendNatTPort} ${esp} return`);
  }
  // Last statements of a refresh rule: records the packet's NAT-T flow (address . port) and
  // its address. The `shared` rules below, evaluated first, mark an address shared when it
  // shows a flow (a source port) that is not recorded while the address is.
  const countFlow = (addr: string) =>
    ` update @${NFT_OBJECTS.nattFlowsSet} { ${addr} . udp sport } update @${NFT_OBJECTS.nattAddrsSet} { ${addr} }`;
  if (peers) {
    // Several devices behind one address (a carrier-grade NAT, two laptops at home): an IKE
    // packet or NAT keepalive of a NAT-T flow whose address is known with another flow. Two
    // set lookups, no per-flow walk; first in the chain, so the refresh rules below record the
    // flow only after it was compared. (The kernel's `ct count` counted one flow twice when its
    // entry was not yet confirmed: docs/operations.md.)
    const toNatT = `ct direction original ${ours} udp dport ${service.backendNatTPort}`;
    const isNew = `${f} saddr @${NFT_OBJECTS.nattAddrsSet} ${f} saddr . udp sport != @${NFT_OBJECTS.nattFlowsSet} update @${NFT_OBJECTS.sharedSet} { ${f} saddr }`;
    line(2, `${toNatT} @th,64,32 0 ${isNew}`);
    line(2, `${toNatT} udp length 9 ${isNew}`);
  }
  if (isSpi && service.natTPort !== 0) {
    for (const b of backends) {
      const key = `{ ${f} saddr . udp sport }`;
      const others = backends
        .filter((o) => o !== b)
        .map((o) => ` delete @${pinSetName(o.id)} ${key}`)
        .join('');
      const peer = peers
        ? ` update @${peerSetName(b.id)} { ${f} saddr }${countFlow(`${f} saddr`)}`
        : '';
      line(
        2,
        `ct direction original ${ours} ${f} daddr ${b.address} udp dport ${service.backendNatTPort} @th,64,32 0 update @${pinSetName(b.id)} ${key}${others}${peer}`,
      );
    }
  }
  if (peers) {
    // The rest of a NAT-T flow keeps its address in peer_<server>: NAT keepalives (RFC 3948
    // §2.3: one octet 0xFF, UDP length 9) and the server's IKE packets, which flow on idle
    // tunnels, and a sample of ESP (a busy tunnel sends no keepalives, and may send no IKE for
    // hours); sampled because ESP is the bulk of the traffic (docs/benchmarks.md).
    for (const b of backends) {
      const to = `ct direction original ${ours} ${f} daddr ${b.address} udp dport ${service.backendNatTPort}`;
      line(
        2,
        `${to} udp length 9 update @${peerSetName(b.id)} { ${f} saddr }${countFlow(`${f} saddr`)}`,
      );
      // ESP here is the sample the early return let through (IKE refreshes through its pin rule).
      line(
        2,
        `${to} @th,64,32 != 0 update @${peerSetName(b.id)} { ${f} saddr }${countFlow(`${f} saddr`)}`,
      );
      line(
        2,
        `ct direction reply ${ours} ${f} saddr ${b.address} udp sport ${service.backendNatTPort} @th,64,32 0 update @${peerSetName(b.id)} { ${f} daddr }`,
      );
    }
    // A missed second SA: an IKE_AUTH (RFC 7296 §1.2, exchange 35) on a flow to X whose
    // IKE_SA_INIT did not reach X. The client's retry (a new IKE_SA_INIT from this address) goes to X.
    for (const b of backends) {
      line(
        2,
        `ct direction original ${ours} ${f} daddr ${b.address} udp dport ${service.backendNatTPort} @th,64,32 0 ${EXCHANGE_AT_NATT_PORT} ${IKE_AUTH} ${SPI_AT_NATT_PORT} != @${spiSetName(b.id)} add @${learnSetName(b.id)} { ${f} saddr }`,
      );
    }
  }
  if (spiSets) {
    // Record each new SA where its IKE_SA_INIT request (SPIr 0) really went — by the map, or by
    // an existing conntrack entry of the client's 500 flow — and keep known SAs fresh with
    // their later IKE packets on either port. An SA lives in one server's set only.
    // Detection only: an IKE packet on NAT-T whose SA started on another server rides a 4500
    // flow (one client address and port) that conntrack already binds to this server — e.g. an
    // Always On VPN device tunnel and user tunnel behind one NAT mapping, or a reconnect while
    // the old tunnel's NAT mapping and entry live. One UDP flow can reach one server only, and
    // deleting the entry would break the SA that owns it, so the packet is counted, not moved.
    for (const b of backends) {
      line(
        2,
        `ct direction original ${ours} ${f} daddr != ${b.address} udp dport ${service.backendNatTPort} @th,64,32 0 ${SPI_AT_NATT_PORT} @${spiSetName(b.id)} counter name ${NFT_OBJECTS.ikeSplit}`,
      );
    }
    for (const b of backends) {
      const to = `ct direction original ${ours} ${f} daddr ${b.address}`;
      const others = (k: string) =>
        backends
          .filter((o) => o !== b)
          .map((o) => ` delete @${spiSetName(o.id)} { ${k} }`)
          .join('');
      line(
        2,
        `${to} udp dport ${service.backendIkePort} ${EXCHANGE_AT_IKE_PORT} ${IKE_SA_INIT} ${SPI_R_AT_IKE_PORT} 0 update @${spiSetName(b.id)} { ${SPI_AT_IKE_PORT} }${others(SPI_AT_IKE_PORT)}`,
      );
      line(
        2,
        `${to} udp dport ${service.backendIkePort} ${SPI_AT_IKE_PORT} @${spiSetName(b.id)} update @${spiSetName(b.id)} { ${SPI_AT_IKE_PORT} }`,
      );
      if (!peers) {
        line(
          2,
          `${to} udp dport ${service.backendNatTPort} @th,64,32 0 ${SPI_AT_NATT_PORT} @${spiSetName(b.id)} update @${spiSetName(b.id)} { ${SPI_AT_NATT_PORT} }`,
        );
        continue;
      }
      // ike-spi: also learn the SAs an IKE_SA_INIT did not announce — an IKE SA rekeyed with
      // CREATE_CHILD_SA (RFC 7296 §1.3.2: its new SPIs travel encrypted) shows its SPI in its
      // first own packet, in either direction, and a later MOBIKE update from a new address
      // (RFC 4555 §3.5) must find it — unless the SPI belongs to another server (a split SA).
      const elsewhere = backends
        .filter((o) => o !== b)
        .map((o) => ` ${SPI_AT_NATT_PORT} != @${spiSetName(o.id)}`)
        .join('');
      line(
        2,
        `${to} udp dport ${service.backendNatTPort} @th,64,32 0${elsewhere} update @${spiSetName(b.id)} { ${SPI_AT_NATT_PORT} }`,
      );
      line(
        2,
        `ct direction reply ${ours} ${f} saddr ${b.address} udp sport ${service.backendNatTPort} @th,64,32 0${elsewhere} update @${spiSetName(b.id)} { ${SPI_AT_NATT_PORT} }`,
      );
    }
  }
  line(1, '}');
}

/** `snat_out`: full NAT only. */
function emitSnatChain(e: Emit): void {
  const { service, f, vip, line } = e;
  const snat = chainSpecs(service)[2];
  if (snat) {
    line(1, `chain ${snat.name} {`);
    line(2, snat.header);
    line(2, `ct original ${f} daddr ${vip} ${snatStatement(service, f)}`);
    line(1, '}');
  }
}

/** The SNAT pool addresses usable by this service (same family as the virtual IP). */
export function snatAddresses(service: Ikev2Service): string[] {
  const want = service.family === 6;
  return (service.snat?.addresses ?? []).filter((a) => a.includes(':') === want);
}

function snatStatement(service: Ikev2Service, f: NftFamily): string {
  const pool = snatAddresses(service);
  if (pool.length === 0) return 'masquerade';
  if (pool.length === 1) return `snat to ${pool[0]}`;
  // Hash the client address so that its 500 and 4500 flows leave from one pool address
  // (the server matches them as one peer), and clients spread evenly over the pool.
  const entries = pool.map((a, i) => `${i} : ${a}`).join(', ');
  return `snat to jhash ${f} saddr mod ${pool.length} seed ${seedHex(service.hashSeed)} map { ${entries} }`;
}

/**
 * `add element` / `delete element` lines for the slot map, in chunks of `chunk` elements per
 * line (one transaction either way; shorter lines keep nft's error messages readable).
 *
 * @param slots the slots to write; `addresses[slot]` is the server address (must be defined).
 */
export function renderSlotElements(
  op: 'add' | 'delete',
  family: NftFamily,
  table: string,
  slots: readonly number[],
  addresses: readonly (string | undefined)[],
  chunk = 4096,
): string {
  const lines: string[] = [];
  for (let i = 0; i < slots.length; i += chunk) {
    const part = slots.slice(i, i + chunk);
    const items = op === 'add' ? part.map((s) => `${s} : ${addresses[s] ?? ''}`) : part.map(String);
    lines.push(`${op} element ${family} ${table} ${NFT_OBJECTS.slotsMap} { ${items.join(', ')} }`);
  }
  return lines.length > 0 ? `${lines.join('\n')}\n` : '';
}
