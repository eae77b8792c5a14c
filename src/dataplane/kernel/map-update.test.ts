/**
 * The pure parts of map-update.ts that the data-plane tests do not pin down: reading SPI set
 * elements back from nft's JSON and writing them into `spi_dead`.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { renderDeadSpis, renderMapUpdate, spisOfSetJson } from './map-update.js';

test('spisOfSetJson reads bare and timed elements and skips anything else', () => {
  const json = {
    nftables: [
      { metainfo: { version: '1.0.6' } },
      {
        set: {
          name: 'spi_a',
          elem: [
            { concat: [1, 2] },
            { elem: { val: { concat: [4294967295, 0] }, timeout: 30, expires: 29 } },
            { concat: ['x', 2] },
            { elem: {} },
            7,
            null,
          ],
        },
      },
    ],
  };
  assert.deepEqual(spisOfSetJson(json), ['1 . 2', '4294967295 . 0']);
  assert.deepEqual(spisOfSetJson({ nftables: [{ set: { name: 'spi_a' } }] }), []);
  assert.deepEqual(spisOfSetJson(null), []);
  assert.deepEqual(spisOfSetJson({ nftables: 'no' }), []);
});

test('renderDeadSpis chunks elements; renderMapUpdate moves SPIs before emptying the sets', () => {
  assert.equal(renderDeadSpis('ip', 't', []), '');
  const spis = Array.from({ length: 5 }, (_, i) => `${i} . ${i}`);
  assert.equal(renderDeadSpis('ip6', 't', spis, 2).split('\n').filter(Boolean).length, 3);
  assert.match(
    renderDeadSpis('ip6', 't', spis, 2),
    /^add element ip6 t spi_dead \{ 0 \. 0, 1 \. 1 \}$/m,
  );
  const text = renderMapUpdate(
    'ip',
    't',
    { deletes: [], adds: [] },
    [],
    ['pin_a', 'spi_a'],
    ['1 . 2'],
  );
  assert.equal(
    text,
    'add element ip t spi_dead { 1 . 2 }\nflush set ip t pin_a\nflush set ip t spi_a\n',
  );
});
