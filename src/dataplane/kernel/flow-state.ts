/**
 * The `ike-spi` flow state of one kernel-plane service, as nodes of an ECMP farm exchange it
 * (docs/scale-out.md "Flow state when the node set changes"): which server each client NAT-T
 * flow is pinned to (`pin_<server>`: address . port), which server each IKE SA started on
 * (`spi_<server>`: initiator SPI), and which servers each client address has NAT-T flows on
 * (`peer_<server>`). A flow that the router moves to another node finds there the pin its ESP
 * needs and the SPIs its IKE packets need, instead of being dropped as unroutable.
 *
 * Pure: parsing `nft -j list sets table …`, checking a peer's document (untrusted network
 * input), planning what to import, rendering the nft transaction. Every element travels with
 * its remaining lifetime (`expires`, seconds) and is imported with it, so a copy never looks
 * fresher than its source and copies cannot keep one another alive. Where two nodes disagree
 * (a pin or SPI in another server's set), the element seen most recently wins: the sets are
 * refreshed by the flows' own packets, so the larger `expires` is the newer observation.
 */
import { isIP } from 'node:net';
import { canonicalAddress } from '../../config/address-rules.js';
import { peerSetName, pinSetName, spiSetName, type RulesetBackend } from './render-ruleset.js';
import { nftJsonItems, nftSetElements } from './nft-json.js';

export const FLOW_STATE_KINDS = ['pin', 'spi', 'peer'] as const;
export type FlowStateKind = (typeof FLOW_STATE_KINDS)[number];

/** One set of one server: elements as `[...key, expiresSeconds]`. */
export interface FlowStateSet {
  readonly kind: FlowStateKind;
  /** The server's address (ids and names may differ between configurations; addresses may not). */
  readonly server: string;
  /** pin: `[address, port, expires]`; spi: `[hi, lo, expires]`; peer: `[address, expires]`. */
  readonly elements: readonly (readonly (string | number)[])[];
}

export interface ServiceFlowState {
  readonly service: string;
  readonly family: 4 | 6;
  readonly sets: readonly FlowStateSet[];
}

/** What `GET /api/v1/flow-state` returns. */
export interface FlowStateDocument {
  readonly node?: string;
  readonly generatedAt: string;
  readonly services: readonly ServiceFlowState[];
}

const NAME = /^(pin|spi|peer)_(\w+)$/;

/** The pin, SPI and peer sets of a table's `nft -j list sets table …` output, by server address. */
export function flowStateOfSetsJson(
  json: unknown,
  service: { name: string; family: 4 | 6 },
  backends: readonly RulesetBackend[],
): ServiceFlowState {
  const byName = new Map<string, { kind: FlowStateKind; server: string }>();
  for (const b of backends) {
    byName.set(pinSetName(b.id), { kind: 'pin', server: b.address });
    byName.set(spiSetName(b.id), { kind: 'spi', server: b.address });
    byName.set(peerSetName(b.id), { kind: 'peer', server: b.address });
  }
  const sets: FlowStateSet[] = [];
  for (const item of nftJsonItems(json)) {
    const set = item.set;
    if (!set || typeof set.name !== 'string' || !NAME.test(set.name)) continue;
    const which = byName.get(set.name);
    if (!which) continue;
    const elements: (string | number)[][] = [];
    for (const { val, timed, expires } of nftSetElements(set)) {
      if (!timed) continue; // an element without a timeout: not one the data plane writes
      if (which.kind === 'peer') {
        if (typeof val === 'string') elements.push([canonicalAddress(val), expires]);
      } else {
        const [a, b] = (val as { concat?: unknown[] } | null)?.concat ?? [];
        if (which.kind === 'pin' && typeof a === 'string' && typeof b === 'number')
          elements.push([canonicalAddress(a), b, expires]);
        if (which.kind === 'spi' && typeof a === 'number' && typeof b === 'number')
          elements.push([a, b, expires]);
      }
    }
    sets.push({ kind: which.kind, server: which.server, elements });
  }
  return { service: service.name, family: service.family, sets };
}

