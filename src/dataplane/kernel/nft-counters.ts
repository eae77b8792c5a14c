/**
 * Reads nftables named counters. `nft -j list counters` first fetches the whole ruleset into its
 * cache, every element of every set included: about 0.7 s of CPU per 65537-slot Maglev map on a
 * two-core machine, and several seconds of wall time when the host is busy. The kernel plane
 * reads its counters every poll (10 s) for every table, `vpnlb node drain` every few hundred
 * milliseconds, so with a few services that cost alone kept a core busy. The optional native
 * addon (native/nft-counters, built by scripts/setup.sh) asks the kernel for the counter objects
 * only (one netlink dump, well under a millisecond); without it (not built, not Linux, or
 * `VPNLB_NFT_COUNTERS_NATIVE=0`) the `nft` CLI answers as before.
 */
import { join } from 'node:path';
import { enabledByEnv, loadAddon, type AddonLoad } from '../native/load-addon.js';

/** The addon's one function (native/nft-counters/nft_counters.c documents it). */
export interface NativeNftCounters {
  read(family: number, table: string, netnsPath: string): NativeCounter[];
}

export interface NativeCounter {
  readonly table: string;
  readonly name: string;
  /** NFPROTO_* of its table. */
  readonly family: number;
  readonly packets: number;
  readonly bytes: number;
}

export type CounterFamily = 'ip' | 'ip6' | 'inet';

/** NFPROTO_* (linux/netfilter.h); 0 asks for every family. */
const NFPROTO: Readonly<Record<CounterFamily, number>> = { inet: 1, ip: 2, ip6: 10 };

export const NFT_COUNTERS_ADDON_PATH = join(
  'native',
  'nft-counters',
  'build',
  'Release',
  'nft_counters.node',
);

/** The environment switch: `VPNLB_NFT_COUNTERS_NATIVE=0` (or off/false/no) uses the `nft` CLI. */
export const NFT_COUNTERS_ENV = 'VPNLB_NFT_COUNTERS_NATIVE';

let cached: AddonLoad<NativeNftCounters> | undefined;

/** The addon, or why it is unavailable (loaded once per process). */
export function loadNativeNftCounters(): AddonLoad<NativeNftCounters> {
  return (cached ??= loadAddon<NativeNftCounters>({
    path: NFT_COUNTERS_ADDON_PATH,
    needs: 'NETLINK_NETFILTER',
    functions: ['read'],
  }));
}

export interface NativeCounterQuery {
  /** Every family when absent. */
  readonly family?: CounterFamily;
  /** Every table when absent. */
  readonly table?: string;
  /** A named network namespace (`ip netns`); the process's own when absent. */
  readonly netns?: string;
}

/**
 * The counters through the addon: `undefined` when the addon is unavailable or switched off (the
 * caller uses the CLI), `{ ok: false }` with the kernel's reason when the dump failed.
 */
export function readCountersNative(
  query: NativeCounterQuery,
  env: NodeJS.ProcessEnv = process.env,
): { ok: true; value: NativeCounter[] } | { ok: false; error: string } | undefined {
  if (!enabledByEnv(NFT_COUNTERS_ENV, env)) return undefined;
  const addon = loadNativeNftCounters();
  if (!('binding' in addon)) return undefined;
  try {
    const value = addon.binding.read(
      query.family === undefined ? 0 : NFPROTO[query.family],
      query.table ?? '',
      query.netns === undefined ? '' : join('/run/netns', query.netns),
    );
    return { ok: true, value };
  } catch (err) {
    return { ok: false, error: (err as Error).message };
  }
}

/** The counter objects of `nft -j list counters [table F T]` output (none when unparsable). */
export function countersOfNftJson(text: string): NativeCounter[] {
  let doc: { nftables?: { counter?: Record<string, unknown> }[] };
  try {
    doc = JSON.parse(text) as typeof doc;
  } catch {
    return [];
  }
  const out: NativeCounter[] = [];
  for (const item of doc.nftables ?? []) {
    const c = item.counter;
    if (!c || typeof c.name !== 'string') continue;
    out.push({
      table: String(c.table ?? ''),
      name: c.name,
      family: NFPROTO[c.family as CounterFamily] ?? 0,
      packets: Number(c.packets ?? 0),
      bytes: Number(c.bytes ?? 0),
    });
  }
  return out;
}

/**
 * The counter objects asked for: through the addon when it answers, else through `nft` (`run`
 * gets the arguments after `nft` and returns its standard output, or undefined when it failed).
 * Nothing when neither answers.
 */
export async function readCounterObjects(
  query: NativeCounterQuery,
  run: (args: string[]) => Promise<string | undefined>,
): Promise<NativeCounter[]> {
  const native = readCountersNative(query);
  if (native?.ok) return native.value;
  const where =
    query.family !== undefined && query.table !== undefined
      ? ['table', query.family, query.table]
      : [];
  const text = await run(['-j', 'list', 'counters', ...where]);
  return text === undefined ? [] : countersOfNftJson(text);
}
