/**
 * What `vpnlb bgp start` reports about its node (written to `state.json` after every check)
 * and how `vpnlb status`, `/api/v1/status`, the metrics and the dashboard read it back: the
 * supervisor is its own process (like `vpnlb ha start`), so a file is the interface, and its
 * age tells whether the supervisor still runs.
 */
import { readFileSync } from 'node:fs';

export interface BgpAnnouncementState {
  readonly address: string;
  readonly prefix: string;
  readonly services: readonly string[];
  /** Whether BIRD's static protocol for it is enabled (the route is offered to the peers). */
  readonly announced: boolean;
  /** `ok`, or why it is withdrawn. */
  readonly reason: string;
  /** ISO time of the last change. */
  readonly since: string;
}

export interface BgpPeerState {
  readonly name: string;
  readonly address: string;
  readonly asn: number;
  /** BIRD's protocol state (`up`, `start`, `down`, …), `unknown` when BIRD did not answer. */
  readonly state: string;
  /** BIRD's info column: `Established`, `Active`, `Connect`, with the last error. */
  readonly info: string;
  readonly established: boolean;
}

export interface BgpState {
  readonly node: string;
  readonly routerId: string;
  readonly asn: number;
  /** ISO time of the last check. */
  readonly updatedAt: string;
  readonly checkInterval: number;
  readonly drained: boolean;
  readonly bird: {
    readonly running: boolean;
    readonly pid: number | null;
    readonly restarts: number;
  };
  readonly announcements: readonly BgpAnnouncementState[];
  readonly peers: readonly BgpPeerState[];
  /** Announce → withdraw transitions since the supervisor started. */
  readonly withdrawals: number;
  readonly lastChange: {
    readonly at: string;
    readonly address: string;
    readonly announced: boolean;
    readonly reason: string;
  } | null;
}

/** The state as others see it: `stale` when the supervisor stopped writing (it died or stopped). */
export type BgpStatus =
  | (BgpState & { readonly supervisor: 'running' | 'stale' })
  | { readonly supervisor: 'absent'; readonly detail: string };

/** Reads `state.json`; stale after five check intervals (at least 5 s) without an update. */
export function readBgpStatus(stateFile: string, now = Date.now()): BgpStatus {
  let state: BgpState;
  try {
    state = JSON.parse(readFileSync(stateFile, 'utf8')) as BgpState;
  } catch (err) {
    return {
      supervisor: 'absent',
      detail: `no state from vpnlb bgp start (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`,
    };
  }
  const age = now - Date.parse(state.updatedAt);
  return {
    ...state,
    supervisor: age > Math.max(5000, 5 * state.checkInterval) ? 'stale' : 'running',
  };
}

/** The node's lines of `vpnlb status` and `vpnlb bgp status`. */
export function formatBgpStatus(s: BgpStatus): string {
  if (s.supervisor === 'absent') return `bgp: ${s.detail}`;
  const announced = s.announcements.filter((a) => a.announced).length;
  const lines = [
    `bgp node ${s.node} (router id ${s.routerId}, AS ${s.asn}): ${announced}/${s.announcements.length} announced${s.drained ? ' (drained)' : ''}; bird ${s.bird.running ? `running (pid ${s.bird.pid})` : 'not running'}${s.supervisor === 'stale' ? `; supervisor silent since ${s.updatedAt}` : ''}`,
  ];
  for (const a of s.announcements)
    lines.push(
      `  ${a.prefix.padEnd(24)} ${a.announced ? 'announced' : 'withdrawn'} since ${a.since}${a.announced ? '' : `: ${a.reason}`} (${a.services.join(', ')})`,
    );
  for (const p of s.peers)
    lines.push(
      `  peer ${p.name} ${p.address} AS ${p.asn}: ${p.established ? 'established' : `${p.state} ${p.info}`.trim()}`,
    );
  return lines.join('\n');
}
