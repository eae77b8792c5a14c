/**
 * The SSTP proxy's native front (issue 17 item 3), with no Node socket, stream or timer per
 * connection (native/tcp-splice/front_core.c); JavaScript keeps every decision:
 * - passthrough: accept, ClientHello, backend connection and hand-off to the splice thread;
 * - offload: accept, TLS handshake (OpenSSL, the one inside Node: front_tls.c), backend
 *   connection, and the relay of the tunnel (TLS to the client, plaintext to the server) until
 *   it ends, all in the addon.
 *
 * Why: a connection through Node's `net` costs ≈ 170 µs of CPU in Node's socket machinery
 * alone (bench/analysis.md), about twice HAProxy's whole cost; vpnlb's own decisions are a few
 * µs of it. Here the addon does the system calls and tells JavaScript of each step, on the
 * JavaScript thread (polled in libuv's loop), and JavaScript answers with a call:
 *
 *   accept            → the proxy's limits (maxConnections, per source, rate): refuse or track
 *   hello (complete)  → the same TlsHelloReader parses it; persistence and the balancer choose:
 *                       dial, or refuse (malformed, no backend)
 *   connect failed    → the next backend, as the Node path retries
 *   connected         → counted as accepted/open, the client's address remembered
 *   server's answer   → the session id learned (TLS-session persistence), then both sockets
 *                       go to the splice thread (SpliceEngine.adoptFromFront)
 *   (offload) secure  → the handshake is complete: persistence and the balancer choose, dial
 *   (offload) answer  → the server's first octets: the handshake deadline is met
 *   (offload) ended   → the relay is over (both sides ended, or an error): final octet counts
 *   failed            → counted and logged like the Node path (client closed, hello too large,
 *                       hello memory spent, backend closed)
 * Deadlines (`handshakeTimeout` from accept, `connectTimeout` per attempt) are fields of each
 * connection, swept here a few times per timeout (no timer per connection).
 *
 * Idle offload tunnels are found by the addon's last-activity times, swept with the deadlines.
 *
 * The Node path (sstp-tunnel.ts) remains: re-encryption, worker processes (their listener is
 * `cluster`'s, and their TLS session-ticket keys are shared), a missing addon, and
 * `VPNLB_SSTP_NATIVE_FRONT=0`.
 * A server's answer is read once (peeked, up to 4 KiB): a ServerHello split over more than its
 * first segment is not learned (counted as `vpnlb_sstp_persistence_total{result="unlearned"}`).
 */
import { constants } from 'node:os';
import { getSystemErrorName } from 'node:util';
import type { Candidate } from '../../balancer/balancer.js';
import type { ClientHelloInfo } from '../../protocol/tls/hello.js';
import { TlsHelloReader } from '../../protocol/tls/hello-reader.js';
import { MAX_HELLO_LENGTH } from '../../protocol/tls/tls-constants.js';
import { enabledByEnv } from '../native/load-addon.js';
import type { SstpCloseReason, SstpRejectReason } from './sstp-metrics.js';
import type { ChoiceVia } from './sstp-choose-backend.js';
import type { SpliceEnd, SpliceEngine, NativeSplice } from './sstp-splice.js';
import {
  countBackendFailure,
  countClose,
  countOpened,
  countRejected,
  deadlineVerdict,
  learnSession,
  logSpliceEnd,
  noBackend,
  pickBackend,
  ReportedBytes,
  type ProxyTunnel,
  type TunnelHost,
  type TunnelState,
} from './sstp-tunnel.js';

/** The environment switch: `VPNLB_SSTP_NATIVE_FRONT=0` (or off/false/no) keeps Node's front. */
export const NATIVE_FRONT_ENV = 'VPNLB_SSTP_NATIVE_FRONT';
/** At most this many backends are tried for one client (as the Node path). */
const MAX_CONNECT_ATTEMPTS = 2;
/** Connections the front may hold beyond the service's limit (refused at once by JavaScript). */
const FRONT_SLACK = 1_024;

