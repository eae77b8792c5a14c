/**
 * The reply-NAT table of one node (pure; golden-file tested): the return path of a farm of
 * active nodes (docs/scale-out.md, "Return path").
 *
 * In transparent mode the servers see the clients' own addresses and send their packets to
 * their gateway. With N active nodes that gateway is one node (or one chosen by the servers'
 * own ECMP), not necessarily the node that forwarded the flow. A node that forwarded the flow
 * has its conntrack entry and undoes its DNAT. A node that did not would forward the packet
 * with the server's own address, and — worse — create a reversed entry that captures the
 * client's next packet (DESIGN §6: 5–11 of 23 tunnels died that way in the pair without
 * state). So: a server's packet from its IKE or NAT-T port that starts a new conntrack entry
 * here is SNATed to the service's address and port. Only the first packet of a flow sees a nat
 * chain, so flows this node forwarded itself are untouched (their replies match the DNAT
 * entry). The entry this creates works the other way too: a client packet of that flow that
 * later reaches this node (its route moved) matches the entry's reply direction and goes to
 * the server that sent it, the tunnel's own server, whatever the affinity.
 *
 * One `inet` table for both families (`snat ip to` / `snat ip6 to`); a server's packets to the
 * node itself (monitor replies) take the input path and never reach postrouting.
 */
import type { BgpConfig } from '../config/bgp.js';
import type { Config, Ikev2Service } from '../config/types.js';

export const REPLY_NAT_TABLE = 'vpnlb_bgp';

interface ReplyRule {
  readonly family: 4 | 6;
  readonly servers: readonly string[];
  readonly serverPort: number;
  readonly vip: string;
  readonly port: number;
  readonly service: string;
}

/** The services whose replies a node must be able to rewrite: transparent IKEv2 in the kernel. */
function replyRules(config: Config, bgp: BgpConfig): ReplyRule[] {
  const announced = new Set(bgp.announce.map((a) => a.address));
  const rules: ReplyRule[] = [];
  const eligible = (s: Ikev2Service) => s.nat === 'transparent' && s.dataplane !== 'userspace';
  for (const s of config.services.ikev2.filter(eligible)) {
    const vip = bgp.announce.find((a) => a.services.includes(s.name))?.address;
    if (vip === undefined || !announced.has(vip)) continue;
    const servers = (config.pools[s.pool]?.backends ?? [])
      .filter((b) => b.family === s.family)
      .map((b) => b.address);
    if (servers.length === 0) continue;
    rules.push({
      family: s.family,
      servers,
      serverPort: s.backendIkePort,
      vip,
      port: s.ikePort,
      service: s.name,
    });
    rules.push({
      family: s.family,
      servers,
      serverPort: s.backendNatTPort,
      vip,
      port: s.natTPort,
      service: s.name,
    });
  }
  return rules;
}

/** The table text for `nft -f`: deletes and recreates the table in one transaction. */
export function renderReplyNat(config: Config, bgp: BgpConfig): string {
  const rules = replyRules(config, bgp);
  const lines = [
    `# vpnlb: reply NAT of a node behind ECMP (from ${config.source}). Rendered by vpnlb bgp start; do not edit.`,
    `table inet ${REPLY_NAT_TABLE}`,
    `delete table inet ${REPLY_NAT_TABLE}`,
    `table inet ${REPLY_NAT_TABLE} {`,
    '\tcounter replies_nat {',
    '\t\tcomment "server flows this node did not forward, given the service address"',
    '\t}',
    '\tchain replies {',
    '\t\ttype nat hook postrouting priority srcnat; policy accept;',
  ];
  for (const r of rules) {
    const ip = r.family === 6 ? 'ip6' : 'ip';
    const set = r.servers.length === 1 ? r.servers[0]! : `{ ${r.servers.join(', ')} }`;
    const to = r.family === 6 ? `[${r.vip}]:${r.port}` : `${r.vip}:${r.port}`;
    lines.push(
      `\t\t${ip} saddr ${set} udp sport ${r.serverPort} counter name replies_nat snat ${ip} to ${to} comment "${r.service}"`,
    );
  }
  lines.push('\t}', '}', '');
  return lines.join('\n');
}

/** Removes the table (stop): after that, a reply this node did not forward leaves unchanged. */
export const REPLY_NAT_DELETE = `table inet ${REPLY_NAT_TABLE}\ndelete table inet ${REPLY_NAT_TABLE}\n`;
