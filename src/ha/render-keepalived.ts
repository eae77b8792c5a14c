/**
 * keepalived.conf for one node of the pair: two VRRP instances in one sync group (so both
 * addresses always move together — the outside VIPs that clients reach and the inside gateway
 * the VPN servers route through: a transparent balancer must carry the servers' replies too,
 * DESIGN §6), health-gated by vpnlb's own checks.
 *
 * Choices, each from keepalived's manual (keepalived.conf(5), 2.2) or the RFC:
 * - Both nodes start as BACKUP with different priorities; the higher one takes the addresses
 *   when healthy, after `preempt_delay` once it comes back (time for conntrackd's resync to
 *   fill its kernel table before it takes over — fail-back must not lose tunnels either).
 * - IPv6 addresses go to `virtual_ipaddress_excluded`: a VRRPv2 advert carries one family, the
 *   excluded block moves with the instance without being advertised.
 * - `vpnlb_alive` (the vpnlb process answers and every data plane applied the current snapshot)
 *   has no weight: failing it puts the group in FAULT, which gives the addresses away at once.
 * - `vpnlb_backends` (at least one usable server per service) lowers the priority just below
 *   the peer's instead: the peer takes over if it can reach servers, but when neither can, the
 *   addresses stay put (a monitoring outage must not become a VPN outage).
 * - `vpnlb_drain` follows the drain file (`vpnlb node drain`): value 1 × weight −253 takes the
 *   priority to the minimum; the node stays a healthy BACKUP, ready to take back over if the
 *   peer dies ("If the result is less than -253 … fault", so −253 is the largest usable weight).
 * - The tracked script and file are declared on the sync group, not on its instances: keepalived
 *   drops every *weighted* tracker of an instance that belongs to a sync group ("ignoring
 *   tracked file … with weight -253 due to SYNC group", `keepalived -t`), which silently
 *   disabled both the drain and the no-server preemption. Trackers of the group itself keep
 *   their weights and apply to every member, so both addresses still move together.
 */
import type { HaConfig, HaNode, VrrpInstance } from '../config/types.js';
import type { HaPaths } from './paths.js';

export interface KeepalivedInput {
  readonly ha: HaConfig;
  readonly self: HaNode;
  readonly peer: HaNode;
  readonly paths: HaPaths;
  /** The configuration file the pair was rendered from (for the header). */
  readonly source: string;
}

/** The track_file weight of the drain file (see the header). */
export const DRAIN_WEIGHT = -253;

/** The priority drop of a node without a usable server: just below its peer. */
export function noBackendWeight(ha: HaConfig): number {
  return -(Math.abs(ha.nodes[0].priority - ha.nodes[1].priority) + 1);
}

const seconds = (ms: number) => Math.max(1, Math.round(ms / 1000));

export function renderKeepalivedConf(input: KeepalivedInput): string {
  const { ha, self, peer, paths } = input;
  const out: string[] = [];
  const line = (depth: number, text: string) => out.push(`${'    '.repeat(depth)}${text}`);
  line(
    0,
    `# vpnlb ${self.name} (peer ${peer.name}), rendered from ${input.source} by \`vpnlb ha render\`: edit that file, not this one.`,
  );
  line(0, 'global_defs {');
  line(1, `router_id vpnlb-${self.name}`);
  line(1, 'script_user root');
  // Repeat the gratuitous ARP / unsolicited NA after the takeover: a neighbour that missed the
  // first one would keep sending to the old node until its cache entry expires.
  line(1, 'vrrp_garp_master_delay 1');
  line(1, 'vrrp_garp_master_repeat 3');
  line(0, '}');
  line(0, '');
  const interval = seconds(ha.checkInterval);
  for (const [name, what, weight] of [
    ['vpnlb_alive', 'alive', 0],
    ['vpnlb_backends', 'backends', noBackendWeight(ha)],
  ] as const) {
    line(0, `vrrp_script ${name} {`);
    line(1, `script "/bin/sh ${paths.dir}/check.sh ${what}"`);
    line(1, `interval ${interval}`);
    // A loaded host can take more than one interval to run a shell script: a slow check is
    // not a failed one (keepalived counts a timeout as a failure).
    line(1, `timeout ${Math.max(3, 3 * interval)}`);
    line(1, `fall ${ha.checkFall}`);
    line(1, 'rise 2');
    if (weight !== 0) line(1, `weight ${weight}`);
    line(0, '}');
    line(0, '');
  }
  line(0, 'vrrp_track_file vpnlb_drain {');
  line(1, `file "${paths.drainFile}"`);
  line(1, `weight ${DRAIN_WEIGHT}`);
  // Created with 0 when missing, so keepalived does not treat the absent file as a failure.
  line(1, 'init_file 0');
  line(0, '}');
  line(0, '');
  line(0, 'vrrp_sync_group vpnlb {');
  line(1, 'group {');
  line(2, 'outside');
  line(2, 'inside');
  line(1, '}');
  line(1, 'track_script {');
  line(2, 'vpnlb_alive');
  line(2, 'vpnlb_backends');
  line(1, '}');
  line(1, 'track_file {');
  line(2, 'vpnlb_drain');
  line(1, '}');
  line(1, `notify "/bin/sh ${paths.notifyScript}"`);
  line(0, '}');
  const instance = (name: string, v: VrrpInstance) => {
    line(0, '');
    line(0, `vrrp_instance ${name} {`);
    line(1, 'state BACKUP');
    line(1, `interface ${v.interface}`);
    line(1, `virtual_router_id ${v.virtualRouterId}`);
    line(1, `priority ${self.priority}`);
    line(1, `advert_int ${seconds(ha.vrrp.advertInterval)}`);
    line(1, `preempt_delay ${Math.round(ha.vrrp.preemptDelay / 1000)}`);
    const v4 = v.addresses.filter((a) => !a.includes(':'));
    const v6 = v.addresses.filter((a) => a.includes(':'));
    // The advertised block must be non-empty: an IPv6-only instance advertises its IPv6 addresses.
    const [advertised, excluded] = v4.length > 0 ? [v4, v6] : [v6, []];
    line(1, 'virtual_ipaddress {');
    for (const a of advertised) line(2, `${a} dev ${v.interface}`);
    line(1, '}');
    if (excluded.length > 0) {
      line(1, 'virtual_ipaddress_excluded {');
      for (const a of excluded) line(2, `${a} dev ${v.interface}`);
      line(1, '}');
    }
    line(0, '}');
  };
  instance('outside', ha.vrrp.outside);
  instance('inside', ha.vrrp.inside);
  return `${out.join('\n')}\n`;
}
