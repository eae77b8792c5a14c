/**
 * Sheds a flood in the kernel before it reaches the userspace relay's sockets (issue 17, item
 * 4): an nftables table of its own, per relay service, with a `prerouting` chain at priority
 * raw − 10 (before connection tracking and routing), that
 * - lets datagrams of **established flows** (client address . port in the set `established`,
 *   . virtual port, kept by the relay: a flow is added once its upstream socket is connected, removed when it
 *   ends) through up to an adaptive limit (relay-shed-limit.ts; no limit until the relay's
 *   receive queues first overflow);
 * - lets datagrams of any other source (new clients, floods of new source ports, strays)
 *   through up to a fixed budget derived from `maxNewFlowsPerSecond` (a handshake is a few
 *   datagrams per flow), with a burst of one second.
 *
 * Why in the kernel: under twice its peak load the relay delivered 0.62 of its peak, because
 * the receive work of every offered datagram — including those its socket queue overflows —
 * lands on the relay's core (bench/analysis.md). A datagram dropped here skips routing, the
 * UDP socket lookup, queueing and the later overflow; established flows go first because
 * unknown sources have their own, smaller, budget.
 *
 * Needs CAP_NET_ADMIN and nft. Without them the relay works as before and says so once (info
 * log, status). The table is deleted when the relay stops and replaced when it starts (a table
 * left behind by a killed process is taken over).
 */
import { readFile } from 'node:fs/promises';
import {
  readCounters,
  type CounterValues,
  type NftApplier,
  type NftResult,
} from '../kernel/nft-applier.js';

/** Where an established flow's packets come from. */
export interface ShedFlowKey {
  readonly address: string;
  readonly port: number;
  /** The virtual port the flow arrives on (a client may use one source port towards both). */
  readonly dport: number;
}

export interface KernelShedConfig {
  readonly table: string;
  readonly family: 4 | 6;
  readonly virtualIp: string;
  /** The relay's listening ports (IKE and NAT-T). */
  readonly ports: readonly number[];
  /** Datagrams/s (and burst) allowed from sources without an established flow. */
  readonly unknownPerSecond: number;
}

/** nftables names are at most 31 characters here, of the config's `table` pattern. */
export function shedTableName(serviceName: string): string {
  return `vpnlb_shed_${serviceName.replace(/[^a-zA-Z0-9_]/g, '_')}`.slice(0, 31);
}

const element = (k: ShedFlowKey) => `${k.address} . ${k.port} . ${k.dport}`;

/**
 * The whole table (pure). `limit` undefined: established flows pass unlimited. `goto`, not
 * `jump`: a jump returns to `pre`, and an established flow's packet that passed its own limit
 * then met the unknown sources' budget too — the relay was held at that budget (20,000
 * datagrams/s by default) whatever its capacity.
 */
export function renderShedTable(c: KernelShedConfig, limit: number | undefined): string {
  const ip = c.family === 6 ? 'ip6' : 'ip';
  const addrType = c.family === 6 ? 'ipv6_addr' : 'ipv4_addr';
  const ports = c.ports.length === 1 ? String(c.ports[0]) : `{ ${c.ports.join(', ')} }`;
  return `table inet ${c.table} {
  counter established_shed {}
  counter unknown_shed {}
  set established {
    type ${addrType} . inet_service . inet_service
  }
  chain pre {
    type filter hook prerouting priority raw - 10; policy accept;
    ${ip} daddr ${c.virtualIp} udp dport ${ports} ${ip} saddr . udp sport . udp dport @established goto established
    ${ip} daddr ${c.virtualIp} udp dport ${ports} goto unknown
  }
  chain established {
${renderEstablishedRule(limit)}
  }
  chain unknown {
    limit rate over ${c.unknownPerSecond}/second burst ${c.unknownPerSecond} packets counter name "unknown_shed" drop
  }
}
`;
}

