/**
 * Whether this node may announce each virtual IP, from its own `/api/v1/status` document
 * (pure). A VIP is announced while the node is not drained, vpnlb answers, every data plane of
 * the VIP's services applied the current snapshot, at least one of those services has a
 * usable (`up`) server — a node that can serve nobody on an address must not draw its traffic
 * (GLB Director withdraws a VIP when all its backends failed or are drained, DESIGN §6) — and,
 * with `bgp.flowSync`, the node has pulled the other nodes' flow state once (or waited
 * `startupWait` for it).
 */
import type { BgpAnnouncement } from '../config/bgp.js';

export interface AnnouncementVerdict {
  readonly address: string;
  readonly ok: boolean;
  readonly reason: string;
}

export interface StatusLike {
  readonly services?: readonly {
    readonly name: string;
    readonly dataplaneInSync?: boolean;
    readonly backends?: readonly { readonly name: string; readonly state: string }[];
  }[];
  /** With `bgp.flowSync`: whether the node pulled the other nodes' flow state once. */
  readonly bgp?: { readonly flowSync?: { readonly ready?: boolean } };
}

export interface HealthInput {
  readonly announce: readonly BgpAnnouncement[];
  /** Undefined when the admin API did not answer (`error` says why). */
  readonly status: StatusLike | undefined;
  readonly error?: string;
  readonly drained: boolean;
}

export function evaluateAnnouncements(input: HealthInput): AnnouncementVerdict[] {
  return input.announce.map((a) => {
    const verdict = (ok: boolean, reason: string): AnnouncementVerdict => ({
      address: a.address,
      ok,
      reason,
    });
    if (input.drained) return verdict(false, 'node drained');
    if (!input.status)
      return verdict(false, `vpnlb does not answer: ${input.error ?? 'no status'}`);
    const services = (input.status.services ?? []).filter((s) => a.services.includes(s.name));
    const missing = a.services.filter((name) => !services.some((s) => s.name === name));
    if (missing.length > 0)
      return verdict(false, `not served by this vpnlb: ${missing.join(', ')}`);
    const stale = services.filter((s) => s.dataplaneInSync !== true).map((s) => s.name);
    if (stale.length > 0) return verdict(false, `data plane not in sync: ${stale.join(', ')}`);
    // A node that announced before it knew the other nodes' pins would drop the ESP of every
    // ike-spi flow the routers move to it (bounded by bgp.flowSync.startupWait).
    if (input.status.bgp?.flowSync?.ready === false)
      return verdict(false, "the other nodes' flow state is not pulled yet");
    if (!services.some((s) => (s.backends ?? []).some((b) => b.state === 'up')))
      return verdict(false, `no usable server: ${a.services.join(', ')}`);
    return verdict(true, 'ok');
  });
}
