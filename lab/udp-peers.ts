/**
 * Plain-UDP peers for the kernel data plane's namespace tests: servers that record and answer
 * every datagram on UDP 500 and 4500, clients that send one datagram (or a batch) from a chosen
 * address and port, and the IKE / ESP datagrams they carry. No IKE implementation: only the
 * bytes the balancer looks at (RFC 7296 §3.1 header, RFC 3948 non-ESP marker, ESP SPI).
 */
import { randomBytes } from 'node:crypto';
import type { Readable } from 'node:stream';
import type { Namespace } from './netns.js';

/** What a server saw: which server, on which local port, from where, and the bytes (hex). */
export interface SeenDatagram {
  readonly srv: string;
  readonly lport: number;
  readonly raddr: string;
  readonly rport: number;
  readonly hex: string;
}

/**
 * A server (`node -e SCRIPT NAME`): one dual-stack socket per port (500, 4500); prints one JSON
 * line per datagram (a `SeenDatagram`) and answers `ack:NAME` to its sender.
 */
export const UDP_SERVER_SCRIPT = `
const dgram = require('node:dgram');
const name = process.argv[1];
for (const port of [500, 4500]) {
  const s = dgram.createSocket({ type: 'udp6', ipv6Only: false });
  s.on('message', (msg, r) => {
    process.stdout.write(JSON.stringify({ srv: name, lport: port, raddr: r.address.replace(/^::ffff:/, ''), rport: r.port, hex: msg.toString('hex') }) + '\\n');
    s.send(Buffer.from('ack:' + name), r.port, r.address);
  });
  s.bind(port, '::');
}
`;

/** Calls `onLine` with each JSON line a stream carries (a line may arrive in several chunks). */
export function readJsonLines<T>(
  stream: Readable | null | undefined,
  onLine: (value: T) => void,
): void {
  let buf = '';
  stream?.on('data', (d: Buffer) => {
    buf += d.toString();
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) {
      onLine(JSON.parse(buf.slice(0, nl)) as T);
      buf = buf.slice(nl + 1);
    }
  });
}

/**
 * Starts a server in `ns` (`script`, default `UDP_SERVER_SCRIPT`, given `name` as its argument)
 * and appends what it reports to `into`. The process ends with the namespace's topology.
 */
export function startUdpServer<T = SeenDatagram>(
  ns: Namespace,
  name: string,
  into: T[],
  script = UDP_SERVER_SCRIPT,
): void {
  const child = ns.spawn(process.execPath, ['-e', script, name]);
  readJsonLines<T>(child.stdout, (v) => into.push(v));
}

/**
 * Datagrams sent one after the other, each from its own socket bound to bind:port (0 =
 * ephemeral); prints [{ port, reply }] (reply null when nothing came back within \`wait\` ms).
 */
const BATCH_SCRIPT = `
const dgram = require('node:dgram');
const items = JSON.parse(process.argv[1]);
(async () => {
  const out = [];
  for (const a of items) {
    out.push(await new Promise((resolve) => {
      const s = dgram.createSocket(a.bind.includes(':') ? 'udp6' : 'udp4');
      let done = false;
      const finish = (reply) => { if (done) return; done = true; const port = s.address().port; s.close(); resolve({ port, reply }); };
      s.on('message', (m) => finish(m.toString()));
      s.on('error', (e) => { if (!done) { done = true; resolve({ port: -1, reply: 'error:' + e.message }); } });
      s.bind(a.port, a.bind, () => s.send(Buffer.from(a.hex, 'hex'), a.dport, a.to, () => setTimeout(() => finish(null), a.wait)));
    }));
  }
  console.log(JSON.stringify(out));
})();
`;

export interface Datagram {
  /** Local address and port (0: ephemeral). */
  readonly bind: string;
  readonly port: number;
  readonly to: string;
  readonly dport: number;
  readonly payload: Buffer;
  /** How long to wait for an answer, ms (default 400). */
  readonly wait?: number;
}

export interface SendResult {
  /** The local port used (-1 when the socket failed). */
  readonly port: number;
  /** The answer (`ack:SERVER`), or null. */
  readonly reply: string | null;
}

/** Sends datagrams from inside `ns`, one after the other, each from its own socket. */
export async function sendBatch(ns: Namespace, items: readonly Datagram[]): Promise<SendResult[]> {
  const arg = items.map((d) => ({
    bind: d.bind,
    port: d.port,
    to: d.to,
    dport: d.dport,
    hex: d.payload.toString('hex'),
    wait: d.wait ?? 400,
  }));
  const out = await ns.exec(process.execPath, ['-e', BATCH_SCRIPT, JSON.stringify(arg)]);
  return JSON.parse(out.trim()) as SendResult[];
}

/** Sends one datagram from inside `ns`. */
export async function sendDatagram(ns: Namespace, d: Datagram): Promise<SendResult> {
  const [r] = await sendBatch(ns, [d]);
  if (!r) throw new Error('no result from the client script');
  return r;
}

export const IKE_SA_INIT = 34;
export const IKE_AUTH = 35;
export const INFORMATIONAL = 37;

/**
 * RFC 7296 §3.1 IKE header (28 bytes, no payloads): SPIi, SPIr, next payload, version 2.0,
 * exchange type, flags (I = 0x08), message id, length. Default: an IKE_SA_INIT request.
 */
export function ikeMessage(
  spi: Buffer,
  exchange = IKE_SA_INIT,
  opts: { spiR?: Buffer; messageId?: number } = {},
): Buffer {
  const h = Buffer.alloc(28);
  spi.copy(h, 0);
  (opts.spiR ?? Buffer.alloc(8)).copy(h, 8);
  h[16] = exchange === IKE_SA_INIT ? 33 : 46; // SA for IKE_SA_INIT, SK (encrypted) otherwise
  h[17] = 0x20;
  h[18] = exchange;
  h[19] = 0x08;
  h.writeUInt32BE(opts.messageId ?? 0, 20);
  h.writeUInt32BE(28, 24);
  return h;
}

/** RFC 3948 §2.2: IKE on 4500 behind the 4-byte non-ESP marker. */
export function withMarker(ikeMsg: Buffer): Buffer {
  return Buffer.concat([Buffer.alloc(4), ikeMsg]);
}

/** RFC 3948 §2.1 / RFC 4303: ESP-in-UDP (non-zero SPI, sequence number, payload). */
export function espDatagram(): Buffer {
  return Buffer.concat([Buffer.from([0xc0, 0xff, 0xee, 0x01, 0, 0, 0, 1]), randomBytes(24)]);
}
