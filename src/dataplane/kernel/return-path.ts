/**
 * Return-path check for transparent mode. The VPN server sees the client's real address, so its
 * replies go to its default gateway; unless that gateway is the balancer (or policy routing sends
 * them there), replies bypass the balancer's conntrack, come back with the server's own address
 * instead of the VIP, and the client drops them: IKE never completes, and nothing else says why.
 *
 * Conntrack tells: a flow forwarded to a server that never saw a packet back stays
 * `[UNREPLIED]`. A server whose recent flows are all unreplied while its monitor says it is up
 * (the monitor's probes come from the balancer's own address, so their replies do come back) is
 * missing the return path. Detection needs either another server with replied flows in the same
 * scan, or the same verdict in `consecutive` scans in a row (every server misrouted).
 *
 * "Recent": a gateway changed on a server that already carries tunnels leaves their replied
 * entries alive for minutes (NAT-T keepalives refresh them... until the client gives up), which
 * would hide the new clients' failures. So only replied flows first seen in the last
 * `recentScans` scans speak for the server; unreplied entries are recent by nature (they expire
 * 30 s after their last packet). Conntrack has no creation time without
 * `nf_conntrack_timestamp`, so the detector remembers when it first saw each flow.
 */
import type { ConntrackEntry } from './conntrack.js';

export interface ReturnPathBackend {
  readonly name: string;
  readonly address: string;
  /** Only `up` backends are judged: a down one fails for another reason its monitor reports. */
  readonly state: string;
}

export interface FlowCounts {
  readonly replied: number;
  readonly unreplied: number;
}

export interface ReturnPathVerdict {
  /** Backends (by name) judged to route replies around the balancer. */
  readonly missing: readonly string[];
  /** Service flows per backend in this scan. */
  readonly flows: Readonly<Record<string, FlowCounts>>;
}

export interface ReturnPathOptions {
  /** Unreplied flows a backend needs before it is judged (a single lost packet is not a verdict). */
  readonly minUnreplied?: number;
  /** Scans in a row needed when no other backend shows replies. */
  readonly consecutive?: number;
  /** A replied flow counts for its server while first seen within this many scans (default 3). */
  readonly recentScans?: number;
}

/** Keeps the per-backend streaks between scans; `observe` is pure apart from that memory. */
export class ReturnPathDetector {
  readonly #minUnreplied: number;
  readonly #consecutive: number;
  readonly #recentScans: number;
  readonly #streak = new Map<string, number>();
  /** Original tuple → number of the scan that first saw it (pruned to the flows still present). */
  #firstSeen = new Map<string, number>();
  #scan = 0;

  constructor(options: ReturnPathOptions = {}) {
    this.#minUnreplied = options.minUnreplied ?? 3;
    this.#consecutive = options.consecutive ?? 2;
    this.#recentScans = options.recentScans ?? 3;
  }

  observe(
    entries: readonly ConntrackEntry[],
    backends: readonly ReturnPathBackend[],
  ): ReturnPathVerdict {
    const byAddress = new Map(backends.map((b) => [b.address, b]));
    const flows: Record<string, { replied: number; unreplied: number }> = {};
    const recentReplied = new Map<string, number>();
    for (const b of backends) flows[b.name] = { replied: 0, unreplied: 0 };
    const scan = ++this.#scan;
    const seen = new Map<string, number>();
    for (const e of entries) {
      const o = e.original;
      const key = `${o.src} ${o.sport} ${o.dst} ${o.dport}`;
      const first = this.#firstSeen.get(key) ?? scan;
      seen.set(key, first);
      // After DNAT the reply direction's source is the server the flow was sent to.
      const b = byAddress.get(e.reply.src);
      const f = b ? flows[b.name] : undefined;
      if (!b || !f) continue;
      if (e.isUnreplied) f.unreplied++;
      else {
        f.replied++;
        if (scan - first < this.#recentScans)
          recentReplied.set(b.name, (recentReplied.get(b.name) ?? 0) + 1);
      }
    }
    this.#firstSeen = seen;
    const someoneReplies = Object.values(flows).some((f) => f.replied > 0);
    const missing: string[] = [];
    for (const b of backends) {
      const f = flows[b.name] as FlowCounts;
      const suspicious =
        b.state === 'up' &&
        (recentReplied.get(b.name) ?? 0) === 0 &&
        f.unreplied >= this.#minUnreplied;
      const streak = suspicious ? (this.#streak.get(b.name) ?? 0) + 1 : 0;
      this.#streak.set(b.name, streak);
      if (suspicious && (someoneReplies || streak >= this.#consecutive)) missing.push(b.name);
    }
    return { missing, flows };
  }
}

/** The warning shown in status and logs, with the fix an RRAS administrator applies. */
export function returnPathWarning(
  backend: { name: string; address: string },
  balancerAddress: string | undefined,
): string {
  const gw = balancerAddress ?? "this balancer's address on the servers' network";
  return `return path missing for ${backend.name} (${backend.address}): its forwarded flows get no reply through the balancer (conntrack UNREPLIED); transparent mode needs the server to route replies back: set the default gateway of ${backend.name} (${backend.address}) to ${gw}`;
}
