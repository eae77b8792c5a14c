/**
 * The only component that changes the kernel's nftables state (Seesaw's habit), behind an
 * interface: `NftCliApplier` pipes each transaction to `nft -f -` (nft applies a file as one
 * atomic netlink batch: all of it or nothing), `FakeNftApplier` keeps an in-memory model for
 * unit tests that cannot be root.
 */
import { MAGLEV_TABLE_SIZE } from '../../balancer/maglev/table-size.js';
import {
  createCommandRunner,
  type CommandRunner,
  type ToolResult,
} from '../../platform/command-runner.js';
import { NFT_OBJECTS, type NftFamily } from './render-ruleset.js';
import { explainPermissionError } from '../../platform/capabilities.js';
import { readCountersNative, type CounterFamily } from './nft-counters.js';
import { nftJsonItems } from './nft-json.js';

/** Result of an nft call; never thrown. */
export type NftResult<T = void> = ToolResult<T>;

export interface NftApplier {
  /** Applies `text` as one transaction (`nft -f -`). */
  apply(text: string): Promise<NftResult>;
  /** `nft -j list <what...>`, parsed; e.g. `['table', 'ip', 'vpnlb']`. */
  list(what: readonly string[]): Promise<NftResult<unknown>>;
  /** Deletes a table; `ok` with `false` when it did not exist. */
  deleteTable(family: NftFamily, table: string): Promise<NftResult<boolean>>;
  /**
   * The named counters of a table, read without its set elements (nft-counters.ts). Optional:
   * `readCounters` lists them through `list()` for an applier without it.
   */
  counters?(family: CounterFamily, table: string): Promise<NftResult<CounterValues>>;
}

export type CounterValues = Record<string, { packets: number; bytes: number }>;

export interface NftCliOptions {
  /** Network namespace to program (integration tests); the host's when absent. */
  readonly netns?: string;
  /** Injected runner (tests); defaults to running `nft` for real. */
  readonly runner?: CommandRunner;
}

const MISSING = /No such file or directory/;

/** Runs the real `nft` binary. */
export class NftCliApplier implements NftApplier {
  readonly #run: CommandRunner;
  readonly #netns: string | undefined;
  /** Counters through the netlink addon; off when a runner is injected (tests of the CLI path). */
  readonly #native: boolean;
  constructor(options: NftCliOptions = {}) {
    this.#run =
      options.runner ?? createCommandRunner(options.netns ? { netns: options.netns } : {});
    this.#netns = options.netns;
    this.#native = options.runner === undefined;
  }

