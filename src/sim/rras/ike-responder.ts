/**
 * A simulated RRAS IKEv2 responder (no root: any address and ports, high ports in tests and the
 * demo). It implements the part of a Windows RRAS / strongSwan responder that a load balancer
 * must get right, with real framing:
 *
 * - IKE_SA_INIT on the IKE port → a well-formed response (SA, KE, Nonce, NAT detection notifies);
 *   a retransmitted request gets the same response again (RFC 7296 §2.1);
 * - IKE_AUTH on the NAT-T port, behind the non-ESP marker, with the SPIs of IKE_SA_INIT (the
 *   client has moved to a new source port: RFC 7296 §2.23) → a response with the server's ESP
 *   SPI; the SA is then established;
 * - ESP-in-UDP on the NAT-T port (RFC 3948) → counted per SA and echoed back with the client's
 *   ESP SPI, like a reply through the tunnel;
 * - a **per-source-IP limit** of concurrent half-open + established SAs, like Windows
 *   (IKEEXT `IkeNumEstablishedForInitialQuery`) and strongSwan (`charon.block_threshold`): an
 *   IKE_SA_INIT beyond it is silently dropped and counted (`refusedByPerIpLimit`). Behind full
 *   NAT from one address this is what makes clients fail with error 809.
 *
 * It reports which client addresses it saw and, per SA, which paths (kind, remote address:port,
 * local port) touched it, so tests and the demo can prove that a client's 500 and 4500 halves
 * and its ESP reached this server and no other.
 */
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { isIP } from 'node:net';
import { randomBytes } from 'node:crypto';
import {
  DH_GROUP,
  IKE_EXCHANGE,
  IkeParseStats,
  classifyNatT,
  decodeKeBody,
  decodeSaBody,
  formatSpi,
  parsePayloads,
  withNonEspMarker,
  IKE_PAYLOAD,
  type IkeMessageOk,
} from '../../protocol/ikev2/index.js';
import {
  authMessage,
  chooseProposal,
  espSpiOfAuth,
  noProposalChosenResponse,
  randomEspSpi,
  saInitResponse,
} from './ike-sim-messages.js';

export interface IkeResponderOptions {
  /** Name shown in reports (e.g. `rras1`). */
  readonly name?: string;
  /** Local address (e.g. 127.0.20.1). */
  readonly address: string;
  /** IKE port (0 = ephemeral); RRAS uses 500. */
  readonly ikePort: number;
  /** NAT-T port (0 = ephemeral); RRAS uses 4500. */
  readonly natTPort: number;
  /** Most concurrent SAs (half-open + established) per source address; default unlimited. */
  readonly perIpLimit?: number;
  /** An established SA with no packet for this long (ms) is forgotten; default 60 s. */
  readonly idleTimeout?: number;
  /** A half-open SA (no IKE_AUTH yet) is forgotten after this long (ms); default 30 s. */
  readonly halfOpenTimeout?: number;
}

/** How one SA was reached: `ike` (IKE port), `ike-natt` (IKE behind the marker), `esp`. */
export type SimPathKind = 'ike' | 'ike-natt' | 'esp';

export interface SimSaReport {
  readonly spiI: string;
  readonly spiR: string;
  /** Source address of the IKE_SA_INIT (what the per-IP limit counts). */
  readonly remoteAddress: string;
  readonly state: 'half-open' | 'established';
  readonly espPackets: number;
  /** `kind remote:port -> :localPort` with a packet count, e.g. `ike 127.0.0.1:40000 -> :500`. */
  readonly paths: readonly {
    readonly path: string;
    readonly kind: SimPathKind;
    readonly packets: number;
  }[];
}

export interface IkeResponderStats {
  saInitReceived: number;
  saInitAnswered: number;
  /** IKE_SA_INITs without an acceptable proposal, answered statelessly (RFC 7296 §2.7). */
  noProposalChosen: number;
  saInitRetransmits: number;
  refusedByPerIpLimit: number;
  authAnswered: number;
  authUnknownSa: number;
  espPackets: number;
  espUnknownSpi: number;
  keepalives: number;
  invalid: number;
  expired: number;
}

