/**
 * The `ike-spi` flow-state exchange between the nodes of an ECMP farm (docs/scale-out.md "Flow
 * state when the node set changes"). Each node's `vpnlb run` serves its pins, SPIs and peer
 * addresses on `GET /api/v1/flow-state` (its admin API, behind a token) and pulls every other
 * node's every `bgp.flowSync.interval`, adding what it lacks to its own sets. A flow that the
 * routers move to another node (a drained, added or dead node) then finds its server there.
 *
 * A pull is bounded in time and size; a peer that does not answer, refuses the token or sends
 * a malformed document is counted and logged once per change of its condition, and the others
 * are pulled as usual. Rounds never overlap.
 */
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { Logger } from '../log/logger.js';
import type { Metrics } from '../observability/metrics.js';
import type { FlowImportResult } from '../dataplane/kernel/flow-state.js';

/** A data plane that keeps flow state (the kernel plane of an `ike-spi` service). */
export interface FlowStatePlane {
  readonly serviceName: string;
  /** Imports the entries of several nodes' documents for this service in one transaction. */
  importFlowState(raws: readonly unknown[]): Promise<FlowImportResult>;
}

export interface FlowSyncPeer {
  readonly name: string;
  /** Its admin API: `http(s)://host:port`. */
  readonly url: string;
}

export interface FlowSyncOptions {
  readonly peers: readonly FlowSyncPeer[];
  readonly token: string;
  readonly interval: number;
  readonly startupWait: number;
  /** PEM of the CA that signs the peers' admin certificates (https). */
  readonly ca?: string;
  readonly planes: () => Iterable<FlowStatePlane>;
  readonly logger: Logger;
  readonly metrics: Metrics;
}

/** Largest flow-state document accepted from a peer (about a million pins). */
export const MAX_FLOW_STATE_BYTES = 64 * 1024 * 1024;

export interface FlowSyncPeerStatus {
  readonly name: string;
  readonly url: string;
  readonly lastOkAt: string | null;
  readonly lastError: string | null;
}

export interface FlowSyncStatus {
  /** Every peer pulled once, or `startupWait` passed: the node may announce. */
  readonly ready: boolean;
  readonly interval: number;
  readonly peers: readonly FlowSyncPeerStatus[];
  /** Elements taken from the other nodes since start. */
  readonly added: number;
  readonly refreshed: number;
  readonly moved: number;
  /** The last round that could not be applied, and why (null once one was). */
  readonly lastImportError: string | null;
}

interface PeerState {
  name: string;
  url: string;
  lastOkAt: Date | null;
  lastError: string | null;
}

export class FlowStateSync {
  readonly #o: FlowSyncOptions;
  readonly #peers: PeerState[];
  readonly #startedAt = Date.now();
  #ready = false;
  #timer: NodeJS.Timeout | undefined;
  #stopped = false;
  #round: Promise<void> | undefined;
  #totals = { added: 0, refreshed: 0, moved: 0 };
  #lastImportError: string | null = null;
  readonly #pulls;
  readonly #elements;

