/**
 * Conntrack access for the kernel data plane, through conntrack-tools (`conntrack -L` / `-D`).
 *
 * Why deletion matters: an established UDP flow keeps its NAT binding in its conntrack entry,
 * whatever the slot map says (DESIGN.md §4). When a server dies or is disabled, its clients'
 * retransmissions would keep going to it until the entry times out (minutes, refreshed by the
 * very retransmissions); deleting the entries makes the next packet a new flow that the map
 * sends to a live server at once. Draining servers keep theirs.
 */
import type { CommandRunner, ToolResult } from '../../platform/command-runner.js';
import { explainPermissionError } from '../../platform/capabilities.js';

/** One conntrack entry of the service (UDP, or TCP for SSTP), as `conntrack -L` prints it. */
export interface ConntrackEntry {
  readonly original: {
    readonly src: string;
    readonly dst: string;
    readonly sport: number;
    readonly dport: number;
  };
  readonly reply: {
    readonly src: string;
    readonly dst: string;
    readonly sport: number;
    readonly dport: number;
  };
  /** `[UNREPLIED]`: no packet has come back from the server yet. */
  readonly isUnreplied: boolean;
  /** `[ASSURED]`: replies seen; conntrack will not evict it early. */
  readonly isAssured: boolean;
  /** Seconds left before the entry expires. */
  readonly timeout: number;
}

/**
 * Parses `conntrack -L` output (default or `-o extended`): one entry per line; the first
 * `src= dst= sport= dport=` group is the original direction, the second the reply direction.
 * Lines that do not have both groups are skipped (never throws).
 */
export function parseConntrackList(text: string): ConntrackEntry[] {
  const out: ConntrackEntry[] = [];
  for (const line of text.split('\n')) {
    const tokens = line.trim().split(/\s+/);
    const groups: Record<string, string>[] = [];
    let timeout = Number.NaN;
    for (let i = 0; i < tokens.length; i++) {
      const t = tokens[i] as string;
      const eq = t.indexOf('=');
      if (eq < 0) {
        // `udp 17 29 src=...` / `tcp 6 431999 ESTABLISHED src=...`: the timeout follows the protocol number.
        if ((t === 'udp' || t === 'tcp') && Number.isNaN(timeout)) timeout = Number(tokens[i + 2]);
        continue;
      }
      const key = t.slice(0, eq);
      if (key === 'src' && (groups.length === 0 || 'src' in (groups[groups.length - 1] as object)))
        groups.push({});
      const g = groups[groups.length - 1];
      if (
        g &&
        (key === 'src' || key === 'dst' || key === 'sport' || key === 'dport') &&
        !(key in g)
      )
        g[key] = t.slice(eq + 1);
    }
    const [o, r] = groups;
    if (!o?.src || !o.dst || !r?.src || !r.dst) continue;
    out.push({
      original: {
        src: o.src,
        dst: o.dst,
        sport: Number(o.sport ?? 0),
        dport: Number(o.dport ?? 0),
      },
      reply: { src: r.src, dst: r.dst, sport: Number(r.sport ?? 0), dport: Number(r.dport ?? 0) },
      isUnreplied: line.includes('[UNREPLIED]'),
      isAssured: line.includes('[ASSURED]'),
      timeout: Number.isFinite(timeout) ? timeout : 0,
    });
  }
  return out;
}

/** Result of a conntrack call; never thrown. */
export type ConntrackResult<T> = ToolResult<T>;

/** The conntrack operations the data plane needs (a fake is trivial: see the unit tests). */
export interface ConntrackTable {
  /** UDP entries whose original destination is `vip`. */
  list(vip: string, family: 4 | 6): Promise<ConntrackResult<ConntrackEntry[]>>;
  /** Deletes the UDP entries from clients of `vip` that were sent to `backend`; returns how many. */
  deleteBackendFlows(vip: string, backend: string, family: 4 | 6): Promise<ConntrackResult<number>>;
}

/**
 * `conntrack` (conntrack-tools) through a runner (optionally inside a namespace), for one
 * protocol: `udp` (IKEv2, the default) or `tcp` (the kernel SSTP plane).
 */
export class ConntrackCli implements ConntrackTable {
  readonly #run: CommandRunner;
  readonly #protocol: 'udp' | 'tcp';
  constructor(runner: CommandRunner, protocol: 'udp' | 'tcp' = 'udp') {
    this.#run = runner;
    this.#protocol = protocol;
  }

  async list(vip: string, family: 4 | 6): Promise<ConntrackResult<ConntrackEntry[]>> {
    const r = await this.#run('conntrack', [
      '-L',
      '-f',
      family === 6 ? 'ipv6' : 'ipv4',
      '-p',
      this.#protocol,
      '--orig-dst',
      vip,
    ]);
    if (!r.ok) return { ok: false, error: explainPermissionError(r.message, 'CAP_NET_ADMIN') };
    return { ok: true, value: parseConntrackList(r.stdout) };
  }

  async deleteBackendFlows(
    vip: string,
    backend: string,
    family: 4 | 6,
  ): Promise<ConntrackResult<number>> {
    // conntrack(8): --orig-dst matches the address clients sent to (the VIP), --reply-src the
    // address replies come from (the server after DNAT): exactly this service's flows to it.
    const r = await this.#run('conntrack', [
      '-D',
      '-f',
      family === 6 ? 'ipv6' : 'ipv4',
      '-p',
      this.#protocol,
      '--orig-dst',
      vip,
      '--reply-src',
      backend,
    ]);
    const m = /(\d+) flow entries have been deleted/.exec(`${r.stderr}\n${r.stdout}`);
    // conntrack -D exits 1 when nothing matched: that is success with 0 for us.
    if (m) return { ok: true, value: Number(m[1]) };
    return r.ok
      ? { ok: true, value: 0 }
      : { ok: false, error: explainPermissionError(r.message, 'CAP_NET_ADMIN') };
  }
}
