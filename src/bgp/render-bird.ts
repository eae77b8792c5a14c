/**
 * The BIRD 2 configuration of one node (pure; golden-file tested).
 *
 * - One static protocol per announced virtual IP (`vip1`, `vip2`, …), each a blackhole host
 *   route that exists only inside BIRD (no kernel protocol: BIRD never touches this node's
 *   routing table). They start `disabled`: nothing is announced until the supervisor has seen
 *   this node's vpnlb healthy and run `birdc enable vipN`; `birdc disable vipN` withdraws
 *   (BIRD's documented gate, DESIGN §6, as GLB Director's health checker does with its VIPs).
 * - One eBGP session per router; a peer carries the VIPs of its own address family (an IPv6 VIP
 *   over an IPv4 session would need an IPv6 next hop the session cannot give). `next hop self`:
 *   the router forwards to this node's address on the shared link.
 * - `graceful restart off`: a router must not keep forwarding to a node whose BIRD died
 *   (RFC 4724 would let it keep stale routes for the restart time); with the session gone, the
 *   router drops the node's routes at once. `bfd on` notices a dead link or node in
 *   interval × multiplier (RFC 5880 §6.8.4) instead of the hold time.
 * - Short connect timers: a node that starts (or restarts) is back in the ECMP set in seconds.
 */
import type { BgpAnnouncement, BgpConfig, BgpNode, BgpPeer } from '../config/bgp.js';
import type { BgpPaths } from './paths.js';

export interface BirdInput {
  readonly bgp: BgpConfig;
  readonly self: BgpNode;
  readonly paths: BgpPaths;
  readonly source: string;
}

/** BIRD's static protocol name for the i-th announcement. */
export const vipProtocol = (i: number): string => `vip${i + 1}`;

/** BIRD's protocol name for a peer (a BIRD symbol: letters, digits, underscores). */
export const peerProtocol = (p: BgpPeer): string => `peer_${p.name.replace(/-/g, '_')}`;

const seconds = (ms: number) => Math.round(ms / 1000);

export function renderBirdConf(input: BirdInput): string {
  const { bgp, self, source } = input;
  const lines: string[] = [
    `# vpnlb: BIRD 2 configuration of node ${self.name} (from ${source}). Rendered by vpnlb bgp start; do not edit.`,
    '# Announcements start disabled; vpnlb enables each while this node can serve its address.',
    `router id ${self.routerId};`,
    'log stderr { info, remote, warning, error, auth, fatal, bug };',
    '',
    'protocol device {',
    '}',
    '',
  ];
  if (bgp.bfd) {
    lines.push(
      'protocol bfd {',
      '\tinterface "*" {',
      `\t\tmin rx interval ${bgp.bfdInterval} ms;`,
      `\t\tmin tx interval ${bgp.bfdInterval} ms;`,
      `\t\tmultiplier ${bgp.bfdMultiplier};`,
      '\t};',
      '}',
      '',
    );
  }
  bgp.announce.forEach((a: BgpAnnouncement, i) => {
    lines.push(
      `protocol static ${vipProtocol(i)} {`,
      `\tdescription "${a.address} (${a.services.join(', ')})";`,
      '\tdisabled;',
      `\tipv${a.family};`,
      `\troute ${a.prefix} blackhole;`,
      '}',
      '',
    );
  });
  for (const p of self.peers) {
    const mine = bgp.announce.map((a, i) => ({ a, i })).filter(({ a }) => a.family === p.family);
    const exportRule =
      mine.length === 0
        ? 'none'
        : `where ${mine.map(({ i }) => `proto = "${vipProtocol(i)}"`).join(' || ')}`;
    lines.push(
      `protocol bgp ${peerProtocol(p)} {`,
      `\tdescription "${p.name}";`,
      `\tlocal as ${bgp.asn};`,
      `\tneighbor ${p.address} as ${p.asn};`,
      `\thold time ${seconds(bgp.holdTime)};`,
      `\tkeepalive time ${seconds(bgp.keepaliveTime)};`,
      '\tconnect delay time 1;',
      '\tconnect retry time 2;',
      '\terror wait time 1, 10;',
      '\tgraceful restart off;',
      ...(bgp.bfd ? ['\tbfd on;'] : []),
      `\tipv${p.family} {`,
      '\t\timport none;',
      `\t\texport ${exportRule};`,
      '\t\tnext hop self;',
      '\t};',
      '}',
      '',
    );
  }
  return lines.join('\n');
}
