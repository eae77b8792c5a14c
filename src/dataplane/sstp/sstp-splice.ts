/**
 * The SSTP proxy's native splice path (issues 5 and 7): established passthrough tunnels relayed
 * by a native thread with splice(2) (native/tcp-splice), zero copy, out of JavaScript.
 *
 * Why: as two Node `pipe`s a tunnel costs about what HAProxy `mode tcp` costs — ~90 % of it
 * system calls and copies (`_copy_from_iter` in tcp_sendmsg, `_copy_to_iter` in tcp_recvmsg).
 * splice moves page references socket → pipe → socket instead, with no user-space buffer.
 *
 * Division of work — JavaScript decides, the addon moves octets:
 * - a tunnel is added once its hellos are parsed and Node's buffers on both sockets are empty
 *   (sstp-splice-handoff.ts), and removed (closed, idle, drain deadline, backend down, stop)
 *   *before* Node closes the sockets;
 * - the addon does the half-close itself (EOF read on one side → shutdown(SHUT_WR) on the
 *   other) and reports tunnels that ended (both sides at EOF, or an error) through a
 *   threadsafe callback;
 * - octet counters and last-activity times are pulled: per tunnel on status/close, all tunnels
 *   for the idle sweep.
 *
 * Loaded like the relay's fast path (../native/load-addon.ts): when the module is
 * missing or fails to load, the caller gets the reason and tunnels stay Node pipes.
 */
import type net from 'node:net';
import { join } from 'node:path';
import { usableCpus } from '../../platform/usable-cpus.js';
import { enabledByEnv, loadAddon, type AddonLoad } from '../native/load-addon.js';
import { canTakeOver, socketFd, stopNodeReceiving } from '../native/socket-fd.js';

/** The addon's functions (native/tcp-splice/tcp_splice.c documents each). */
export interface NativeSplice {
  create(maxTunnels: number, pipeSize: number, onEnded: () => void, inLoop?: boolean): object;
  add(handle: object, clientFd: number, backendFd: number): number;
  remove(handle: object, slot: number): Float64Array | undefined;
  counters(handle: object, slot: number): Float64Array | undefined;
  finished(handle: object): Float64Array;
  stats(handle: object): Float64Array;
  close(handle: object): void;
  now(): number;
  // The native front (native/tcp-splice/front_napi.c documents each).
  frontOpen(
    address: string,
    port: number,
    maxConns: number,
    maxHelloLength: number,
    maxHello: number,
    smallHello: number,
    budget: number,
    backlog: number,
    onEvent: (kind: number, id: number, a: number, b: number, data: unknown) => void,
    tls?: [cert: Buffer, key: Buffer, ciphers: string, suites: string, groups: string],
    reusePort?: boolean,
  ): object;
  frontPort(front: object): number;
  frontDial(front: object, id: number, address: string, port: number): number;
  frontSplice(front: object, id: number, splice: object): number;
  frontMore(front: object, id: number): number;
  frontClose(front: object, id: number): number;
  frontRearm(front: object): void;
  frontStats(front: object): Float64Array;
  frontCounters(front: object, id: number): Float64Array | undefined;
  frontIdle(front: object, idleMs: number): Float64Array;
  frontStop(front: object): void;
}

/** Where node-gyp puts the module, relative to the repository root. */
export const SPLICE_ADDON_PATH = join(
  'native',
  'tcp-splice',
  'build',
  'Release',
  'tcp_splice.node',
);
/** The environment switch: `VPNLB_SSTP_SPLICE=0` (or off/false/no) keeps tunnels in Node. */
export const SPLICE_ENV = 'VPNLB_SSTP_SPLICE';
/** Pipe capacity per direction: 4 × 64 KiB pages worth of splice per system call pair. */
export const SPLICE_PIPE_SIZE = 256 * 1024;

/** `auto`: use the addon when it loads (unless `VPNLB_SSTP_SPLICE=0`); `off`: never. */
export type SpliceMode = 'auto' | 'off';

