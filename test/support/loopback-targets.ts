/**
 * Small loopback servers for the probe conformance suite (tests only): a target that serves, one
 * where nothing listens, one that never answers, one that answers garbage. Every server binds
 * port 0 on 127.0.0.1 or ::1 and is closed by its `close()`.
 */
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { once } from 'node:events';
import { Worker } from 'node:worker_threads';
import type { ProbeTarget } from '../../src/health/monitor.js';

/** A running test target. */
export interface TestTarget {
  readonly target: ProbeTarget;
  close(): Promise<void>;
}

/** Loopback address of a family. */
export function loopback(family: 4 | 6): string {
  return family === 6 ? '::1' : '127.0.0.1';
}

async function listenTcp(server: Server, family: 4 | 6): Promise<ProbeTarget> {
  server.listen({ port: 0, host: loopback(family) });
  await once(server, 'listening');
  const addr = server.address();
  if (addr === null || typeof addr === 'string') throw new Error('no TCP address');
  return { address: loopback(family), family, port: addr.port };
}

/** A TCP server whose connections are handled by `onConnection` (destroyed on close). */
export async function tcpServer(
  family: 4 | 6,
  onConnection: (socket: Socket) => void,
): Promise<TestTarget> {
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => undefined);
    socket.once('close', () => sockets.delete(socket));
    onConnection(socket);
  });
  const target = await listenTcp(server, family);
  return {
    target,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** A TCP port on which nothing listens (bound, then released: connects are refused). */
export async function closedTcpPort(family: 4 | 6): Promise<TestTarget> {
  const t = await tcpServer(family, () => undefined);
  await t.close();
  return { target: t.target, close: async () => undefined };
}

/**
 * A TCP listener that never completes new handshakes: the listening socket lives in a worker
 * thread whose event loop is blocked, so nothing accepts; once its accept queue (backlog 1)
 * is full the kernel drops further SYNs and a connect hangs until the prober's timeout — a
 * server behind a firewall that drops them. `at`: where to listen (default: the family's
 * loopback address, an ephemeral port).
 */
export async function unresponsiveTcpListener(
  family: 4 | 6,
  at: { host: string; port: number } = { host: loopback(family), port: 0 },
): Promise<TestTarget> {
  const code = `
    const { parentPort, workerData } = require('node:worker_threads');
    const net = require('node:net');
    const server = net.createServer();
    server.listen({ port: workerData.port, host: workerData.host, backlog: 1 }, () => {
      parentPort.postMessage(server.address().port);
      // Block this thread's event loop until terminated: nothing is ever accepted.
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0);
    });`;
  const worker = new Worker(code, { eval: true, workerData: at });
  const [port] = (await once(worker, 'message')) as [number];
  const target: ProbeTarget = { address: at.host, family, port };
  // Fill the accept queue (backlog 1 holds two completed connections).
  const fillers: Socket[] = [];
  for (let i = 0; i < 4; i++) {
    const s = connect({ host: target.address, port });
    s.on('error', () => undefined);
    fillers.push(s);
  }
  await new Promise((r) => setTimeout(r, 100));
  return {
    target,
    close: async () => {
      for (const s of fillers) s.destroy();
      await worker.terminate();
    },
  };
}

/** A UDP socket that calls `onMessage` for every datagram (close() closes it). */
export async function udpServer(
  family: 4 | 6,
  onMessage: (msg: Buffer, reply: (data: Uint8Array) => void) => void,
): Promise<TestTarget & { readonly socket: UdpSocket }> {
  const socket = createSocket(family === 6 ? 'udp6' : 'udp4');
  socket.on('message', (msg, rinfo) => {
    onMessage(msg, (data) => socket.send(data, rinfo.port, rinfo.address));
  });
  socket.bind(0, loopback(family));
  await once(socket, 'listening');
  return {
    socket,
    target: { address: loopback(family), family, port: socket.address().port },
    close: () => new Promise<void>((resolve) => socket.close(() => resolve())),
  };
}

/** A UDP port on which nothing listens (the kernel answers ICMP port unreachable). */
export async function closedUdpPort(family: 4 | 6): Promise<TestTarget> {
  const t = await udpServer(family, () => undefined);
  await t.close();
  return { target: t.target, close: async () => undefined };
}
