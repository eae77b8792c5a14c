/**
 * The reply-NAT table of one node behind ECMP (pure; golden-file tested): the return path of a
 * farm of active nodes (docs/scale-out.md, "Return path"; the rule itself:
 * dataplane/kernel/reply-nat.ts). Each service answers from the address announced for it.
 */
import type { BgpConfig } from '../config/bgp.js';
import type { Config } from '../config/types.js';
import { renderReplyNat } from '../dataplane/kernel/reply-nat.js';

const REPLY_NAT_TABLE = 'vpnlb_bgp';

export function renderBgpReplyNat(config: Config, bgp: BgpConfig): string {
  return renderReplyNat(config, {
    table: REPLY_NAT_TABLE,
    header: `# vpnlb: reply NAT of a node behind ECMP (from ${config.source}). Rendered by vpnlb bgp start; do not edit.`,
    vipOf: (s) => bgp.announce.find((a) => a.services.includes(s.name))?.address,
  });
}
