/**
 * Incremental programming of a service's table: which slots change, and the one `nft -f`
 * transaction that brings the kernel from what it holds to what the snapshot wants.
 *
 * nftables refuses `add element` for a key that exists ("File exists") and `delete element`
 * for one that does not, so the diff is computed against what the kernel actually holds (read
 * back at start, then tracked) and a changed slot is written as delete + add in the same
 * transaction: packets see either the old or the new map, never a missing slot. Established
 * flows are untouched: their conntrack entries carry their NAT binding, not the map.
 */
import type { MaglevTable } from '../../balancer/maglev/maglev.js';
import {
  NFT_OBJECTS,
  renderSlotElements,
  type ChainSpec,
  type NftFamily,
} from './render-ruleset.js';
import { nftJsonItems, nftSetElements } from './nft-json.js';

/** Server address of each slot (`undefined`: empty slot). */
export type SlotAddresses = readonly (string | undefined)[];

/** Slot → server address for a Maglev table (empty slots when the table has no backend). */
export function slotAddressesOf(table: MaglevTable): (string | undefined)[] {
  const out = new Array<string | undefined>(table.slots.length);
  for (let s = 0; s < table.slots.length; s++) {
    const index = table.slots[s] as number;
    out[s] = index >= 0 ? table.backends[index]?.address : undefined;
  }
  return out;
}

export interface SlotChanges {
  /** Slots to delete (held something that changes or disappears). */
  readonly deletes: readonly number[];
  /** Slots to add (new or changed server). */
  readonly adds: readonly number[];
}

/** Compares what the kernel holds with what is wanted, slot by slot (by address). */
export function diffSlotAddresses(current: SlotAddresses, desired: SlotAddresses): SlotChanges {
  const deletes: number[] = [];
  const adds: number[] = [];
  const n = Math.max(current.length, desired.length);
  for (let s = 0; s < n; s++) {
    const was = current[s];
    const want = desired[s];
    if (was === want) continue;
    if (was !== undefined) deletes.push(s);
    if (want !== undefined) adds.push(s);
  }
  return { deletes, adds };
}

export interface TransactionInput {
  readonly family: NftFamily;
  readonly table: string;
  readonly chains: readonly ChainSpec[];
  /** `renderRuleset` output (structure and rules, no elements). */
  readonly ruleset: string;
  readonly changes: SlotChanges;
  /** The wanted addresses (values of `changes.adds`). */
  readonly desired: SlotAddresses;
  /** Pin and SPI sets to empty (their server went down or was disabled). */
  readonly flushSets?: readonly string[];
  /** SPIs (`hi . lo`) of the SAs of those servers, moved into `spi_dead` (see `retireSpis`). */
  readonly deadSpis?: readonly string[];
  /** Objects left over from an older configuration (adoption), deleted after the rules stop referring to them. */
  readonly deleteSets?: readonly string[];
  readonly deleteCounters?: readonly string[];
  readonly deleteChains?: readonly string[];
  /** `ct timeout` objects of an older configuration (their flows fall back to the host's timeouts). */
  readonly deleteCtTimeouts?: readonly string[];
}

/**
 * One atomic transaction: ensure the table and chains exist, flush the chains and re-add their
 * rules (a packet sees the old rule set or the new one, never an empty chain), drop stale
 * objects, rewrite the changed slots, empty the pin sets of lost servers.
 */
export function renderTransaction(t: TransactionInput): string {
  const { family: f, table } = t;
  const parts: string[] = [`add table ${f} ${table}`];
  for (const c of t.chains) parts.push(`add chain ${f} ${table} ${c.name} { ${c.header} }`);
  for (const c of t.chains) parts.push(`flush chain ${f} ${table} ${c.name}`);
  for (const c of t.deleteChains ?? []) parts.push(`delete chain ${f} ${table} ${c}`);
  let text = `${parts.join('\n')}\n${t.ruleset}`;
  const tail: string[] = [];
  for (const s of t.deleteSets ?? []) tail.push(`delete set ${f} ${table} ${s}`);
  for (const c of t.deleteCounters ?? []) tail.push(`delete counter ${f} ${table} ${c}`);
  for (const c of t.deleteCtTimeouts ?? []) tail.push(`delete ct timeout ${f} ${table} ${c}`);
  if (tail.length > 0) text += `${tail.join('\n')}\n`;
  text += renderDeadSpis(f, table, t.deadSpis ?? []);
  text += (t.flushSets ?? []).map((s) => `flush set ${f} ${table} ${s}\n`).join('');
  text += renderSlotElements('delete', f, table, t.changes.deletes, t.desired);
  text += renderSlotElements('add', f, table, t.changes.adds, t.desired);
  return text;
}

/** A transaction that only rewrites slots and empties pin sets (the steady-state update). */
export function renderMapUpdate(
  family: NftFamily,
  table: string,
  changes: SlotChanges,
  desired: SlotAddresses,
  flushSets: readonly string[] = [],
  deadSpis: readonly string[] = [],
): string {
  let text = renderDeadSpis(family, table, deadSpis);
  text += flushSets.map((s) => `flush set ${family} ${table} ${s}\n`).join('');
  text += renderSlotElements('delete', family, table, changes.deletes, desired);
  text += renderSlotElements('add', family, table, changes.adds, desired);
  return text;
}

/**
 * `add element` lines that put SPIs into `spi_dead` (with the set's own timeout). Adding an
 * element a set already holds is not an error for nft sets (unlike a map key with a new value).
 */
export function renderDeadSpis(
  family: NftFamily,
  table: string,
  spis: readonly string[],
  chunk = 4096,
): string {
  let text = '';
  for (let i = 0; i < spis.length; i += chunk) {
    text += `add element ${family} ${table} ${NFT_OBJECTS.spiDeadSet} { ${spis.slice(i, i + chunk).join(', ')} }\n`;
  }
  return text;
}

/**
 * The SPIs held by one `spi_<id>` set, from `nft -j list set` output, as `hi . lo` element keys.
 * nft prints each element either bare (`{"concat": [hi, lo]}`) or wrapped with its timeout
 * (`{"elem": {"val": {"concat": [...]}, "expires": n}}`); anything else is skipped.
 */
export function spisOfSetJson(json: unknown): string[] {
  const out: string[] = [];
  for (const item of nftJsonItems(json))
    for (const { val } of nftSetElements(item.set)) {
      const [hi, lo] = (val as { concat?: unknown[] } | null)?.concat ?? [];
      if (typeof hi === 'number' && typeof lo === 'number') out.push(`${hi} . ${lo}`);
    }
  return out;
}
