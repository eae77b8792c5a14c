/**
 * The userspace relay's native fast path (issues 3 and 7): established flows forwarded by a
 * native thread with recvmmsg/sendmmsg batches, out of JavaScript.
 *
 * Why: Node's `dgram` costs ~7.3–8 µs of CPU per relayed datagram (a 64 KiB buffer, an rinfo
 * object and address string, a JS callback, one recvmsg + one sendmsg each) where nginx costs
 * ~5. The addon reads the relay's two listeners itself and, for a client it has a flow for,
 * sends on the flow's connected upstream socket; replies go back to the clients in batches.
 *
 * Division of work — JavaScript decides, the addon forwards:
 * - the relay installs a flow (`install`) once its upstream socket is connected, and removes it
 *   (`remove`: idle, evicted, flushed, stopped) *before* closing that socket;
 * - datagrams from clients the addon does not know are handed to `onHandoff` in batches, and
 *   the relay treats them exactly like datagrams Node would have delivered;
 * - `poll` reports per-flow packet/byte/error deltas and last-seen times (so the relay's idle
 *   expiry, eviction and counters stay right) and the drops counted natively (the relay's quick
 *   checks of relay-drops.ts, mirrored in C; a full hand-off queue is `new-flow-shed`).
 */
import type { Socket } from 'node:dgram';
import type { RelayDropReason } from '../relay-drops.js';
import { loadNativeFastPath, type HandoffPacket, type NativeFastPath } from './native-binding.js';
import { canTakeOver, socketFd, stopNodeReceiving } from '../../native/socket-fd.js';

/** The native drop reasons, in the addon's order (fastpath.h `enum fp_reason`). */
export const FASTPATH_DROP_REASONS: readonly RelayDropReason[] = [
  'empty',
  'esp-too-short',
  'ike-too-short',
  'ike-bad-version',
  'ike-length-mismatch',
  'new-flow-shed',
];

/** What a flow did since the last poll (or, from `remove`, since the last poll until removal). */
export interface FlowDelta {
  packetsIn: number;
  bytesIn: number;
  packetsOut: number;
  bytesOut: number;
  /** Failed sends/receives on the flow's upstream socket or towards its client. */
  errors: number;
}

/** Receives each changed flow of a poll (a callback: no object per flow). */
export type FlowVisitor = (
  slot: number,
  packetsIn: number,
  bytesIn: number,
  packetsOut: number,
  bytesOut: number,
  errors: number,
  lastSeenMs: number,
) => void;

/** Receives each native drop reason with a count since the last poll. */
export type DropVisitor = (reason: RelayDropReason, count: number, lastFrom: string) => void;

/** Totals since the fast path started (tests, troubleshooting). */
export interface FastPathTotals {
  readonly flows: number;
  readonly forwardedIn: number;
  readonly forwardedOut: number;
  /** Bytes handed to JS and not yet delivered (bounded natively at 16 MiB). */
  readonly handoffBytes: number;
}

export interface FastPathOptions {
  /** The relay's listeners (bound); the addon reads them from now on. */
  readonly ike: Socket;
  readonly natT: Socket;
  /** Most flows (the relay's `maxFlows`). */
  readonly maxFlows: number;
  /** Datagrams from clients without an installed flow, in arrival order per listener. */
  readonly onHandoff: (packets: HandoffPacket[]) => void;
}

/** Why `install` refused a flow (negative codes of the addon). */
const INSTALL_ERRORS: Record<number, string> = {
  [-1]: 'table full',
  [-2]: 'bad address',
  [-3]: 'epoll_ctl failed',
  [-4]: 'already installed',
  [-5]: 'stopped',
};

export class FastPath {
  readonly #native: NativeFastPath;
  readonly #handle: object;
  #closed = false;

  private constructor(native: NativeFastPath, handle: object) {
    this.#native = native;
    this.#handle = handle;
  }

  /**
   * Starts the fast path on the relay's listeners, or returns why it cannot (addon missing or
   * failed to load, Node's socket internals not as expected, native setup failed).
   */
  static open(o: FastPathOptions): FastPath | { unavailable: string } {
    const loaded = loadNativeFastPath();
    if ('unavailable' in loaded) return loaded;
    if (!canTakeOver(o.ike) || !canTakeOver(o.natT))
      return {
        unavailable:
          "this Node version does not expose a dgram socket's fd (internal handle changed)",
      };
    let handle: object;
    try {
      handle = loaded.binding.create(socketFd(o.ike)!, socketFd(o.natT)!, o.maxFlows, o.onHandoff);
    } catch (err) {
      return { unavailable: `native setup failed: ${(err as Error).message}` };
    }
    // From here the native thread reads the listeners; Node only sends on them. (A datagram
    // Node reads before this line still takes the JavaScript path: harmless.)
    stopNodeReceiving(o.ike);
    stopNodeReceiving(o.natT);
    return new FastPath(loaded.binding, handle);
  }

  /**
   * Hands a connected upstream socket to the native thread for client `address`:`port` on one
   * virtual port. Returns the flow's slot, or a reason string when the flow stays in JavaScript.
   */
  install(isNatT: boolean, address: string, port: number, upstream: Socket): number | string {
    if (this.#closed) return 'stopped';
    const fd = socketFd(upstream);
    if (fd === undefined) return 'no fd';
    const slot = this.#native.install(this.#handle, isNatT, address, port, fd);
    if (slot < 0) return INSTALL_ERRORS[slot] ?? `error ${slot}`;
    stopNodeReceiving(upstream);
    return slot;
  }

  /**
   * Removes a flow; once this returns the addon no longer uses its socket, which the caller may
   * then close. Returns what the flow did since the last poll.
   */
  remove(slot: number): FlowDelta | undefined {
    const d = this.#native.remove(this.#handle, slot);
    if (d === undefined) return undefined;
    return { packetsIn: d[0]!, bytesIn: d[1]!, packetsOut: d[2]!, bytesOut: d[3]!, errors: d[4]! };
  }

  /** Reports (and resets) per-flow deltas and native drops since the last poll. */
  poll(onFlow: FlowVisitor, onDrop: DropVisitor): FastPathTotals {
    const [flows, drops, from, totals] = this.#native.poll(this.#handle);
    for (let i = 0; i + 6 < flows.length; i += 7) {
      onFlow(
        flows[i]!,
        flows[i + 1]!,
        flows[i + 2]!,
        flows[i + 3]!,
        flows[i + 4]!,
        flows[i + 5]!,
        flows[i + 6]!,
      );
    }
    for (let r = 0; r < FASTPATH_DROP_REASONS.length; r++) {
      const n = drops[r] ?? 0;
      if (n > 0) onDrop(FASTPATH_DROP_REASONS[r]!, n, from[r] ?? '');
    }
    return {
      flows: totals[0]!,
      forwardedIn: totals[1]!,
      forwardedOut: totals[2]!,
      handoffBytes: totals[3]!,
    };
  }

  /** Milliseconds on the clock of `lastSeenMs` (monotonic). */
  now(): number {
    return this.#native.now();
  }

  /**
   * Stops and joins the native thread. Installed flows stay removable (and must be removed
   * before their sockets close); the listeners are Node's again to close.
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#native.close(this.#handle);
  }

  get isClosed(): boolean {
    return this.#closed;
  }
}
