/**
 * A simulated IKEv2 client, the way a Windows Always On VPN client reaches a server through a
 * NAT (every load balancer is one):
 *
 * 1. IKE_SA_INIT to the IKE port (500) from one source port;
 * 2. the NAT detection says "NAT" (RFC 7296 §2.23), so IKE_AUTH goes to the NAT-T port (4500),
 *    behind the non-ESP marker, from a NEW source port, with the SPIs of step 1;
 * 3. ESP-in-UDP (RFC 3948) from that same port; the simulated server echoes each packet.
 *
 * It binds a given local source address (127.x.y.z on loopback: many "clients" on one host),
 * retransmits like a real initiator (bounded: RFC 7296 §2.1 leaves the schedule to the
 * implementation), and reports success or the step that failed, with timings.
 */
import { isIP } from 'node:net';
import type { RemoteInfo, Socket } from 'node:dgram';
import {
  IKE_EXCHANGE,
  classifyNatT,
  formatSpi,
  parsePayloads,
  withNonEspMarker,
} from '../../protocol/ikev2/index.js';
import { bindUdp } from '../rras/ike-responder.js';
import {
  authMessage,
  espPacket,
  espSpiOfAuth,
  randomEspSpi,
  randomSpi64,
  saInitRequest,
} from '../rras/ike-sim-messages.js';
import { sleep } from '../../util/wait.js';

export interface IkeClientOptions {
  /** Source address to bind (e.g. 127.1.0.7). */
  readonly localAddress: string;
  /** The server (or the balancer's virtual IP) and its two ports. */
  readonly server: {
    readonly address: string;
    readonly ikePort: number;
    readonly natTPort: number;
  };
  /** ESP packets to send after IKE_AUTH (default 3). */
  readonly espPackets?: number;
  /** Gap between ESP packets in ms (default 10). */
  readonly espInterval?: number;
  /** Wait per attempt in ms; one entry per transmission (default 250, 500, 1000). */
  readonly retransmitTimeouts?: readonly number[];
  /** How long to wait for the last ESP echo in ms (default 1000). */
  readonly espTimeout?: number;
  /** Initiator SPI (default random). */
  readonly spiI?: bigint;
}

export type IkeClientFailure = 'bind-error' | 'sa-init-timeout' | 'auth-timeout' | 'esp-timeout';

export interface IkeClientResult {
  readonly ok: boolean;
  readonly reason?: IkeClientFailure;
  readonly detail?: string;
  readonly localAddress: string;
  /** Initiator / responder SPIs, 16 hex digits. */
  readonly spiI: string;
  readonly spiR?: string;
  /** Local ports used for the IKE port and the NAT-T port (they differ, as after a NAT). */
  readonly ikeSourcePort?: number;
  readonly natTSourcePort?: number;
  /** ESP SPIs: what the client receives on, what the server asked for. */
  readonly clientEspSpi: number;
  readonly serverEspSpi?: number;
  readonly retransmits: number;
  readonly espSent: number;
  readonly espEchoed: number;
  readonly saInitMs?: number;
  readonly authMs?: number;
  readonly totalMs: number;
}