/**
 * Where the addon relays: `thread`, its own thread (in parallel with JavaScript on another
 * CPU); `loop`, in Node's event loop (no thread: on one CPU a thread only adds context switches
 * and lock hand-overs between it and JavaScript — measured as four futex calls per short
 * connection); `auto`: `loop` when the process may use one CPU only (its affinity), else `thread`.
 */
export type SplicePlacement = 'auto' | 'thread' | 'loop';

/**
 * Whether `placement` means the event loop on this process (`auto`: one usable CPU, its
 * affinity and its cgroup's CPU quota counted).
 */
export function spliceInLoop(placement: SplicePlacement, cpus = usableCpus()): boolean {
  return placement === 'loop' || (placement === 'auto' && cpus <= 1);
}

/** True unless the environment switch turns the splice path off. */
export function spliceEnabledByEnv(env: NodeJS.ProcessEnv = process.env): boolean {
  return enabledByEnv(SPLICE_ENV, env);
}

let cached: AddonLoad<NativeSplice> | undefined;

/** The addon, or why it is unavailable (looked up from this file upwards, loaded once). */
export function loadNativeSplice(): AddonLoad<NativeSplice> {
  return (cached ??= loadAddon<NativeSplice>({
    path: SPLICE_ADDON_PATH,
    needs: 'splice, epoll',
    functions: [
      'create',
      'add',
      'remove',
      'counters',
      'finished',
      'stats',
      'close',
      'now',
      'frontOpen',
      'frontPort',
      'frontDial',
      'frontSplice',
      'frontMore',
      'frontClose',
      'frontRearm',
      'frontStats',
      'frontStop',
    ],
  }));
}

/** Octets a spliced tunnel moved (each counts what was written to the destination). */
export interface SpliceCounters {
  readonly toBackend: number;
  readonly toClient: number;
  /** Monotonic ms (`SpliceEngine.now()`) of the last octet moved, or of the hand-off. */
  readonly lastActiveMs: number;
}

/** What a tunnel learns when it ended by itself in the addon. */
export type SpliceEnd =
  | { readonly kind: 'done' }
  | { readonly kind: 'error'; readonly errno: number };

/** Whoever owns a tunnel in the addon (the SSTP tunnel; tests use plain objects). */
export interface SpliceOwner {
  /** The tunnel ended by itself (both sides at EOF, or an error): remove it, close the sockets. */
  spliceEnded(end: SpliceEnd): void;
}

/** Why `add` refused a tunnel (negative codes of the addon, splice.h `ts_add`). */
const ADD_ERRORS: Record<number, string> = {
  [-1]: 'table full',
  [-2]: 'pipe() failed (fd limit?)',
  [-3]: 'epoll_ctl failed',
  [-4]: 'bad fd',
  [-5]: 'stopped',
};

export class SpliceEngine {
  readonly #native: NativeSplice;
  readonly #handle: object;
  /** Owners of the tunnels in the addon, by slot. */
  readonly #owners = new Map<number, SpliceOwner>();
  #closed = false;
  #handedOff = 0;

  /** Whether the addon relays in Node's event loop rather than on its own thread. */
  readonly inLoop: boolean;

  private constructor(
    native: NativeSplice,
    create: (onEnded: () => void) => object,
    inLoop: boolean,
  ) {
    this.#native = native;
    this.inLoop = inLoop;
    this.#handle = create(() => this.#onEnded());
  }

  /** Starts the splice thread, or returns why it cannot (addon missing, failed to load, setup failed). */
  static open(
    maxTunnels: number,
    pipeSize = SPLICE_PIPE_SIZE,
    inLoop = false,
  ): SpliceEngine | { unavailable: string } {
    const loaded = loadNativeSplice();
    if ('unavailable' in loaded) return loaded;
    try {
      return new SpliceEngine(
        loaded.binding,
        (onEnded) => loaded.binding.create(maxTunnels, pipeSize, onEnded, inLoop),
        inLoop,
      );
    } catch (err) {
      return { unavailable: `native setup failed: ${(err as Error).message}` };
    }
  }

