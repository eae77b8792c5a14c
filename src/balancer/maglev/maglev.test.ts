import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';

import { type Candidate, ConnectionCounts } from '../balancer.js';
import { runBalancerConformance } from '../../../test/support/balancer-conformance.js';
import {
  MAGLEV_TABLE_SIZE,
  MaglevBalancer,
  buildMaglevTable,
  maglevPermutation,
} from './maglev.js';

runBalancerConformance('maglev', (input) => new MaglevBalancer(input));

const M = MAGLEV_TABLE_SIZE;

function backend(name: string, weight = 1): Candidate {
  return { name, address: '198.18.0.10', weight };
}

function named(count: number, weight = 1): Candidate[] {
  return Array.from({ length: count }, (_, i) => backend(`rras${i + 1}`, weight));
}

function slotCounts(table: Int32Array, backends: number): number[] {
  const counts = new Array<number>(backends).fill(0);
  for (const index of table) counts[index] = (counts[index] ?? 0) + 1;
  return counts;
}

/** Table bytes as little-endian int32, independent of the host's byte order. */
function sha256OfTable(table: Int32Array): string {
  const bytes = Buffer.alloc(table.length * 4);
  table.forEach((index, slot) => {
    bytes.writeInt32LE(index, slot * 4);
  });
  return createHash('sha256').update(bytes).digest('hex');
}

/** Maglev §3.4 Pseudocode 1, unweighted, written as plainly as the paper: the reference. */
function paperPopulate(names: readonly string[], size: number): Int32Array {
  const perms = names.map((n) => maglevPermutation(n, size));
  const next = new Array<number>(names.length).fill(0);
  const entry = new Int32Array(size).fill(-1);
  let n = 0;
  for (;;) {
    for (let i = 0; i < names.length; i++) {
      const { offset, skip } = perms[i] as { offset: number; skip: number };
      let c = (offset + (next[i] as number) * skip) % size;
      while ((entry[c] as number) >= 0) {
        next[i] = (next[i] as number) + 1;
        c = (offset + (next[i] as number) * skip) % size;
      }
      entry[c] = i;
      next[i] = (next[i] as number) + 1;
      if (++n === size) return entry;
    }
  }
}

describe('Maglev golden: a refactor must not reshuffle live sessions', () => {
  // Pinned from the first implementation. If this fails, the change moves clients between
  // servers on upgrade: every balancer node of a farm must then be upgraded at once.
  test('rras1..rras3 at equal weights', () => {
    const table = buildMaglevTable(named(3));
    assert.equal(table.length, 65537);
    assert.deepEqual(
      Array.from(table.subarray(0, 32)),
      [
        0, 0, 2, 1, 1, 1, 2, 1, 1, 1, 2, 1, 0, 0, 2, 0, 0, 2, 2, 1, 2, 2, 0, 0, 2, 2, 0, 0, 0, 1, 1,
        0,
      ],
    );
    assert.equal(
      sha256OfTable(table),
      'a868ea7b2396a4408409214a31703895961c6def9f0e9deda73413199abc8f27',
    );
  });

  test('permutations come from jhash of the name with the two fixed seeds', () => {
    // offset of rras1 = jhash("rras1", 0x6f666673) mod 65537 = 0x8e72e9ba mod 65537, the
    // kernel-computed vector in jhash.test.ts.
    assert.deepEqual(maglevPermutation('rras1'), { offset: 0x8e72e9ba % 65537, skip: 28237 });
    assert.deepEqual(maglevPermutation('rras2'), { offset: 16262, skip: 9138 });
    assert.deepEqual(maglevPermutation('rras3'), { offset: 38166, skip: 53292 });
  });

  test('pick(key) is the owner of the slot the kernel computes for that key', () => {
    const balancer = new MaglevBalancer({
      candidates: named(3),
      seed: 0x1234,
      connections: new ConnectionCounts(),
    });
    // SPI 0123456789abcdef, seed 0x1234: the kernel's reciprocal_scale(jhash(...), 65537) is
    // 34224 (jhash.test.ts); slot 34224 belongs to rras2.
    const spi = Buffer.from('0123456789abcdef', 'hex');
    assert.equal(balancer.slotOf(spi), 34224);
    assert.equal(balancer.table.slots[34224], 1);
    assert.equal(balancer.pick(spi)?.name, 'rras2');
    // 198.18.0.10 as `ip saddr` with seed 0x1234: slot 36269, owned by rras2.
    assert.equal(balancer.pick(Uint8Array.of(198, 18, 0, 10))?.name, 'rras2');
  });
});

