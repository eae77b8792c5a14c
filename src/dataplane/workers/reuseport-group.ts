/**
 * The IKEv2 relay's listening sockets when it runs in worker processes: one SO_REUSEPORT group
 * per port (500, 4500), opened by the main process through the relay's addon
 * (native/udp-fastpath/reuseport.c), whose classic BPF program gives every datagram to socket
 * `workerOfAddress(source, count)`. Worker i serves socket i of both groups, so all of one
 * client address's datagrams — IKE on 500, then IKE and ESP on 4500 from another port — reach
 * the worker that holds its flows, and clients behind one NAT address stay together (the
 * device and user tunnels of one machine share a NAT-T flow: natt-flow-index.ts).
 *
 * The main process keeps every socket open (it never reads them): a worker that dies leaves
 * its socket in the group, datagrams for it wait in the socket's buffer, and its replacement
 * is handed the same socket, so no other client changes worker.
 */
import { createSocket, type Socket } from 'node:dgram';
import { closeSync } from 'node:fs';
import { ipAddressBytes } from '../../protocol/ikev2/nat-detection.js';
import { loadNativeFastPath } from '../relay/fastpath/native-binding.js';
import { socketFd, stopNodeReceiving } from '../native/socket-fd.js';

/** Most sockets in a group (the `workers` setting's maximum; RP_MAX_SOCKETS in the addon). */
export const MAX_GROUP_SOCKETS = 64;

/** 2^32 / phi: Fibonacci hashing (the addon's RP_MULTIPLIER). */
const MULTIPLIER = 0x9e3779b1;

/**
 * The index of the socket, hence the worker, that the kernel gives a datagram from `address`:
 * the JavaScript twin of the addon's BPF program (tests, and the status of which worker serves
 * a client). Undefined for text that is not an IP address.
 */
export function workerOfAddress(address: string, count: number): number | undefined {
  const bytes = ipAddressBytes(address);
  if (bytes === undefined) return undefined;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let v = 0;
  for (let i = 0; i < bytes.length; i += 4) v ^= view.getUint32(i);
  return ((Math.imul(v, MULTIPLIER) >>> 16) * count) >>> 16;
}

/** Why the relay cannot run in workers here (the addon is needed), or undefined when it can. */
export function reuseportUnavailable(): string | undefined {
  const load = loadNativeFastPath();
  return 'unavailable' in load ? load.unavailable : undefined;
}

export interface ReuseportGroup {
  readonly port: number;
  /** Socket i is worker i's; bound, not read by this process. */
  readonly sockets: readonly Socket[];
}

/**
 * Opens `count` sockets on address:port (port 0: a free one, the same for all). Errors carry
 * the system's code (EADDRINUSE, EACCES, …) for `listenError`.
 */
export function openReuseportGroup(
  family: 4 | 6,
  address: string,
  port: number,
  count: number,
): ReuseportGroup {
  const load = loadNativeFastPath();
  if ('unavailable' in load)
    throw new Error(`the relay's addon is needed for worker processes: ${load.unavailable}`);
  const { port: bound, fds } = load.binding.reuseportGroup(family, address, port, count);
  const sockets: Socket[] = [];
  try {
    for (const fd of fds) {
      const socket = createSocket(family === 6 ? 'udp6' : 'udp4');
      // `bind({ fd })` wraps the socket and starts reading it; this process only keeps it open.
      socket.bind({ fd, exclusive: true });
      sockets.push(socket);
      if (!stopNodeReceiving(socket) || socketFd(socket) !== fd)
        throw new Error('Node does not expose the UDP handle of a wrapped socket');
    }
  } catch (err) {
    closeReuseportGroup({ port: bound, sockets });
    for (const fd of fds.slice(sockets.length)) closeSync(fd);
    throw err;
  }
  return { port: bound, sockets };
}

/** Closes every socket of a group (the service stops). */
export function closeReuseportGroup(group: ReuseportGroup): void {
  for (const s of group.sockets) {
    try {
      s.close();
    } catch {
      // already closed
    }
  }
}
