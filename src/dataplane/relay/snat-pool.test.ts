import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SnatPool } from './snat-pool.js';

test('no (address, backend) pair exceeds the cap; exhaustion refuses', () => {
  const pool = new SnatPool(['127.0.30.1', '127.0.30.2', '127.0.30.3'], 2);
  const leases = [];
  for (let i = 0; i < 6; i++) {
    const l = pool.acquire(`spi:${i}`, 'rras1', 4);
    assert.ok(l);
    leases.push(l);
  }
  for (const a of ['127.0.30.1', '127.0.30.2', '127.0.30.3'])
    assert.equal(pool.sessions(a, 'rras1'), 2);
  assert.equal(
    pool.acquire('spi:7', 'rras1', 4),
    undefined,
    'every address is at the cap for rras1',
  );
  // The cap is per pair: another backend still has room on every address.
  assert.equal(pool.acquire('spi:7', 'rras2', 4)?.address, '127.0.30.1');
  pool.release(leases[0]!);
  assert.equal(
    pool.acquire('spi:8', 'rras1', 4)?.address,
    leases[0]!.address,
    'a released slot is reused',
  );
});

test('spreads sessions over the least-used address', () => {
  const pool = new SnatPool(['127.0.30.1', '127.0.30.2'], 100);
  const used = [0, 1, 2, 3].map((i) => pool.acquire(`ip:${i}`, 'b', 4)!.address);
  assert.deepEqual(used, ['127.0.30.1', '127.0.30.2', '127.0.30.1', '127.0.30.2']);
});

test('the flows of one session share its lease; the slot is freed with the last flow', () => {
  const pool = new SnatPool(['127.0.30.1'], 1);
  const ike500 = pool.acquire('spi:a', 'b', 4)!;
  const ike4500 = pool.acquire('spi:a', 'b', 4)!;
  assert.equal(ike500, ike4500);
  assert.equal(pool.sessions('127.0.30.1', 'b'), 1);
  assert.equal(pool.acquire('spi:other', 'b', 4), undefined);
  pool.release(ike500);
  assert.equal(pool.sessions('127.0.30.1', 'b'), 1, 'still one flow');
  pool.release(ike4500);
  assert.equal(pool.sessions('127.0.30.1', 'b'), 0);
  assert.ok(pool.acquire('spi:other', 'b', 4));
});

test('without addresses: the default source, no cap; a family without addresses is refused', () => {
  const plain = new SnatPool(undefined, 1);
  for (let i = 0; i < 10; i++) assert.equal(plain.acquire(`s${i}`, 'b', 4)?.address, undefined);
  const v4only = new SnatPool(['127.0.30.1'], 5);
  assert.equal(v4only.acquire('s', 'b6', 6), undefined);
});
