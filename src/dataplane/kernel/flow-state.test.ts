import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  checkServiceFlowState,
  flowStateOfSetsJson,
  planFlowImport,
  renderFlowImport,
  type ServiceFlowState,
} from './flow-state.js';

const backends = [
  { name: 's1', address: '198.18.1.21', id: 's1' },
  { name: 's2', address: '198.18.1.22', id: 's2' },
];

// What `nft -j list sets table inet vpnlb_spi` prints (nftables 1.0.6), trimmed.
const setsJson = {
  nftables: [
    { metainfo: { version: '1.0.6' } },
    {
      set: {
        name: 'pin_s1',
        elem: [
          { elem: { val: { concat: ['198.18.2.2', 4500] }, expires: 3500 } },
          { elem: { val: { concat: ['198.18.2.3', 1024] }, expires: 20 } },
        ],
      },
    },
    { set: { name: 'pin_s2', elem: [] } },
    { set: { name: 'spi_s2', elem: [{ elem: { val: { concat: [1, 2] }, expires: 3000 } }] } },
    { set: { name: 'peer_s1', elem: [{ elem: { val: '198.18.2.2', expires: 170 } }] } },
    // Not flow state, or not of a configured server: ignored.
    { set: { name: 'natt_shared', elem: [{ elem: { val: '198.18.2.9', expires: 10 } }] } },
    {
      set: { name: 'pin_gone', elem: [{ elem: { val: { concat: ['1.2.3.4', 5] }, expires: 9 } }] },
    },
  ],
};

const limits = {
  maxElements: 100,
  maxExpires: { pin: 3600, spi: 3600, peer: 180 },
};

test('reads pins, SPIs and peers by server address from nft JSON', () => {
  const state = flowStateOfSetsJson(setsJson, { name: 'ike-spi', family: 4 }, backends);
  assert.deepEqual(state, {
    service: 'ike-spi',
    family: 4,
    sets: [
      {
        kind: 'pin',
        server: '198.18.1.21',
        elements: [
          ['198.18.2.2', 4500, 3500],
          ['198.18.2.3', 1024, 20],
        ],
      },
      { kind: 'pin', server: '198.18.1.22', elements: [] },
      { kind: 'spi', server: '198.18.1.22', elements: [[1, 2, 3000]] },
      { kind: 'peer', server: '198.18.1.21', elements: [['198.18.2.2', 170]] },
    ],
  });
});

test("a peer's document is checked: family, addresses, ports, sizes; lifetimes capped", () => {
  const good = {
    service: 'ike-spi',
    family: 6,
    sets: [
      { kind: 'pin', server: '2001:DB8:b::21', elements: [['2001:db8:0:0::5', 4500, 99999]] },
      { kind: 'peer', server: '2001:db8:b::21', elements: [['2001:db8::5', 200]] },
    ],
  };
  const r = checkServiceFlowState(good, 6, limits);
  assert.ok(r.ok);
  assert.deepEqual(r.value.sets[0], {
    kind: 'pin',
    server: '2001:db8:b::21',
    elements: [['2001:db8::5', 4500, 3600]],
  });
  assert.deepEqual(r.value.sets[1]!.elements, [['2001:db8::5', 180]]);

  const bad = (sets: unknown, family = 4) =>
    checkServiceFlowState({ service: 'x', family, sets }, 4, limits);
  const err = (r: ReturnType<typeof bad>) => (r.ok ? 'ok' : r.error);
  assert.match(err(bad([], 6)), /family 6, not 4/);
  assert.match(err(bad([{ kind: 'map', server: '1.2.3.4', elements: [] }])), /no known kind/);
  assert.match(err(bad([{ kind: 'pin', server: '::1', elements: [] }])), /bad server address/);
  assert.match(
    err(bad([{ kind: 'pin', server: '1.2.3.4', elements: [['1.2.3.5', 0, 5]] }])),
    /bad pin element/,
  );
  assert.match(
    err(bad([{ kind: 'pin', server: '1.2.3.4', elements: [['::5', 4500, 5]] }])),
    /bad pin element/,
  );
  assert.match(
    err(bad([{ kind: 'spi', server: '1.2.3.4', elements: [[-1, 2, 5]] }])),
    /bad spi element/,
  );
  assert.match(
    err(bad([{ kind: 'peer', server: '1.2.3.4', elements: [['1.2.3.5', 'soon']] }])),
    /bad lifetime/,
  );
  assert.match(
    err(
      bad([
        {
          kind: 'peer',
          server: '1.2.3.4',
          elements: Array.from({ length: 101 }, () => ['1.2.3.5', 1]),
        },
      ]),
    ),
    /more than maxFlows 100/,
  );
  assert.match(err(checkServiceFlowState('x', 4, limits)), /not an object/);
});

