/**
 * One SSTP client connection through the proxy, from accept to close: an explicit state
 * machine `hello → connecting → open → closed`.
 *
 * - passthrough: the ClientHello is read incrementally (bounded) from the raw stream and kept;
 *   the backend is chosen from it (persistence, then the balancer); the kept octets are sent
 *   verbatim, and the ServerHello coming back is parsed once to learn the session id.
 * - offload / reencrypt: TLS is terminated with the front certificate (node:tls), then the
 *   plaintext goes to the backend over TCP (offload) or a new TLS connection (reencrypt, whose
 *   certificate must equal the front one).
 *
 * Every refusal is counted, logged (rate-limited) and closes only this connection.
 *
 * Performance (issue 7): once both hellos are known, a tunnel is two `pipe`s and nothing else —
 * no per-chunk JavaScript (no byte counting per chunk: `bytesRead`/`bytesWritten` of the upstream
 * socket are read when the proxy flushes its counters; no per-chunk timer: idle is the socket's
 * own timeout), with socket buffers large enough that a 64 KiB read never stalls the pipe.
 * With the native splice path (sstp-splice.ts, passthrough only) the two pipes are replaced,
 * once the ServerHello has been read and Node's buffers are empty, by a hand-off of both
 * sockets to a native thread that splices between them (sstp-splice-handoff.ts).
 */
import net from 'node:net';
import { getSystemErrorName } from 'node:util';
import tls from 'node:tls';
import type { Candidate, ConnectionCounts } from '../../balancer/balancer.js';
import type { SstpServiceSnapshot } from '../../control/snapshot.js';
import type { ClientHelloInfo, ServerHelloInfo } from '../../protocol/tls/hello.js';
import { TlsHelloReader } from '../../protocol/tls/hello-reader.js';
import { TLS_1_2, MAX_HELLO_LENGTH } from '../../protocol/tls/tls-constants.js';
import { certificateMismatch } from './sstp-certificate-check.js';
import { chooseBackend, type ChoiceVia } from './sstp-choose-backend.js';
import type {
  RateLimitedLog,
  SstpCloseReason,
  SstpMetrics,
  SstpRejectReason,
} from './sstp-metrics.js';
import type { PersistenceTable } from './sstp-persistence.js';
import type { Logger } from '../../log/logger.js';
import type { SpliceEnd, SpliceEngine, SpliceOwner } from './sstp-splice.js';
import { handOffWhenQuiet } from './sstp-splice-handoff.js';
import { resumeNodeReceiving } from '../native/socket-fd.js';

/**
 * Memory kept while reading a hello (its octets plus `PENDING_CHUNK_OVERHEAD` per chunk): the
 * largest hello plus 16 KiB for record headers and chunk overheads (real clients send one
 * record in one or a few segments). It was 256 KiB of octets, four times the hello (issue 11).
 */
export const MAX_PENDING = MAX_HELLO_LENGTH + 16 * 1024;
/**
 * What each kept chunk costs beyond its octets (a Buffer object and its backing store
 * header): counted so that a hello sent one octet per segment is bounded like a large one.
 */
export const PENDING_CHUNK_OVERHEAD = 64;
/** At most this many backends are tried for one client before giving up. */
const MAX_CONNECT_ATTEMPTS = 2;
/**
 * Stream buffer size of both sockets of a tunnel. libuv reads up to 64 KiB at a time; with
 * Node's default 16 KiB `writableHighWaterMark` every such chunk makes `write()` return false,
 * so `pipe` pauses the source (epoll_ctl) and resumes it on 'drain' (epoll_ctl again) for every
 * chunk. Above 64 KiB a chunk written to a socket that keeps up passes straight through.
 */
export const TUNNEL_HIGH_WATER_MARK = 128 * 1024;
/** After one side closed, how long the other may take to flush what it still has. */
const HALF_CLOSE_GRACE_MS = 2_000;

