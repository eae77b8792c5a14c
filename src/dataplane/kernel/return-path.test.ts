/**
 * The return-path detector on conntrack snapshots (no root): the classic case (a server never
 * answers through the balancer) and the one that old replied tunnels used to hide (a server
 * whose gateway changed while it carried tunnels: only its new flows go unanswered).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ConntrackEntry } from './conntrack.js';
import { ReturnPathDetector } from './return-path.js';

const BACKENDS = [
  { name: 'a', address: '198.18.2.10', state: 'up' },
  { name: 'b', address: '198.18.2.11', state: 'up' },
];

function flow(server: string, clientPort: number, isUnreplied: boolean): ConntrackEntry {
  return {
    original: { src: '198.18.1.2', dst: '198.19.0.1', sport: clientPort, dport: 4500 },
    reply: { src: server, dst: '198.18.1.2', sport: 4500, dport: clientPort },
    isUnreplied,
    isAssured: !isUnreplied,
    timeout: 30,
  };
}

test('a server with only unreplied flows while another replies is flagged at once', () => {
  const d = new ReturnPathDetector();
  const v = d.observe(
    [
      flow('198.18.2.10', 1, false),
      flow('198.18.2.11', 2, true),
      flow('198.18.2.11', 3, true),
      flow('198.18.2.11', 4, true),
    ],
    BACKENDS,
  );
  assert.deepEqual(v.missing, ['b']);
  assert.deepEqual(v.flows.b, { replied: 0, unreplied: 3 });
});

test('too few unreplied flows, or a server that is not up, is not judged', () => {
  const d = new ReturnPathDetector();
  assert.deepEqual(
    d.observe(
      [flow('198.18.2.10', 1, false), flow('198.18.2.11', 2, true), flow('198.18.2.11', 3, true)],
      BACKENDS,
    ).missing,
    [],
  );
  const down = [BACKENDS[0]!, { ...BACKENDS[1]!, state: 'down' }];
  assert.deepEqual(
    d.observe(
      [
        flow('198.18.2.10', 1, false),
        flow('198.18.2.11', 2, true),
        flow('198.18.2.11', 3, true),
        flow('198.18.2.11', 4, true),
      ],
      down,
    ).missing,
    [],
  );
});

test('old replied tunnels no longer hide a server whose new flows go unanswered', () => {
  const d = new ReturnPathDetector({ recentScans: 2 });
  const old = [
    flow('198.18.2.10', 1, false),
    flow('198.18.2.11', 10, false),
    flow('198.18.2.11', 11, false),
  ];
  // Scans 1-2: b's established tunnels answer; nothing to report.
  assert.deepEqual(d.observe(old, BACKENDS).missing, []);
  assert.deepEqual(d.observe(old, BACKENDS).missing, []);
  // Scan 3: b's gateway changed; its old entries live on (replied), its new ones stay unreplied.
  const broken = [
    ...old,
    flow('198.18.2.11', 20, true),
    flow('198.18.2.11', 21, true),
    flow('198.18.2.11', 22, true),
  ];
  const v = d.observe(broken, BACKENDS);
  assert.deepEqual(v.missing, ['b']);
  assert.deepEqual(v.flows.b, { replied: 2, unreplied: 3 });
});

test('a new replied flow clears the verdict; flows that vanished are forgotten', () => {
  const d = new ReturnPathDetector({ recentScans: 1 });
  const bad = [
    flow('198.18.2.10', 1, false),
    flow('198.18.2.11', 20, true),
    flow('198.18.2.11', 21, true),
    flow('198.18.2.11', 22, true),
  ];
  assert.deepEqual(d.observe(bad, BACKENDS).missing, ['b']);
  assert.deepEqual(d.observe([...bad, flow('198.18.2.11', 30, false)], BACKENDS).missing, []);
  // Port 30 vanished and comes back: it is new again, so it counts as recent.
  d.observe(bad, BACKENDS);
  assert.deepEqual(d.observe([...bad, flow('198.18.2.11', 30, false)], BACKENDS).missing, []);
});

test('when no server answers at all, the verdict needs consecutive scans', () => {
  const d = new ReturnPathDetector({ consecutive: 2 });
  const none = [
    flow('198.18.2.10', 1, true),
    flow('198.18.2.10', 2, true),
    flow('198.18.2.10', 3, true),
  ];
  assert.deepEqual(d.observe(none, BACKENDS).missing, []);
  assert.deepEqual(d.observe(none, BACKENDS).missing, ['a']);
});
