/**
 * One flow of the userspace relay: a client address:port on one virtual port, the backend it
 * was given, and the upstream UDP socket that carries it — bound to the flow's SNAT source
 * address and *connected* to the backend (a connected socket needs no address per send and
 * receives only that backend's replies, which is also what demultiplexes replies: one socket,
 * one client).
 */
import { createSocket, type Socket } from 'node:dgram';
import type { SnatLease } from './snat-pool.js';
import type { TableEntry } from './flow-table.js';
import type { FlowKey } from './relay-flow-key.js';

/** Per-backend counters the relay keeps (plain numbers: the hot path only adds). */
export interface BackendTraffic {
  packetsIn: number;
  bytesIn: number;
  packetsOut: number;
  bytesOut: number;
  flows: number;
}

/** A backend as the relay addresses it. */
export interface RelayBackend {
  readonly name: string;
  readonly address: string;
  readonly family: 4 | 6;
  readonly traffic: BackendTraffic;
}

/**
 * An affinity session: one IKE SA (affinity ike-spi, keyed by the initiator SPI) or one client
 * address (affinity source-ip). Every flow of the session goes to its backend through its SNAT
 * lease: IKE on 500, IKE on 4500 from the client's new source port, ESP on 4500.
 */
export interface RelaySession extends TableEntry {
  readonly key: string;
  readonly clientAddress: string;
  readonly backend: RelayBackend;
  /** Held while `flows` > 0; released with the last flow. */
  lease: SnatLease | undefined;
  flows: number;
}

/** Most datagrams queued while the upstream socket is being bound and connected. */
export const MAX_PENDING_DATAGRAMS = 8;

/** What a flow reports back to its relay. */
export interface FlowOwner {
  onReply(flow: RelayFlow, datagram: Buffer): void;
  onReady(flow: RelayFlow): void;
  onSocketError(flow: RelayFlow, err: Error): void;
}

export class RelayFlow implements TableEntry {
  // Immutable identity.
  readonly key: FlowKey;
  readonly clientAddress: string;
  readonly clientPort: number;
  /** True for the NAT-T port (4500): replies leave from there. */
  readonly isNatT: boolean;
  readonly backend: RelayBackend;
  readonly session: RelaySession;
  readonly lease: SnatLease;
  // Mutable state.
  lastSeen = 0;
  referenced = false;
  isReady = false;
  isClosed = false;
  socket: Socket | undefined;
  pending: Buffer[] | undefined = [];
  /** Slot in the native fast path once installed there (fastpath/fast-path.ts), else -1. */
  fastSlot = -1;

  constructor(
    key: FlowKey,
    clientAddress: string,
    clientPort: number,
    isNatT: boolean,
    session: RelaySession,
    lease: SnatLease,
  ) {
    this.key = key;
    this.clientAddress = clientAddress;
    this.clientPort = clientPort;
    this.isNatT = isNatT;
    this.backend = session.backend;
    this.session = session;
    this.lease = lease;
  }

  /**
   * Creates, binds (SNAT address, ephemeral port) and connects the upstream socket. Datagrams
   * sent meanwhile are queued (at most `MAX_PENDING_DATAGRAMS`); `owner.onReady` follows.
   */
  open(owner: FlowOwner, backendPort: number): void {
    const socket = createSocket({ type: this.backend.family === 6 ? 'udp6' : 'udp4' });
    this.socket = socket;
    socket.on('error', (err) => owner.onSocketError(this, err));
    socket.on('message', (msg) => owner.onReply(this, msg));
    // `exclusive`: in a worker process (workers/), a socket of its own, not one that `cluster`
    // would bind in the main process and share.
    const bindTo =
      this.lease.address === undefined
        ? { port: 0, exclusive: true }
        : { port: 0, address: this.lease.address, exclusive: true };
    try {
      socket.bind(bindTo, () => {
        if (this.isClosed) return;
        socket.connect(backendPort, this.backend.address, () => {
          if (this.isClosed) return;
          this.isReady = true;
          const queued = this.pending;
          this.pending = undefined;
          if (queued) for (const d of queued) socket.send(d);
          owner.onReady(this);
        });
      });
    } catch (err) {
      // bind throws synchronously only for invalid arguments; still never crash the relay.
      queueMicrotask(() => owner.onSocketError(this, err as Error));
    }
  }

  /** Queues a datagram until the socket is connected; false when the queue is full. */
  enqueue(datagram: Buffer): boolean {
    const q = this.pending;
    if (q === undefined || q.length >= MAX_PENDING_DATAGRAMS) return false;
    q.push(datagram);
    return true;
  }

  close(): void {
    if (this.isClosed) return;
    this.isClosed = true;
    this.pending = undefined;
    const s = this.socket;
    if (s) {
      s.removeAllListeners('message');
      // Keep an error listener: a late ICMP error on a closing socket must not crash the process.
      s.removeAllListeners('error');
      s.on('error', () => {});
      try {
        s.close();
      } catch {
        // already closed
      }
    }
  }
}