/** What a tunnel needs from its proxy. */
export interface TunnelHost {
  readonly serviceName: string;
  snapshot(): SstpServiceSnapshot;
  readonly connections: ConnectionCounts;
  readonly sessions: PersistenceTable;
  readonly clients: PersistenceTable;
  readonly metrics: SstpMetrics;
  readonly log: RateLimitedLog;
  readonly logger: Logger;
  /** Front TLS (offload, reencrypt). */
  readonly frontContext: tls.SecureContext | undefined;
  readonly frontDer: Buffer | undefined;
  /** Backend port for this mode. */
  readonly backendPort: number;
  /** A reencrypt backend presented another certificate. */
  certificateMismatch(backend: string, message: string): void;
  /** Native splice path for established passthrough tunnels (undefined: Node pipes). */
  readonly splice: SpliceEngine | undefined;
  /** Age at which an open tunnel moves from Node pipes to the splice path. */
  readonly spliceAfterMs: number;
  /** Octets relayed since the previous report (see `SstpTunnel.reportBytes`). */
  addBytes(backend: string, toBackend: number, toClient: number): void;
  /** The connection's held hello memory goes from `from` to `to` octets: false when the service's budget refuses it. */
  holdHelloBytes(from: number, to: number): boolean;
  removed(t: ProxyTunnel): void;
}

export type TunnelState = 'hello' | 'connecting' | 'open' | 'closed';

/** What the proxy needs of a tunnel, whichever front accepted it (Node, or the native front). */
export interface ProxyTunnel extends SpliceOwner {
  readonly clientAddress: string;
  readonly clientPort: number;
  readonly state: TunnelState;
  readonly backend: string | undefined;
  /** Closes the tunnel on vpnlb's initiative (counted and logged with `reason`). */
  close(reason: SstpCloseReason): void;
  /** Reports the octets relayed since the previous call to `host.addBytes`. */
  reportBytes(): void;
}

let nextTunnelId = 1;

export class SstpTunnel implements ProxyTunnel {
  readonly id = nextTunnelId++;
  readonly clientAddress: string;
  readonly clientPort: number;
  #state: TunnelState = 'hello';
  #backend: string | undefined;
  #via: ChoiceVia | undefined;
  #isCounted = false;
  #front: net.Socket | tls.TLSSocket;
  #upstream: net.Socket | undefined;
  #timer: NodeJS.Timeout | undefined;
  /** From accept to the server's first octets (`handshakeTimeout`). */
  #deadline: NodeJS.Timeout | undefined;
  /** Whether client octets went to the backend (the hello, or the first plaintext). */
  #hasSentToBackend = false;
  #spliceTimer: NodeJS.Timeout | undefined;
  readonly #pending: Buffer[] = [];
  #pendingBytes = 0;
  /** Memory the pending chunks hold, as accounted with the host (octets + per-chunk overhead). */
  #pendingHeld = 0;
  #hello: ClientHelloInfo | undefined;
  /** Backends already tried for this client (created on the first attempt). */
  #tried: Set<string> | undefined;
  /** Upstream octet counts already reported to the host (to-backend, to-client). */
  readonly #reported = new ReportedBytes();
  /** The tunnel's slot in the splice engine while the addon relays it. */
  #spliceSlot: number | undefined;
  /** Octets the addon moved, final figures once the tunnel left it. */
  #splicedToBackend = 0;
  #splicedToClient = 0;

  constructor(
    readonly host: TunnelHost,
    readonly client: net.Socket,
  ) {
    this.clientAddress = normalizeAddress(client.remoteAddress ?? '');
    this.clientPort = client.remotePort ?? 0;
    this.#front = client;
  }

  get state(): TunnelState {
    return this.#state;
  }

  get backend(): string | undefined {
    return this.#backend;
  }