function renderEstablishedRule(limit: number | undefined): string {
  // burst: a tenth of a second of the limit (the limit follows the relay's measured rate).
  return limit === undefined
    ? ''
    : `    limit rate over ${limit}/second burst ${Math.max(1, Math.ceil(limit / 10))} packets counter name "established_shed" drop`;
}

/** Replaces the established flows' limit in one transaction. */
export function renderLimitChange(table: string, limit: number | undefined): string {
  const rule = renderEstablishedRule(limit).trim();
  return `flush chain inet ${table} established\n${rule ? `add rule inet ${table} established ${rule}\n` : ''}`;
}

/** Element changes in one transaction (adds and deletes of known members only). */
export function renderSetChanges(
  table: string,
  add: readonly ShedFlowKey[],
  del: readonly ShedFlowKey[],
): string {
  const lines: string[] = [];
  const chunk = 2048;
  for (const [verb, list] of [
    ['delete', del],
    ['add', add],
  ] as const) {
    for (let i = 0; i < list.length; i += chunk) {
      lines.push(
        `${verb} element inet ${table} established { ${list
          .slice(i, i + chunk)
          .map((k) => element(k))
          .join(', ')} }`,
      );
    }
  }
  return lines.length ? `${lines.join('\n')}\n` : '';
}

/** Reads the namespace's UDP receive-buffer overflows (`/proc/net/snmp`, `Udp: RcvbufErrors`, plus `Udp6:`). */
export type OverflowReader = () => Promise<number | undefined>;

/** Parses `/proc/net/snmp` (and snmp6's `Udp6RcvbufErrors`) text; undefined when absent. */
export function parseRcvbufErrors(snmp: string, snmp6 = ''): number | undefined {
  let total: number | undefined;
  const lines = snmp.split('\n');
  for (let i = 0; i + 1 < lines.length; i++) {
    if (!lines[i]!.startsWith('Udp: ') || !lines[i + 1]!.startsWith('Udp: ')) continue;
    const names = lines[i]!.trim().split(/\s+/);
    const values = lines[i + 1]!.trim().split(/\s+/);
    const at = names.indexOf('RcvbufErrors');
    if (at > 0 && values[at] !== undefined) total = (total ?? 0) + Number(values[at]);
    break;
  }
  const m = /^Udp6RcvbufErrors\s+(\d+)/m.exec(snmp6);
  if (m) total = (total ?? 0) + Number(m[1]);
  return total;
}

export const procOverflowReader: OverflowReader = async () => {
  try {
    const [snmp, snmp6] = await Promise.all([
      readFile('/proc/net/snmp', 'utf8'),
      readFile('/proc/net/snmp6', 'utf8').catch(() => ''),
    ]);
    return parseRcvbufErrors(snmp, snmp6);
  } catch {
    return undefined;
  }
};

/** Packets dropped by the table's two limits (from its named counters). */
export interface ShedCounts {
  readonly established: number;
  readonly unknown: number;
}

/** The two limits' drops out of the table's named counters (undefined when either is missing). */
export function shedCountsOf(counters: CounterValues): ShedCounts | undefined {
  const established = counters.established_shed?.packets;
  const unknown = counters.unknown_shed?.packets;
  return established === undefined || unknown === undefined ? undefined : { established, unknown };
}

/**
 * The table's owner: installs it, keeps the `established` set in step with the relay's flows
 * (changes are queued and applied in one `nft -f` per `flush()`, never one process per flow:
 * DESIGN §4, ~320 nft processes/s), changes the limit, reads the counters, removes the table.
 * Every method reports failure as a result; none throws.
 */
export class KernelShed {
  readonly #nft: NftApplier;
  readonly #config: KernelShedConfig;
  /** Members the kernel holds (applied), and changes not yet applied. */
  readonly #members = new Map<string, ShedFlowKey>();
  #pendingAdd = new Map<string, ShedFlowKey>();
  #pendingDel = new Map<string, ShedFlowKey>();
  #limit: number | undefined;
  #installed = false;

