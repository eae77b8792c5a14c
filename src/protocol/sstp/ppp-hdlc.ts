/**
 * PPP in HDLC-like framing (RFC 1662 §3–§4): what pppd writes to and reads from a pty, and so
 * what `sstpc --nolaunchpppd` expects on its stdin and writes to its stdout. sstpc decodes it
 * and sends the bare PPP frame (address/control `ff 03` included, FCS removed) in an SSTP data
 * packet; frames from the server travel the other way.
 */

const FLAG = 0x7e;
const ESCAPE = 0x7d;
const TRANSPARENCY = 0x20;

/** RFC 1662 §C.2: the FCS-16 table for polynomial x^16 + x^12 + x^5 + 1 (0x8408 reflected). */
const FCS_TABLE = (() => {
  const t = new Uint16Array(256);
  for (let b = 0; b < 256; b++) {
    let v = b;
    for (let i = 0; i < 8; i++) v = v & 1 ? (v >>> 1) ^ 0x8408 : v >>> 1;
    t[b] = v;
  }
  return t;
})();

/** RFC 1662 §C.2 pppfcs16, starting from 0xffff. */
export function fcs16(bytes: Uint8Array, fcs = 0xffff): number {
  let f = fcs;
  for (const b of bytes) f = (f >>> 8) ^ (FCS_TABLE[(f ^ b) & 0xff] as number);
  return f & 0xffff;
}

/** RFC 1662 §C.2: the FCS over a frame followed by its own FCS equals this. */
const GOOD_FCS = 0xf0b8;

/** Frames a PPP frame: flag, escaped frame + FCS (least significant octet first), flag. */
export function hdlcEncode(frame: Uint8Array): Uint8Array {
  const fcs = fcs16(frame) ^ 0xffff;
  const body = [...frame, fcs & 0xff, fcs >>> 8];
  const out: number[] = [FLAG];
  for (const c of body) {
    // The default async control character map escapes every octet below 0x20 (RFC 1662 §7.1).
    if (c < TRANSPARENCY || c === FLAG || c === ESCAPE) out.push(ESCAPE, c ^ TRANSPARENCY);
    else out.push(c);
  }
  out.push(FLAG);
  return Uint8Array.from(out);
}

/** Splits an HDLC byte stream into frames (FCS checked and removed); keeps partial input. */
export class HdlcDecoder {
  #current: number[] = [];
  #escaped = false;
  /** Frames whose FCS did not match (dropped). */
  badFrames = 0;

  push(chunk: Uint8Array): Uint8Array[] {
    const frames: Uint8Array[] = [];
    for (const b of chunk) {
      if (b === FLAG) {
        if (this.#current.length >= 4) {
          const all = Uint8Array.from(this.#current);
          if (fcs16(all) === GOOD_FCS) frames.push(all.subarray(0, all.length - 2));
          else this.badFrames++;
        }
        this.#current = [];
        this.#escaped = false;
      } else if (b === ESCAPE) {
        this.#escaped = true;
      } else {
        this.#current.push(this.#escaped ? b ^ TRANSPARENCY : b);
        this.#escaped = false;
        // Bound the buffer: PPP's default MRU is 1500 (RFC 1661 §6.1), allow generous headroom.
        if (this.#current.length > 65_536) this.#current = [];
      }
    }
    return frames;
  }
}

/** PPP protocol numbers (RFC 1661 §2). */
export const PPP_LCP = 0xc021;

/**
 * A PPP LCP Configure-Request (RFC 1661 §5.1) with address/control `ff 03`: MRU 1500, a magic
 * number; what pppd sends first when the link comes up.
 */
export function lcpConfigureRequest(identifier: number, magic: number): Uint8Array {
  const options = Buffer.from([0x01, 0x04, 0x05, 0xdc, 0x05, 0x06, 0, 0, 0, 0]);
  options.writeUInt32BE(magic >>> 0, 6);
  const lcp = Buffer.alloc(4);
  lcp[0] = 1; // Configure-Request
  lcp[1] = identifier & 0xff;
  lcp.writeUInt16BE(4 + options.length, 2);
  return Uint8Array.from(Buffer.concat([Buffer.from([0xff, 0x03, 0xc0, 0x21]), lcp, options]));
}

/** The LCP code and identifier of a PPP frame (with or without `ff 03`), when it is LCP. */
export function lcpInfo(frame: Uint8Array): { code: number; identifier: number } | undefined {
  const off = frame[0] === 0xff && frame[1] === 0x03 ? 2 : 0;
  if (frame.length < off + 6) return undefined;
  const proto = ((frame[off] as number) << 8) | (frame[off + 1] as number);
  if (proto !== PPP_LCP) return undefined;
  return { code: frame[off + 2] as number, identifier: frame[off + 3] as number };
}
