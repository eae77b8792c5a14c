/**
 * A simulated RRAS SSTP endpoint (no root): what a Windows Server RRAS answers on 443 (TLS)
 * and, with TLS offloaded to the balancer, on 80 (plain HTTP), as far as a load balancer and a
 * client can observe it up to PPP link negotiation ([MS-SSTP] §3.3):
 *
 * - `HEAD /sra_{BA195980-CD49-458b-9E23-C84EE0ADCD75}/` → `401` (the SSTP health monitor's probe);
 * - `SSTP_DUPLEX_POST /sra_{...}/` → `HTTP/1.1 200` with `Content-Length: 18446744073709551615`,
 *   then SSTP packets: Call Connect Request → Call Connect Ack with a Crypto Binding Request
 *   (hash bitmask + 32-octet nonce); Echo Request → Echo Response; Call Disconnect → Ack;
 * - data packets (PPP frames) are recorded per connection; an LCP Configure-Request is answered
 *   with a Configure-Ack so that the client sees PPP negotiation progress;
 * - TLS 1.2 session resumption by session id (tickets off, an explicit session cache) so that
 *   a test can tell which server issued a session and whether a client resumed it.
 *
 * `report()` says what it saw: connections, peer addresses, requests, Call Connect Requests,
 * PPP frames, session ids issued and resumed.
 */
import { EventEmitter } from 'node:events';
import { randomBytes, constants as cryptoConstants } from 'node:crypto';
import net from 'node:net';
import tls from 'node:tls';
import { lcpInfo } from '../../protocol/sstp/ppp-hdlc.js';
import {
  CERT_HASH_PROTOCOL_SHA1,
  CERT_HASH_PROTOCOL_SHA256,
  SSTP_MSG,
  SSTP_MSG_NAMES,
  SSTP_URI,
} from '../../protocol/sstp/sstp-constants.js';
import {
  HttpHeadReader,
  buildDuplexPostResponse,
  buildHttpResponse,
  isSstpDuplexPost,
} from '../../protocol/sstp/sstp-http.js';
import {
  SstpPacketReader,
  cryptoBindingRequestAttribute,
  encodeControlPacket,
  encodeDataPacket,
  readCryptoBinding,
} from '../../protocol/sstp/sstp-packet.js';

export interface SstpEndpointOptions {
  /** Name used in reports (the backend name in tests). */
  readonly name: string;
  /** Address to listen on (default 127.0.0.1). */
  readonly host?: string;
  /** TLS listener port (0 = ephemeral, default); `false` for none. */
  readonly tlsPort?: number | false;
  /** Plain-HTTP listener port for offload (0 = ephemeral); `false` (default) for none. */
  readonly plainPort?: number | false;
  /** PEM certificate and key for the TLS listener. */
  readonly cert?: string | Buffer;
  readonly key?: string | Buffer;
  /** Highest TLS version offered (default TLSv1.3). */
  readonly maxTlsVersion?: 'TLSv1.2' | 'TLSv1.3';
  /** Accept connections and never answer (a hung server). */
  readonly silent?: boolean;
}

/** What the endpoint saw on one connection. */
export interface SstpConnectionRecord {
  readonly id: number;
  readonly transport: 'tls' | 'plain';
  readonly peerAddress: string;
  readonly peerPort: number;
  /** TLS: whether the client resumed a session this endpoint issued. */
  resumed: boolean;
  /** Request lines (`METHOD URI`), in order. */
  readonly requests: string[];
  /** Headers of the SSTP_DUPLEX_POST, lower-cased names. */
  sstpHeaders: Record<string, string> | undefined;
  callConnectRequests: number;
  /** Control messages received, by name. */
  readonly controlMessages: string[];
  /** PPP frames received in data packets, hex. */
  readonly pppFrames: string[];
  /** The Crypto Binding's certificate hash from Call Connected, hex. */
  cryptoBindingCertHash: string | undefined;
  /** Why the SSTP stream was refused, if it was. */
  error: string | undefined;
  closed: boolean;
}

export interface SstpEndpointReport {
  readonly name: string;
  readonly connections: readonly SstpConnectionRecord[];
  /** TLS 1.2 session ids issued (hex). */
  readonly issuedSessionIds: readonly string[];
  /** Session ids clients resumed (hex). */
  readonly resumedSessionIds: readonly string[];
}

export class SimSstpEndpoint extends EventEmitter {
  readonly name: string;
  readonly host: string;
  readonly #options: SstpEndpointOptions;
  readonly #connections: SstpConnectionRecord[] = [];
  readonly #sockets = new Set<net.Socket>();
  readonly #sessions = new Map<string, Buffer>();
  readonly #issued: string[] = [];
  readonly #resumed: string[] = [];
  #tlsServer: tls.Server | undefined;
  #plainServer: net.Server | undefined;
  #nextId = 1;

