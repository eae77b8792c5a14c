/**
 * This node's place in the pair, read from the files the pair's scripts write (paths.ts): the
 * notify script's transition log, the drain file, the supervisor's last health check, and
 * conntrackd's statistics. What `vpnlb status`, `/api/v1/status`, `/metrics` and the dashboard
 * show.
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import type { HaConfig, HaNode } from '../config/types.js';
import { haPaths, type HaPaths } from './paths.js';
import { CONNTRACKD_PATH } from './render-scripts.js';

export type HaRole = 'active' | 'standby' | 'fault' | 'stopped' | 'unknown';

/** One line of the transition log. */
export interface Transition {
  readonly at: number;
  readonly state: 'MASTER' | 'BACKUP' | 'FAULT' | 'STOP';
  readonly priority: number;
  readonly drained: boolean;
  /** `ok`, or the first failed check line (`alive fail …`). */
  readonly check: string;
}

export interface Failover {
  readonly at: string;
  readonly from: HaRole;
  readonly to: HaRole;
  readonly cause: string;
}

export interface HaStatus {
  readonly node: string;
  readonly peer: { readonly name: string; readonly syncAddress: string; readonly priority: number };
  readonly role: HaRole;
  readonly priority: number;
  readonly drained: boolean;
  readonly check: string;
  readonly sync: {
    readonly conntrackd: 'running' | 'not running';
    readonly entries: number | null;
    readonly detail: string;
  };
  /** The last change of ownership (into or out of `active`), with its cause. */
  readonly lastFailover: Failover | null;
  readonly transitions: number;
}

const ROLE: Record<Transition['state'], HaRole> = {
  MASTER: 'active',
  BACKUP: 'standby',
  FAULT: 'fault',
  STOP: 'stopped',
};

/** Parses the transition log; lines that are not transitions (conntrackd errors) are skipped. */
export function parseTransitions(text: string): Transition[] {
  const out: Transition[] = [];
  for (const line of text.split('\n')) {
    const m = /^(\d+) (MASTER|BACKUP|FAULT|STOP) (\d+)(?: drain=(\S*) check=(.*))?$/.exec(
      line.trim(),
    );
    if (!m) continue;
    out.push({
      at: Number(m[1]),
      state: m[2] as Transition['state'],
      priority: Number(m[3]),
      drained: (m[4] ?? '0').trim() !== '0' && m[4] !== '',
      check: m[5] ?? 'ok',
    });
  }
  return out;
}

/** Why a transition happened, from what the notify script saw at that moment. */
export function causeOf(prev: Transition | undefined, t: Transition): string {
  const failed = t.check.startsWith('alive fail') ? t.check.slice('alive fail '.length) : undefined;
  const noServers = t.check.startsWith('backends fail')
    ? t.check.slice('backends fail '.length)
    : undefined;
  switch (t.state) {
    case 'FAULT':
      if (t.check.startsWith('link down: '))
        return `${t.check} (keepalived faults the group when a VRRP interface is down)`;
      return `health check failed: ${failed ?? noServers ?? 'keepalived tracking failed'}`;
    case 'STOP':
      return 'keepalived stopped on this node';
    case 'BACKUP':
      if (t.drained) return 'planned drain (vpnlb node drain)';
      if (noServers) return `no usable server here (${noServers}): priority lowered below the peer`;
      if (prev?.state === 'MASTER')
        return 'the peer took over (higher priority: fail-back or preemption)';
      return prev ? `recovered from ${prev.state.toLowerCase()}` : 'started as standby';
    case 'MASTER':
      if (!prev) return 'elected at start (the peer is absent or has a lower priority)';
      if (prev.state === 'FAULT') return 'recovered from fault and took the addresses';
      return 'the peer stopped advertising or gave the addresses up (dead, stopped, drained or unhealthy)';
  }
}

/**
 * The last change of ownership in the log (into or out of MASTER). keepalived starts every
 * instance as BACKUP and takes the addresses when no advertisement came within its master-down
 * interval (3 adverts and a skew below one, RFC 3768 §6.4.2): a MASTER that soon after a start
 * is an election at start, not a peer that went away.
 */
