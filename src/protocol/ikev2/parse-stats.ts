/**
 * Outcome counters of the IKEv2 parsers (Envoy's habit: one declared list of stats per
 * component, every outcome counted). There is no global instance: the owner (a data-plane
 * listener, a health check) creates one and passes it to the parse calls it makes.
 */
import {
  IKE_HEADER_OUTCOMES,
  NAT_T_OUTCOMES,
  PAYLOAD_OUTCOMES,
  type IkeHeaderOutcome,
  type NatTOutcome,
  type PayloadOutcome,
} from './parse-codes.js';

function zeros<K extends string>(keys: readonly K[]): Record<K, number> {
  const record = {} as Record<K, number>;
  for (const key of keys) record[key] = 0;
  return record;
}

/** A plain-object copy of the counters, for metrics export and tests. */
export interface IkeParseStatsSnapshot {
  readonly header: Readonly<Record<IkeHeaderOutcome, number>>;
  readonly natT: Readonly<Record<NatTOutcome, number>>;
  readonly payloads: Readonly<Record<PayloadOutcome, number>>;
  readonly unknownExchange: number;
}

/**
 * Counts of parse outcomes by result kind and invalid code. Every key is present from the start
 * (at zero), so a metrics exporter can register all label values up front.
 *
 * Sections are per entry point: `classifyNatT` counts in `natT` and, for IKE behind a non-ESP
 * marker, also in `header`; `parsePayloads` counts only in `payloads` (header failures under
 * their header code), so a caller that runs both parsers on a message does not count it twice.
 */
export class IkeParseStats {
  // Mutable counters (the record objects are fixed; their values change).
  /** `parseIkeHeader` and `IkeHeaderReader` outcomes. */
  readonly header: Record<IkeHeaderOutcome, number> = zeros(IKE_HEADER_OUTCOMES);
  /** `classifyNatT` outcomes. */
  readonly natT: Record<NatTOutcome, number> = zeros(NAT_T_OUTCOMES);
  /** `parsePayloads` outcomes. */
  readonly payloads: Record<PayloadOutcome, number> = zeros(PAYLOAD_OUTCOMES);
  /**
   * Headers accepted with an exchange type vpnlb does not know (38–255 except 43): forwarded,
   * not dropped, since a balancer must pass extensions through (RFC 7296 §3.1 leaves 38–239 to
   * IANA and 240–255 to private use).
   */
  unknownExchange = 0;

  /** A copy of every counter. */
  snapshot(): IkeParseStatsSnapshot {
    return {
      header: { ...this.header },
      natT: { ...this.natT },
      payloads: { ...this.payloads },
      unknownExchange: this.unknownExchange,
    };
  }

  /** Sets every counter back to zero. */
  reset(): void {
    for (const key of IKE_HEADER_OUTCOMES) this.header[key] = 0;
    for (const key of NAT_T_OUTCOMES) this.natT[key] = 0;
    for (const key of PAYLOAD_OUTCOMES) this.payloads[key] = 0;
    this.unknownExchange = 0;
  }
}
