/**
 * Big-endian ("network byte order", RFC 7296 §3) reads and writes on plain `Uint8Array`s.
 * Reads assume the caller checked the bounds; they allocate nothing except `readU64`'s bigint.
 */

/** Unsigned 16-bit value at `offset`. */
export function readU16(bytes: Uint8Array, offset: number): number {
  return (bytes[offset]! << 8) | bytes[offset + 1]!;
}

/** Unsigned 32-bit value at `offset`. */
export function readU32(bytes: Uint8Array, offset: number): number {
  return (
    bytes[offset]! * 0x1000000 +
    ((bytes[offset + 1]! << 16) | (bytes[offset + 2]! << 8) | bytes[offset + 3]!)
  );
}

/** Unsigned 64-bit value at `offset`. */
export function readU64(bytes: Uint8Array, offset: number): bigint {
  return (BigInt(readU32(bytes, offset)) << 32n) | BigInt(readU32(bytes, offset + 4));
}

/** Whether `count` octets from `offset` are all zero. */
export function isZeroRange(bytes: Uint8Array, offset: number, count: number): boolean {
  for (let i = offset; i < offset + count; i++) if (bytes[i] !== 0) return false;
  return true;
}

/** Writes an unsigned 16-bit value at `offset`. */
export function writeU16(bytes: Uint8Array, offset: number, value: number): void {
  bytes[offset] = (value >>> 8) & 0xff;
  bytes[offset + 1] = value & 0xff;
}

/** Writes an unsigned 32-bit value at `offset`. */
export function writeU32(bytes: Uint8Array, offset: number, value: number): void {
  bytes[offset] = (value >>> 24) & 0xff;
  bytes[offset + 1] = (value >>> 16) & 0xff;
  bytes[offset + 2] = (value >>> 8) & 0xff;
  bytes[offset + 3] = value & 0xff;
}

/** Writes an unsigned 64-bit value at `offset`. */
export function writeU64(bytes: Uint8Array, offset: number, value: bigint): void {
  writeU32(bytes, offset, Number((value >> 32n) & 0xffffffffn));
  writeU32(bytes, offset + 4, Number(value & 0xffffffffn));
}

/** Concatenates byte arrays into one new array. */
export function concatBytes(parts: readonly Uint8Array[]): Uint8Array {
  let total = 0;
  for (const part of parts) total += part.length;
  const out = new Uint8Array(total);
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}