export function lastFailover(
  transitions: readonly Transition[],
  advertIntervalMs = 1000,
): Failover | null {
  for (let i = transitions.length - 1; i > 0; i--) {
    const t = transitions[i]!;
    const prev = transitions[i - 1]!;
    if ((t.state === 'MASTER') !== (prev.state === 'MASTER')) {
      const startedAsStandby =
        prev.state === 'BACKUP' && (i === 1 || transitions[i - 2]!.state === 'STOP');
      const electedAtStart =
        t.state === 'MASTER' && startedAsStandby && t.at - prev.at <= 4 * advertIntervalMs + 1000;
      return {
        at: new Date(t.at).toISOString(),
        from: ROLE[prev.state],
        to: ROLE[t.state],
        // The start's BACKUP says nothing about the peer: the cause is the start's.
        cause: causeOf(electedAtStart ? undefined : prev, t),
      };
    }
  }
  const first = transitions[0];
  return first?.state === 'MASTER'
    ? {
        at: new Date(first.at).toISOString(),
        from: 'unknown',
        to: 'active',
        cause: causeOf(undefined, first),
      }
    : null;
}

/** Counts the entries in `conntrackd -s` output ("current active connections: N" of the cache). */
export function parseConntrackdEntries(text: string): number | null {
  const m = /current active connections:\s*(\d+)/.exec(text);
  return m ? Number(m[1]) : null;
}

/**
 * Keeps an `HaStatus` up to date by polling the files every second and conntrackd every five
 * (one short `conntrackd -s` over its UNIX socket). Never throws: a missing file is a state.
 */
export class HaStatusReader {
  readonly #ha: HaConfig;
  readonly #self: HaNode;
  readonly #peer: HaNode;
  readonly #paths: HaPaths;
  #status: HaStatus;
  #sync: HaStatus['sync'] = { conntrackd: 'not running', entries: null, detail: 'not polled yet' };
  #timer: NodeJS.Timeout | undefined;
  #ticks = 0;
  readonly #onChange: (s: HaStatus, previous: HaStatus) => void;

  constructor(
    ha: HaConfig,
    self: HaNode,
    peer: HaNode,
    onChange: (s: HaStatus, previous: HaStatus) => void = () => undefined,
  ) {
    this.#ha = ha;
    this.#self = self;
    this.#peer = peer;
    this.#paths = haPaths(ha.runDir);
    this.#onChange = onChange;
    this.#status = this.#read();
  }

  get status(): HaStatus {
    return this.#status;
  }

  start(): void {
    this.#timer = setInterval(() => this.refresh(), 1000);
    this.#timer.unref();
    this.refresh();
  }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
  }

  refresh(): void {
    if (this.#ticks++ % 5 === 0) this.#pollConntrackd();
    const previous = this.#status;
    this.#status = this.#read();
    if (previous.transitions !== this.#status.transitions || previous.role !== this.#status.role)
      this.#onChange(this.#status, previous);
  }

  #pollConntrackd(): void {
    execFile(
      CONNTRACKD_PATH,
      ['-C', this.#paths.conntrackdConf, '-s'],
      { timeout: 2000 },
      (err, stdout) => {
        this.#sync = err
          ? {
              conntrackd: 'not running',
              entries: null,
              detail: (err.message.split('\n')[0] ?? '').slice(0, 200),
            }
          : {
              conntrackd: 'running',
              entries: parseConntrackdEntries(stdout),
              detail: 'FTFW over UDP',
            };
      },
    );
  }

  #read(): HaStatus {
    const text = (p: string) => {
      try {
        return readFileSync(p, 'utf8');
      } catch {
        return '';
      }
    };
    const transitions = parseTransitions(text(this.#paths.transitions));
    const last = transitions[transitions.length - 1];
    const checkLines = text(this.#paths.checkFile).split('\n').filter(Boolean);
    return {
      node: this.#self.name,
      peer: {
        name: this.#peer.name,
        syncAddress: this.#peer.syncAddress,
        priority: this.#peer.priority,
      },
      role: last ? ROLE[last.state] : 'unknown',
      priority: this.#self.priority,
      drained: text(this.#paths.drainFile).trim() === '1',
      check:
        checkLines.find((l) => !l.endsWith(' ok')) ??
        (checkLines.length > 0 ? 'ok' : 'no check yet'),
      sync: {
        ...this.#sync,
        detail: `${this.#sync.detail} (${this.#ha.sync.interface}, port ${this.#ha.sync.port})`,
      },
      lastFailover: lastFailover(transitions, this.#ha.vrrp.advertInterval),
      transitions: transitions.length,
    };
  }
}
