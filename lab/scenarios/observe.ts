/**
 * What the lab measures, from independent sources rather than from vpnlb's own account:
 * - which server each client's UDP 500 and UDP 4500 flows reached: the balancer namespace's
 *   conntrack table (reply source = the server the kernel chose), traced through the CGNAT
 *   router's conntrack for clients behind it;
 * - which client addresses each server saw: the servers' own IKE_SAs (`swanctl --list-sas`);
 * - how many IKE_SA_INITs a server refused for exceeding its per-IP half-open limit: its log.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { IkeSaInfo } from '../strongswan/list-sas.js';
import type { ConntrackUdp, IkeLab, LabClient, LabServer } from '../topology-ike.js';

/** Where one client's two flows went (server names; empty when no flow was seen). */
export interface ClientFlows {
  readonly client: string;
  readonly servers500: readonly string[];
  readonly servers4500: readonly string[];
  /** True when the 500 and 4500 flows of the client reached different servers. */
  readonly split: boolean;
}

function serverByAddress(lab: IkeLab, address: string): LabServer | undefined {
  return lab.servers.find((s) => s.address4 === address || s.address6 === address);
}

/** Traces every client's 500 and 4500 flows through the balancer (and CGNAT) conntrack. */
export async function traceClientFlows(
  lab: IkeLab,
  clients: readonly LabClient[],
): Promise<ClientFlows[]> {
  const lbTable = await lab.conntrack();
  const cgnTable: ConntrackUdp[] = clients.some((c) => c.behindCgnat)
    ? await lab.conntrack(lab.topo.ns('cgn'))
    : [];
  return clients.map((c) => {
    const serversFor = (port: number): string[] => {
      // The flow's source as the balancer sees it: the client itself, or the CGNAT's mapping.
      const sources: { addr: string; port: number }[] = [];
      if (!c.behindCgnat) sources.push({ addr: c.address, port });
      else
        for (const e of cgnTable)
          if (e.src === c.address && e.sport === port && e.dport === port)
            sources.push({ addr: e.replyDst, port: e.replyDport });
      const names = new Set<string>();
      for (const e of lbTable) {
        if (e.dport !== port || !sources.some((s) => s.addr === e.src && s.port === e.sport))
          continue;
        const server = serverByAddress(lab, e.replySrc);
        if (server) names.add(server.name);
      }
      return [...names].sort();
    };
    const servers500 = serversFor(500);
    const servers4500 = serversFor(4500);
    const split =
      servers500.length > 0 &&
      servers4500.length > 0 &&
      new Set([...servers500, ...servers4500]).size > 1;
    return { client: c.name, servers500, servers4500, split };
  });
}

/** Every IKE_SA of every running server, with the server's name. */
export async function serverSas(lab: IkeLab): Promise<{ server: string; sa: IkeSaInfo }[]> {
  const lists = await Promise.all(
    lab.servers.map(async (s) =>
      s.charon?.running
        ? (await s.charon.listSas().catch(() => [])).map((sa) => ({ server: s.name, sa }))
        : [],
    ),
  );
  return lists.flat();
}

/** Distinct peer addresses in the servers' IKE_SAs (half-open ones included). */
export function distinctRemoteAddresses(sas: readonly { sa: IkeSaInfo }[]): string[] {
  return [...new Set(sas.map((x) => x.sa.remoteHost).filter(Boolean))].sort();
}

/**
 * IKE_SA_INITs the servers ignored because one source address already held more half-open
 * IKE_SAs than `charon.block_threshold` (strongSwan's receiver.c logs each one).
 */
export function countBlockedInits(lab: IkeLab): number {
  let n = 0;
  for (const s of lab.servers) {
    let text = '';
    try {
      text = readFileSync(join(s.charon?.dir ?? join(lab.dir, s.name), 'charon.log'), 'utf8');
    } catch {
      continue;
    }
    n += text.split('\n').filter((l) => l.includes('half-open IKE_SA limit')).length;
  }
  return n;
}