  private constructor(options: SstpEndpointOptions) {
    super();
    this.name = options.name;
    this.host = options.host ?? '127.0.0.1';
    this.#options = options;
  }

  /** Starts the listeners. */
  static async start(options: SstpEndpointOptions): Promise<SimSstpEndpoint> {
    const ep = new SimSstpEndpoint(options);
    await ep.#listen();
    return ep;
  }

  /** Bound TLS port (0 when there is no TLS listener). */
  get tlsPort(): number {
    return (this.#tlsServer?.address() as net.AddressInfo | null)?.port ?? 0;
  }

  /** Bound plain-HTTP port (0 when there is none). */
  get plainPort(): number {
    return (this.#plainServer?.address() as net.AddressInfo | null)?.port ?? 0;
  }

  report(): SstpEndpointReport {
    return {
      name: this.name,
      connections: this.#connections,
      issuedSessionIds: [...this.#issued],
      resumedSessionIds: [...this.#resumed],
    };
  }

  /** Open connections (not yet closed). */
  openConnections(): number {
    return this.#connections.filter((c) => !c.closed).length;
  }

  /** Resolves when `predicate(report)` holds (checked on every event), rejects after `timeoutMs`. */
  async waitFor(
    predicate: (r: SstpEndpointReport) => boolean,
    timeoutMs = 5_000,
    what = 'condition',
  ): Promise<SstpEndpointReport> {
    if (predicate(this.report())) return this.report();
    return new Promise((resolve, reject) => {
      const onChange = () => {
        if (!predicate(this.report())) return;
        clearTimeout(timer);
        this.off('change', onChange);
        resolve(this.report());
      };
      const timer = setTimeout(() => {
        this.off('change', onChange);
        reject(
          new Error(
            `${this.name}: timed out after ${timeoutMs} ms waiting for ${what}; saw ${JSON.stringify(this.report().connections.map((c) => ({ id: c.id, reqs: c.requests, ccr: c.callConnectRequests, ppp: c.pppFrames.length, closed: c.closed })))}`,
          ),
        );
      }, timeoutMs);
      this.on('change', onChange);
    });
  }

  /** Closes listeners and every open connection. */
  async close(): Promise<void> {
    for (const s of this.#sockets) s.destroy();
    await Promise.all(
      [this.#tlsServer, this.#plainServer].map((s) =>
        s ? new Promise<void>((r) => s.close(() => r())) : Promise.resolve(),
      ),
    );
  }

  async #listen(): Promise<void> {
    const o = this.#options;
    if (o.tlsPort !== false) {
      if (!o.cert || !o.key) throw new Error(`${o.name}: a TLS listener needs cert and key`);
      const server = tls.createServer({
        cert: o.cert,
        key: o.key,
        maxVersion: o.maxTlsVersion ?? 'TLSv1.3',
        // TLS 1.2 resumption by session id only (RFC 5246 §7.4.1.2): tickets would make the
        // client resume with state it carries itself, which a balancer cannot attribute.
        secureOptions: cryptoConstants.SSL_OP_NO_TICKET,
        sessionIdContext: 'vpnlb-sim-sstp',
      });
      server.on('newSession', (id: Buffer, data: Buffer, cb: () => void) => {
        this.#sessions.set(id.toString('hex'), data);
        this.#issued.push(id.toString('hex'));
        cb();
      });
      server.on(
        'resumeSession',
        (id: Buffer, cb: (err: Error | null, data: Buffer | null) => void) => {
          const data = this.#sessions.get(id.toString('hex')) ?? null;
          if (data) this.#resumed.push(id.toString('hex'));
          cb(null, data);
        },
      );
      server.on('secureConnection', (s) => this.#onConnection(s, 'tls', s.isSessionReused()));
      server.on('tlsClientError', () => {}); // a client that fails its handshake: nothing to record
      if (o.silent) {
        // A hung server: the TCP accept happens, the TLS handshake never does.
        server.removeAllListeners('connection');
        server.on('connection', (s: net.Socket) => this.#hold(s, 'tls'));
      }
      await listen(server, o.tlsPort ?? 0, this.host);
      this.#tlsServer = server;
    }
    if (o.plainPort !== undefined && o.plainPort !== false) {
      const server = net.createServer((s) =>
        o.silent ? this.#hold(s, 'plain') : this.#onConnection(s, 'plain', false),
      );
      await listen(server, o.plainPort, this.host);
      this.#plainServer = server;
    }
  }

  #record(s: net.Socket, transport: 'tls' | 'plain', resumed: boolean): SstpConnectionRecord {
    const rec: SstpConnectionRecord = {
      id: this.#nextId++,
      transport,
      peerAddress: s.remoteAddress ?? '',
      peerPort: s.remotePort ?? 0,
      resumed,
      requests: [],
      sstpHeaders: undefined,
      callConnectRequests: 0,
      controlMessages: [],
      pppFrames: [],
      cryptoBindingCertHash: undefined,
      error: undefined,
      closed: false,
    };
    this.#connections.push(rec);
    this.#sockets.add(s);
    s.on('error', () => {});
    s.on('close', () => {
      rec.closed = true;
      this.#sockets.delete(s);
      this.emit('change');
    });
    this.emit('change');
    return rec;
  }

  #hold(s: net.Socket, transport: 'tls' | 'plain'): void {
    this.#record(s, transport, false);
    s.on('data', () => {});
  }

  #onConnection(s: net.Socket, transport: 'tls' | 'plain', resumed: boolean): void {
    const rec = this.#record(s, transport, resumed);
    const head = new HttpHeadReader();
    let sstp: SstpPacketReader | undefined;
    const onSstp = (bytes: Uint8Array) => {
      const r = (sstp as SstpPacketReader).push(bytes);
      if (r.kind === 'invalid') {
        rec.error = `${r.code}: ${r.detail}`;
        s.destroy();
        return;
      }
      for (const p of r.packets) {
        if (p.kind === 'data') {
          rec.pppFrames.push(Buffer.from(p.payload).toString('hex'));
          const lcp = lcpInfo(p.payload);
          if (lcp?.code === 1) {
            // RFC 1661 §5.2: Configure-Ack echoes the identifier and every option.
            const ack = Buffer.from(p.payload);
            const off = ack[0] === 0xff ? 4 : 2;
            ack[off] = 2;
            s.write(encodeDataPacket(ack));
          }
          continue;
        }
        rec.controlMessages.push(SSTP_MSG_NAMES[p.messageType] ?? `type-${p.messageType}`);
        switch (p.messageType) {
          case SSTP_MSG.CALL_CONNECT_REQUEST:
            rec.callConnectRequests++;
            s.write(
              encodeControlPacket(SSTP_MSG.CALL_CONNECT_ACK, [
                cryptoBindingRequestAttribute(
                  CERT_HASH_PROTOCOL_SHA1 | CERT_HASH_PROTOCOL_SHA256,
                  randomBytes(32),
                ),
              ]),
            );
            break;
          case SSTP_MSG.ECHO_REQUEST:
            s.write(encodeControlPacket(SSTP_MSG.ECHO_RESPONSE));
            break;
          case SSTP_MSG.CALL_CONNECTED: {
            const attr = p.attributes[0];
            const cb = attr ? readCryptoBinding(attr) : undefined;
            rec.cryptoBindingCertHash = cb ? Buffer.from(cb.certHash).toString('hex') : undefined;
            break;
          }
          case SSTP_MSG.CALL_DISCONNECT:
            s.end(encodeControlPacket(SSTP_MSG.CALL_DISCONNECT_ACK));
            break;
          case SSTP_MSG.CALL_ABORT:
            s.end();
            break;
          default:
            break;
        }
      }
      this.emit('change');
    };
    s.on('data', (chunk: Buffer) => {
      if (sstp) return onSstp(chunk);
      const r = head.push(chunk);
      if (r.kind === 'need-more') return;
      if (r.kind === 'invalid') {
        rec.error = `HTTP ${r.code}: ${r.detail}`;
        s.end(
          buildHttpResponse(400, 'Bad Request', { 'Content-Length': '0', Connection: 'close' }),
        );
        this.emit('change');
        return;
      }
      const [method, uri] = r.head.startLine;
      rec.requests.push(`${method} ${uri}`);
      if (isSstpDuplexPost(r.head)) {
        rec.sstpHeaders = Object.fromEntries(r.head.headers);
        s.write(buildDuplexPostResponse());
        sstp = new SstpPacketReader();
        if (r.rest.length > 0) onSstp(r.rest);
      } else if (uri.toLowerCase() === SSTP_URI.toLowerCase()) {
        // RRAS answers an anonymous request on the SSTP URI with 401 (the monitor expects it).
        s.end(
          buildHttpResponse(401, 'Unauthorized', {
            'Content-Length': '0',
            Server: 'Microsoft-HTTPAPI/2.0',
            Connection: 'close',
          }),
        );
      } else {
        s.end(buildHttpResponse(404, 'Not Found', { 'Content-Length': '0', Connection: 'close' }));
      }
      this.emit('change');
    });
  }
}

function listen(server: net.Server, port: number, host: string): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
}
