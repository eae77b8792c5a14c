/**
 * The Linux kernel's `jhash()` (include/linux/jhash.h: Bob Jenkins' lookup3, adapted by Jozsef
 * Kadlecsik) and `reciprocal_scale()` (include/linux/kernel.h), bit-exact.
 *
 * Why bit-exact: the kernel data plane balances IKEv2 with the nftables expression
 * `jhash <expr> mod N seed S`, which net/netfilter/nft_hash.c (nft_jhash_eval) evaluates as
 * `reciprocal_scale(jhash(data, len, seed), N)`. Userspace (the dashboard's "which server will
 * this client get", the userspace relay, other balancer nodes) must predict the very same slot,
 * so it runs the very same arithmetic. The golden vectors in `jhash.test.ts` come from the
 * kernel's C code compiled with gcc.
 */
import { MAGLEV_TABLE_SIZE } from './maglev/table-size.js';

/** include/linux/jhash.h: "An arbitrary initial parameter". */
export const JHASH_INITVAL = 0xdeadbeef;

const TWO_POW_32 = 4294967296;

function rol32(word: number, shift: number): number {
  return ((word << shift) | (word >>> (32 - shift))) >>> 0;
}

/**
 * Reads 4 bytes as a little-endian u32. The kernel uses `__get_unaligned_cpu32`, i.e. CPU byte
 * order; every platform nftables balancers run on here (x86-64, arm64) is little-endian.
 */
function readU32le(k: Uint8Array, i: number): number {
  return (
    ((k[i] ?? 0) | ((k[i + 1] ?? 0) << 8) | ((k[i + 2] ?? 0) << 16) | ((k[i + 3] ?? 0) << 24)) >>> 0
  );
}

/**
 * Linux `jhash(key, length, initval)` over all bytes of `key`.
 *
 * @param key the bytes to hash (the kernel's `length` is `key.length`).
 * @param initval the seed; taken modulo 2^32 like the kernel's `u32`.
 * @returns the 32-bit hash as an unsigned integer in [0, 2^32).
 */
export function jhash(key: Uint8Array, initval: number): number {
  let length = key.length;
  // jhash.h: a = b = c = JHASH_INITVAL + length + initval (u32 arithmetic).
  let a = (JHASH_INITVAL + length + (initval >>> 0)) >>> 0;
  let b = a;
  let c = a;
  let k = 0;

  // jhash.h: "All but the last block: affect some 32 bits of (a,b,c)" — note `> 12`, not `>= 12`:
  // a final full block goes through the tail switch and __jhash_final, not __jhash_mix.
  while (length > 12) {
    a = (a + readU32le(key, k)) >>> 0;
    b = (b + readU32le(key, k + 4)) >>> 0;
    c = (c + readU32le(key, k + 8)) >>> 0;
    // __jhash_mix(a, b, c)
    a = (a - c) >>> 0;
    a = (a ^ rol32(c, 4)) >>> 0;
    c = (c + b) >>> 0;
    b = (b - a) >>> 0;
    b = (b ^ rol32(a, 6)) >>> 0;
    a = (a + c) >>> 0;
    c = (c - b) >>> 0;
    c = (c ^ rol32(b, 8)) >>> 0;
    b = (b + a) >>> 0;
    a = (a - c) >>> 0;
    a = (a ^ rol32(c, 16)) >>> 0;
    c = (c + b) >>> 0;
    b = (b - a) >>> 0;
    b = (b ^ rol32(a, 19)) >>> 0;
    a = (a + c) >>> 0;
    c = (c - b) >>> 0;
    c = (c ^ rol32(b, 4)) >>> 0;
    b = (b + a) >>> 0;
    length -= 12;
    k += 12;
  }

  // jhash.h: "Last block: affect all 32 bits of (c)". The kernel's switch falls through from
  // `case length` down to `case 1`; each byte lands in a, b or c at shift 8 * (index % 4).
  if (length === 0) return c; // case 0: "Nothing left to add", no final mix.
  for (let i = length - 1; i >= 0; i--) {
    const byte = key[k + i] ?? 0;
    const shifted = (byte << (8 * (i & 3))) >>> 0;
    if (i >= 8) c = (c + shifted) >>> 0;
    else if (i >= 4) b = (b + shifted) >>> 0;
    else a = (a + shifted) >>> 0;
  }
  // __jhash_final(a, b, c)
  c = (c ^ b) >>> 0;
  c = (c - rol32(b, 14)) >>> 0;
  a = (a ^ c) >>> 0;
  a = (a - rol32(c, 11)) >>> 0;
  b = (b ^ a) >>> 0;
  b = (b - rol32(a, 25)) >>> 0;
  c = (c ^ b) >>> 0;
  c = (c - rol32(b, 16)) >>> 0;
  a = (a ^ c) >>> 0;
  a = (a - rol32(c, 4)) >>> 0;
  b = (b ^ a) >>> 0;
  b = (b - rol32(a, 14)) >>> 0;
  c = (c ^ b) >>> 0;
  c = (c - rol32(b, 24)) >>> 0;
  return c;
}

/**
 * Linux `reciprocal_scale(val, ep_ro)`: `(u32)(((u64)val * ep_ro) >> 32)`, i.e. maps a
 * uniformly distributed u32 onto [0, ep_ro) without a division.
 *
 * Computed exactly with doubles (no BigInt): both operands are split into 16-bit halves so that
 * no intermediate exceeds 2^53.
 */
export function reciprocalScale(hash: number, n: number): number {
  const h = hash >>> 0;
  const m = n >>> 0;
  const hHi = h >>> 16;
  const hLo = h & 0xffff;
  const mHi = m >>> 16;
  const mLo = m & 0xffff;
  // h * m = hHi*mHi * 2^32 + (hHi*mLo + hLo*mHi) * 2^16 + hLo*mLo
  const middle = hHi * mLo + hLo * mHi; // < 2^33
  const low = hLo * mLo; // < 2^32
  return hHi * mHi + Math.floor((middle * 65536 + low) / TWO_POW_32);
}

/**
 * The slot the kernel's `jhash <key> mod tableSize seed <seed>` selects for `key`
 * (nft_hash.c, nft_jhash_eval). This is the one decision function both data planes share.
 *
 * @param key the exact bytes the nftables rule hashes (see `affinity.ts`).
 * @param seed the farm's hash seed (u32).
 * @param tableSize the modulus; the Maglev table size by default.
 */
export function slotOf(
  key: Uint8Array,
  seed: number,
  tableSize: number = MAGLEV_TABLE_SIZE,
): number {
  return reciprocalScale(jhash(key, seed), tableSize);
}