describe('Maglev population', () => {
  test('equal weights reduce to the paper’s unweighted algorithm', () => {
    for (const count of [1, 2, 3, 7]) {
      for (const weight of [1, 7]) {
        const names = named(count)
          .map((c) => c.name)
          .sort();
        assert.deepEqual(
          buildMaglevTable(named(count, weight)),
          paperPopulate(names, M),
          `${count} × weight ${weight}`,
        );
      }
    }
  });

  test('equal weights: slot counts differ by at most one (N = 2, 3, 5, 7, 10)', () => {
    for (const count of [2, 3, 5, 7, 10]) {
      const counts = slotCounts(buildMaglevTable(named(count)), count);
      assert.ok(Math.max(...counts) - Math.min(...counts) <= 1, `N=${count}: ${counts.join(' ')}`);
      assert.equal(
        counts.reduce((a, b) => a + b, 0),
        M,
      );
    }
  });

  test('weighted: slot shares are within 1% of weight shares', () => {
    for (const weights of [
      [1, 2, 3, 4],
      [5, 1, 1],
      [100, 99, 1],
      [1, 1000],
      [3, 3, 3, 3, 3, 3, 3, 3, 3, 1],
    ]) {
      const total = weights.reduce((a, b) => a + b, 0);
      const counts = slotCounts(
        buildMaglevTable(weights.map((w, i) => backend(`b${i}`, w))),
        weights.length,
      );
      weights.forEach((w, i) => {
        const share = (counts[i] as number) / M;
        const expected = w / total;
        // Relative 1%, or one slot for shares so small that one slot is more than 1% of them.
        const tolerance = Math.max(0.01 * expected, 1 / M);
        assert.ok(
          Math.abs(share - expected) <= tolerance,
          `weights ${weights.join(',')}: b${i} ${share} vs ${expected}`,
        );
      });
    }
  });

  test('candidates are indexed in name order, whatever the input order', () => {
    const forward = buildMaglevTable(named(5));
    assert.deepEqual(buildMaglevTable(named(5).reverse()), forward);
    const balancer = new MaglevBalancer({
      candidates: named(3).reverse(),
      seed: 0,
      connections: new ConnectionCounts(),
    });
    assert.deepEqual(
      balancer.table.backends.map((c) => c.name),
      ['rras1', 'rras2', 'rras3'],
    );
  });

  test('no pickable candidate → every slot is −1; weight-0 candidates keep their index but own no slot', () => {
    assert.ok(buildMaglevTable([]).every((index) => index === -1));
    const table = buildMaglevTable([backend('a', 0), backend('b', 1)]);
    assert.ok(table.every((index) => index === 1));
  });

  test('the table size must be prime', () => {
    assert.throws(() => buildMaglevTable(named(2), 65536), RangeError);
    assert.throws(() => buildMaglevTable(named(2), 1), RangeError);
    assert.equal(buildMaglevTable(named(2), 13).length, 13);
  });

  test('backendAt answers for any slot and undefined outside the table', () => {
    const balancer = new MaglevBalancer({
      candidates: named(2),
      seed: 0,
      connections: new ConnectionCounts(),
    });
    assert.ok(balancer.backendAt(0));
    assert.equal(balancer.backendAt(M), undefined);
    assert.equal(balancer.backendAt(-1), undefined);
  });
});
