import { test } from 'node:test';
import assert from 'node:assert/strict';
import { countersOfNftJson, readCounterObjects } from './nft-counters.js';

const LISTED = JSON.stringify({
  nftables: [
    { metainfo: { version: '1.0.6', json_schema_version: 1 } },
    {
      counter: { family: 'ip', name: 'b_a_in', table: 'vpnlb', handle: 3, packets: 7, bytes: 700 },
    },
    {
      counter: {
        family: 'ip6',
        name: 'ike_split',
        table: 'vpnlb6',
        handle: 4,
        packets: 0,
        bytes: 0,
      },
    },
    {
      counter: { family: 'inet', name: 'leaked', table: 'leak', handle: 2, packets: 2, bytes: 96 },
    },
  ],
});

test('the counters of nft -j list counters output, with their table and NFPROTO family', () => {
  assert.deepEqual(countersOfNftJson(LISTED), [
    { table: 'vpnlb', name: 'b_a_in', family: 2, packets: 7, bytes: 700 },
    { table: 'vpnlb6', name: 'ike_split', family: 10, packets: 0, bytes: 0 },
    { table: 'leak', name: 'leaked', family: 1, packets: 2, bytes: 96 },
  ]);
  assert.deepEqual(countersOfNftJson('not json'), []);
  assert.deepEqual(countersOfNftJson('{}'), []);
});

test('without the addon, the nft CLI answers: for one table, or for all; nothing when it fails', async () => {
  const asked: string[][] = [];
  const nft = async (args: string[]) => {
    asked.push(args);
    return LISTED;
  };
  // The switch is read from the process environment by readCounterObjects.
  const saved = process.env.VPNLB_NFT_COUNTERS_NATIVE;
  process.env.VPNLB_NFT_COUNTERS_NATIVE = '0';
  try {
    assert.equal((await readCounterObjects({ family: 'ip', table: 'vpnlb' }, nft)).length, 3);
    assert.equal((await readCounterObjects({}, nft)).length, 3);
    assert.deepEqual(asked, [
      ['-j', 'list', 'counters', 'table', 'ip', 'vpnlb'],
      ['-j', 'list', 'counters'],
    ]);
    assert.deepEqual(await readCounterObjects({}, async () => undefined), []);
  } finally {
    if (saved === undefined) delete process.env.VPNLB_NFT_COUNTERS_NATIVE;
    else process.env.VPNLB_NFT_COUNTERS_NATIVE = saved;
  }
});