interface SimSa {
  readonly spiI: bigint;
  readonly spiIHex: string;
  readonly spiR: bigint;
  readonly remoteAddress: string;
  state: 'half-open' | 'established';
  lastSeen: number;
  readonly initResponse: Uint8Array;
  authResponse: Buffer | undefined;
  clientEspSpi: number | undefined;
  serverEspSpi: number | undefined;
  espPackets: number;
  readonly paths: Map<string, { kind: SimPathKind; packets: number }>;
}

/** Bound on the remembered SPIs (refused, unknown ESP): a flood must not grow memory. */
const MAX_REMEMBERED = 10_000;

const zeroStats = (): IkeResponderStats => ({
  saInitReceived: 0,
  saInitAnswered: 0,
  noProposalChosen: 0,
  saInitRetransmits: 0,
  refusedByPerIpLimit: 0,
  authAnswered: 0,
  authUnknownSa: 0,
  espPackets: 0,
  espUnknownSpi: 0,
  keepalives: 0,
  invalid: 0,
  expired: 0,
});

export class IkeResponder {
  readonly name: string;
  readonly address: string;
  readonly perIpLimit: number;
  readonly #idleTimeout: number;
  readonly #halfOpenTimeout: number;
  readonly #ike: Socket;
  readonly #natT: Socket;
  readonly parseStats = new IkeParseStats();
  // Mutable state.
  #stats = zeroStats();
  readonly #sas = new Map<string, SimSa>();
  readonly #byEspSpi = new Map<number, SimSa>();
  readonly #perIp = new Map<string, number>();
  readonly #clients = new Set<string>();
  readonly #seenSpis = new Set<string>();
  readonly #refusedSpis = new Set<string>();
  readonly #unknownEsp = new Set<number>();
  #timer: NodeJS.Timeout | undefined;