/** True unless the environment switch turns the native front off. */
export function nativeFrontEnabledByEnv(env: NodeJS.ProcessEnv = process.env): boolean {
  return enabledByEnv(NATIVE_FRONT_ENV, env);
}

const EV_ACCEPT = 1;
const EV_HELLO = 2;
const EV_CONNECTED = 3;
const EV_ANSWER = 4;
const EV_FAILED = 5;
const EV_ACCEPT_ERROR = 6;
const EV_OVERFLOW = 7;
const EV_SECURE = 8;
const EV_ENDED = 9;
const F_CLIENT = 1;
const F_TOO_LARGE = 2;
const F_HELLO_MEMORY = 3;
const F_CONNECT = 4;
const F_TLS_EOF = 6;
const F_TLS = 7;
const EPROTO = constants.errno.EPROTO;

/** Offload: the front's TLS (PEM octets and OpenSSL's lists). */
export interface NativeFrontTls {
  readonly cert: Buffer;
  readonly key: Buffer;
  /** TLS 1.2 cipher list, TLS 1.3 suites, key-exchange groups (OpenSSL's syntax, `:`-separated). */
  readonly ciphers: string;
  readonly suites: string;
  readonly groups: string;
}

export interface NativeFrontOptions {
  readonly address: string;
  readonly port: number;
  /** The service's connection limit (0: none). */
  readonly maxConnections: number;
  /** Octets of hello held per connection, and the allowance not counted in the budget. */
  readonly maxHelloBytes: number;
  readonly smallHelloBytes: number;
  readonly helloBytesBudget: number;
  /** Offload: terminate TLS and relay here (the front needs no splice engine then). */
  readonly tls?: NativeFrontTls;
  /**
   * Listen with SO_REUSEPORT (worker processes: each worker's front beside the others', the
   * kernel spreading the connections among them).
   */
  readonly reusePort?: boolean;
}

/** What the front asks of its proxy. */
export interface NativeFrontEvents {
  /** A new client: its tunnel, or undefined when the proxy refuses it (counted there). */
  accepted(front: NativeFront, id: number, address: string, port: number): NativeTunnel | undefined;
  /** accept() failed (EMFILE...): the front listens again at its next tick. */
  acceptFailed(errno: number): void;
  /** A client closed at once because the front's table was full. */
  overflow(): void;
  /** Hello octets now held beyond the allowance (the gauge). */
  helloBytes(held: number): void;
  /** Offload: the service's idleTimeout now (a reload may change it). */
  idleTimeout(): number;
}

export class NativeFront {
  readonly #native: NativeSplice;
  readonly #handle: object;
  /** Passthrough: the engine that takes established tunnels (offload relays them itself). */
  readonly splice: SpliceEngine | undefined;
  /** Offload: TLS is terminated and tunnels relayed in the front. */
  readonly isTls: boolean;
  readonly #events: NativeFrontEvents;
  /**
   * Connections in the front, by id (passthrough: until their hand-off; offload: until they
   * end).
   */
  readonly #conns = new Map<number, NativeTunnel>();
  /**
   * Those of them that may have a deadline pending (the sweep drops the others): an offload
   * front holds every relaying tunnel for hours, and only the few in their handshake are
   * looked at.
   */
  readonly #waiting = new Set<NativeTunnel>();
  #timer: NodeJS.Timeout | undefined;
  #stopped = false;