/** Limits a peer's document must respect. */
export interface FlowStateLimits {
  /** Most elements of one set (the service's `maxFlows`). */
  readonly maxElements: number;
  /** Longest lifetime an element may claim, per kind (the sets' timeouts), seconds. */
  readonly maxExpires: Readonly<Record<FlowStateKind, number>>;
}

const isU32 = (v: unknown): v is number =>
  typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= 0xffff_ffff;

/**
 * Checks one service of a peer's document (network input): every element well-formed, of the
 * service's family, within the limits. Returns the first problem, or the state with canonical
 * addresses and lifetimes capped to the local timeouts.
 */
export function checkServiceFlowState(
  raw: unknown,
  family: 4 | 6,
  limits: FlowStateLimits,
): { ok: true; value: ServiceFlowState } | { ok: false; error: string } {
  const fail = (error: string) => ({ ok: false as const, error });
  if (typeof raw !== 'object' || raw === null) return fail('a service is not an object');
  const r = raw as Record<string, unknown>;
  if (typeof r.service !== 'string') return fail('a service has no name');
  if (r.family !== family) return fail(`${r.service}: family ${String(r.family)}, not ${family}`);
  if (!Array.isArray(r.sets)) return fail(`${r.service}: no "sets" list`);
  const address = (v: unknown): string | undefined => {
    if (typeof v !== 'string' || isIP(v) !== family) return undefined;
    const c = canonicalAddress(v);
    return isIP(c) === family ? c : undefined;
  };
  const sets: FlowStateSet[] = [];
  for (const s of r.sets as unknown[]) {
    const set = s as Record<string, unknown> | null;
    const kind = set?.kind as FlowStateKind;
    if (!set || !FLOW_STATE_KINDS.includes(kind))
      return fail(`${r.service}: a set of no known kind`);
    const server = address(set.server);
    if (!server) return fail(`${r.service}: ${kind} set with a bad server address`);
    if (!Array.isArray(set.elements)) return fail(`${r.service}: ${kind} set without elements`);
    if (set.elements.length > limits.maxElements)
      return fail(
        `${r.service}: ${kind} set of ${server} holds ${set.elements.length} elements, more than maxFlows ${limits.maxElements}`,
      );
    const elements: (string | number)[][] = [];
    for (const e of set.elements as unknown[]) {
      if (!Array.isArray(e)) return fail(`${r.service}: ${kind} element is not a list`);
      const expires = e[e.length - 1];
      if (!isU32(expires)) return fail(`${r.service}: ${kind} element with a bad lifetime`);
      const life = Math.min(expires, limits.maxExpires[kind]);
      if (kind === 'peer') {
        const a = address(e[0]);
        if (e.length !== 2 || !a) return fail(`${r.service}: bad peer element`);
        elements.push([a, life]);
      } else if (kind === 'pin') {
        const a = address(e[0]);
        const port = e[1];
        if (e.length !== 3 || !a || !isU32(port) || port === 0 || port > 65535)
          return fail(`${r.service}: bad pin element`);
        elements.push([a, port, life]);
      } else {
        if (e.length !== 3 || !isU32(e[0]) || !isU32(e[1]))
          return fail(`${r.service}: bad spi element`);
        elements.push([e[0], e[1], life]);
      }
    }
    sets.push({ kind, server, elements });
  }
  return { ok: true, value: { service: r.service, family, sets } };
}

/** One element to add (or to move/refresh: deleted first where `from` is set). */
export interface FlowStateChange {
  readonly kind: FlowStateKind;
  readonly server: string;
  readonly key: readonly (string | number)[];
  readonly expires: number;
  /** The server whose set holds the element now (same server: a refresh; another: a move). */
  readonly from?: string;
}

export interface FlowImportPlan {
  readonly changes: readonly FlowStateChange[];
  readonly added: number;
  readonly refreshed: number;
  readonly moved: number;
}

