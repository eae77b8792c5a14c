/**
 * The file descriptor behind a `node:dgram` socket, and a way to stop Node reading it.
 *
 * Node exposes neither publicly: both go through the socket's internal libuv handle (the
 * `UDPWrap` under the socket's 'state symbol'; `socket._handle` is the same object but its
 * getter prints a deprecation warning). Every access is guarded, so a Node version that moves
 * them makes the fast path report itself unavailable instead of breaking the relay.
 */
import type { Socket } from 'node:dgram';

interface UdpHandle {
  fd?: unknown;
  recvStop?: unknown;
}

function handleOf(socket: Socket): UdpHandle | undefined {
  const sym = Object.getOwnPropertySymbols(socket).find((s) => s.description === 'state symbol');
  const state = sym === undefined ? undefined : ((socket as unknown as Record<symbol, { handle?: UdpHandle } | undefined>)[sym]);
  const handle = state?.handle;
  return handle !== null && typeof handle === 'object' ? handle : undefined;
}

/** The socket's fd (bound or connected socket), or undefined when Node does not expose it. */
export function socketFd(socket: Socket): number | undefined {
  const fd = handleOf(socket)?.fd;
  return typeof fd === 'number' && Number.isInteger(fd) && fd >= 0 ? fd : undefined;
}

/**
 * Stops libuv from reading the socket (the native thread reads it from now on); sending
 * through Node keeps working. False when the handle does not offer it.
 */
export function stopNodeReceiving(socket: Socket): boolean {
  const handle = handleOf(socket);
  if (handle === undefined || typeof handle.recvStop !== 'function') return false;
  try {
    (handle.recvStop as () => number).call(handle);
    return true;
  } catch {
    return false;
  }
}

/** Whether both private accessors are there (checked before handing sockets to the addon). */
export function canTakeOver(socket: Socket): boolean {
  const handle = handleOf(socket);
  return socketFd(socket) !== undefined && typeof handle?.recvStop === 'function';
}