const state = (sets: ServiceFlowState['sets']): ServiceFlowState => ({
  service: 'ike-spi',
  family: 4,
  sets,
});
const S1 = '198.18.1.21';
const S2 = '198.18.1.22';
const opts = { servers: new Set([S1, S2]), refreshAfter: 30, minLife: 3 };

test('import plan: adds what is missing, refreshes older copies, moves to the newer observation', () => {
  const local = state([
    { kind: 'pin', server: S1, elements: [['10.0.0.1', 4500, 100]] }, // same, fresh enough
    { kind: 'pin', server: S2, elements: [['10.0.0.2', 4500, 50]] }, // peer saw it on S1 later
    { kind: 'spi', server: S1, elements: [[7, 8, 500]] }, // peer's copy is older: kept
    { kind: 'peer', server: S1, elements: [['10.0.0.1', 100]] },
  ]);
  const remote = state([
    {
      kind: 'pin',
      server: S1,
      elements: [
        ['10.0.0.1', 4500, 120], // 20 s younger: under refreshAfter
        ['10.0.0.2', 4500, 3000], // moved from S2
        ['10.0.0.3', 4500, 600], // missing: added
        ['10.0.0.4', 4500, 2], // about to expire: ignored
      ],
    },
    { kind: 'spi', server: S2, elements: [[7, 8, 400]] },
    // An address may have flows on several servers: peers merge per server.
    { kind: 'peer', server: S2, elements: [['10.0.0.1', 170]] },
    { kind: 'peer', server: S1, elements: [['10.0.0.1', 170]] }, // 70 s younger: refreshed
    // A server that is down here gets nothing.
    { kind: 'pin', server: '198.18.1.23', elements: [['10.0.0.9', 4500, 900]] },
  ]);
  const plan = planFlowImport(local, [remote], opts);
  assert.deepEqual(
    { added: plan.added, refreshed: plan.refreshed, moved: plan.moved },
    { added: 2, refreshed: 1, moved: 1 },
  );
  assert.equal(
    renderFlowImport('inet', 'vpnlb_spi', backends, plan),
    [
      'delete element inet vpnlb_spi pin_s2 { 10.0.0.2 . 4500 }',
      'add element inet vpnlb_spi pin_s1 { 10.0.0.2 . 4500 expires 3000s }',
      'add element inet vpnlb_spi pin_s1 { 10.0.0.3 . 4500 expires 600s }',
      'add element inet vpnlb_spi peer_s2 { 10.0.0.1 expires 170s }',
      'delete element inet vpnlb_spi peer_s1 { 10.0.0.1 }',
      'add element inet vpnlb_spi peer_s1 { 10.0.0.1 expires 170s }',
      '',
    ].join('\n'),
  );
});

test('import plan: a copy imported back is never newer than its source, so nothing ping-pongs', () => {
  const a = state([{ kind: 'pin', server: S1, elements: [['10.0.0.1', 4500, 3600]] }]);
  const b = state([]);
  const toB = planFlowImport(b, [a], opts);
  assert.equal(toB.added, 1);
  // B now holds the copy with A's lifetime; A pulling B finds nothing to take.
  const bAfter = state([{ kind: 'pin', server: S1, elements: [['10.0.0.1', 4500, 3600]] }]);
  assert.equal(planFlowImport(a, [bAfter], opts).changes.length, 0);
  // A local element about to expire is left alone (the kernel may drop it mid-transaction).
  const dying = state([{ kind: 'pin', server: S2, elements: [['10.0.0.1', 4500, 2]] }]);
  assert.equal(planFlowImport(dying, [a], opts).changes.length, 0);
  assert.equal(
    renderFlowImport('inet', 't', backends, { changes: [], added: 0, refreshed: 0, moved: 0 }),
    '',
  );
});