/** What one import round did: a plan applied, or why none was; malformed entries by index. */
export interface FlowImportResult {
  readonly plan?: FlowImportPlan;
  readonly skipped?: string;
  readonly error?: string;
  readonly invalid: readonly { readonly index: number; readonly error: string }[];
}

export interface FlowImportOptions {
  /** Servers whose sets may receive elements (configured, neither down nor disabled here). */
  readonly servers: ReadonlySet<string>;
  /** Refresh a local copy once the peer's is this many seconds younger. */
  readonly refreshAfter: number;
  /**
   * Leave alone local elements that expire within this many seconds (and ignore remote ones
   * that do): the kernel may drop them between the read and the transaction, which would fail
   * the transaction's `delete`.
   */
  readonly minLife: number;
}

const keyOf = (e: readonly (string | number)[]) => e.slice(0, -1).join(' ');

/**
 * What to import from the other nodes' states into the local one. Their elements are merged
 * first (per key, the newest observation: the largest lifetime), then compared with the local
 * ones: elements missing here are added, local copies older by `refreshAfter` refreshed, and
 * pins or SPIs held here for another server but seen more recently elsewhere moved. Peer
 * addresses may sit in several servers' sets (a shared address): they are keyed by address and
 * server.
 */
export function planFlowImport(
  local: ServiceFlowState,
  remotes: readonly ServiceFlowState[],
  options: FlowImportOptions,
): FlowImportPlan {
  const keyIn = (kind: FlowStateKind, e: readonly (string | number)[], server: string) =>
    kind === 'peer' ? `peer ${keyOf(e)} ${server}` : `${kind} ${keyOf(e)}`;
  // Local elements: pins and SPIs by key (one server each), peers by key and server.
  const here = new Map<string, { server: string; expires: number }>();
  for (const s of local.sets)
    for (const e of s.elements)
      here.set(keyIn(s.kind, e, s.server), {
        server: s.server,
        expires: e[e.length - 1] as number,
      });
  const best = new Map<string, FlowStateChange>();
  for (const remote of remotes)
    for (const s of remote.sets) {
      if (!options.servers.has(s.server)) continue;
      for (const e of s.elements) {
        const expires = e[e.length - 1] as number;
        if (expires <= options.minLife) continue;
        const k = keyIn(s.kind, e, s.server);
        if ((best.get(k)?.expires ?? -1) >= expires) continue;
        best.set(k, { kind: s.kind, server: s.server, key: e.slice(0, -1), expires });
      }
    }
  const changes: FlowStateChange[] = [];
  let added = 0;
  let refreshed = 0;
  let moved = 0;
  for (const [k, c] of best) {
    const mine = here.get(k);
    if (!mine) {
      changes.push(c);
      added++;
    } else if (mine.expires > options.minLife) {
      if (mine.server === c.server) {
        if (c.expires >= mine.expires + options.refreshAfter) {
          changes.push({ ...c, from: mine.server });
          refreshed++;
        }
      } else if (c.expires > mine.expires) {
        changes.push({ ...c, from: mine.server });
        moved++;
      }
    }
  }
  return { changes, added, refreshed, moved };
}

/** The nft transaction of a plan (`backends` maps server addresses to set ids). */
export function renderFlowImport(
  family: string,
  table: string,
  backends: readonly RulesetBackend[],
  plan: FlowImportPlan,
): string {
  const idOf = new Map(backends.map((b) => [b.address, b.id]));
  const setName = (kind: FlowStateKind, server: string) => {
    const id = idOf.get(server)!;
    return kind === 'pin' ? pinSetName(id) : kind === 'spi' ? spiSetName(id) : peerSetName(id);
  };
  const lines: string[] = [];
  for (const c of plan.changes) {
    const key = c.key.join(' . ');
    if (c.from !== undefined)
      lines.push(`delete element ${family} ${table} ${setName(c.kind, c.from)} { ${key} }`);
    lines.push(
      `add element ${family} ${table} ${setName(c.kind, c.server)} { ${key} expires ${c.expires}s }`,
    );
  }
  return lines.length > 0 ? `${lines.join('\n')}\n` : '';
}
