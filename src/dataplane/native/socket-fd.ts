/**
 * The file descriptor behind a `node:dgram` or `node:net` socket, and a way to stop Node
 * reading it — shared by the relay's fast path (UDP) and the SSTP proxy's splice path (TCP).
 *
 * Node exposes neither publicly: both go through the socket's internal libuv handle (UDP: the
 * `UDPWrap` under the socket's 'state symbol' — `socket._handle` is the same object but its
 * getter prints a deprecation warning; TCP: the `TCPWrap` at `socket._handle`). Every access is
 * guarded, so a Node version that moves them makes the native path report itself unavailable
 * instead of breaking the relay or the proxy.
 */
import type { Socket as UdpSocket } from 'node:dgram';
import net from 'node:net';

interface LibuvHandle {
  fd?: unknown;
  /** UDP (uv_udp_recv_stop). */
  recvStop?: unknown;
  /** TCP (uv_read_stop). */
  readStop?: unknown;
}

function handleOf(socket: UdpSocket | net.Socket): LibuvHandle | undefined {
  let handle: unknown;
  if (socket instanceof net.Socket) {
    handle = (socket as unknown as { _handle?: unknown })._handle;
  } else {
    const sym = Object.getOwnPropertySymbols(socket).find((s) => s.description === 'state symbol');
    const state =
      sym === undefined
        ? undefined
        : (socket as unknown as Record<symbol, { handle?: unknown } | undefined>)[sym];
    handle = state?.handle;
  }
  return handle !== null && typeof handle === 'object' ? (handle as LibuvHandle) : undefined;
}

function stopFunction(socket: UdpSocket | net.Socket): unknown {
  const handle = handleOf(socket);
  return socket instanceof net.Socket ? handle?.readStop : handle?.recvStop;
}

/** The socket's fd (bound or connected socket), or undefined when Node does not expose it. */
export function socketFd(socket: UdpSocket | net.Socket): number | undefined {
  const fd = handleOf(socket)?.fd;
  return typeof fd === 'number' && Number.isInteger(fd) && fd >= 0 ? fd : undefined;
}

/**
 * Stops libuv from reading the socket (a native thread reads it from now on); writing through
 * Node keeps working. False when the handle does not offer it. (A TCP socket must also stay
 * paused: `resume()` would start reading again.)
 */
export function stopNodeReceiving(socket: UdpSocket | net.Socket): boolean {
  const handle = handleOf(socket);
  const stop = stopFunction(socket);
  if (handle === undefined || typeof stop !== 'function') return false;
  try {
    (stop as () => number).call(handle);
    return true;
  } catch {
    return false;
  }
}

/** Whether both private accessors are there (checked before handing sockets to an addon). */
export function canTakeOver(socket: UdpSocket | net.Socket): boolean {
  return socketFd(socket) !== undefined && typeof stopFunction(socket) === 'function';
}

/**
 * Undoes `stopNodeReceiving` on a TCP socket whose hand-off was refused, so that Node reads it
 * again (`pause`/`resume` alone would not: libuv's reading flag was left set by the stop).
 */
export function resumeNodeReceiving(socket: net.Socket): boolean {
  const handle = handleOf(socket) as (LibuvHandle & { readStart?: unknown }) | undefined;
  if (handle === undefined || typeof handle.readStart !== 'function') return false;
  try {
    (handle.readStart as () => number).call(handle);
    return true;
  } catch {
    return false;
  }
}
