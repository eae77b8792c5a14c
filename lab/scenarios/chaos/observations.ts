/**
 * What the chaos run reads while it runs, each from the component that knows it rather than
 * from vpnlb's own account where an independent source exists:
 * - which server holds each client's tunnel: the servers' IKE_SAs (`swanctl --list-sas`, the
 *   peer identity is the client's name);
 * - how often a client had to establish its tunnel: the client charon's log (one
 *   "IKE_SA home[N] established" line per IKE_SA it set up);
 * - vpnlb's memory and descriptors: /proc of its process;
 * - vpnlb's kernel counters: the nft named counters of its tables (cumulative since the table
 *   was created; the table outlives vpnlb restarts);
 * - the SSTP proxy's rejections: vpnlb's /metrics.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { IkeLab, LabClient } from '../../topology-ike.js';
import { serverSas } from '../observe.js';
import { counterPackets } from '../../netns.js';

/** Client name → server name, for every established tunnel with an installed CHILD_SA. */
export async function tunnelPlacement(lab: IkeLab): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const { server, sa } of await serverSas(lab)) {
    if (sa.state === 'ESTABLISHED' && sa.children.some((c) => c.state === 'INSTALLED'))
      out.set(sa.remoteId, server);
  }
  return out;
}

/** IKE_SAs the client has established since its charon started (strongSwan logs each at level 1 of `ike`). */
export function establishedCount(lab: IkeLab, c: LabClient): number {
  try {
    const text = readFileSync(join(c.charon?.dir ?? join(lab.dir, c.name), 'charon.log'), 'utf8');
    return text.match(/IKE_SA home\[\d+\] established/g)?.length ?? 0;
  } catch {
    return 0;
  }
}

/**
 * Handshakes whose IKE_SA_INIT was answered and whose IKE_AUTH never was, from the client's
 * log: the client-side face of a split handshake (RFC 7296 §2.23: IKE_AUTH moves to 4500, so
 * when the two halves reach different servers the second knows no such SA and stays silent).
 * Conntrack shows a split only while the capturing entry lives; the client's log keeps it.
 */
export function unansweredIkeAuths(lab: IkeLab, c: LabClient): number {
  let text = '';
  try {
    text = readFileSync(join(c.charon?.dir ?? join(lab.dir, c.name), 'charon.log'), 'utf8');
  } catch {
    return 0;
  }
  let n = 0;
  let initAnswered = false;
  for (const line of text.split('\n')) {
    if (line.includes('parsed IKE_SA_INIT response')) initAnswered = true;
    else if (/IKE_SA home\[\d+\] established/.test(line)) initAnswered = false;
    else if (initAnswered && line.includes('establishing IKE_SA failed, peer not responding')) {
      n++;
      initAnswered = false;
    }
  }
  return n;
}

/** Resident memory (MiB) and open descriptors of a process; undefined once it is gone. */
export function processStats(pid: number | undefined): { rssMb: number; fds: number } | undefined {
  if (pid === undefined) return undefined;
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? NaN);
    return { rssMb: Math.round(kb / 102.4) / 10, fds: readdirSync(`/proc/${pid}/fd`).length };
  } catch {
    return undefined;
  }
}

/** The packets of every named nft counter in the balancer namespace, summed over tables (IPv4 and IPv6 services). */
export async function nftCounters(lab: IkeLab): Promise<Record<string, number>> {
  return counterPackets(lab.lb);
}

/** `name{labels} value` lines of a Prometheus text exposition, summed by one label, for one metric. */
export function metricByLabel(text: string, metric: string, label: string): Record<string, number> {
  const out: Record<string, number> = {};
  const re = new RegExp(`^${metric}\\{([^}]*)\\}\\s+([0-9.e+-]+)$`, 'gm');
  for (const m of text.matchAll(re)) {
    const value = new RegExp(`${label}="([^"]*)"`).exec(m[1]!)?.[1];
    if (value !== undefined) out[value] = (out[value] ?? 0) + Number(m[2]);
  }
  return out;
}

/** Runs `fn` over `items` with at most `limit` at a time (the machine's two cores are shared). */
export async function mapLimit<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T) => Promise<R>,
): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}