  private constructor(options: IkeResponderOptions, ike: Socket, natT: Socket) {
    this.name = options.name ?? options.address;
    this.address = options.address;
    this.perIpLimit = options.perIpLimit ?? Infinity;
    this.#idleTimeout = options.idleTimeout ?? 60_000;
    this.#halfOpenTimeout = options.halfOpenTimeout ?? 30_000;
    this.#ike = ike;
    this.#natT = natT;
    ike.on('message', (m, r) => this.#onIke(m, r));
    natT.on('message', (m, r) => this.#onNatT(m, r));
    const sweep = Math.max(
      50,
      Math.min(1000, Math.floor(Math.min(this.#idleTimeout, this.#halfOpenTimeout) / 4)),
    );
    this.#timer = setInterval(() => this.#expire(), sweep);
    this.#timer.unref();
  }

  /** Binds both ports and starts answering. */
  static async start(options: IkeResponderOptions): Promise<IkeResponder> {
    const type = isIP(options.address) === 6 ? 'udp6' : 'udp4';
    const ike = await bindUdp(type, options.address, options.ikePort);
    let natT: Socket;
    try {
      natT = await bindUdp(type, options.address, options.natTPort);
    } catch (err) {
      ike.close();
      throw err;
    }
    return new IkeResponder(options, ike, natT);
  }

  ports(): { ike: number; natT: number } {
    return { ike: this.#ike.address().port, natT: this.#natT.address().port };
  }

  stats(): IkeResponderStats & { activeSas: number; halfOpen: number; established: number } {
    let halfOpen = 0;
    for (const sa of this.#sas.values()) if (sa.state === 'half-open') halfOpen++;
    return {
      ...this.#stats,
      activeSas: this.#sas.size,
      halfOpen,
      established: this.#sas.size - halfOpen,
    };
  }

  /** Distinct source addresses seen on either port. */
  clientAddresses(): string[] {
    return [...this.#clients].sort();
  }

  /** Current SAs per source address (what the per-IP limit counts). */
  sasPerAddress(): Record<string, number> {
    return Object.fromEntries(this.#perIp);
  }

  /** Initiator SPIs (hex) of every IKE message that reached this server, refused ones included. */
  seenSpis(): ReadonlySet<string> {
    return this.#seenSpis;
  }

  /** Initiator SPIs (hex) whose IKE_SA_INIT was dropped by the per-IP limit. */
  refusedSpis(): ReadonlySet<string> {
    return this.#refusedSpis;
  }

  /** ESP SPIs that arrived here without a matching SA (another server's tunnel, or garbage). */
  unknownEspSpis(): ReadonlySet<number> {
    return this.#unknownEsp;
  }

  sas(): SimSaReport[] {
    return [...this.#sas.values()].map((sa) => ({
      spiI: sa.spiIHex,
      spiR: formatSpi(sa.spiR),
      remoteAddress: sa.remoteAddress,
      state: sa.state,
      espPackets: sa.espPackets,
      paths: [...sa.paths].map(([path, p]) => ({ path, kind: p.kind, packets: p.packets })),
    }));
  }

  /** Forgets every SA and counter (between demo phases). */
  reset(): void {
    this.#stats = zeroStats();
    for (const m of [this.#sas, this.#byEspSpi, this.#perIp]) m.clear();
    for (const s of [this.#clients, this.#seenSpis, this.#refusedSpis, this.#unknownEsp]) s.clear();
  }

  async close(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
    await Promise.all(
      [this.#ike, this.#natT].map((s) => new Promise<void>((resolve) => s.close(() => resolve()))),
    );
  }

  #onIke(msg: Buffer, rinfo: RemoteInfo): void {
    this.#clients.add(rinfo.address);
    const parsed = parsePayloads(msg, this.parseStats);
    if (parsed.kind !== 'ok') {
      this.#stats.invalid++;
      return;
    }
    this.#onIkeMessage(parsed, rinfo, false);
  }

  #onNatT(msg: Buffer, rinfo: RemoteInfo): void {
    this.#clients.add(rinfo.address);
    const c = classifyNatT(msg, this.parseStats);
    if (c.kind === 'keepalive') {
      this.#stats.keepalives++;
    } else if (c.kind === 'invalid') {
      this.#stats.invalid++;
    } else if (c.kind === 'esp') {
      const sa = this.#byEspSpi.get(c.spi);
      if (!sa || sa.clientEspSpi === undefined) {
        this.#stats.espUnknownSpi++;
        if (this.#unknownEsp.size < MAX_REMEMBERED) this.#unknownEsp.add(c.spi);
        return;
      }
      this.#stats.espPackets++;
      sa.espPackets++;
      this.#touch(sa, 'esp', rinfo, this.ports().natT);
      // Echo through the "tunnel": same sequence number and payload, the client's SPI.
      const reply = Buffer.from(msg);
      reply.writeUInt32BE(sa.clientEspSpi, 0);
      this.#natT.send(reply, rinfo.port, rinfo.address);
    } else {
      const parsed = parsePayloads(c.message, this.parseStats);
      if (parsed.kind !== 'ok') {
        this.#stats.invalid++;
        return;
      }
      this.#onIkeMessage(parsed, rinfo, true);
    }
  }

  #onIkeMessage(m: IkeMessageOk, rinfo: RemoteInfo, viaNatT: boolean): void {
    const h = m.header;
    if (h.isResponse) return; // a responder only answers requests
    const spiIHex = formatSpi(h.spiI);
    if (this.#seenSpis.size < MAX_REMEMBERED) this.#seenSpis.add(spiIHex);
    const socket = viaNatT ? this.#natT : this.#ike;
    const localPort = viaNatT ? this.ports().natT : this.ports().ike;
    const send = (bytes: Uint8Array) =>
      socket.send(viaNatT ? withNonEspMarker(bytes) : bytes, rinfo.port, rinfo.address);
    const existing = this.#sas.get(spiIHex);
    if (h.exchangeType === IKE_EXCHANGE.IKE_SA_INIT) {
      this.#stats.saInitReceived++;
      if (existing) {
        // RFC 7296 §2.1: a retransmitted request gets the same response.
        this.#stats.saInitRetransmits++;
        this.#touch(existing, viaNatT ? 'ike-natt' : 'ike', rinfo, localPort);
        send(existing.initResponse);
        return;
      }
      const offered = m.payloads.find((p) => p.type === IKE_PAYLOAD.SA);
      const chosen = chooseProposal((offered && decodeSaBody(offered.body)) || []);
      if (!chosen) {
        // RFC 7296 §2.7: answer NO_PROPOSAL_CHOSEN and keep nothing (what the balancer's
        // stateless ikev2 probe relies on: it must not count against the per-IP limit).
        this.#stats.noProposalChosen++;
        send(noProposalChosenResponse(h.spiI));
        return;
      }
      const current = this.#perIp.get(rinfo.address) ?? 0;
      if (current >= this.perIpLimit) {
        // Like Windows and strongSwan: no answer at all; the client retransmits, then fails.
        this.#stats.refusedByPerIpLimit++;
        if (this.#refusedSpis.size < MAX_REMEMBERED) this.#refusedSpis.add(spiIHex);
        return;
      }
      const ke = m.payloads.find((p) => p.type === IKE_PAYLOAD.KE);
      const group = (ke && decodeKeBody(ke.body)?.dhGroup) || DH_GROUP.ECP_256;
      const spiR = randomBytes(8).readBigUInt64BE(0) | 1n;
      const response = saInitResponse(
        h.spiI,
        spiR,
        chosen,
        group,
        { address: this.address, port: localPort },
        { address: rinfo.address, port: rinfo.port },
      );
      const sa: SimSa = {
        spiI: h.spiI,
        spiIHex,
        spiR,
        remoteAddress: rinfo.address,
        state: 'half-open',
        lastSeen: Date.now(),
        initResponse: response,
        authResponse: undefined,
        clientEspSpi: undefined,
        serverEspSpi: undefined,
        espPackets: 0,
        paths: new Map(),
      };
      this.#sas.set(spiIHex, sa);
      this.#perIp.set(rinfo.address, current + 1);
      this.#touch(sa, viaNatT ? 'ike-natt' : 'ike', rinfo, localPort);
      this.#stats.saInitAnswered++;
      send(response);
      return;
    }
    if (h.exchangeType === IKE_EXCHANGE.IKE_AUTH) {
      if (!existing || existing.spiR !== h.spiR) {
        this.#stats.authUnknownSa++;
        return;
      }
      this.#touch(existing, viaNatT ? 'ike-natt' : 'ike', rinfo, localPort);
      if (!existing.authResponse) {
        existing.clientEspSpi = espSpiOfAuth(m);
        let spi = randomEspSpi();
        while (this.#byEspSpi.has(spi)) spi = randomEspSpi();
        existing.serverEspSpi = spi;
        this.#byEspSpi.set(spi, existing);
        existing.state = 'established';
        existing.authResponse = Buffer.from(authMessage(h.spiI, h.spiR, true, spi));
      }
      this.#stats.authAnswered++;
      send(existing.authResponse);
      return;
    }
    // INFORMATIONAL and others on a known SA: keep it alive (DPD), nothing else is simulated.
    if (existing) this.#touch(existing, viaNatT ? 'ike-natt' : 'ike', rinfo, localPort);
  }

  #touch(sa: SimSa, kind: SimPathKind, rinfo: RemoteInfo, localPort: number): void {
    sa.lastSeen = Date.now();
    const key = `${kind} ${rinfo.address}:${rinfo.port} -> :${localPort}`;
    const p = sa.paths.get(key);
    if (p) p.packets++;
    else sa.paths.set(key, { kind, packets: 1 });
  }

  #expire(): void {
    const now = Date.now();
    for (const [key, sa] of this.#sas) {
      const limit = sa.state === 'half-open' ? this.#halfOpenTimeout : this.#idleTimeout;
      if (now - sa.lastSeen < limit) continue;
      this.#sas.delete(key);
      if (sa.serverEspSpi !== undefined) this.#byEspSpi.delete(sa.serverEspSpi);
      const n = (this.#perIp.get(sa.remoteAddress) ?? 1) - 1;
      if (n <= 0) this.#perIp.delete(sa.remoteAddress);
      else this.#perIp.set(sa.remoteAddress, n);
      this.#stats.expired++;
    }
  }
}

/** Binds a UDP socket; rejects with the bind error (EADDRINUSE...). */
export function bindUdp(type: 'udp4' | 'udp6', address: string, port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = createSocket(type);
    const onError = (err: Error) => {
      socket.close();
      reject(err);
    };
    socket.once('error', onError);
    socket.bind({ address, port, exclusive: true }, () => {
      socket.off('error', onError);
      socket.on('error', () => {}); // ICMP errors on sends to vanished clients: ignore
      resolve(socket);
    });
  });
}