  /**
   * Listens (throws the system error, e.g. EADDRINUSE, when it cannot; an error with code
   * VPNLB_SSTP_FRONT when OpenSSL refuses the TLS settings).
   */
  constructor(
    native: NativeSplice,
    splice: SpliceEngine | undefined,
    options: NativeFrontOptions,
    events: NativeFrontEvents,
  ) {
    this.splice = splice;
    this.#native = native;
    this.isTls = options.tls !== undefined;
    this.#events = events;
    const tls = options.tls;
    this.#handle = this.#native.frontOpen(
      options.address,
      options.port,
      options.maxConnections > 0 ? options.maxConnections + FRONT_SLACK : 0,
      MAX_HELLO_LENGTH,
      options.maxHelloBytes,
      options.smallHelloBytes,
      options.helloBytesBudget,
      511,
      (kind, id, a, b, data) => this.#onEvent(kind, id, a, b, data),
      tls ? [tls.cert, tls.key, tls.ciphers, tls.suites, tls.groups] : undefined,
      options.reusePort === true,
    );
  }

  /** Starts the deadline sweep (every `everyMs`). */
  startSweep(everyMs: number): void {
    this.#timer = setInterval(() => this.#sweep(), everyMs);
    this.#timer.unref();
  }

  port(): number {
    return this.#native.frontPort(this.#handle);
  }

  /** Connections in the front (passthrough: not yet handed to the splice thread), as JavaScript and the addon count them. */
  counts(): { tracked: number; held: number } {
    return {
      tracked: this.#conns.size,
      held: this.#stopped ? 0 : (this.#native.frontStats(this.#handle)[1] ?? 0),
    };
  }

  stop(): void {
    if (this.#stopped) return;
    this.#stopped = true;
    clearInterval(this.#timer);
    for (const t of [...this.#conns.values()]) t.close('stopped');
    this.#native.frontStop(this.#handle);
  }

  // Used by NativeTunnel.
  dial(t: NativeTunnel, address: string, port: number, timeoutMs: number): number {
    t.connectDeadline = performance.now() + timeoutMs;
    this.#waiting.add(t);
    return this.#native.frontDial(this.#handle, t.id, address, port);
  }
  more(t: NativeTunnel): void {
    this.#native.frontMore(this.#handle, t.id);
  }
  /** Offload: the octets a relaying tunnel moved so far. */
  counters(t: NativeTunnel): { toBackend: number; toClient: number } | undefined {
    const c = this.#native.frontCounters(this.#handle, t.id);
    return c ? { toBackend: c[0] ?? 0, toClient: c[1] ?? 0 } : undefined;
  }
  /** Moves the connection to the splice thread: its slot, or why not (the front keeps it). */
  handOff(t: NativeTunnel): number | string {
    if (!this.splice) return 'no splice engine';
    const slot = this.splice.adoptFromFront(this.#handle, t.id, t);
    if (typeof slot === 'number') this.#forget(t);
    return slot;
  }
  /** Forgets the connection and closes its sockets (no-op when the front has let it go). */
  close(t: NativeTunnel): void {
    this.#forget(t);
    this.#native.frontClose(this.#handle, t.id);
  }

  #forget(t: NativeTunnel): void {
    this.#conns.delete(t.id);
    this.#waiting.delete(t);
  }

  #onEvent(kind: number, id: number, a: number, b: number, data: unknown): void {
    if (kind === EV_ACCEPT) {
      const t = this.#events.accepted(this, id, data as string, a);
      if (!t) return void this.#native.frontClose(this.#handle, id);
      this.#conns.set(id, t);
      this.#waiting.add(t); // its handshake deadline runs from accept
      return;
    }
    if (kind === EV_ACCEPT_ERROR) return this.#events.acceptFailed(b);
    if (kind === EV_OVERFLOW) return this.#events.overflow();
    const t = this.#conns.get(id);
    if (!t) return;
    switch (kind) {
      case EV_HELLO:
        return t.onHello(data as Buffer, a === 1);
      case EV_SECURE:
        return t.onSecure();
      case EV_ENDED: {
        this.#forget(t); // the front closed it
        const d = data as Buffer;
        const detail = d.length > 16 ? d.subarray(16).toString('latin1') : undefined;
        return t.onEnded(a, d.readDoubleLE(0), d.readDoubleLE(8), detail);
      }
      case EV_CONNECTED:
        return t.onConnected();
      case EV_ANSWER:
        return t.onAnswer(data as Buffer);
      case EV_FAILED:
        if (a === F_CONNECT) return t.onConnectFailed(b);
        this.#forget(t); // the front closed it
        return t.onFailed(a, b, data as string | undefined);
    }
  }

  #sweep(): void {
    // Every connection with a deadline is looked at (a reload may shorten a timeout, so the
    // order of accepts is not the order of deadlines); a few thousand in their handshake cost
    // well under a millisecond. (A retry keeps its tunnel in the Set, its new deadline in the
    // future; a tunnel closed by a callback meanwhile is deleted, and a Set's walk skips it.)
    const now = performance.now();
    for (const t of this.#waiting) {
      if (t.connectDeadline !== undefined && t.connectDeadline <= now) {
        t.connectDeadline = undefined;
        t.onConnectDeadline();
      }
      if (t.handshakeDeadline !== undefined && t.handshakeDeadline <= now) {
        t.handshakeDeadline = undefined;
        t.onHandshakeDeadline();
      }
      if (t.connectDeadline === undefined && t.handshakeDeadline === undefined)
        this.#waiting.delete(t);
    }
    const idle = this.isTls ? this.#events.idleTimeout() : 0; // 0: tunnels never idle out
    if (idle > 0)
      for (const id of this.#native.frontIdle(this.#handle, idle))
        this.#conns.get(id)?.close('idle-timeout');
    this.#native.frontRearm(this.#handle);
    this.#events.helloBytes(this.#native.frontStats(this.#handle)[0] ?? 0);
  }
}

/** One client of the native front, from accept to close (the proxy's view: ProxyTunnel). */
export class NativeTunnel implements ProxyTunnel {
  #state: TunnelState = 'hello';
  #backend: Candidate | undefined;
  #via: ChoiceVia | undefined;
  #isCounted = false;
  #tried: Set<string> | undefined;
  #hello: ClientHelloInfo | undefined;
  #reader: TlsHelloReader<'client-hello'> | undefined;
  /** Octets of the hello sent to the backend (counted to-backend, as Node's bytesWritten). */
  #helloBytes = 0;
  #hasSentToBackend = false;
  #slot: number | undefined;
  readonly #reported = new ReportedBytes();
  #finalToBackend = 0;
  #finalToClient = 0;
  readonly handshakeTimeout: number;
  /** `performance.now()` by which the server must have answered (`handshakeTimeout` from accept). */
  handshakeDeadline: number | undefined;
  /** `performance.now()` by which the current connect must succeed (`connectTimeout`). */
  connectDeadline: number | undefined;

  constructor(
    readonly host: TunnelHost,
    readonly front: NativeFront,
    readonly id: number,
    readonly clientAddress: string,
    readonly clientPort: number,
  ) {
    this.handshakeTimeout = host.snapshot().service.handshakeTimeout;
    this.handshakeDeadline = performance.now() + this.handshakeTimeout;
  }

  get state(): TunnelState {
    return this.#state;
  }

  get backend(): string | undefined {
    return this.#backend?.name;
  }

  onHello(data: Buffer, eof: boolean): void {
    if (this.#state !== 'hello') return;
    const reader = (this.#reader ??= new TlsHelloReader('client-hello'));
    // Each event carries every octet read so far: the reader gets only what it has not seen.
    let r = reader.push(data.subarray(reader.bytesRead));
    if (r.kind === 'need-more' && eof) {
      if (reader.bytesRead === 0)
        return this.#reject('client-closed', 'client closed without sending anything');
      r = reader.end();
    }
    if (r.kind === 'need-more') return this.front.more(this);
    this.#reader = undefined;
    if (r.kind === 'invalid') return this.#reject(`tls-${r.code}`, r.detail);
    this.#hello = r.hello;
    this.#helloBytes = data.length;
    this.#connect();
  }

  /** Offload: the TLS handshake is complete. */
  onSecure(): void {
    if (this.#state === 'hello') this.#connect();
  }

  onConnectFailed(errno: number): void {
    const b = this.#backend;
    const name = errno > 0 ? getSystemErrorName(-errno) : 'failed';
    this.#failConnect(
      'connect-failed',
      `connect ${name} ${b ? `${b.address}:${this.host.backendPort}` : ''}`.trim(),
    );
  }

  onConnectDeadline(): void {
    this.#failConnect(
      'connect-timeout',
      `no connection within ${this.host.snapshot().service.connectTimeout} ms`,
    );
  }

  onConnected(): void {
    if (this.#state !== 'connecting' || !this.#backend) return;
    this.connectDeadline = undefined;
    this.#state = 'open';
    this.#hasSentToBackend = !this.front.isTls; // passthrough: the hello is on its way
    countOpened(this.host, this.#backend.name, this.#via, this.clientAddress);
  }

  onAnswer(data: Buffer): void {
    if (this.#state !== 'open' || !this.#backend) return;
    this.handshakeDeadline = undefined;
    if (this.front.isTls) return; // offload: the front relays the answer itself
    const backend = this.#backend.name;
    if (this.host.snapshot().service.persistence === 'tls-session') {
      const r = new TlsHelloReader('server-hello').push(data);
      if (r.kind === 'ok') learnSession(this.host, backend, r.hello);
      else if (r.kind === 'need-more')
        this.host.metrics.persistence.inc({
          service: this.host.serviceName,
          kind: 'tls-session',
          result: 'unlearned',
        });
    }
    const slot = this.front.handOff(this);
    if (typeof slot === 'string') {
      this.host.log.warn(
        'splice-failed',
        { component: 'sstp', service: this.host.serviceName, backend, client: this.clientAddress },
        `${this.host.serviceName}: tunnel from ${this.clientAddress} closed: the splice path refused it: ${slot}`,
      );
      return this.close('splice-refused');
    }
    this.#slot = slot;
  }

  onFailed(code: number, errno: number, detail?: string): void {
    if (this.#state === 'closed') return;
    if (code === F_TLS_EOF)
      return this.#reject('client-closed', detail ?? 'client closed during the TLS handshake');
    if (code === F_TLS)
      return this.#reject('tls-handshake-failed', detail ?? 'TLS handshake failed');
    if (code === F_TOO_LARGE)
      return this.#reject('tls-too-large', 'more octets than a ClientHello may take');
    if (code === F_HELLO_MEMORY)
      return this.#reject('hello-memory', "the service's memory for hellos being read is spent");
    // A client reset, a client that gave up while we connected, or a backend that closed
    // before answering: closed without a refusal, as the Node path does.
    if (errno > 0)
      this.host.logger.debug(
        {
          component: 'sstp',
          service: this.host.serviceName,
          client: this.clientAddress,
          backend: this.backend,
        },
        `connection from ${this.clientAddress} ended (${code === F_CLIENT ? 'client' : 'server'}: ${getSystemErrorName(-errno)})`,
      );
    this.#destroy(false);
  }

  /**
   * Offload: the relay is over (errno 0: both sides ended; `detail`: OpenSSL's reason for a TLS
   * error); the front has closed it.
   */
  onEnded(errno: number, toBackend: number, toClient: number, detail?: string): void {
    this.#finalToBackend = toBackend;
    this.#finalToClient = toClient;
    // A TLS error on the client's session (the front refused a record and sent an alert, or the
    // client sent one) ends the tunnel on the front's initiative: counted.
    if (errno === EPROTO && this.#state === 'open') {
      countClose(this.host, this.backend, this.clientAddress, 'tls-error', detail ?? 'TLS error');
      return this.#destroy(false);
    }
    logSpliceEnd(
      this.host,
      this.backend,
      this.clientAddress,
      errno > 0 ? { kind: 'error', errno } : { kind: 'done' },
    );
    this.#destroy(false);
  }

  onHandshakeDeadline(): void {
    if (this.#state === 'closed') return;
    const svc = this.host.snapshot().service;
    // Offload: the server is the one waited for once the client's request went to it.
    const sent = this.front.isTls
      ? (this.front.counters(this)?.toBackend ?? 0) > 0
      : this.#hasSentToBackend;
    this.#reject(
      ...deadlineVerdict(
        this.host,
        this.#state,
        sent ? this.#backend?.name : undefined,
        this.handshakeTimeout,
        svc.mode,
      ),
    );
  }

  spliceEnded(end: SpliceEnd): void {
    logSpliceEnd(this.host, this.backend, this.clientAddress, end);
    this.#destroy();
  }

  close(reason: SstpCloseReason, detail?: string): void {
    if (this.#state === 'closed') return;
    countClose(this.host, this.backend, this.clientAddress, reason, detail);
    this.#destroy();
  }

  reportBytes(): void {
    const backend = this.backend;
    if (!backend) return;
    if (this.front.isTls) {
      // Offload: the relay's counts while it runs, its last ones once it is over.
      const now = this.#state === 'open' ? this.front.counters(this) : undefined;
      if (this.#state !== 'open' && this.#state !== 'closed') return;
      this.#reported.report(
        this.host,
        backend,
        now?.toBackend ?? this.#finalToBackend,
        now?.toClient ?? this.#finalToClient,
      );
      return;
    }
    if (!this.#hasSentToBackend) return;
    const spliced = this.#slot === undefined ? undefined : this.front.splice?.counters(this.#slot);
    const toBackend = this.#helloBytes + (spliced?.toBackend ?? this.#finalToBackend);
    const toClient = spliced?.toClient ?? this.#finalToClient;
    this.#reported.report(this.host, backend, toBackend, toClient);
  }

  #connect(): void {
    const choice = pickBackend(this.host, this.clientAddress, this.#hello, this.#tried);
    const backend = choice.backend;
    if (!backend) return this.#reject(...noBackend(this.#tried));
    this.#state = 'connecting';
    this.#backend = backend;
    this.#via = choice.via;
    (this.#tried ??= new Set<string>()).add(backend.name);
    this.host.connections.increment(backend.name); // counted now, so a burst spreads
    this.#isCounted = true;
    const svc = this.host.snapshot().service;
    const rc = this.front.dial(this, backend.address, this.host.backendPort, svc.connectTimeout);
    if (rc < 0) this.onConnectFailed(-rc);
  }

  #failConnect(reason: string, detail: string): void {
    const backend = this.#backend;
    if (this.#state !== 'connecting' || !backend) return;
    this.#release();
    countBackendFailure(this.host, backend, reason, detail, this.clientAddress);
    if ((this.#tried?.size ?? 0) < MAX_CONNECT_ATTEMPTS) return this.#connect();
    this.#reject('backend-connect-failed', `backend ${backend.name}: ${detail}`);
  }

  #reject(reason: SstpRejectReason, detail: string): void {
    if (this.#state === 'closed') return;
    countRejected(this.host, reason, detail, this, this.backend);
    this.#destroy();
  }

  #release(): void {
    if (this.#isCounted && this.#backend) this.host.connections.decrement(this.#backend.name);
    this.#isCounted = false;
  }

  /** `inFront`: whether the front may still hold the sockets (false: it closed them itself). */
  #destroy(inFront = true): void {
    if (this.#state === 'closed') return;
    const wasOpen = this.#state === 'open';
    this.#state = 'closed';
    this.#release();
    const backend = this.backend;
    if (wasOpen && backend) this.host.metrics.open.dec({ service: this.host.serviceName, backend });
    if (this.#slot !== undefined) {
      const last = this.front.splice?.remove(this.#slot); // closes the sockets too
      this.#slot = undefined;
      if (last) {
        this.#finalToBackend = last.toBackend;
        this.#finalToClient = last.toClient;
      }
    } else if (inFront) {
      const last = wasOpen && this.front.isTls ? this.front.counters(this) : undefined;
      if (last) {
        this.#finalToBackend = last.toBackend;
        this.#finalToClient = last.toClient;
      }
      this.front.close(this);
    }
    if (wasOpen) this.reportBytes();
    this.host.removed(this);
  }
}
