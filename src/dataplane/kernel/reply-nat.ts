/**
 * A reply-NAT table (pure; golden-file tested by its users): the return path of a server's
 * packet that reaches a node holding no conntrack entry for its flow. Used by nodes behind ECMP
 * (docs/scale-out.md, "Return path") and by both nodes of an active/standby pair
 * (docs/high-availability.md, "What fails over").
 *
 * In transparent mode the servers see the clients' own addresses and send their packets to
 * their gateway. That gateway may be a node that did not forward the flow (another ECMP node),
 * or a node that has just taken the addresses over and does not know the flow yet (a pair's
 * standby whose conntrackd was cut off or restarted). A node that forwarded the flow has its
 * conntrack entry and undoes its DNAT. A node that did not would forward the packet with the
 * server's own address, and — worse — create a reversed entry that captures the client's next
 * packet (DESIGN §6: 5–11 of 23 tunnels died that way in the pair without state). So: a
 * server's packet from its IKE or NAT-T port that starts a new conntrack entry here is SNATed to
 * the service's address and port. Only the first packet of a flow sees a nat chain, so flows
 * this node forwarded itself are untouched (their replies match the DNAT entry). The entry this
 * creates works the other way too: a client packet of that flow that later reaches this node
 * matches the entry's reply direction and goes to the server that sent it, the tunnel's own
 * server, whatever the affinity.
 *
 * One `inet` table for both families (`snat ip to` / `snat ip6 to`); a server's packets to the
 * node itself (monitor replies) take the input path and never reach postrouting.
 */
import { canonicalAddress } from '../../config/address-rules.js';
import type { Config, Ikev2Service } from '../../config/types.js';

/** Counter of the packets the table rewrote (read by the labs and `nft list counters`). */
export const REPLY_NAT_COUNTER = 'replies_nat';

export interface ReplyNatOptions {
  /** The table's name (`vpnlb_bgp`, `vpnlb_ha`). */
  readonly table: string;
  /** The first line: what renders it, for whoever reads the file. */
  readonly header: string;
  /** The virtual IP each eligible service answers from; a service it returns nothing for is left out. */
  readonly vipOf: (service: Ikev2Service) => string | undefined;
}

interface ReplyRule {
  readonly family: 4 | 6;
  readonly servers: readonly string[];
  readonly serverPort: number;
  readonly vip: string;
  readonly port: number;
  readonly service: string;
}

/** The services whose replies a node must be able to rewrite: transparent IKEv2 in the kernel. */
function replyRules(config: Config, vipOf: ReplyNatOptions['vipOf']): ReplyRule[] {
  const rules: ReplyRule[] = [];
  const eligible = (s: Ikev2Service) => s.nat === 'transparent' && s.dataplane !== 'userspace';
  for (const s of config.services.ikev2.filter(eligible)) {
    const vip = vipOf(s);
    if (vip === undefined) continue;
    const servers = (config.pools[s.pool]?.backends ?? [])
      .filter((b) => b.family === s.family)
      .map((b) => b.address);
    if (servers.length === 0) continue;
    for (const [serverPort, port] of [
      [s.backendIkePort, s.ikePort],
      [s.backendNatTPort, s.natTPort],
    ] as const)
      rules.push({
        family: s.family,
        servers,
        serverPort,
        vip: canonicalAddress(vip),
        port,
        service: s.name,
      });
  }
  return rules;
}

/** The table text for `nft -f`: deletes and recreates the table in one transaction. */
export function renderReplyNat(config: Config, options: ReplyNatOptions): string {
  const { table } = options;
  const lines = [
    options.header,
    `table inet ${table}`,
    `delete table inet ${table}`,
    `table inet ${table} {`,
    `\tcounter ${REPLY_NAT_COUNTER} {`,
    '\t\tcomment "server flows this node did not forward, given the service address"',
    '\t}',
    '\tchain replies {',
    '\t\ttype nat hook postrouting priority srcnat; policy accept;',
  ];
  for (const r of replyRules(config, options.vipOf)) {
    const ip = r.family === 6 ? 'ip6' : 'ip';
    const set = r.servers.length === 1 ? r.servers[0]! : `{ ${r.servers.join(', ')} }`;
    const to = r.family === 6 ? `[${r.vip}]:${r.port}` : `${r.vip}:${r.port}`;
    lines.push(
      `\t\t${ip} saddr ${set} udp sport ${r.serverPort} counter name ${REPLY_NAT_COUNTER} snat ${ip} to ${to} comment "${r.service}"`,
    );
  }
  lines.push('\t}', '}', '');
  return lines.join('\n');
}
