/**
 * Bad input under load (issue 10, part 3): malformed and random UDP to the IKEv2 ports and
 * garbage TCP to the SSTP port, at a bounded rate for a bounded time, from a namespace of its
 * own. Every datagram and every connection is classified, before it is sent, by what vpnlb must
 * do with it, so that the run can compare what was sent with vpnlb's drop counters reason by
 * reason instead of trusting either side.
 *
 * The UDP verdicts mirror the `dnat_in` chain of src/dataplane/kernel/render-ruleset.ts
 * (`ike-spi` affinity, at least one server up, so every Maglev slot has a server):
 * - IKE port: the initiator SPI is UDP payload octets 0–7 (RFC 7296 §3.1); nft's `@th,64,64`
 *   cannot be loaded from a shorter payload, the rule does not match, and the packet ends in
 *   `ike_unrouted`. Anything longer is hashed and forwarded (the server discards it).
 * - NAT-T port: IKE behind the 4-octet zero non-ESP marker (RFC 3948 §2.2) with a full SPI
 *   (≥ 12 octets) is hashed and forwarded; everything else (ESP with no conntrack entry, a
 *   1-octet NAT keepalive, a short marker) has no pin and ends in `natt_unrouted`.
 * The rules that place by source address (peer and learn sets, which the flooder's own address
 * joins once its forwarded datagrams reach a server) require the same full SPI, so they change
 * none of these verdicts.
 * A datagram dropped in the nat prerouting chain leaves no conntrack entry, so a dropped flow's
 * next datagram meets the chain again; a forwarded flow's next datagram follows its entry
 * whatever it contains. Hence one socket (source port) per verdict: a forwarded flow never
 * carries a datagram meant to be dropped.
 *
 * The TCP verdicts are the SSTP proxy's own state machine (`TlsHelloReader`, fed the same
 * octets): `tls-<code>` for what it rejects, `tls-truncated` when the stream ends first,
 * `client-closed` for a connection that sends nothing. A random buffer that would parse as a
 * complete ClientHello is not sent (it would be forwarded to a server).
 */
import { TlsHelloReader } from '../../../src/protocol/tls/hello-reader.js';

/** What the kernel ruleset does with one datagram to the VIP. */
export type KernelVerdict = 'forwarded' | 'ike_unrouted' | 'natt_unrouted';

/** RFC 7296 §3.1: SPIi is the first 8 octets of the IKE header. */
const IKE_SPI_OCTETS = 8;
/** RFC 3948 §2.2: the non-ESP marker is 4 zero octets before the IKE header. */
const NON_ESP_MARKER_OCTETS = 4;

/** The kernel's verdict for a datagram to the IKE port (`natT` false) or the NAT-T port. */
export function kernelVerdict(natT: boolean, payload: Uint8Array): KernelVerdict {
  if (!natT) return payload.length >= IKE_SPI_OCTETS ? 'forwarded' : 'ike_unrouted';
  const isIkeMarker =
    payload.length >= NON_ESP_MARKER_OCTETS &&
    payload[0] === 0 &&
    payload[1] === 0 &&
    payload[2] === 0 &&
    payload[3] === 0;
  return isIkeMarker && payload.length >= NON_ESP_MARKER_OCTETS + IKE_SPI_OCTETS
    ? 'forwarded'
    : 'natt_unrouted';
}

/** The SSTP proxy's rejection reason for a client that sends `bytes` and closes; undefined: it would be forwarded. */
export function sstpVerdict(bytes: Uint8Array): string | undefined {
  if (bytes.length === 0) return 'client-closed';
  const reader = new TlsHelloReader('client-hello');
  const r = reader.push(bytes);
  if (r.kind === 'ok') return undefined;
  if (r.kind === 'invalid') return `tls-${r.code}`;
  const end = reader.end();
  return end.kind === 'invalid' ? `tls-${end.code}` : undefined;
}

/** A deterministic source of random octets (the scenario's seeded PRNG). */
export type Random = () => number;

function bytes(rnd: Random, n: number): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = Math.floor(rnd() * 256);
  return b;
}

function int(rnd: Random, min: number, max: number): number {
  return min + Math.floor(rnd() * (max - min + 1));
}

/** An IKE header (RFC 7296 §3.1) with random SPIs, exchange and lengths, then garbage. */
function ikeLike(rnd: Random, extra: number): Buffer {
  const h = bytes(rnd, 28 + extra);
  h[17] = 0x20; // version 2.0
  h[18] = [34, 35, 36, 37][int(rnd, 0, 3)]!;
  return h;
}

/** One random datagram for the IKE port or the NAT-T port: short, random, IKE-like, ESP-like, keepalive. */
export function randomDatagram(rnd: Random): { natT: boolean; payload: Buffer } {
  const natT = rnd() < 0.5;
  const pick = rnd();
  if (!natT) {
    if (pick < 0.35) return { natT, payload: bytes(rnd, int(rnd, 0, IKE_SPI_OCTETS - 1)) };
    if (pick < 0.7) return { natT, payload: bytes(rnd, int(rnd, IKE_SPI_OCTETS, 300)) };
    return { natT, payload: ikeLike(rnd, int(rnd, 0, 200)) };
  }
  if (pick < 0.3)
    return {
      natT,
      payload: Buffer.concat([
        Buffer.alloc(NON_ESP_MARKER_OCTETS),
        pick < 0.1 ? bytes(rnd, int(rnd, 0, 7)) : ikeLike(rnd, int(rnd, 0, 200)),
      ]),
    };
  if (pick < 0.75) {
    // ESP-like: a non-zero SPI (RFC 4303 §2.1), a sequence number, random "ciphertext".
    const p = bytes(rnd, int(rnd, 8, 300));
    if (p.readUInt32BE(0) === 0) p[0] = 1;
    return { natT, payload: p };
  }
  if (pick < 0.85) return { natT, payload: Buffer.from([0xff]) }; // RFC 3948 §2.3 NAT-keepalive
  return { natT, payload: bytes(rnd, int(rnd, 0, 3)) };
}

/** Garbage for the SSTP port: nothing, random octets, HTTP, or something that starts like TLS. */
export function randomSstpGarbage(rnd: Random): Buffer {
  const pick = rnd();
  if (pick < 0.1) return Buffer.alloc(0);
  if (pick < 0.4) return bytes(rnd, int(rnd, 1, 600));
  if (pick < 0.55)
    return Buffer.from(
      'SSTP_DUPLEX_POST /sra_{BA195980-CD49-458b-9E23-C84EE0ADCD75}/ HTTP/1.1\r\nHost: vpn\r\n\r\n',
    );
  // A TLS handshake record header (RFC 8446 §5.1) with a random length and random contents.
  const body = bytes(rnd, int(rnd, 0, 600));
  const head = Buffer.from([0x16, 0x03, int(rnd, 0, 4), 0, 0]);
  head.writeUInt16BE(rnd() < 0.5 ? body.length : int(rnd, 0, 20_000), 3);
  if (body.length > 0 && rnd() < 0.5) body[0] = 1; // ClientHello type, so that deeper checks run
  return Buffer.concat([head, body]);
}

/** What the flooder sent, by verdict, for the run's accounting. */
export interface FloodReport {
  readonly seconds: number;
  /** Datagrams handed to the kernel, by expected verdict and port. */
  readonly udp: Readonly<Record<KernelVerdict, { readonly ike: number; readonly natT: number }>>;
  readonly udpSendErrors: number;
  /** Connections that carried their garbage and closed, by the rejection reason expected. */
  readonly tcp: Readonly<Record<string, number>>;
  readonly tcpConnectErrors: number;
}
