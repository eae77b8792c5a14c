import { test } from 'node:test';
import assert from 'node:assert/strict';

import { jhash, reciprocalScale, slotOf } from './jhash.js';
import { MAGLEV_TABLE_SIZE } from './maglev/table-size.js';

/**
 * Golden vectors produced by the kernel's own code: the body of include/linux/jhash.h
 * (__jhash_mix, __jhash_final, jhash with __get_unaligned_cpu32 as a memcpy) and
 * `reciprocal_scale()` from include/linux/kernel.h, transcribed into a small C program,
 * compiled with gcc 12.2 (Debian 12, x86-64) and run; its printed lines are pasted here.
 * `seq<n>` is the first n bytes of `(i * 37 + 11) & 0xff`. The program is not kept in the
 * tree; re-create it from the kernel header if a vector must be added.
 */
const KERNEL_VECTORS = [
  { label: 'empty', hex: '', seed: 0x00000000, hash: 0xdeadbeef, slot65537: 57006, slot7: 6 },
  { label: 'empty seed', hex: '', seed: 0x00001234, hash: 0xdeadd123, slot65537: 57006, slot7: 6 },
  { label: 'seq1', hex: '0b', seed: 0x00001234, hash: 0x370369ea, slot65537: 14083, slot7: 1 },
  { label: 'seq2', hex: '0b30', seed: 0x00001234, hash: 0xe78a238c, slot65537: 59275, slot7: 6 },
  { label: 'seq3', hex: '0b3055', seed: 0x00001234, hash: 0x479a696b, slot65537: 18330, slot7: 1 },
  {
    label: 'seq4',
    hex: '0b30557a',
    seed: 0x00001234,
    hash: 0xd8a36317,
    slot65537: 55460,
    slot7: 5,
  },
  {
    label: 'seq5',
    hex: '0b30557a9f',
    seed: 0x00001234,
    hash: 0x90471944,
    slot65537: 36935,
    slot7: 3,
  },
  {
    label: 'seq6',
    hex: '0b30557a9fc4',
    seed: 0x00001234,
    hash: 0x0718a440,
    slot65537: 1816,
    slot7: 0,
  },
  {
    label: 'seq7',
    hex: '0b30557a9fc4e9',
    seed: 0x00001234,
    hash: 0xa8ff39a0,
    slot65537: 43263,
    slot7: 4,
  },
  {
    label: 'seq8',
    hex: '0b30557a9fc4e90e',
    seed: 0x00001234,
    hash: 0x87da95ad,
    slot65537: 34779,
    slot7: 3,
  },
  {
    label: 'seq9',
    hex: '0b30557a9fc4e90e33',
    seed: 0x00001234,
    hash: 0x17d48fc9,
    slot65537: 6100,
    slot7: 0,
  },
  {
    label: 'seq10',
    hex: '0b30557a9fc4e90e3358',
    seed: 0x00001234,
    hash: 0x7019ef1a,
    slot65537: 28698,
    slot7: 3,
  },
  {
    label: 'seq11',
    hex: '0b30557a9fc4e90e33587d',
    seed: 0x00001234,
    hash: 0x98655468,
    slot65537: 39013,
    slot7: 4,
  },
  {
    label: 'seq12',
    hex: '0b30557a9fc4e90e33587da2',
    seed: 0x00001234,
    hash: 0x270befc7,
    slot65537: 9996,
    slot7: 1,
  },
  {
    label: 'seq13',
    hex: '0b30557a9fc4e90e33587da2c7',
    seed: 0x00001234,
    hash: 0x17990401,
    slot65537: 6041,
    slot7: 0,
  },
  {
    label: 'seq24',
    hex: '0b30557a9fc4e90e33587da2c7ec11365b80a5caef14395e',
    seed: 0x00001234,
    hash: 0x7dc81b4d,
    slot65537: 32200,
    slot7: 3,
  },
  {
    label: 'seq25',
    hex: '0b30557a9fc4e90e33587da2c7ec11365b80a5caef14395e83',
    seed: 0xdeadbeef,
    hash: 0x13f017a8,
    slot65537: 5104,
    slot7: 0,
  },
  {
    label: 'seq40',
    hex: '0b30557a9fc4e90e33587da2c7ec11365b80a5caef14395e83a8cdf2173c6186abd0f51a3f6489ae',
    seed: 0xffffffff,
    hash: 0xa37837d3,
    slot65537: 41848,
    slot7: 4,
  },
  {
    label: 'spi',
    hex: '0123456789abcdef',
    seed: 0x00000000,
    hash: 0x9cc36475,
    slot65537: 40132,
    slot7: 4,
  },
  {
    label: 'spi seed',
    hex: '0123456789abcdef',
    seed: 0x00001234,
    hash: 0x85b05eb8,
    slot65537: 34224,
    slot7: 3,
  },
  {
    label: 'spi ff',
    hex: 'ffffffffffffffff',
    seed: 0x00001234,
    hash: 0x3af170d0,
    slot65537: 15089,
    slot7: 1,
  },
  {
    label: 'ipv4',
    hex: 'c612000a',
    seed: 0x00001234,
    hash: 0x8dad49d5,
    slot65537: 36269,
    slot7: 3,
  },
  {
    label: 'ipv6',
    hex: '20010db8000000000000000000000001',
    seed: 0x00001234,
    hash: 0x11d35f71,
    slot65537: 4563,
    slot7: 0,
  },
  {
    label: 'rras1',
    hex: '7272617331',
    seed: 0x6f666673,
    hash: 0x8e72e9ba,
    slot65537: 36467,
    slot7: 3,
  },
] as const;

