/**
 * The hand-off of an established passthrough tunnel from Node to the native splice path, in an
 * order that loses and reorders nothing:
 *
 * 1. Node stops reading both sockets (libuv read stop). From now on new octets wait in the
 *    kernel, where the addon will find them.
 * 2. Octets Node had already read but not delivered (a stream's readable buffer: `pause()` does
 *    not stop libuv reading at once, it stops at the high-water mark) are written across
 *    through Node, in order, before anything the addon will move.
 * 3. When both sockets' Node write queues are empty (every octet handed to the kernel — a
 *    zero-length write completes after all writes before it), the addon takes the fds.
 *
 * If anything changed meanwhile (the tunnel closed, a socket ended or was destroyed), or the
 * sockets cannot be taken over, the tunnel stays two Node pipes (`fallback`), reading again.
 */
import type net from 'node:net';
import { canTakeOver, resumeNodeReceiving, stopNodeReceiving } from '../native/socket-fd.js';

const EMPTY = Buffer.alloc(0);

/**
 * Runs the hand-off of `client` and `backend` (both paused by the caller): `handOff()` once
 * they are quiet, or `fallback()` (Node pipes) when they cannot be. Nothing happens when
 * `isWanted()` turns false before the end (the tunnel closed meanwhile).
 */
export function handOffWhenQuiet(
  client: net.Socket,
  backend: net.Socket,
  isWanted: () => boolean,
  handOff: () => void,
  fallback: () => void,
): void {
  if (!canTakeOver(client) || !canTakeOver(backend)) return fallback();
  stopNodeReceiving(client);
  stopNodeReceiving(backend);
  const giveBack = () => {
    resumeNodeReceiving(client);
    resumeNodeReceiving(backend);
    fallback();
  };
  moveBuffered(client, backend);
  moveBuffered(backend, client);
  let waiting = 2;
  const flushed = () => {
    if (--waiting > 0 || !isWanted()) return;
    const usable = (s: net.Socket) =>
      !s.destroyed && !s.writableEnded && s.readableLength === 0 && s.writableLength === 0;
    if (usable(client) && usable(backend)) handOff();
    else giveBack();
  };
  for (const s of [client, backend]) {
    if (s.writableLength === 0) flushed();
    else s.write(EMPTY, flushed);
  }
}

/** Writes what `from` holds in its readable buffer to `to`, in order. */
function moveBuffered(from: net.Socket, to: net.Socket): void {
  for (
    let chunk = from.read() as Buffer | null;
    chunk !== null;
    chunk = from.read() as Buffer | null
  )
    to.write(chunk);
}