  /**
   * Through the netlink addon when it is there; else, or when the dump found nothing or failed
   * (a missing table is then reported as `nft` reports it), `nft -j list counters table`.
   */
  async counters(family: CounterFamily, table: string): Promise<NftResult<CounterValues>> {
    const native = this.#native
      ? readCountersNative({ family, table, ...(this.#netns ? { netns: this.#netns } : {}) })
      : undefined;
    if (native?.ok && native.value.length > 0) {
      const out: CounterValues = {};
      for (const c of native.value) out[c.name] = { packets: c.packets, bytes: c.bytes };
      return { ok: true, value: out };
    }
    return countersFromList(this, family, table);
  }

  async apply(text: string): Promise<NftResult> {
    const r = await this.#run('nft', ['-f', '-'], text);
    return r.ok
      ? { ok: true, value: undefined }
      : { ok: false, error: explainPermissionError(r.message, 'CAP_NET_ADMIN') };
  }

  async list(what: readonly string[]): Promise<NftResult<unknown>> {
    const r = await this.#run('nft', ['-j', 'list', ...what]);
    if (!r.ok) return { ok: false, error: explainPermissionError(r.message, 'CAP_NET_ADMIN') };
    try {
      return { ok: true, value: JSON.parse(r.stdout) as unknown };
    } catch (err) {
      return {
        ok: false,
        error: `nft -j list ${what.join(' ')}: unparsable JSON (${(err as Error).message})`,
      };
    }
  }

  async deleteTable(family: NftFamily, table: string): Promise<NftResult<boolean>> {
    const r = await this.#run('nft', ['delete', 'table', family, table]);
    if (r.ok) return { ok: true, value: true };
    return MISSING.test(r.message)
      ? { ok: true, value: false }
      : { ok: false, error: explainPermissionError(r.message, 'CAP_NET_ADMIN') };
  }
}

/** What a table holds, as read back with `nft -j list table`. */
export interface TableState {
  readonly exists: boolean;
  /** Slot → server address as the kernel holds it. */
  readonly slots: (string | undefined)[];
  readonly sets: readonly string[];
  readonly chains: readonly string[];
  /** Names of the table's `ct timeout` objects. */
  readonly ctTimeouts: readonly string[];
  readonly counters: Readonly<Record<string, { packets: number; bytes: number }>>;
}

/** Reads a table's state; `exists: false` when nft says it is not there. */
export async function readTableState(
  applier: NftApplier,
  family: NftFamily,
  table: string,
): Promise<NftResult<TableState>> {
  const r = await applier.list(['table', family, table]);
  const empty = (): TableState => ({
    exists: false,
    slots: new Array(MAGLEV_TABLE_SIZE).fill(undefined),
    sets: [],
    chains: [],
    ctTimeouts: [],
    counters: {},
  });
  if (!r.ok) return MISSING.test(r.error) ? { ok: true, value: empty() } : r;
  const state = empty() as { -readonly [K in keyof TableState]: TableState[K] };
  state.exists = true;
  const sets: string[] = [];
  const chains: string[] = [];
  const ctTimeouts: string[] = [];
  const counters: Record<string, { packets: number; bytes: number }> = {};
  for (const item of nftJsonItems(r.value)) {
    if (item.map && item.map.name === NFT_OBJECTS.slotsMap) {
      for (const e of (item.map.elem as unknown[] | undefined) ?? []) {
        if (
          Array.isArray(e) &&
          typeof e[0] === 'number' &&
          typeof e[1] === 'string' &&
          e[0] >= 0 &&
          e[0] < MAGLEV_TABLE_SIZE
        ) {
          state.slots[e[0]] = e[1];
        }
      }
    } else if (item.set && typeof item.set.name === 'string') {
      sets.push(item.set.name);
    } else if (item.chain && typeof item.chain.name === 'string') {
      chains.push(item.chain.name);
    } else if (item['ct timeout'] && typeof item['ct timeout'].name === 'string') {
      ctTimeouts.push(item['ct timeout'].name);
    } else if (item.counter && typeof item.counter.name === 'string') {
      counters[item.counter.name] = {
        packets: Number(item.counter.packets ?? 0),
        bytes: Number(item.counter.bytes ?? 0),
      };
    }
  }
  state.sets = sets;
  state.chains = chains;
  state.ctTimeouts = ctTimeouts;
  state.counters = counters;
  return { ok: true, value: state };
}

/** Reads the named counters of a table: the applier's own reader, else `nft -j list counters table F T`. */
export function readCounters(
  applier: NftApplier,
  family: CounterFamily,
  table: string,
): Promise<NftResult<CounterValues>> {
  return applier.counters
    ? applier.counters(family, table)
    : countersFromList(applier, family, table);
}

async function countersFromList(
  applier: NftApplier,
  family: CounterFamily,
  table: string,
): Promise<NftResult<CounterValues>> {
  const r = await applier.list(['counters', 'table', family, table]);
  if (!r.ok) return r;
  const out: CounterValues = {};
  for (const item of nftJsonItems(r.value)) {
    const c = item.counter;
    if (c && typeof c.name === 'string')
      out[c.name] = { packets: Number(c.packets ?? 0), bytes: Number(c.bytes ?? 0) };
  }
  return { ok: true, value: out };
}

interface FakeTable {
  slots: Map<number, string>;
  /** Elements of the other sets (`spi_dead`, `spi_<id>`, pins...), as written. */
  elements: Map<string, Set<string>>;
  sets: Set<string>;
  chains: Set<string>;
  ctTimeouts: Set<string>;
  counters: Map<string, { packets: number; bytes: number }>;
}

/**
 * An in-memory nft for unit tests: records every transaction and models what the data plane
 * relies on (table existence, slot elements with nft's add/delete strictness, the elements of
 * the other sets, set, chain and counter names). A transaction that nft would reject (adding an
 * existing slot, deleting a missing one, touching a missing set) is rejected whole, like nft's
 * atomic batch.
 */
export class FakeNftApplier implements NftApplier {
  readonly transactions: string[] = [];
  readonly tables = new Map<string, FakeTable>();
  /** When set, the next `apply` fails with this message (then it is cleared). */
  failNext: string | undefined;
  /** When set, the next `apply` whose text matches `when` fails with `error` (then it is cleared). */
  failMatching: { when: RegExp; error: string } | undefined;

  async apply(text: string): Promise<NftResult> {
    this.transactions.push(text);
    if (this.failNext !== undefined) {
      const error = this.failNext;
      this.failNext = undefined;
      return { ok: false, error };
    }
    if (this.failMatching?.when.test(text)) {
      const { error } = this.failMatching;
      this.failMatching = undefined;
      return { ok: false, error };
    }
    const copy = (t: FakeTable): FakeTable => ({
      slots: new Map(t.slots),
      elements: new Map([...t.elements].map(([k, v]) => [k, new Set(v)])),
      sets: new Set(t.sets),
      chains: new Set(t.chains),
      ctTimeouts: new Set(t.ctTimeouts),
      counters: new Map(t.counters),
    });
    const work = new Map([...this.tables].map(([k, t]) => [k, copy(t)]));
    let current: FakeTable | undefined;
    for (const raw of text.split('\n')) {
      const l = raw.trim();
      let m: RegExpExecArray | null;
      if ((m = /^(?:add )?table (ip6?) (\w+)/.exec(l))) {
        const key = `${m[1]} ${m[2]}`;
        if (!work.has(key))
          work.set(key, {
            slots: new Map(),
            elements: new Map(),
            sets: new Set(),
            chains: new Set(),
            ctTimeouts: new Set(),
            counters: new Map(),
          });
        current = work.get(key);
      } else if ((m = /^(add|delete) element (ip6?) (\w+) (\w+) \{ (.*) \}$/.exec(l))) {
        const t = work.get(`${m[2]} ${m[3]}`);
        if (!t) return { ok: false, error: `Error: No such file or directory: ${l.slice(0, 80)}` };
        if (m[4] !== NFT_OBJECTS.slotsMap) {
          // Other sets: kept as written, without nft's strictness (adding twice is no error).
          if (!t.sets.has(m[4] ?? ''))
            return { ok: false, error: `Error: No such file or directory: set ${m[4]}` };
          const els = t.elements.get(m[4] ?? '') ?? new Set<string>();
          for (const item of (m[5] ?? '').split(', '))
            m[1] === 'add' ? els.add(item) : els.delete(item);
          t.elements.set(m[4] ?? '', els);
          continue;
        }
        for (const item of (m[5] ?? '').split(', ')) {
          const [k, v] = item.split(' : ');
          const slot = Number(k);
          if (m[1] === 'add') {
            if (t.slots.has(slot))
              return {
                ok: false,
                error: `Error: Could not process rule: File exists (slot ${slot})`,
              };
            t.slots.set(slot, v ?? '');
          } else {
            if (!t.slots.delete(slot))
              return {
                ok: false,
                error: `Error: Could not process rule: No such file or directory (slot ${slot})`,
              };
          }
        }
      } else if ((m = /^(?:add )?chain (?:(ip6?) (\w+) )?(\w+)/.exec(l))) {
        const t = m[1] ? work.get(`${m[1]} ${m[2]}`) : current;
        t?.chains.add(m[3] ?? '');
      } else if ((m = /^set (\w+) \{/.exec(l))) {
        current?.sets.add(m[1] ?? '');
      } else if ((m = /^ct timeout (\w+) \{/.exec(l))) {
        current?.ctTimeouts.add(m[1] ?? '');
      } else if ((m = /^delete ct timeout (ip6?) (\w+) (\w+)$/.exec(l))) {
        if (!work.get(`${m[1]} ${m[2]}`)?.ctTimeouts.delete(m[3] ?? ''))
          return { ok: false, error: `Error: No such file or directory: ${l}` };
      } else if ((m = /^counter (\w+) \{/.exec(l))) {
        if (current && !current.counters.has(m[1] ?? ''))
          current.counters.set(m[1] ?? '', { packets: 0, bytes: 0 });
      } else if ((m = /^flush set (ip6?) (\w+) (\w+)$/.exec(l))) {
        const t = work.get(`${m[1]} ${m[2]}`);
        if (!t?.sets.has(m[3] ?? ''))
          return { ok: false, error: `Error: No such file or directory: ${l}` };
        t.elements.delete(m[3] ?? '');
      } else if ((m = /^delete (set|counter|chain) (ip6?) (\w+) (\w+)$/.exec(l))) {
        const t = work.get(`${m[2]} ${m[3]}`);
        const bag = m[1] === 'set' ? t?.sets : m[1] === 'chain' ? t?.chains : t?.counters;
        if (!bag?.delete(m[4] ?? ''))
          return { ok: false, error: `Error: No such file or directory: ${l}` };
        if (m[1] === 'set') t?.elements.delete(m[4] ?? '');
      }
    }
    this.tables.clear();
    for (const [k, t] of work) this.tables.set(k, t);
    return { ok: true, value: undefined };
  }

  async list(what: readonly string[]): Promise<NftResult<unknown>> {
    if (what[0] === 'set') {
      const [, family, name, set] = what;
      const t = this.tables.get(`${family} ${name}`);
      if (!t?.sets.has(set ?? ''))
        return {
          ok: false,
          error: `Error: No such file or directory\nlist set ${family} ${name} ${set}`,
        };
      const elem = [...(t.elements.get(set ?? '') ?? [])].map((e) => {
        const c = /^(\d+) \. (\d+)$/.exec(e);
        return c ? { concat: [Number(c[1]), Number(c[2])] } : e;
      });
      return {
        ok: true,
        value: {
          nftables: [
            { metainfo: { version: 'fake' } },
            { set: { family, table: name, name: set, elem } },
          ],
        },
      };
    }
    const counters = what[0] === 'counters';
    const [family, name] = counters ? [what[2], what[3]] : [what[1], what[2]];
    const t = this.tables.get(`${family} ${name}`);
    if (!t)
      return { ok: false, error: `Error: No such file or directory\nlist table ${family} ${name}` };
    const nftables: unknown[] = [{ metainfo: { version: 'fake' } }];
    for (const [n, c] of t.counters)
      nftables.push({ counter: { family, table: name, name: n, ...c } });
    if (!counters) {
      nftables.push({ table: { family, name } });
      nftables.push({
        map: {
          family,
          table: name,
          name: NFT_OBJECTS.slotsMap,
          elem: [...t.slots].sort((a, b) => a[0] - b[0]),
        },
      });
      for (const s of t.sets) nftables.push({ set: { family, table: name, name: s } });
      for (const c of t.chains) nftables.push({ chain: { family, table: name, name: c } });
      for (const c of t.ctTimeouts)
        nftables.push({ 'ct timeout': { family, table: name, name: c, protocol: 'udp' } });
    }
    return { ok: true, value: { nftables } };
  }

  async deleteTable(family: NftFamily, table: string): Promise<NftResult<boolean>> {
    this.transactions.push(`delete table ${family} ${table}`);
    return { ok: true, value: this.tables.delete(`${family} ${table}`) };
  }
}