  constructor(nft: NftApplier, config: KernelShedConfig) {
    this.#nft = nft;
    this.#config = config;
  }

  get config(): KernelShedConfig {
    return this.#config;
  }

  get isInstalled(): boolean {
    return this.#installed;
  }

  /** Members applied to the kernel (tests, status). */
  get members(): number {
    return this.#members.size;
  }

  async install(): Promise<NftResult> {
    const c = this.#config;
    // Delete-then-add in one transaction: an old table (a killed process) is replaced atomically.
    const text = `table inet ${c.table}\ndelete table inet ${c.table}\n${renderShedTable(c, undefined)}`;
    const r = await this.#nft.apply(text);
    if (r.ok) {
      this.#installed = true;
      this.#limit = undefined;
      this.#members.clear();
    }
    return r;
  }

  /** Queues a flow for the `established` set. */
  add(k: ShedFlowKey): void {
    const id = `${k.address}|${k.port}|${k.dport}`;
    if (this.#pendingDel.delete(id)) return; // removed and re-added before a flush: still a member
    if (!this.#members.has(id)) this.#pendingAdd.set(id, k);
  }

  /** Queues a flow's removal from the `established` set. */
  remove(k: ShedFlowKey): void {
    const id = `${k.address}|${k.port}|${k.dport}`;
    if (this.#pendingAdd.delete(id)) return;
    if (this.#members.has(id)) this.#pendingDel.set(id, k);
  }

  /** Applies queued set changes (one transaction). On failure the set is rebuilt from scratch next time. */
  async flush(): Promise<NftResult> {
    if (!this.#installed || (this.#pendingAdd.size === 0 && this.#pendingDel.size === 0))
      return { ok: true, value: undefined };
    const add = this.#pendingAdd;
    const del = this.#pendingDel;
    this.#pendingAdd = new Map();
    this.#pendingDel = new Map();
    const c = this.#config;
    const r = await this.#nft.apply(
      renderSetChanges(c.table, [...add.values()], [...del.values()]),
    );
    if (r.ok) {
      for (const id of del.keys()) this.#members.delete(id);
      for (const [id, k] of add) this.#members.set(id, k);
      return r;
    }
    // The kernel's set and ours may now differ (e.g. someone flushed it): rebuild it whole.
    const want = new Map(this.#members);
    for (const id of del.keys()) want.delete(id);
    for (const [id, k] of add) want.set(id, k);
    const rebuild = `flush set inet ${c.table} established\n${renderSetChanges(c.table, [...want.values()], [])}`;
    const r2 = await this.#nft.apply(rebuild);
    this.#members.clear();
    if (r2.ok) for (const [id, k] of want) this.#members.set(id, k);
    else for (const [id, k] of want) this.#pendingAdd.set(id, k);
    return r2.ok ? r2 : r;
  }

  /** Sets (or lifts, with undefined) the established flows' limit; no-op when unchanged. */
  async setLimit(limit: number | undefined): Promise<NftResult> {
    if (!this.#installed || limit === this.#limit) return { ok: true, value: undefined };
    const r = await this.#nft.apply(renderLimitChange(this.#config.table, limit));
    if (r.ok) this.#limit = limit;
    return r;
  }

  get limit(): number | undefined {
    return this.#limit;
  }

  async counts(): Promise<ShedCounts | undefined> {
    if (!this.#installed) return undefined;
    const r = await readCounters(this.#nft, 'inet', this.#config.table);
    return r.ok ? shedCountsOf(r.value) : undefined;
  }

  async uninstall(): Promise<NftResult<boolean>> {
    if (!this.#installed) return { ok: true, value: false };
    this.#installed = false;
    const t = this.#config.table;
    const r = await this.#nft.apply(`table inet ${t}\ndelete table inet ${t}\n`);
    return r.ok ? { ok: true, value: true } : r;
  }
}