  /** Begins reading the client (passthrough) or the front TLS handshake (offload, reencrypt). */
  start(): void {
    const svc = this.host.snapshot().service;
    this.client.on('error', () => this.#destroy());
    this.client.on('close', () => this.#onSideClosed('client'));
    // One deadline from accept to the server's first octets: the client's hello (or front TLS
    // handshake), the connect, and the server's answer all fit in handshakeTimeout. Before,
    // only idleTimeout (15 min) applied once a ClientHello was complete.
    this.#deadline = setTimeout(
      () => this.#onDeadline(svc.handshakeTimeout, svc.mode),
      svc.handshakeTimeout,
    );
    if (svc.mode === 'passthrough') {
      const reader = new TlsHelloReader('client-hello');
      const onData = (chunk: Buffer) => {
        this.#pending.push(chunk);
        this.#pendingBytes += chunk.length;
        const held = this.#pendingHeld + chunk.length + PENDING_CHUNK_OVERHEAD;
        if (held > MAX_PENDING)
          return this.#reject(
            'tls-too-large',
            `${this.#pendingBytes} octets in ${this.#pending.length} pieces without a complete ClientHello`,
          );
        if (!this.host.holdHelloBytes(this.#pendingHeld, held))
          return this.#reject(
            'hello-memory',
            `the service's memory for hellos being read is spent (${this.#pendingBytes} octets held here)`,
          );
        this.#pendingHeld = held;
        const r = reader.push(chunk);
        if (r.kind === 'need-more') return;
        this.client.off('data', onData);
        this.client.off('end', onEnd);
        this.client.pause();
        if (r.kind === 'invalid') return this.#reject(`tls-${r.code}`, r.detail);
        this.#hello = r.hello;
        this.#connect();
      };
      const onEnd = () => {
        if (this.#pendingBytes === 0)
          return this.#reject('client-closed', 'client closed without sending anything');
        const r = reader.end();
        if (r.kind === 'invalid') this.#reject(`tls-${r.code}`, r.detail);
      };
      this.client.on('data', onData);
      this.client.on('end', onEnd);
      return;
    }
    // (`highWaterMark` is honoured by TLSSocket, which passes it to net.Socket, but is missing
    // from @types/node's TLSSocketOptions.)
    const frontOptions: tls.TLSSocketOptions & { highWaterMark: number } = {
      isServer: true,
      highWaterMark: TUNNEL_HIGH_WATER_MARK,
    };
    if (this.host.frontContext) frontOptions.secureContext = this.host.frontContext;
    const front = new tls.TLSSocket(this.client, frontOptions);
    this.#front = front;
    front.on('error', (err) => {
      if (this.#state === 'hello') this.#reject('tls-handshake-failed', err.message);
      else this.#destroy();
    });
    // Once its handshake is done, a TLSSocket made around an accepted socket (rather than by
    // tls.Server, which releases it to the user) emits a TLS error, such as a record that
    // fails authentication, only as the internal '_tlsError': the alert has gone out and the
    // session is dead, but without this the tunnel would stay until the client left. The
    // same event repeats every socket error (a reset, EPIPE): those are the client leaving,
    // closed without a count as before ('error' above).
    front.on('_tlsError', (err: NodeJS.ErrnoException) => {
      if (this.#state !== 'hello' && isTlsError(err)) this.close('tls-error', err.message);
    });
    // A client that ends its stream before the handshake is complete can never complete it.
    front.once('end', () => {
      if (this.#state === 'hello')
        this.#reject('client-closed', 'client closed before completing the TLS handshake');
    });
    front.once('secure', () => {
      if (this.#state !== 'hello') return;
      front.pause();
      this.#connect();
    });
  }

  /**
   * Reports the octets relayed since the previous call (read from the upstream socket's own
   * counters: what was written to the backend, what was read from it) to `host.addBytes`.
   * The proxy calls it periodically, on status reads, and the tunnel once at close.
   */
  reportBytes(): void {
    const up = this.#upstream;
    const backend = this.#backend;
    if (!up || !backend) return;
    // Node's counters (hellos, and everything when there is no splice) plus the addon's.
    const spliced =
      this.#spliceSlot === undefined ? undefined : this.host.splice?.counters(this.#spliceSlot);
    const toBackend = up.bytesWritten + (spliced?.toBackend ?? this.#splicedToBackend);
    const toClient = up.bytesRead + (spliced?.toClient ?? this.#splicedToClient);
    this.#reported.report(this.host, backend, toBackend, toClient);
  }

  /** Whether the native splice path relays this tunnel now. */
  get isSpliced(): boolean {
    return this.#spliceSlot !== undefined;
  }

  /** The addon saw both sides end (or an error): the tunnel is over, as a socket 'close' would say. */
  spliceEnded(end: SpliceEnd): void {
    logSpliceEnd(this.host, this.#backend, this.clientAddress, end);
    this.#destroy();
  }

  /** Closes an established (or connecting) tunnel on vpnlb's initiative. */
  close(reason: SstpCloseReason, detail?: string): void {
    if (this.#state === 'closed') return;
    countClose(this.host, this.#backend, this.clientAddress, reason, detail);
    this.#destroy();
  }

  #connect(): void {
    const snap = this.host.snapshot();
    const choice = pickBackend(this.host, this.clientAddress, this.#hello, this.#tried);
    const backend = choice.backend;
    if (!backend) return this.#reject(...noBackend(this.#tried));
    this.#state = 'connecting';
    this.#backend = backend.name;
    this.#via = choice.via;
    const tried = (this.#tried ??= new Set<string>());
    tried.add(backend.name);
    this.host.connections.increment(backend.name); // counted now, so a burst spreads (least connections)
    this.#isCounted = true;
    const mode = snap.service.mode;
    // Nagle stays on towards the server (LAN: a held tail waits a LAN round trip at most), so
    // the sub-MSS tail of each 64 KiB chunk merges with the next one instead of leaving as a
    // runt segment (measured: ~25 % more proxy CPU per octet with noDelay here; Node has no
    // MSG_MORE, which is how HAProxy and nginx avoid runts with TCP_NODELAY on).
    const opts = {
      host: backend.address,
      port: this.host.backendPort,
      allowHalfOpen: true,
      highWaterMark: TUNNEL_HIGH_WATER_MARK,
    };
    const up: net.Socket =
      mode === 'reencrypt'
        ? tls.connect({
            ...opts,
            rejectUnauthorized: false,
            ...(this.#sni() ? { servername: this.#sni() } : {}),
          })
        : net.connect(opts);
    this.#upstream = up;
    const connectTimeout = setTimeout(
      () => fail('connect-timeout', `no connection within ${snap.service.connectTimeout} ms`),
      snap.service.connectTimeout,
    );
    let connected = false;
    const fail = (reason: string, detail: string) => {
      if (connected || this.#state !== 'connecting') return;
      clearTimeout(connectTimeout);
      up.removeAllListeners();
      up.on('error', () => {});
      up.destroy();
      this.#release();
      countBackendFailure(this.host, backend, reason, detail, this.clientAddress);
      if (tried.size < MAX_CONNECT_ATTEMPTS) return this.#connect();
      this.#reject(
        reason === 'certificate-mismatch' ? 'certificate-mismatch' : 'backend-connect-failed',
        `backend ${backend.name}: ${detail}`,
      );
    };
    up.once('error', (err) => fail('connect-failed', err.message));
    up.once(mode === 'reencrypt' ? 'secureConnect' : 'connect', () => {
      if (this.#state !== 'connecting') return;
      clearTimeout(connectTimeout);
      if (mode === 'reencrypt' && this.host.frontDer) {
        const mismatch = certificateMismatch(
          this.host.frontDer,
          (up as tls.TLSSocket).getPeerCertificate().raw,
        );
        if (mismatch && !snap.service.allowCertificateMismatch) {
          // The server is put in error (no more traffic); this client, whose plaintext has not
          // been sent anywhere yet, may still be served by another server.
          // Retry first, then report: the report closes tunnels still bound to this server.
          fail('certificate-mismatch', mismatch);
          return this.host.certificateMismatch(backend.name, mismatch);
        }
      }
      connected = true;
      this.#open(up, backend.name);
    });
  }

  #open(up: net.Socket, backend: string): void {
    const snap = this.host.snapshot();
    this.#state = 'open';
    up.removeAllListeners('error');
    up.on('error', () => this.#destroy());
    up.on('close', () => this.#onSideClosed('backend'));
    countOpened(this.host, backend, this.#via, this.clientAddress);

    // The backend must say something before the deadline set at accept (`#onDeadline`): a
    // server that accepts and never answers would otherwise hold the client forever.
    const serverHello =
      snap.service.mode === 'passthrough' && snap.service.persistence === 'tls-session'
        ? new TlsHelloReader('server-hello')
        : undefined;
    const splice = snap.service.mode === 'passthrough' ? this.host.splice : undefined;
    let isHelloPhaseOver = false;
    const onFirstBackendData = (chunk: Buffer) => {
      clearTimeout(this.#deadline);
      this.#front.off('data', markSent);
      if (!serverHello) {
        isHelloPhaseOver = true;
        up.off('data', onFirstBackendData);
        return;
      }
      const r = serverHello.push(chunk);
      if (r.kind === 'need-more') return;
      isHelloPhaseOver = true;
      up.off('data', onFirstBackendData); // one answer is all persistence needs: stop parsing
      if (r.kind === 'ok') learnSession(this.host, backend, r.hello);
    };
    up.on('data', onFirstBackendData); // removes itself at the backend's first answer
    const markSent = () => void (this.#hasSentToBackend = true);

    // The held hello octets go first, in one writev.
    if (this.#pending.length > 0) {
      markSent();
      up.cork();
      for (const p of this.#pending) up.write(p);
      up.uncork();
      this.#releasePending();
    } else {
      this.#front.once('data', markSent); // offload/reencrypt: the first plaintext octets
    }
    // Tunnels are long-lived: idle means neither side sent anything for idleTimeout. The
    // socket's own timeout is re-armed by Node on every read and write of the client socket
    // (both directions pass through it), at no per-chunk cost of ours. (Spliced tunnels: the
    // proxy's idle sweep over the addon's last-activity times.)
    this.client.setTimeout(snap.service.idleTimeout, () => this.close('idle-timeout'));
    this.#pipe(up);
    if (!splice) return;

    // Splice path: the tunnel starts as Node pipes and moves to the addon once it has lived
    // `spliceAfterMs` and the ServerHello has been read (persistence needs it): Node stops
    // piping and reading both sockets, writes across what it had already read, and hands both
    // sockets over once its write buffers are empty (sstp-splice-handoff.ts).
    const handOff = () => {
      this.#spliceTimer = undefined;
      if (this.#state !== 'open') return;
      if (!isHelloPhaseOver)
        return void (this.#spliceTimer = setTimeout(handOff, this.host.spliceAfterMs).unref());
      this.#front.unpipe(up);
      up.unpipe(this.#front);
      this.#front.pause();
      up.pause();
      handOffWhenQuiet(
        this.client,
        up,
        () => this.#state === 'open',
        () => this.#spliceIn(splice, up),
        () => this.#pipe(up),
      );
    };
    this.#spliceTimer = setTimeout(handOff, this.host.spliceAfterMs).unref();
  }

  /** Both sockets are quiet in Node: give them to the addon, or keep them as Node pipes. */
  #spliceIn(splice: SpliceEngine, up: net.Socket): void {
    const slot = splice.add(this.client, up, this);
    if (typeof slot === 'string') {
      resumeNodeReceiving(this.client);
      resumeNodeReceiving(up);
      this.host.log.warn(
        'splice-fallback',
        { component: 'sstp', service: this.host.serviceName, backend: this.#backend },
        `${this.host.serviceName}: tunnel from ${this.clientAddress} stays in Node pipes: ${slot}`,
      );
      return this.#pipe(up);
    }
    this.#spliceSlot = slot;
    this.client.setTimeout(0); // idle is the proxy's sweep over the addon's activity times now
  }

  /**
   * From here on the tunnel is two pipes: backpressure both ways (pipe pauses the source while
   * the destination's buffer is full); `end` travels across, so a half-closed side stays open
   * for the other direction.
   */
  #pipe(up: net.Socket): void {
    this.#front.pipe(up);
    up.pipe(this.#front);
    this.#front.resume();
    up.resume();
  }

  #sni(): string | undefined {
    const front = this.#front;
    return front instanceof tls.TLSSocket
      ? (front as tls.TLSSocket & { servername?: string | false }).servername || undefined
      : undefined;
  }

  #onSideClosed(side: 'client' | 'backend'): void {
    if (this.#state === 'hello') {
      if (side === 'client')
        this.#reject(
          'client-closed',
          `client closed after ${this.#pendingBytes} octets, before its hello was complete`,
        );
      return;
    }
    if (this.#state === 'connecting') {
      if (side === 'client') this.#destroy(); // the client gave up while we were connecting
      return;
    }
    // One side is fully closed: let the other finish writing what it has, then close it too.
    const other = side === 'client' ? this.#upstream : this.#front;
    if (other && !other.destroyed) {
      other.end();
      this.#timer = setTimeout(() => this.#destroy(), HALF_CLOSE_GRACE_MS);
      this.#timer.unref();
    } else {
      this.#destroy();
    }
  }

  /** `handshakeTimeout` passed since accept without the server's first octets: whose fault? */
  #onDeadline(timeout: number, mode: string): void {
    this.#reject(
      ...deadlineVerdict(
        this.host,
        this.#state,
        this.#hasSentToBackend ? this.#backend : undefined,
        timeout,
        mode,
      ),
    );
  }

  /** The hello octets are no longer held (sent, or the connection is over). */
  #releasePending(): void {
    this.#pending.length = 0;
    if (this.#pendingHeld > 0) this.host.holdHelloBytes(this.#pendingHeld, 0);
    this.#pendingHeld = 0;
  }

  #reject(reason: SstpRejectReason, detail: string): void {
    if (this.#state === 'closed') return;
    countRejected(this.host, reason, detail, this, this.#backend);
    this.#destroy();
  }

  #release(): void {
    if (this.#isCounted && this.#backend) this.host.connections.decrement(this.#backend);
    this.#isCounted = false;
  }

  #destroy(): void {
    if (this.#state === 'closed') return;
    const wasOpen = this.#state === 'open';
    this.#state = 'closed';
    clearTimeout(this.#timer);
    clearTimeout(this.#deadline);
    this.#releasePending();
    clearTimeout(this.#spliceTimer);
    this.#release();
    if (wasOpen && this.#backend)
      this.host.metrics.open.dec({ service: this.host.serviceName, backend: this.#backend });
    // The addon lets go of the sockets first (and gives its final counts); only then may Node
    // close them (an fd number closed under the splice thread could be reused by another).
    if (this.#spliceSlot !== undefined) {
      const last = this.host.splice?.remove(this.#spliceSlot);
      this.#spliceSlot = undefined;
      if (last) {
        this.#splicedToBackend = last.toBackend;
        this.#splicedToClient = last.toClient;
      }
    }
    if (wasOpen) this.reportBytes();
    this.#front.destroy();
    this.client.destroy();
    this.#upstream?.destroy();
    this.host.removed(this);
  }
}

// What both kinds of tunnel (this one, and sstp-native-front.ts) count and log the same way.

/** The backend for a new client (persistence, then the balancer), with persistence counted. */
export function pickBackend(
  host: TunnelHost,
  clientAddress: string,
  hello: ClientHelloInfo | undefined,
  tried: ReadonlySet<string> | undefined,
): { backend: Candidate | undefined; via: ChoiceVia } {
  const snap = host.snapshot();
  const choice = chooseBackend({
    snapshot: snap,
    clientAddress,
    ...(hello ? { hello } : {}),
    sessions: host.sessions,
    clients: host.clients,
    connections: host.connections,
    ...(tried ? { exclude: tried } : {}),
  });
  const service = host.serviceName;
  if (choice.persistenceMiss)
    host.metrics.persistence.inc({
      service,
      kind: snap.service.persistence,
      result: choice.persistenceMiss,
    });
  if (choice.via !== 'balancer')
    host.metrics.persistence.inc({ service, kind: choice.via, result: 'hit' });
  return { backend: choice.backend, via: choice.via };
}

/** Why no backend was found: none could take the client, or every one tried failed. */
export function noBackend(tried: ReadonlySet<string> | undefined): [SstpRejectReason, string] {
  return tried
    ? ['backend-connect-failed', `every backend tried failed (${[...tried].join(', ')})`]
    : ['no-backend', 'no backend can take a new client (all down, draining, disabled or full)'];
}

/** A refused client: counted by reason, logged (rate-limited). */
export function countRejected(
  host: TunnelHost,
  reason: SstpRejectReason,
  detail: string,
  client: { readonly clientAddress: string; readonly clientPort: number },
  backend: string | undefined,
): void {
  const service = host.serviceName;
  host.metrics.rejected.inc({ service, reason });
  host.log.warn(
    reason,
    { component: 'sstp', service, client: client.clientAddress, backend },
    `${service}: refused client ${client.clientAddress}:${client.clientPort}: ${reason}: ${detail}`,
  );
}

/** A backend connection that failed (refused, timed out, wrong certificate): counted, logged. */
export function countBackendFailure(
  host: TunnelHost,
  backend: Candidate,
  reason: string,
  detail: string,
  clientAddress: string,
): void {
  const service = host.serviceName;
  host.metrics.backendFailures.inc({ service, backend: backend.name, reason });
  host.log.warn(
    `backend-${reason}`,
    { component: 'sstp', service, backend: backend.name, client: clientAddress },
    `${service}: backend ${backend.name} (${backend.address}:${host.backendPort}): ${detail}`,
  );
}

/** A tunnel whose backend connection is up: counted, and the client's address remembered. */
export function countOpened(
  host: TunnelHost,
  backend: string,
  via: ChoiceVia | undefined,
  clientAddress: string,
): void {
  const service = host.serviceName;
  host.metrics.accepted.inc({ service, backend, via: via ?? 'balancer' });
  host.metrics.open.inc({ service, backend });
  if (host.snapshot().service.persistence !== 'none') host.clients.set(clientAddress, backend);
}

/** The session a ServerHello issued, learned for TLS-session persistence. */
export function learnSession(host: TunnelHost, backend: string, hello: ServerHelloInfo): void {
  // RFC 8446 §4.1.3: a TLS 1.3 ServerHello echoes the client's id; only ≤ 1.2 ids are sessions.
  if (hello.selectedVersion > TLS_1_2 || hello.sessionId.length === 0) return;
  host.sessions.set(Buffer.from(hello.sessionId).toString('hex'), backend);
  host.metrics.learned.inc({ service: host.serviceName, backend });
}

/** A tunnel's octet totals as reported to `host.addBytes`: each report adds what grew since. */
export class ReportedBytes {
  #toBackend = 0;
  #toClient = 0;

  report(host: TunnelHost, backend: string, toBackend: number, toClient: number): void {
    const dIn = toBackend - this.#toBackend;
    const dOut = toClient - this.#toClient;
    if (dIn <= 0 && dOut <= 0) return;
    this.#toBackend = toBackend;
    this.#toClient = toClient;
    host.addBytes(backend, Math.max(0, dIn), Math.max(0, dOut));
  }
}

/** A spliced tunnel that ended by itself: an error is worth a debug line. */
export function logSpliceEnd(
  host: TunnelHost,
  backend: string | undefined,
  clientAddress: string,
  end: SpliceEnd,
): void {
  if (end.kind !== 'error') return;
  host.logger.debug(
    {
      component: 'sstp',
      service: host.serviceName,
      backend,
      client: clientAddress,
      errno: end.errno,
    },
    `tunnel from ${clientAddress} ended (${getSystemErrorName(-end.errno)})`,
  );
}

/** An error of the TLS layer (OpenSSL's: a record refused, an alert), not of the socket. */
function isTlsError(err: NodeJS.ErrnoException): boolean {
  return err.syscall === undefined && (err.code?.startsWith('ERR_SSL_') ?? false);
}

/** A tunnel closed on vpnlb's initiative: counted (once it had a backend) and logged. */
export function countClose(
  host: TunnelHost,
  backend: string | undefined,
  clientAddress: string,
  reason: SstpCloseReason,
  detail?: string,
): void {
  if (backend) host.metrics.closed.inc({ service: host.serviceName, backend, reason });
  host.logger.info(
    {
      component: 'sstp',
      service: host.serviceName,
      backend,
      client: clientAddress,
      reason,
      ...(detail ? { detail } : {}),
    },
    `closing tunnel from ${clientAddress} to ${backend ?? '-'}: ${reason}${detail ? ` (${detail})` : ''}`,
  );
}

/**
 * `handshakeTimeout` passed since accept without the server's first octets: whose fault?
 * `answering` is the backend once the client's octets were sent to it.
 */
export function deadlineVerdict(
  host: TunnelHost,
  state: TunnelState,
  answering: string | undefined,
  timeout: number,
  mode: string,
): [SstpRejectReason, string] {
  if (state === 'open' && answering) {
    host.metrics.backendFailures.inc({
      service: host.serviceName,
      backend: answering,
      reason: 'no-answer',
    });
    return [
      'backend-no-answer',
      `backend ${answering} sent nothing within ${timeout} ms of the client's connection`,
    ];
  }
  const what =
    state === 'hello'
      ? `no complete ${mode === 'passthrough' ? 'ClientHello' : 'TLS handshake'}`
      : state === 'connecting'
        ? 'no backend connection'
        : 'no request from the client';
  return ['handshake-timeout', `${what} within ${timeout} ms of accept`];
}

/** `::ffff:192.0.2.1` (an IPv4 client on a dual-stack socket) → `192.0.2.1`. */
export function normalizeAddress(a: string): string {
  return a.startsWith('::ffff:') && net.isIPv4(a.slice(7)) ? a.slice(7) : a;
}
