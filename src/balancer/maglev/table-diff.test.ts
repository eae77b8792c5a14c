import { test } from 'node:test';
import assert from 'node:assert/strict';

import { type Candidate, ConnectionCounts } from '../balancer.js';
import { MAGLEV_TABLE_SIZE, MaglevBalancer, type MaglevTable } from './maglev.js';
import { diffMaglevTables } from './table-diff.js';

function table(candidates: Candidate[], size = MAGLEV_TABLE_SIZE): MaglevTable {
  return new MaglevBalancer({ candidates, seed: 0, connections: new ConnectionCounts() }, size)
    .table;
}

const rras = (n: number, address = `198.18.0.${n}`): Candidate => ({
  name: `rras${n}`,
  address,
  weight: 1,
});

/** Reference: compare slot by slot through the backends themselves. */
function slowDiff(before: MaglevTable, after: MaglevTable): number[] {
  const changed: number[] = [];
  for (let slot = 0; slot < after.slots.length; slot++) {
    const a = before.backends[before.slots[slot] as number];
    const b = after.backends[after.slots[slot] as number];
    if (a?.name !== b?.name || a?.address !== b?.address) changed.push(slot);
  }
  return changed;
}

test('first programming lists every slot', () => {
  const after = table([rras(1)], 13);
  assert.deepEqual(
    diffMaglevTables(undefined, after),
    Array.from({ length: 13 }, (_, i) => i),
  );
});

test('an identical rebuild changes nothing, even from a reordered input', () => {
  assert.deepEqual(
    diffMaglevTables(table([rras(1), rras(2), rras(3)]), table([rras(3), rras(1), rras(2)])),
    [],
  );
});

test('removing a backend lists exactly the slots whose backend changed, though indices shifted', () => {
  const before = table([rras(1), rras(2), rras(3)]);
  const after = table([rras(2), rras(3)]); // rras2 and rras3 now sit at indices 0 and 1
  const changed = diffMaglevTables(before, after);
  assert.deepEqual(changed, slowDiff(before, after));
  // Every slot rras1 owned is in the diff, and only a small fraction of the others.
  const owned = [...before.slots.keys()].filter((s) => before.slots[s] === 0);
  assert.ok(owned.every((s) => changed.includes(s)));
  assert.ok(changed.length - owned.length < MAGLEV_TABLE_SIZE * 0.005);
});

test('adding a backend and changing an address are diffed by identity', () => {
  const before = table([rras(1), rras(2)]);
  const added = table([rras(1), rras(2), rras(3)]);
  assert.deepEqual(diffMaglevTables(before, added), slowDiff(before, added));
  // Same name, new address: its slots must be rewritten, since the kernel map stores addresses.
  const renumbered = table([rras(1), rras(2, '198.18.0.99')]);
  const changed = diffMaglevTables(before, renumbered);
  assert.deepEqual(
    changed,
    [...before.slots.keys()].filter((s) => before.slots[s] === 1),
  );
});

test('emptying and refilling the table', () => {
  const before = table([rras(1)], 13);
  const empty = table([], 13);
  assert.equal(diffMaglevTables(before, empty).length, 13);
  assert.deepEqual(diffMaglevTables(empty, empty), []);
});

test('tables of different sizes cannot be diffed', () => {
  assert.throws(() => diffMaglevTables(table([rras(1)], 13), table([rras(1)], 17)), RangeError);
});
