/**
 * A simulated SSTP client (Node tls, no root): opens TLS to a balancer or server, posts
 * `SSTP_DUPLEX_POST`, sends a Call Connect Request, waits for the Ack, and sends a PPP LCP
 * Configure-Request in a data packet — the same steps sstpc takes up to PPP link negotiation.
 * Used by unit tests and load loops where running many real sstpc processes would be heavy;
 * the real client is exercised by test/integration/sstp-sstpc.test.ts.
 */
import { randomUUID } from 'node:crypto';
import net from 'node:net';
import tls from 'node:tls';
import { lcpConfigureRequest, lcpInfo } from '../../protocol/sstp/ppp-hdlc.js';
import { SSTP_MSG } from '../../protocol/sstp/sstp-constants.js';
import { HttpHeadReader, buildDuplexPostRequest } from '../../protocol/sstp/sstp-http.js';
import {
  SstpPacketReader,
  encapsulatedPppAttribute,
  encodeControlPacket,
  encodeDataPacket,
  type SstpPacket,
} from '../../protocol/sstp/sstp-packet.js';

export interface SimClientOptions {
  readonly host: string;
  readonly port: number;
  /** Trusted CA (the test certificate); without it the server certificate is not verified. */
  readonly ca?: Buffer;
  readonly servername?: string;
  /** A TLS session to resume (from an earlier client's `session`). */
  readonly session?: Buffer;
  readonly maxVersion?: 'TLSv1.2' | 'TLSv1.3';
  /** Speak plain HTTP (to an offload backend directly). */
  readonly plain?: boolean;
  /** Give up after this long (default 5 s). */
  readonly timeoutMs?: number;
  /** Local address to connect from (a distinct loopback address per simulated client). */
  readonly localAddress?: string;
}

export class SimSstpClient {
  readonly socket: net.Socket;
  readonly #packets: SstpPacket[] = [];
  readonly #waiters = new Set<() => void>();
  #session: Buffer | undefined;
  #closed = false;
  readonly #timeoutMs: number;

  private constructor(socket: net.Socket, timeoutMs: number) {
    this.socket = socket;
    this.#timeoutMs = timeoutMs;
  }

  /** Connects and runs the SSTP call setup up to the PPP LCP exchange. Rejects on failure. */
  static async connect(o: SimClientOptions): Promise<SimSstpClient> {
    const timeoutMs = o.timeoutMs ?? 5_000;
    const socket: net.Socket = o.plain
      ? net.connect({
          host: o.host,
          port: o.port,
          ...(o.localAddress ? { localAddress: o.localAddress } : {}),
        })
      : tls.connect({
          host: o.host,
          port: o.port,
          ...(o.localAddress ? { localAddress: o.localAddress } : {}),
          ...(o.ca ? { ca: o.ca } : { rejectUnauthorized: false }),
          servername: o.servername ?? 'vpn.example.test',
          ...(o.session ? { session: o.session } : {}),
          ...(o.maxVersion ? { maxVersion: o.maxVersion } : {}),
        });
    const c = new SimSstpClient(socket, timeoutMs);
    socket.on('error', () => {});
    socket.on('close', () => {
      c.#closed = true;
      c.#wake();
    });
    if (socket instanceof tls.TLSSocket) socket.on('session', (s: Buffer) => (c.#session = s));
    await c.#until(
      () => c.#secure,
      o.plain ? 'TCP connection' : 'TLS handshake',
      o.plain ? 'connect' : 'secureConnect',
    );
    socket.write(
      buildDuplexPostRequest({
        host: o.servername ?? o.host,
        correlationId: `{${randomUUID().toUpperCase()}}`,
      }),
    );
    const head = new HttpHeadReader();
    const sstp = new SstpPacketReader();
    let status = '';
    socket.on('data', (chunk: Buffer) => {
      let bytes: Uint8Array = chunk;
      if (!status) {
        const r = head.push(chunk);
        if (r.kind === 'need-more') return;
        if (r.kind === 'invalid') return void socket.destroy();
        status = r.head.startLine[1];
        bytes = r.rest;
      }
      const p = sstp.push(bytes);
      if (p.kind === 'invalid') return void socket.destroy();
      c.#packets.push(...p.packets);
      c.#wake();
    });
    await c.#until(() => status !== '', 'HTTP response');
    if (status !== '200') throw new Error(`SSTP_DUPLEX_POST answered ${status}`);
    socket.write(encodeControlPacket(SSTP_MSG.CALL_CONNECT_REQUEST, [encapsulatedPppAttribute()]));
    await c.#until(
      () => c.#take((p) => p.kind === 'control' && p.messageType === SSTP_MSG.CALL_CONNECT_ACK),
      'Call Connect Ack',
    );
    socket.write(encodeDataPacket(lcpConfigureRequest(1, 0x5eed0001)));
    await c.#until(
      () => c.#take((p) => p.kind === 'data' && lcpInfo(p.payload)?.code === 2),
      'LCP Configure-Ack',
    );
    return c;
  }

  #secure = false;

  /** The TLS session to resume later (TLS 1.2: available once the handshake is done). */
  get session(): Buffer | undefined {
    return (
      this.#session ?? (this.socket instanceof tls.TLSSocket ? this.socket.getSession() : undefined)
    );
  }

  get isSessionReused(): boolean {
    return this.socket instanceof tls.TLSSocket && this.socket.isSessionReused();
  }

  get isClosed(): boolean {
    return this.#closed;
  }

  /** Echo Request → Echo Response: proves the tunnel still carries traffic. */
  async echo(): Promise<void> {
    this.socket.write(encodeControlPacket(SSTP_MSG.ECHO_REQUEST));
    await this.#until(
      () => this.#take((p) => p.kind === 'control' && p.messageType === SSTP_MSG.ECHO_RESPONSE),
      'Echo Response',
    );
  }

  /** Resolves when the connection has closed (by either side). */
  async closed(timeoutMs = this.#timeoutMs): Promise<void> {
    await this.#until(() => this.#closed, 'close', undefined, timeoutMs);
  }

  /** Sends Call Disconnect and closes. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.socket.end(encodeControlPacket(SSTP_MSG.CALL_DISCONNECT));
    await this.closed().catch(() => this.socket.destroy());
  }

  #take(pred: (p: SstpPacket) => boolean): boolean {
    const i = this.#packets.findIndex(pred);
    if (i < 0) return false;
    this.#packets.splice(i, 1);
    return true;
  }

  #wake(): void {
    for (const w of [...this.#waiters]) w();
  }

  #until(
    cond: () => boolean,
    what: string,
    event?: string,
    timeoutMs = this.#timeoutMs,
  ): Promise<void> {
    if (event)
      this.socket.once(event, () => {
        this.#secure = true;
        this.#wake();
      });
    return new Promise((resolve, reject) => {
      const check = () => {
        if (cond()) {
          done();
          resolve();
        } else if (this.#closed && what !== 'close') {
          done();
          reject(new Error(`connection closed while waiting for ${what}`));
        }
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`timed out waiting for ${what}`));
      }, timeoutMs);
      const done = () => {
        clearTimeout(timer);
        this.#waiters.delete(check);
      };
      this.#waiters.add(check);
      check();
    });
  }
}
