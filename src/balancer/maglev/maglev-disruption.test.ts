/**
 * Maglev §3.4/§5.3 disruption: when a backend leaves, only its own slots must move, plus a
 * small fraction of the others'. The bounds are a little above the figures measured on the
 * first implementation (docs/balancing.md lists them); the assertion is on the worst case over
 * every backend removed.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';

import type { Candidate } from '../balancer.js';
import { sortByName } from '../candidate-order.js';
import { MAGLEV_TABLE_SIZE, buildMaglevTable } from './maglev.js';

const M = MAGLEV_TABLE_SIZE;
/** Measured worst case: 0.28% of the table (N = 10); asserted: 0.5%. */
const MAX_OTHERS_MOVED = 0.005;

function named(count: number): Candidate[] {
  return Array.from({ length: count }, (_, i) => ({
    name: `rras${i + 1}`,
    address: '198.18.0.10',
    weight: 1,
  }));
}

/** Slot → owner name ('' when none). */
function owners(candidates: readonly Candidate[]): string[] {
  const sorted = sortByName(candidates);
  return Array.from(buildMaglevTable(candidates), (index) =>
    index < 0 ? '' : (sorted[index] as Candidate).name,
  );
}

for (const count of [3, 5, 10]) {
  test(`removing one of ${count} moves its own slots and at most ${MAX_OTHERS_MOVED * 100}% of the others`, () => {
    const all = named(count);
    const before = owners(all);
    for (const gone of all) {
      const after = owners(all.filter((c) => c !== gone));
      let othersMoved = 0;
      for (let slot = 0; slot < M; slot++) {
        if (before[slot] === gone.name) assert.notEqual(after[slot], gone.name);
        else if (before[slot] !== after[slot]) othersMoved++;
      }
      assert.ok(
        othersMoved / M <= MAX_OTHERS_MOVED,
        `removing ${gone.name} of ${count}: ${othersMoved} other slots moved`,
      );
    }
  });

  test(`adding a backend to ${count} takes its share and moves at most ${MAX_OTHERS_MOVED * 100}% of the others`, () => {
    const all = named(count);
    const newcomer: Candidate = { name: `rras${count + 1}`, address: '198.18.0.11', weight: 1 };
    const before = owners(all);
    const after = owners([...all, newcomer]);
    let gained = 0;
    let othersMoved = 0;
    for (let slot = 0; slot < M; slot++) {
      if (after[slot] === newcomer.name) gained++;
      else if (before[slot] !== after[slot]) othersMoved++;
    }
    assert.ok(Math.abs(gained - M / (count + 1)) <= 1, `newcomer owns ${gained} slots`);
    assert.ok(
      othersMoved / M <= MAX_OTHERS_MOVED,
      `adding to ${count}: ${othersMoved} other slots moved`,
    );
  });

  test(`a backend of ${count} that leaves and comes back gets exactly its old slots`, () => {
    const all = named(count);
    const gone = all[1] as Candidate;
    assert.deepEqual(
      buildMaglevTable([...all.filter((c) => c !== gone), gone]),
      buildMaglevTable(all),
    );
  });
}
