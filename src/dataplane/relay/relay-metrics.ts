/**
 * Prometheus export of the relay's counters. The per-packet path only adds to plain numbers
 * (a labelled prom-client `inc` per datagram would cost more than forwarding it); `flush()`
 * moves the differences into the registry, once a second and on stop.
 */
import type { Metrics } from '../../observability/metrics.js';
import type { RelayBackend } from './relay-flow.js';
import { RELAY_DROP_REASONS, type RelayDrops, type RelayDropReason } from './relay-drops.js';
import type { RemovalReason } from './flow-table.js';

type Direction = 'to_backend' | 'to_client';

export class RelayMetrics {
  readonly #service: string;
  readonly #packets;
  readonly #bytes;
  readonly #dropped;
  readonly #flows;
  readonly #flowsRemoved;
  readonly #snatSessions;
  // What was already exported, to inc by the difference.
  readonly #exported = new Map<string, number>();
  /** Flow removals by reason since the last flush (mutable). */
  readonly removed: Record<RemovalReason, number> = {
    idle: 0,
    evicted: 0,
    flushed: 0,
    stopped: 0,
    error: 0,
  };

  constructor(service: string, metrics: Metrics) {
    this.#service = service;
    this.#packets = metrics.counter({
      name: 'vpnlb_relay_packets_total',
      help: 'Datagrams forwarded by the userspace IKEv2 relay, by backend and direction (to_backend, to_client).',
      labelNames: ['service', 'backend', 'direction'],
    });
    this.#bytes = metrics.counter({
      name: 'vpnlb_relay_bytes_total',
      help: 'UDP payload bytes forwarded by the userspace IKEv2 relay, by backend and direction.',
      labelNames: ['service', 'backend', 'direction'],
    });
    this.#dropped = metrics.counter({
      name: 'vpnlb_relay_dropped_total',
      help: 'Datagrams the userspace IKEv2 relay dropped, by reason (see docs/operations.md).',
      labelNames: ['service', 'reason'],
    });
    this.#flows = metrics.gauge({
      name: 'vpnlb_relay_flows',
      help: 'Flows (client address:port on one virtual port) tracked by the userspace IKEv2 relay, per backend.',
      labelNames: ['service', 'backend'],
    });
    this.#flowsRemoved = metrics.counter({
      name: 'vpnlb_relay_flows_removed_total',
      help: 'Flows removed from the relay flow table, by reason (idle, evicted, flushed, stopped, error).',
      labelNames: ['service', 'reason'],
    });
    this.#snatSessions = metrics.gauge({
      name: 'vpnlb_relay_snat_sessions',
      help: 'Client sessions holding an SNAT lease (one source address towards one backend).',
      labelNames: ['service'],
    });
    for (const reason of RELAY_DROP_REASONS) this.#dropped.inc({ service, reason }, 0);
  }

  flush(backends: Iterable<RelayBackend>, drops: RelayDrops, snatSessions: number): void {
    const service = this.#service;
    for (const b of backends) {
      const t = b.traffic;
      this.#add(this.#packets, b.name, 'to_backend', 'p', t.packetsIn);
      this.#add(this.#packets, b.name, 'to_client', 'p', t.packetsOut);
      this.#add(this.#bytes, b.name, 'to_backend', 'b', t.bytesIn);
      this.#add(this.#bytes, b.name, 'to_client', 'b', t.bytesOut);
      this.#flows.set({ service, backend: b.name }, t.flows);
    }
    for (const reason of RELAY_DROP_REASONS) {
      const key = `d\u0000${reason}`;
      const total = drops.counts[reason as RelayDropReason];
      const delta = total - (this.#exported.get(key) ?? 0);
      if (delta > 0) {
        this.#dropped.inc({ service, reason }, delta);
        this.#exported.set(key, total);
      }
    }
    for (const reason of Object.keys(this.removed) as RemovalReason[]) {
      const n = this.removed[reason];
      if (n > 0) {
        this.#flowsRemoved.inc({ service, reason }, n);
        this.removed[reason] = 0;
      }
    }
    this.#snatSessions.set({ service }, snatSessions);
  }

  #add(
    counter: { inc(labels: Record<string, string>, v: number): void },
    backend: string,
    direction: Direction,
    kind: string,
    total: number,
  ): void {
    const key = `${kind}\u0000${backend}\u0000${direction}`;
    const delta = total - (this.#exported.get(key) ?? 0);
    if (delta > 0) {
      counter.inc({ service: this.#service, backend, direction }, delta);
      this.#exported.set(key, total);
    }
  }
}