  constructor(options: FlowSyncOptions) {
    this.#o = options;
    this.#peers = options.peers.map((p) => ({
      name: p.name,
      url: p.url,
      lastOkAt: null,
      lastError: null,
    }));
    this.#pulls = options.metrics.counter({
      name: 'vpnlb_flow_sync_pulls_total',
      help: "Pulls of another node's ike-spi flow state, by node and result (ok, unreachable, refused, invalid).",
      labelNames: ['node', 'result'],
    });
    this.#elements = options.metrics.counter({
      name: 'vpnlb_flow_sync_elements_total',
      help: 'Flow-state elements (pins, SPIs, peer addresses) taken from another node, by node and action (added, refreshed, moved).',
      labelNames: ['node', 'action'],
    });
    const peers = this.#peers;
    options.metrics.gauge({
      name: 'vpnlb_flow_sync_age_seconds',
      help: "Seconds since the last successful pull of each node's flow state (-1: never).",
      labelNames: ['node'],
      collect() {
        for (const p of peers)
          this.set(
            { node: p.name },
            p.lastOkAt ? Math.round((Date.now() - p.lastOkAt.getTime()) / 1000) : -1,
          );
      },
    });
  }

  start(): void {
    this.#o.logger.info(
      {
        component: 'flow-sync',
        peers: this.#peers.map((p) => p.name),
        intervalMs: this.#o.interval,
      },
      `flow sync: pulling the ike-spi flow state of ${this.#peers.map((p) => `${p.name} (${p.url})`).join(', ')} every ${this.#o.interval} ms`,
    );
    this.#schedule(0);
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#timer) clearTimeout(this.#timer);
    await this.#round;
  }

  status(): FlowSyncStatus {
    return {
      ready: this.#isReady(),
      interval: this.#o.interval,
      peers: this.#peers.map((p) => ({
        name: p.name,
        url: p.url,
        lastOkAt: p.lastOkAt?.toISOString() ?? null,
        lastError: p.lastError,
      })),
      ...this.#totals,
      lastImportError: this.#lastImportError,
    };
  }

  /**
   * One round now (the timer calls it): every peer fetched in parallel, then each service's
   * entries of all of them imported in one transaction (one read of the local sets per round).
   */
  async pullOnce(): Promise<void> {
    const docs = await Promise.all(this.#peers.map((p) => this.#fetch(p)));
    const byService = new Map<string, { peer: PeerState; raw: unknown }[]>();
    docs.forEach((doc, i) => {
      for (const raw of doc ?? []) {
        const name = (raw as { service?: unknown } | null)?.service;
        if (typeof name !== 'string') continue;
        byService.set(name, [...(byService.get(name) ?? []), { peer: this.#peers[i]!, raw }]);
      }
    });
    const invalid = new Map<PeerState, string[]>();
    const errors: string[] = [];
    for (const plane of this.#o.planes()) {
      const entries = byService.get(plane.serviceName) ?? [];
      if (entries.length === 0) continue;
      const r = await plane.importFlowState(entries.map((e) => e.raw));
      for (const bad of r.invalid) {
        const peer = entries[bad.index]!.peer;
        invalid.set(peer, [...(invalid.get(peer) ?? []), bad.error]);
      }
      if (r.error) errors.push(`${plane.serviceName}: ${r.error}`);
      if (r.plan) {
        for (const action of ['added', 'refreshed', 'moved'] as const) {
          this.#totals[action] += r.plan[action];
          if (r.plan[action] > 0) this.#elements.inc({ action }, r.plan[action]);
        }
      }
    }
    docs.forEach((doc, i) => {
      const p = this.#peers[i]!;
      if (doc === undefined) return;
      const bad = invalid.get(p);
      if (bad) this.#fail(p, 'invalid', `malformed flow state from ${p.url}: ${bad.join('; ')}`);
      else this.#ok(p);
    });
    if (errors.length > 0) {
      const error = errors.join('; ');
      if (error !== this.#lastImportError)
        this.#o.logger.warn(
          { component: 'flow-sync' },
          `flow sync: the other nodes' flow state could not be applied: ${error}`,
        );
      this.#lastImportError = error;
    } else this.#lastImportError = null;
  }

  #isReady(): boolean {
    if (!this.#ready)
      this.#ready =
        this.#peers.every((p) => p.lastOkAt !== null) ||
        Date.now() - this.#startedAt >= this.#o.startupWait;
    return this.#ready;
  }

  #schedule(ms: number): void {
    if (this.#stopped) return;
    this.#timer = setTimeout(() => {
      this.#round = this.pullOnce()
        .catch((err: unknown) =>
          this.#o.logger.error({ component: 'flow-sync', err }, 'flow sync: a round failed'),
        )
        .finally(() => {
          this.#round = undefined;
          this.#schedule(this.#o.interval);
        });
    }, ms);
    this.#timer.unref();
  }

  #fail(p: PeerState, result: string, error: string): undefined {
    this.#pulls.inc({ node: p.name, result });
    if (p.lastError !== error)
      this.#o.logger.warn(
        { component: 'flow-sync', node: p.name, url: p.url, result },
        `flow sync: ${p.name}: ${error}; its ike-spi flows that move here will be lost until it answers`,
      );
    p.lastError = error;
    return undefined;
  }

  #ok(p: PeerState): void {
    this.#pulls.inc({ node: p.name, result: 'ok' });
    if (p.lastError !== null)
      this.#o.logger.info(
        { component: 'flow-sync', node: p.name },
        `flow sync: ${p.name} answers again`,
      );
    p.lastError = null;
    p.lastOkAt = new Date();
  }

  /** A peer's document's `services`, or undefined (counted and logged) when it has none. */
  async #fetch(p: PeerState): Promise<unknown[] | undefined> {
    let res: { status: number; body: string };
    try {
      res = await this.#get(new URL('/api/v1/flow-state', p.url));
    } catch (err) {
      return this.#fail(p, 'unreachable', `no answer from ${p.url} (${(err as Error).message})`);
    }
    if (res.status === 401 || res.status === 403)
      return this.#fail(
        p,
        'refused',
        `${p.url} refused the token (HTTP ${res.status}): every node must accept bgp.flowSync's token (the same admin.readOnlyTokenFile on every node)`,
      );
    if (res.status !== 200) return this.#fail(p, 'refused', `${p.url} answered HTTP ${res.status}`);
    try {
      const doc = JSON.parse(res.body) as { services?: unknown };
      if (!Array.isArray(doc.services)) throw new Error('no "services" list');
      return doc.services as unknown[];
    } catch (err) {
      return this.#fail(
        p,
        'invalid',
        `malformed flow state from ${p.url}: ${(err as Error).message}`,
      );
    }
  }

  #get(url: URL): Promise<{ status: number; body: string }> {
    const timeout = Math.max(2_000, this.#o.interval * 2);
    return new Promise((resolve, reject) => {
      const options = {
        method: 'GET',
        headers: { authorization: `Bearer ${this.#o.token}`, accept: 'application/json' },
        ...(url.protocol === 'https:' && this.#o.ca ? { ca: this.#o.ca } : {}),
      };
      const onResponse = (res: IncomingMessage) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          size += c.length;
          if (size > MAX_FLOW_STATE_BYTES) {
            req.destroy(new Error(`answer larger than ${MAX_FLOW_STATE_BYTES} bytes`));
            return;
          }
          chunks.push(c);
        });
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }),
        );
        res.on('error', reject);
      };
      const req =
        url.protocol === 'https:'
          ? httpsRequest(url, options, onResponse)
          : httpRequest(url, options, onResponse);
      // Bounds the whole exchange (connect, answer, body), not only the idle time between packets.
      const deadline = setTimeout(
        () => req.destroy(new Error(`no answer within ${timeout} ms`)),
        timeout,
      );
      req.on('close', () => clearTimeout(deadline));
      req.on('error', reject);
      req.end();
    });
  }
}

/** The `vpnlb status` lines of the exchange. */
export function formatFlowSyncStatus(s: FlowSyncStatus, now = Date.now()): string {
  const lines = [
    `flow sync every ${s.interval} ms: ${s.ready ? 'ready' : 'starting (not announcing yet)'}; taken from the other nodes: ${s.added} added, ${s.refreshed} refreshed, ${s.moved} moved${s.lastImportError ? `; last round not applied: ${s.lastImportError}` : ''}`,
  ];
  for (const p of s.peers) {
    const ago = p.lastOkAt
      ? `${((now - Date.parse(p.lastOkAt)) / 1000).toFixed(1)} s ago`
      : 'never';
    lines.push(
      `  ${p.name} ${p.url}: last pulled ${ago}${p.lastError ? `; failing: ${p.lastError}` : ''}`,
    );
  }
  return lines.join('\n');
}