/** Runs one client to completion; never throws for network outcomes (they are the result). */
export async function runIkeClient(options: IkeClientOptions): Promise<IkeClientResult> {
  const started = performance.now();
  const spiI = options.spiI ?? randomSpi64();
  const clientEspSpi = randomEspSpi();
  const timeouts = options.retransmitTimeouts ?? [250, 500, 1000];
  const type = isIP(options.localAddress) === 6 ? 'udp6' : 'udp4';
  const { server } = options;
  const base = { localAddress: options.localAddress, spiI: formatSpi(spiI), clientEspSpi };
  let retransmits = 0;
  const fail = (
    reason: IkeClientFailure,
    detail: string,
    extra: Partial<IkeClientResult> = {},
  ): IkeClientResult => ({
    ...base,
    ok: false,
    reason,
    detail,
    retransmits,
    espSent: 0,
    espEchoed: 0,
    totalMs: performance.now() - started,
    ...extra,
  });

  let ikeSocket: Socket | undefined;
  let natTSocket: Socket | undefined;
  try {
    try {
      ikeSocket = await bindUdp(type, options.localAddress, 0);
      natTSocket = await bindUdp(type, options.localAddress, 0);
    } catch (err) {
      return fail('bind-error', (err as NodeJS.ErrnoException).code ?? String(err));
    }
    const ikeSourcePort = ikeSocket.address().port;
    const natTSourcePort = natTSocket.address().port;

    // Step 1: IKE_SA_INIT on the IKE port.
    const init = saInitRequest(
      spiI,
      { address: options.localAddress, port: ikeSourcePort },
      { address: server.address, port: server.ikePort },
    );
    const initReply = await exchange(
      ikeSocket,
      init,
      server.address,
      server.ikePort,
      timeouts,
      (msg) => {
        const p = parsePayloads(msg);
        return p.kind === 'ok' &&
          p.header.exchangeType === IKE_EXCHANGE.IKE_SA_INIT &&
          p.header.isResponse &&
          p.header.spiI === spiI &&
          p.header.spiR !== 0n
          ? p.header.spiR
          : undefined;
      },
    );
    retransmits += initReply.retransmits;
    const saInitMs = performance.now() - started;
    if (initReply.value === undefined)
      return fail(
        'sa-init-timeout',
        `no IKE_SA_INIT response after ${timeouts.length} transmission(s)`,
        { ikeSourcePort, natTSourcePort },
      );
    const spiR = initReply.value;

    // Step 2: IKE_AUTH on the NAT-T port, from the other socket (a new source port).
    const auth = Buffer.from(withNonEspMarker(authMessage(spiI, spiR, false, clientEspSpi)));
    const authReply = await exchange(
      natTSocket,
      auth,
      server.address,
      server.natTPort,
      timeouts,
      (msg) => {
        const c = classifyNatT(msg);
        if (c.kind !== 'ike') return undefined;
        const p = parsePayloads(c.message);
        if (
          p.kind !== 'ok' ||
          p.header.exchangeType !== IKE_EXCHANGE.IKE_AUTH ||
          !p.header.isResponse
        )
          return undefined;
        if (p.header.spiI !== spiI || p.header.spiR !== spiR) return undefined;
        return espSpiOfAuth(p) ?? undefined;
      },
    );
    retransmits += authReply.retransmits;
    const authMs = performance.now() - started - saInitMs;
    const common = { spiR: formatSpi(spiR), ikeSourcePort, natTSourcePort, saInitMs, authMs };
    if (authReply.value === undefined)
      return fail(
        'auth-timeout',
        `no IKE_AUTH response after ${timeouts.length} transmission(s)`,
        common,
      );
    const serverEspSpi = authReply.value;

    // Step 3: ESP-in-UDP from the NAT-T socket; the server echoes each packet with our SPI.
    const count = options.espPackets ?? 3;
    const echoed = new Set<number>();
    const sock = natTSocket;
    const onEsp = (msg: Buffer) => {
      const c = classifyNatT(msg);
      if (c.kind === 'esp' && c.spi === clientEspSpi) echoed.add(c.seq);
    };
    sock.on('message', onEsp);
    for (let seq = 1; seq <= count; seq++) {
      sock.send(espPacket(serverEspSpi, seq), server.natTPort, server.address);
      if (seq < count) await sleep(options.espInterval ?? 10);
    }
    const deadline = performance.now() + (options.espTimeout ?? 1000);
    while (echoed.size < count && performance.now() < deadline) await sleep(10);
    sock.off('message', onEsp);
    const result = {
      ...base,
      ...common,
      serverEspSpi,
      retransmits,
      espSent: count,
      espEchoed: echoed.size,
      totalMs: performance.now() - started,
    };
    if (count > 0 && echoed.size === 0)
      return {
        ...result,
        ok: false,
        reason: 'esp-timeout',
        detail: `none of ${count} ESP packets echoed`,
      };
    return { ...result, ok: true };
  } finally {
    for (const s of [ikeSocket, natTSocket]) {
      if (s) await new Promise<void>((resolve) => s.close(() => resolve()));
    }
  }
}

/** Sends `request` and waits for a reply `accept` recognizes, retransmitting on each timeout. */
async function exchange<T>(
  socket: Socket,
  request: Uint8Array,
  address: string,
  port: number,
  timeouts: readonly number[],
  accept: (msg: Buffer, rinfo: RemoteInfo) => T | undefined,
): Promise<{ value: T | undefined; retransmits: number }> {
  let retransmits = 0;
  for (let i = 0; i < timeouts.length; i++) {
    if (i > 0) retransmits++;
    const value = await new Promise<T | undefined>((resolve) => {
      const timer = setTimeout(() => {
        socket.off('message', onMessage);
        resolve(undefined);
      }, timeouts[i]);
      const onMessage = (msg: Buffer, rinfo: RemoteInfo) => {
        const v = accept(msg, rinfo);
        if (v === undefined) return;
        clearTimeout(timer);
        socket.off('message', onMessage);
        resolve(v);
      };
      socket.on('message', onMessage);
      socket.send(request, port, address);
    });
    if (value !== undefined) return { value, retransmits };
  }
  return { value: undefined, retransmits };
}
