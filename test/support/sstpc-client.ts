/**
 * The real SSTP client (Debian `sstp-client`) for integration tests, run as pppd would run it.
 *
 * This kernel has no PPP, so sstpc runs with `--nolaunchpppd`: it speaks async-HDLC PPP on its
 * stdin/stdout as pppd would on a pty. We feed it an LCP Configure-Request framed as pppd
 * frames it (RFC 1662) once its call is up, and collect the LCP codes that come back out of its
 * stdout (2: the server's Configure-Ack). Needs root: sstpc binds its IPC socket in /var/run/sstpc.
 */
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import net from 'node:net';
import { join } from 'node:path';
import {
  HdlcDecoder,
  hdlcEncode,
  lcpConfigureRequest,
  lcpInfo,
} from '../../src/protocol/sstp/ppp-hdlc.js';
import { waitUntil } from '../../src/util/wait.js';

/** Spawns a process (on the host, or inside a namespace: lab/netns.ts `Namespace.spawn`). */
export type Spawner = (cmd: string, args: readonly string[], options: SpawnOptions) => ChildProcess;

export const hostSpawner: Spawner = (cmd, args, options) => spawn(cmd, [...args], options);

/** The LCP Configure-Request the client sends (magic number fixed so tests can compare frames). */
export const LCP_REQUEST_MAGIC = 0x7670_6e6c;

export interface SstpcClient {
  readonly proc: ChildProcess;
  /** LCP codes received from the server, in order (2 = Configure-Ack). */
  readonly fromServer: number[];
  log(): string;
  /** Sends one more LCP Configure-Request (identifier `id`) into the tunnel. */
  sendLcpRequest(id: number): void;
  close(): void;
}

/**
 * A connected pair of UNIX stream sockets (Node has no socketpair()): sstpc gets one end as
 * both stdin and stdout, as pppd's pty would be — it writes PPP frames back to fd 0.
 */
async function socketPair(dir: string, name: string): Promise<[net.Socket, net.Socket]> {
  const path = join(dir, name);
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(path, () => r()));
  const ours = net.connect(path);
  const [theirs] = await Promise.all([
    new Promise<net.Socket>((r) => server.once('connection', r)),
    new Promise((r) => ours.once('connect', r)),
  ]);
  server.close();
  return [ours, theirs];
}

/** Runs sstpc --nolaunchpppd against `target` (`host:port`); feeds one LCP Configure-Request once the call is up. */
export async function startSstpc(
  target: string,
  caCert: string,
  id: string,
  dir: string,
  spawner: Spawner = hostSpawner,
): Promise<SstpcClient> {
  const [tty, theirs] = await socketPair(dir, `${id}.sock`);
  const proc = spawner(
    'sstpc',
    [
      '--nolaunchpppd',
      '--log-stderr',
      '--log-level',
      '4',
      '--ipparam',
      id,
      '--ca-cert',
      caCert,
      '--cert-warn',
      target,
    ],
    {
      stdio: [theirs, theirs, 'pipe'],
    },
  );
  theirs.destroy(); // the child holds its own copy
  let log = '';
  let isFed = false;
  const fromServer: number[] = [];
  const hdlc = new HdlcDecoder();
  tty.on('error', () => {});
  tty.on('data', (d: Buffer) => {
    for (const f of hdlc.push(d)) {
      const lcp = lcpInfo(f);
      if (lcp) fromServer.push(lcp.code);
    }
  });
  const sendLcpRequest = (n: number) =>
    tty.write(hdlcEncode(lcpConfigureRequest(n, LCP_REQUEST_MAGIC)));
  proc.stderr?.on('data', (d: Buffer) => {
    log += d.toString();
    // sstpc logs this once the Call Connect Ack arrived and it reads PPP from its "pty".
    if (!isFed && /Started PPP Link Negotiation/.test(log)) {
      isFed = true;
      sendLcpRequest(1);
    }
  });
  return { proc, fromServer, log: () => log, sendLcpRequest, close: () => tty.destroy() };
}

/**
 * sstpc 1.0.18 has a bug that a fast server triggers: when the server's answer to its
 * ClientHello is already in the socket by the time sstpc reads after writing it, the TLS
 * handshake completes inside sstpc's first SSL_write, the HTTP request goes out in the same call,
 * and sstpc never arms its receive event for the server's HTTP answer (its completion callback
 * runs only on the asynchronous path). It then waits in epoll_wait with no socket registered
 * while the answer (and the server's TLS 1.3 tickets) sit unread in its socket's receive queue:
 * "Connected" in its log and no "Sending Connect-Request". Seen with strace, and reproduced
 * directly against the simulated server without vpnlb in the path (9 stalls in 40 attempts on
 * loopback); every stall had the answer in sstpc's receive queue, so the server, and vpnlb
 * when it is in the path, had done its part. The faster the TLS server, the likelier: the native
 * offload front answers a ClientHello within a few microseconds on loopback.
 *
 * A real network's latency makes sstpc read before the answer arrives: tests on loopback put a
 * few milliseconds of it in sstpc's path (`startLatencyPath`). An attempt that stalls anyway is
 * ended (by PID) and retried, up to `attempts` attempts in all, each retry reported with sstpc's log.
 */
export async function startSstpcUntilCallSetup(
  target: string,
  caCert: string,
  id: string,
  dir: string,
  spawner: Spawner = hostSpawner,
  attempts = 4,
): Promise<SstpcClient> {
  for (let attempt = 1; ; attempt++) {
    const c = await startSstpc(target, caCert, `${id}-${attempt}`, dir, spawner);
    try {
      await until(
        () => /Sending Connect-Request/.test(c.log()),
        'sstpc to send its Call Connect Request',
        4_000,
      );
      return c;
    } catch (err) {
      if (c.proc.exitCode === null && c.proc.pid) process.kill(c.proc.pid, 'SIGTERM');
      c.close();
      if (attempt >= attempts) throw err;
      console.log(
        `# sstpc ${id} attempt ${attempt} stalled before its Call Connect Request; retrying\n${c.log()}`,
      );
    }
  }
}

/** A TCP path on loopback with a one-way latency in each direction, as a network has. */
export interface LatencyPath {
  readonly port: number;
  close(): Promise<void>;
}

/**
 * Listens on `host` (an ephemeral port) and forwards every connection to `target`, delaying
 * each chunk by `delayMs` in each direction with its order kept; an end of stream follows the
 * data before it, a reset or error ends both sides.
 */
export async function startLatencyPath(
  host: string,
  target: { host: string; port: number },
  delayMs: number,
): Promise<LatencyPath> {
  const sockets = new Set<net.Socket>();
  const later = (from: net.Socket, to: net.Socket) => {
    // Timers of one duration fire in the order they were set: the stream keeps its order.
    from.on('data', (d: Buffer) => setTimeout(() => to.writable && to.write(d), delayMs));
    from.on('end', () => setTimeout(() => to.writable && to.end(), delayMs));
  };
  const server = net.createServer({ allowHalfOpen: true }, (client) => {
    const upstream = net.connect({ port: target.port, host: target.host, allowHalfOpen: true });
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => {
        client.destroy();
        upstream.destroy();
      });
    }
    later(client, upstream);
    later(upstream, client);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, host, () => resolve());
  });
  return {
    port: (server.address() as net.AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/** `waitUntil` with the condition first (reads better in assertions). */
export async function until(cond: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  await waitUntil(what, cond, timeoutMs);
}
