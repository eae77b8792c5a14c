/**
 * Suite 4: control plane. Maglev table build time (in process, the product's
 * `buildMaglevTable`), nftables map update time (full and incremental) and forwarding while
 * the map is rewritten — measured on a table of the same shape as the kernel data plane's
 * (DESIGN §4: `jhash` of the IKE SPI mod 65537 → map of slot → server, DNAT in prerouting).
 */
import { buildMaglevTable } from '../../src/balancer/maglev/maglev.js';
import type { Candidate } from '../../src/balancer/balancer.js';
import type { Namespace } from '../../lab/netns.js';
import { median } from '../lib/stats.js';

/** Median ms to build a 65537-slot table for each backend count. */
export function maglevBuildTimes(
  counts: readonly number[],
  repeats: number,
): Record<string, number> {
  const out: Record<string, number> = {};
  for (const n of counts) {
    const candidates: Candidate[] = Array.from({ length: n }, (_, i) => ({
      name: `rras-${String(i).padStart(4, '0')}`,
      address: `198.18.${4 + (i >> 8)}.${i & 255}`,
      weight: 1,
    }));
    const times: number[] = [];
    for (let r = 0; r < repeats; r++) {
      const t0 = process.hrtime.bigint();
      buildMaglevTable(candidates);
      times.push(Number(process.hrtime.bigint() - t0) / 1e6);
    }
    out[String(n)] = median(times);
  }
  return out;
}

/** nft elements `slot : address` for `slots` (pure). */
export function elements(slots: readonly number[], addressOf: (slot: number) => string): string {
  return slots.map((s) => `${s} : ${addressOf(s)}`).join(', ');
}

export const MAP_SIZE = 65537;

/** The reference ruleset (DESIGN §4) with the map filled round-robin over `servers`. */
export function referenceRuleset(table: string, vip: string, servers: readonly string[]): string {
  const all = Array.from({ length: MAP_SIZE }, (_, i) => i);
  return `table ip ${table} {
  map slots { typeof numgen inc mod 2 : ip daddr; size 131072; }
  chain pre {
    type nat hook prerouting priority dstnat; policy accept;
    ip daddr ${vip} udp dport 4500 @th,64,32 0 dnat to jhash @th,96,64 mod ${MAP_SIZE} seed 0x1234 map @slots
  }
}
add element ip ${table} slots { ${elements(all, (s) => servers[s % servers.length]!)} }
`;
}

/** Full rewrite: flush + 65537 elements in one transaction. */
export function fullRewrite(table: string, servers: readonly string[], shift: number): string {
  const all = Array.from({ length: MAP_SIZE }, (_, i) => i);
  return `flush map ip ${table} slots\nadd element ip ${table} slots { ${elements(all, (s) => servers[(s + shift) % servers.length]!)} }\n`;
}

/** Incremental: `count` slots change server (delete + add in one transaction). */
export function incrementalRewrite(
  table: string,
  servers: readonly string[],
  count: number,
  shift: number,
): string {
  const slots = Array.from({ length: count }, (_, i) => (i * 4) % MAP_SIZE);
  return `delete element ip ${table} slots { ${slots.join(', ')} }\nadd element ip ${table} slots { ${elements(slots, (s) => servers[(s + shift) % servers.length]!)} }\n`;
}

/** Median wall ms of `nft -f` for each script. */
export async function timeNft(ns: Namespace, scripts: readonly string[]): Promise<number> {
  const times: number[] = [];
  for (const s of scripts) {
    const t0 = process.hrtime.bigint();
    await ns.exec('nft', ['-f', '-'], s);
    times.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  return median(times);
}