  /**
   * Hands a tunnel's two connected sockets to the splice thread. The caller has made sure that
   * Node holds nothing unread or unwritten on either (see sstp-splice-handoff.ts). Returns the
   * slot, or why the tunnel stays in Node (then Node still owns and reads both sockets).
   */
  add(client: net.Socket, backend: net.Socket, owner: SpliceOwner): number | string {
    if (this.#closed) return 'stopped';
    if (!canTakeOver(client) || !canTakeOver(backend))
      return "this Node version does not expose a TCP socket's fd";
    const slot = this.#native.add(this.#handle, socketFd(client)!, socketFd(backend)!);
    if (slot < 0) return ADD_ERRORS[slot] ?? `error ${slot}`;
    // Paused sockets are not read already (net.Socket.pause stops libuv reading); this makes
    // sure of it. Node writes nothing more to either until remove().
    stopNodeReceiving(client);
    stopNodeReceiving(backend);
    this.#owners.set(slot, owner);
    this.#handedOff++;
    return slot;
  }

  /**
   * Takes a connection of the native front (sstp-native-front.ts) whose server has answered:
   * its two sockets move to the splice thread without passing through Node. Returns the slot,
   * or why the front still holds (and must close) the connection.
   */
  adoptFromFront(front: object, id: number, owner: SpliceOwner): number | string {
    if (this.#closed) return 'stopped';
    const slot = this.#native.frontSplice(front, id, this.#handle);
    if (slot === -100) return 'the connection is no longer waiting for its hand-off';
    if (slot < 0) return ADD_ERRORS[slot] ?? `error ${slot}`;
    this.#owners.set(slot, owner);
    this.#handedOff++;
    return slot;
  }

  /** The addon's functions (the native front uses the same module). */
  get binding(): NativeSplice {
    return this.#native;
  }

  /**
   * Once this returns the addon no longer uses the tunnel's sockets: the caller closes them
   * (an adopted tunnel's sockets are the addon's: closed here).
   */
  remove(slot: number): SpliceCounters | undefined {
    this.#owners.delete(slot);
    const c = this.#native.remove(this.#handle, slot);
    return c === undefined ? undefined : { toBackend: c[0]!, toClient: c[1]!, lastActiveMs: c[2]! };
  }

  counters(slot: number): SpliceCounters | undefined {
    const c = this.#native.counters(this.#handle, slot);
    return c === undefined ? undefined : { toBackend: c[0]!, toClient: c[1]!, lastActiveMs: c[2]! };
  }

  /** Visits every tunnel in the addon. */
  forEach(
    visit: (slot: number, toBackend: number, toClient: number, lastActiveMs: number) => void,
  ): void {
    const s = this.#native.stats(this.#handle);
    for (let i = 0; i + 3 < s.length; i += 4) visit(s[i]!, s[i + 1]!, s[i + 2]!, s[i + 3]!);
  }

  /** The owners of tunnels that moved no octet for `idleMs` (collected first: visits may remove). */
  idleOwners(idleMs: number): SpliceOwner[] {
    const cutoff = this.now() - idleMs;
    const idle: SpliceOwner[] = [];
    this.forEach((slot, _b, _c, lastActiveMs) => {
      const owner = lastActiveMs <= cutoff ? this.#owners.get(slot) : undefined;
      if (owner) idle.push(owner);
    });
    return idle;
  }

  /** Tunnels handed to the addon since it started. */
  get handedOff(): number {
    return this.#handedOff;
  }

  /** Tunnels currently in the addon. */
  get size(): number {
    return this.#owners.size;
  }

  /** Milliseconds on the clock of `lastActiveMs` (monotonic). */
  now(): number {
    return this.#native.now();
  }

  /** Stops and joins the splice thread; tunnels still in it stay removable (and must be). */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#native.close(this.#handle);
  }

  get isClosed(): boolean {
    return this.#closed;
  }

  #onEnded(): void {
    for (;;) {
      const f = this.#native.finished(this.#handle);
      for (let i = 0; i + 2 < f.length; i += 3) {
        const slot = f[i]!;
        this.#owners
          .get(slot)
          ?.spliceEnded(f[i + 1] === 3 ? { kind: 'error', errno: f[i + 2]! } : { kind: 'done' });
      }
      if (f.length === 0) return;
    }
  }
}
