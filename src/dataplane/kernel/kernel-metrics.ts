/**
 * The kernel data plane's metrics, declared in one place (Envoy's habit). The kernel keeps
 * cumulative nft counters; they are turned into Prometheus counters by adding the increase
 * since the previous read (a counter that went down means the table was recreated: the new
 * value is the increase).
 */
import type { Counter, Gauge } from 'prom-client';
import type { Metrics } from '../../observability/metrics.js';
import { NFT_OBJECTS, counterName, type RulesetBackend } from './render-ruleset.js';
import { SSTP_UNROUTED } from './render-sstp.js';

type NftCounters = Readonly<Record<string, { packets: number; bytes: number }>>;

export class KernelMetrics {
  readonly #service: string;
  readonly #applies: Counter<'service' | 'result'>;
  readonly #slots: Counter<'service'>;
  readonly #retirements: Counter<'service' | 'result'>;
  readonly #ctDeleted: Counter<'service' | 'backend'>;
  readonly #ctKept: Counter<'service' | 'backend'>;
  readonly #ctFailures: Counter<'service'>;
  readonly #packets: Counter<'service' | 'backend' | 'direction'>;
  readonly #bytes: Counter<'service' | 'backend' | 'direction'>;
  readonly #dropped: Counter<'service' | 'reason'>;
  readonly #returnPath: Gauge<'service' | 'backend'>;
  readonly #split: Counter<'service'>;
  readonly #missing = new Set<string>();

  constructor(metrics: Metrics, service: string) {
    this.#service = service;
    this.#applies = metrics.counter({
      name: 'vpnlb_kernel_applies_total',
      help: 'nft transactions of the kernel data plane, by result (ok, error).',
      labelNames: ['service', 'result'],
    });
    this.#slots = metrics.counter({
      name: 'vpnlb_kernel_slots_written_total',
      help: 'Maglev slots rewritten in the kernel map (deletes and adds).',
      labelNames: ['service'],
    });
    this.#retirements = metrics.counter({
      name: 'vpnlb_kernel_retirements_total',
      help: 'Small nft transactions that retired lost servers (SPIs into spi_dead, their sets emptied) ahead of the slot update, by result (ok, error: then the slot transaction carries it).',
      labelNames: ['service', 'result'],
    });
    this.#ctDeleted = metrics.counter({
      name: 'vpnlb_kernel_conntrack_deleted_total',
      help: 'Conntrack entries deleted because their server went down, was disabled or removed.',
      labelNames: ['service', 'backend'],
    });
    this.#ctKept = metrics.counter({
      name: 'vpnlb_kernel_conntrack_kept_standby_total',
      help: "Deletions of a server's conntrack entries skipped because this node is an HA pair's standby (or faulted): conntrackd would carry them to the active node.",
      labelNames: ['service', 'backend'],
    });
    this.#ctFailures = metrics.counter({
      name: 'vpnlb_kernel_conntrack_errors_total',
      help: 'conntrack calls that failed (flows then stay until they expire).',
      labelNames: ['service'],
    });
    this.#packets = metrics.counter({
      name: 'vpnlb_kernel_backend_packets_total',
      help: 'Packets forwarded by the kernel, per server and direction (in: to the server, out: back to clients).',
      labelNames: ['service', 'backend', 'direction'],
    });
    this.#bytes = metrics.counter({
      name: 'vpnlb_kernel_backend_bytes_total',
      help: 'Bytes forwarded by the kernel, per server and direction.',
      labelNames: ['service', 'backend', 'direction'],
    });
    this.#dropped = metrics.counter({
      name: 'vpnlb_kernel_dropped_packets_total',
      help: "Packets the kernel ruleset dropped: ike_unrouted (no SPI or no server), natt_unrouted (ESP without conntrack entry or pin), snat_exhausted (full NAT: the client's SNAT address is at snat.maxSasPerAddress for that server), ike_stale (IKE packets of an SA whose server went down: dropped so that they cannot capture the client's next handshake), sstp_unrouted (kernel SSTP: a new connection whose slot has no server).",
      labelNames: ['service', 'reason'],
    });
    this.#split = metrics.counter({
      name: 'vpnlb_kernel_ike_split_packets_total',
      help: 'IKE packets on the NAT-T port forwarded to another server than the one their IKE_SA_INIT reached: a client 4500 flow shared by SAs placed on two servers (the newer handshake fails; see docs/operations.md).',
      labelNames: ['service'],
    });
    this.#returnPath = metrics.gauge({
      name: 'vpnlb_kernel_return_path_missing',
      help: "1 when a server's forwarded flows get no reply through the balancer (transparent mode: fix its default gateway).",
      labelNames: ['service', 'backend'],
    });
  }

  applied(ok: boolean, slots: number): void {
    this.#applies.inc({ service: this.#service, result: ok ? 'ok' : 'error' });
    if (ok && slots > 0) this.#slots.inc({ service: this.#service }, slots);
  }

  retired(ok: boolean): void {
    this.#retirements.inc({ service: this.#service, result: ok ? 'ok' : 'error' });
  }

  conntrackDeleted(backend: string, n: number): void {
    this.#ctDeleted.inc({ service: this.#service, backend }, n);
  }

  conntrackKeptOnStandby(backend: string): void {
    this.#ctKept.inc({ service: this.#service, backend });
  }

  conntrackFailed(): void {
    this.#ctFailures.inc({ service: this.#service });
  }

  /** Adds the increase of each nft counter since `before`. */
  counters(before: NftCounters, after: NftCounters, backends: readonly RulesetBackend[]): void {
    const inc = (name: string): { packets: number; bytes: number } => {
      const a = after[name];
      if (!a) return { packets: 0, bytes: 0 };
      const b = before[name];
      const fresh = !b || a.packets < b.packets;
      return fresh ? a : { packets: a.packets - b.packets, bytes: a.bytes - b.bytes };
    };
    for (const be of backends) {
      for (const direction of ['in', 'out'] as const) {
        const d = inc(counterName(be.id, direction));
        const labels = { service: this.#service, backend: be.name, direction };
        if (d.packets > 0) this.#packets.inc(labels, d.packets);
        if (d.bytes > 0) this.#bytes.inc(labels, d.bytes);
      }
    }
    for (const reason of [
      NFT_OBJECTS.ikeUnrouted,
      NFT_OBJECTS.nattUnrouted,
      NFT_OBJECTS.snatExhausted,
      NFT_OBJECTS.ikeStale,
      SSTP_UNROUTED,
    ]) {
      const d = inc(reason);
      if (d.packets > 0) this.#dropped.inc({ service: this.#service, reason }, d.packets);
    }
    const split = inc(NFT_OBJECTS.ikeSplit);
    if (split.packets > 0) this.#split.inc({ service: this.#service }, split.packets);
  }

  /** Sets the return-path gauge; returns whether the backend was already flagged. */
  returnPathMissing(backend: string, isMissing: boolean): boolean {
    const was = this.#missing.has(backend);
    if (isMissing) this.#missing.add(backend);
    else this.#missing.delete(backend);
    this.#returnPath.set({ service: this.#service, backend }, isMissing ? 1 : 0);
    return was;
  }
}
