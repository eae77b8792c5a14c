/**
 * The pure renderer of the kernel SSTP passthrough plane (`dataplane: kernel` on an `sstp`
 * service): service + backends → nftables ruleset text, the TCP sibling of render-ruleset.ts.
 *
 * An SSTP tunnel is one long TCP connection (TLS inside, [MS-SSTP] §3.1): nothing in it needs
 * reading when the placement is by source address, so the kernel DNATs the connection's SYN by
 * the same Maglev slot map and seeded jhash as the IKEv2 plane, and conntrack carries the rest of
 * the connection. The servers see the client's own address (transparent), so their replies must
 * route back through the balancer (the return-path check watches for `[UNREPLIED]` entries).
 *
 * One table per service and family (`service.table`), objects named as in the IKEv2 table so that
 * the applier, the adoption code and the map updates (map-update.ts) work unchanged:
 * - `slots`: the 65537-slot Maglev map, slot → server address;
 * - `dnat_in` (nat prerouting: only a connection's first packet): attach the idle timeout
 *   (`ct timeout tcp_<seconds>`: established connections live `idleTimeout` without a packet),
 *   then `dnat to jhash <saddr> mod 65537 seed S map @slots : backendPort` — with
 *   `persistence: none` the key is source address and port (each connection placed on its own);
 *   a connection whose slot has no server is counted (`sstp_unrouted`) and dropped;
 * - `track` (filter forward): per-server packet and byte counters in both directions.
 *
 * A mid-stream packet of a connection whose entry was deleted (its server went down or was
 * disabled) is picked up by conntrack as a new flow (nf_conntrack_tcp_loose, on by default),
 * placed by the map on a live server, which answers the unknown segment with a reset: the
 * client reconnects at once instead of retransmitting into a dead server.
 */
import type { SstpService } from '../../config/types.js';
import { MAGLEV_TABLE_SIZE } from '../../balancer/maglev/table-size.js';
import {
  NFT_OBJECTS,
  counterName,
  nftFamilyOf,
  type ChainSpec,
  type RulesetBackend,
  seconds,
} from './render-ruleset.js';

/** Counter of new connections dropped because their slot had no server. */
export const SSTP_UNROUTED = 'sstp_unrouted';

/** The chains of an SSTP table (no SNAT: the kernel SSTP plane is transparent only). */
export const SSTP_CHAINS: readonly ChainSpec[] = Object.freeze([
  {
    name: NFT_OBJECTS.dnatChain,
    header: 'type nat hook prerouting priority dstnat; policy accept;',
  },
  {
    name: NFT_OBJECTS.trackChain,
    header: 'type filter hook forward priority filter; policy accept;',
  },
]);

/** The `ct timeout` object of the service: its name carries its value (a change makes a new object). */
export function sstpCtTimeoutName(service: Pick<SstpService, 'idleTimeout'>): string {
  return `tcp_${seconds(service.idleTimeout)}`;
}

/** What the Maglev hash reads: the source address, or address and port (`persistence: none`). */
export function sstpHashKey(service: Pick<SstpService, 'persistence' | 'family'>): string {
  const f = nftFamilyOf(service);
  return service.persistence === 'none' ? `${f} saddr . tcp sport` : `${f} saddr`;
}

export interface SstpRulesetInput {
  readonly service: SstpService;
  readonly backends: readonly RulesetBackend[];
}

/**
 * The table's structure (map, counters, timeout, chains with their rules) without the slot
 * elements, which map-update.ts writes; applied after a flush of the chains in one transaction.
 */
export function renderSstpRuleset(input: SstpRulesetInput): string {
  const { service, backends } = input;
  const f = nftFamilyOf(service);
  const vip = service.virtualIp;
  const seed = `0x${(service.hashSeed >>> 0).toString(16).padStart(8, '0')}`;
  const out: string[] = [];
  const line = (depth: number, text: string) => out.push(`${'\t'.repeat(depth)}${text}`);

  line(0, `table ${f} ${service.table} {`);
  line(1, `map ${NFT_OBJECTS.slotsMap} {`);
  line(2, `typeof numgen inc mod ${MAGLEV_TABLE_SIZE} : ${f} daddr`);
  line(2, `comment "vpnlb ${service.name}: Maglev slot -> server"`);
  line(1, '}');
  for (const b of backends) {
    line(1, `counter ${counterName(b.id, 'in')} {`);
    line(2, `comment "vpnlb ${service.name}: client -> ${b.name}"`);
    line(1, '}');
    line(1, `counter ${counterName(b.id, 'out')} {`);
    line(2, `comment "vpnlb ${service.name}: ${b.name} -> client"`);
    line(1, '}');
  }
  line(1, `counter ${SSTP_UNROUTED} {`);
  line(2, 'comment "new SSTP connections dropped: no server for their slot"');
  line(1, '}');
  line(1, `ct timeout ${sstpCtTimeoutName(service)} {`);
  line(2, 'protocol tcp');
  line(2, `l3proto ${f}`);
  line(2, `policy = { established : ${seconds(service.idleTimeout)} }`);
  line(2, `comment "vpnlb ${service.name}: idle timeout of its established connections"`);
  line(1, '}');

  const [dnat, track] = SSTP_CHAINS;
  const match = `${f} daddr ${vip} tcp dport ${service.port}`;
  line(1, `chain ${dnat!.name} {`);
  line(2, dnat!.header);
  line(2, `${match} ct timeout set "${sstpCtTimeoutName(service)}"`);
  line(
    2,
    `${match} dnat to jhash ${sstpHashKey(service)} mod ${MAGLEV_TABLE_SIZE} seed ${seed} map @${NFT_OBJECTS.slotsMap} : ${service.backendPort}`,
  );
  line(2, `${match} counter name ${SSTP_UNROUTED} drop`);
  line(1, '}');

  line(1, `chain ${track!.name} {`);
  line(2, track!.header);
  const ours = `ct original ${f} daddr ${vip} meta l4proto tcp ct original proto-dst ${service.port}`;
  for (const b of backends) {
    line(
      2,
      `ct direction original ${ours} ${f} daddr ${b.address} counter name ${counterName(b.id, 'in')}`,
    );
    line(
      2,
      `ct direction reply ${ours} ${f} saddr ${b.address} counter name ${counterName(b.id, 'out')}`,
    );
  }
  line(1, '}');
  line(0, '}');
  return `${out.join('\n')}\n`;
}