test('jhash matches the kernel on every tail length 0..13 and on multi-block keys', () => {
  for (const v of KERNEL_VECTORS) {
    const key = Buffer.from(v.hex, 'hex');
    assert.equal(jhash(key, v.seed), v.hash, `${v.label}: jhash`);
  }
});

test('slotOf is reciprocal_scale(jhash) as nft_jhash_eval computes it', () => {
  for (const v of KERNEL_VECTORS) {
    const key = Buffer.from(v.hex, 'hex');
    assert.equal(slotOf(key, v.seed), v.slot65537, `${v.label}: mod 65537`);
    assert.equal(slotOf(key, v.seed, 7), v.slot7, `${v.label}: mod 7`);
  }
  assert.equal(MAGLEV_TABLE_SIZE, 65537);
});

test('jhash reads a subarray at its own offset (views into packet buffers)', () => {
  const packet = Buffer.from('aaaaaaaa0123456789abcdefbbbb', 'hex');
  assert.equal(jhash(packet.subarray(4, 12), 0x1234), 0x85b05eb8);
});

test('jhash takes the seed modulo 2^32 like a C u32', () => {
  const key = Buffer.from('0123456789abcdef', 'hex');
  assert.equal(jhash(key, 0x1234 + 2 ** 32), jhash(key, 0x1234));
  assert.equal(jhash(key, -1), jhash(key, 0xffffffff));
});

test('reciprocalScale equals the exact 64-bit product shifted right by 32', () => {
  // A deterministic xorshift32 sweep, plus the edges.
  let x = 0x9e3779b9;
  const next = (): number => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x;
  };
  const pairs: Array<[number, number]> = [
    [0, 0],
    [0xffffffff, 0xffffffff],
    [0xffffffff, 65537],
    [0xffffffff, 1],
    [1, 0xffffffff],
    [0x80000000, 2],
    [0xffff, 0x10000],
  ];
  for (let i = 0; i < 2000; i++) pairs.push([next(), i % 2 === 0 ? next() : next() % 70000]);
  for (const [h, n] of pairs) {
    const exact = Number((BigInt(h) * BigInt(n)) >> 32n);
    assert.equal(reciprocalScale(h, n), exact, `${h} * ${n}`);
  }
});
