/**
 * What the userspace IKEv2 relay drops, and the allocation-free checks of its per-packet path.
 *
 * Every dropped datagram is counted under one reason (metric `vpnlb_relay_dropped_total
 * {service,reason}`) and logged, at most once per reason every `LOG_INTERVAL_MS` with the count
 * since the last line, so that a flood cannot flood the log. The reasons are a closed list
 * (metric labels are a public contract: add at the end, never rename).
 */
import { IKE_HEADER_LENGTH, IKE_MAJOR_VERSION } from '../../protocol/ikev2/constants.js';
import { NAT_T_INVALID_CODES } from '../../protocol/ikev2/parse-codes.js';
import type { Logger } from '../../log/logger.js';
import { MONOTONIC_CLOCK, type Clock } from '../../util/clock.js';

/**
 * Reasons of the relay itself, after the parser codes (`empty`, `esp-too-short`, `ike-<code>`
 * from src/protocol/ikev2/parse-codes.ts; a port-500 datagram uses the same `ike-` codes):
 * - `keepalive-no-flow`: a NAT-keepalive (RFC 3948 §2.3) from a client with no flow (harmless).
 * - `esp-no-flow`: ESP from a client with neither a flow nor a pinned backend: never sent to a
 *   random server, which could only answer with an error.
 * - `no-backend`: no backend can take a new client (all down, disabled or draining).
 * - `flow-table-full` / `session-table-full`: the table is at `maxFlows` and nothing could be
 *   evicted (every scanned entry is active).
 * - `snat-exhausted`: every SNAT address is at `maxSasPerAddress` for the chosen backend.
 * - `new-flow-shed`: too many upstream sockets are being set up, or the budget of new flows
 *   per second is spent (relay-new-flow-budget.ts); new flows wait their turn (the client
 *   retransmits) and existing flows are not affected.
 * - `new-flow-source-shed`: the source address has spent its own share of the new-flow budget
 *   (`maxNewFlowsPerSecondPerSource`, source-rate-limiter.ts): one flooding source is held to it
 *   and the rest of the budget stays for the other clients.
 * - `queue-full`: packets arrived faster than an upstream socket could be set up.
 * - `socket-error`: an upstream socket could not be created, bound or used.
 */
export const RELAY_DROP_REASONS = [
  ...NAT_T_INVALID_CODES,
  'keepalive-no-flow',
  'esp-no-flow',
  'no-backend',
  'flow-table-full',
  'session-table-full',
  'snat-exhausted',
  'new-flow-shed',
  'queue-full',
  'socket-error',
  'new-flow-source-shed',
] as const;

export type RelayDropReason = (typeof RELAY_DROP_REASONS)[number];

/** Minimum time between two log lines for the same drop reason. */
export const LOG_INTERVAL_MS = 10_000;

/** Drop counters by reason, with a rate-limited log line per reason. */
export class RelayDrops {
  // Mutable counters; every key exists from the start (fast property access, full metric set).
  readonly counts: Record<RelayDropReason, number>;
  readonly #sinceLog: Record<RelayDropReason, number>;
  readonly #lastLog: Record<RelayDropReason, number>;
  readonly #logger: Logger;
  readonly #service: string;
  readonly #clock: Clock;

  /** @param clock read on every drop: the relay passes its coarse clock (a flood of drops must not cost a `Date.now()` each) */
  constructor(service: string, logger: Logger, clock: Clock = MONOTONIC_CLOCK) {
    this.#service = service;
    this.#logger = logger;
    this.#clock = clock;
    const zeros = () =>
      Object.fromEntries(RELAY_DROP_REASONS.map((r) => [r, 0])) as Record<RelayDropReason, number>;
    this.counts = zeros();
    this.#sinceLog = zeros();
    this.#lastLog = Object.fromEntries(RELAY_DROP_REASONS.map((r) => [r, -Infinity])) as Record<
      RelayDropReason,
      number
    >;
  }

  /** Counts one drop; logs it unless this reason was logged in the last `LOG_INTERVAL_MS`. */
  drop(reason: RelayDropReason, from: string, detail?: string): void {
    this.dropMany(reason, 1, from, detail);
  }

  /** Counts `count` drops at once (those the native fast path counted since its last poll). */
  dropMany(reason: RelayDropReason, count: number, from: string, detail?: string): void {
    if (!(count > 0)) return;
    this.counts[reason] += count;
    this.#sinceLog[reason] += count;
    const now = this.#clock.now();
    if (now - this.#lastLog[reason] < LOG_INTERVAL_MS) return;
    const logged = this.#sinceLog[reason];
    this.#lastLog[reason] = now;
    this.#sinceLog[reason] = 0;
    const level =
      reason === 'snat-exhausted' ||
      reason === 'flow-table-full' ||
      reason === 'session-table-full' ||
      reason === 'socket-error'
        ? 'warn'
        : 'info';
    this.#logger[level](
      {
        component: 'udp-relay',
        service: this.#service,
        reason,
        from,
        count: logged,
        ...(detail ? { detail } : {}),
      },
      `${this.#service}: dropped ${logged} datagram(s) (${reason}), last from ${from}${detail ? `: ${detail}` : ''}`,
    );
  }

  total(): number {
    let n = 0;
    for (const r of RELAY_DROP_REASONS) n += this.counts[r];
    return n;
  }
}

/**
 * Allocation-free check of an IKE message at `offset` of a datagram that belongs to an existing
 * flow (RFC 7296 §3.1): at least a header, major version 2, Length equal to what remains.
 * Returns undefined when acceptable, else the drop reason. New flows get the full parser.
 */
export function checkIkeAt(datagram: Uint8Array, offset: number): RelayDropReason | undefined {
  const length = datagram.length - offset;
  if (length < IKE_HEADER_LENGTH) return 'ike-too-short';
  if (datagram[offset + 17]! >> 4 !== IKE_MAJOR_VERSION) return 'ike-bad-version';
  const declared =
    datagram[offset + 24]! * 0x1000000 +
    ((datagram[offset + 25]! << 16) | (datagram[offset + 26]! << 8) | datagram[offset + 27]!);
  if (declared !== length) return 'ike-length-mismatch';
  return undefined;
}

/**
 * Allocation-free check of a UDP 4500 datagram of an existing flow (RFC 3948 §2): a keepalive
 * (one 0xFF octet) or ESP (≥ 8 octets, non-zero SPI) pass; after a non-ESP marker, `checkIkeAt`.
 */
export function checkNatTDatagram(datagram: Uint8Array): RelayDropReason | undefined {
  const n = datagram.length;
  if (n === 0) return 'empty';
  if (n === 1) return datagram[0] === 0xff ? undefined : 'esp-too-short';
  if (n >= 4 && datagram[0] === 0 && datagram[1] === 0 && datagram[2] === 0 && datagram[3] === 0) {
    return checkIkeAt(datagram, 4);
  }
  return n < 8 ? 'esp-too-short' : undefined;
}
