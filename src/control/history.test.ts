import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadConfigText } from '../config/load-config.js';
import type { BackendCounters, DataPlane } from './dataplane-interface.js';
import { Controller } from './controller.js';
import { EventLog } from './event-log.js';
import { History } from './history.js';

const CONFIG = loadConfigText(`
pools:
  p: { backends: [{ name: a, address: 198.18.1.1 }, { name: b, address: 198.18.1.2 }] }
services:
  sstp: [{ name: s, virtualIp: 198.19.0.1, pool: p }]
`);

function plane(counters: Record<string, BackendCounters>, warnings: string[] = []): DataPlane {
  return {
    serviceName: 's',
    start: async () => {},
    apply: async () => {},
    stop: async () => {},
    status: () => ({ dataplane: 'fake', listeners: [], backends: counters, warnings }),
  };
}

test('rates are counter differences per second; the first sample has none; a counter going back counts zero', () => {
  const c = new Controller(CONFIG);
  const h = new History(3);
  const probes = new Map([['s/a', { ok: true, latencyMs: 4.5 }]]);
  h.sample(
    c.snapshot(),
    new Map([['s', plane({ a: { bytesIn: 1000, bytesOut: 0, connections: 2 } })]]),
    probes,
    10_000,
  );
  h.sample(
    c.snapshot(),
    new Map([['s', plane({ a: { bytesIn: 6000, bytesOut: 500, connections: 3 } })]]),
    probes,
    15_000,
  );
  h.sample(
    c.snapshot(),
    new Map([['s', plane({ a: { bytesIn: 10, bytesOut: 500, connections: 1 } })]]),
    new Map(),
    20_000,
  );
  const a = h.document(20_000).series['s/a']!;
  assert.deepEqual(a.t, [10_000, 15_000, 20_000]);
  assert.deepEqual(a.bytesInPerSec, [null, 1000, 0]);
  assert.deepEqual(a.bytesOutPerSec, [null, 100, 0]);
  assert.deepEqual(a.tunnels, [2, 3, 1]);
  assert.deepEqual(a.probeLatencyMs, [4.5, 4.5, null]);
  // Capacity 3: a fourth sample drops the oldest.
  h.sample(c.snapshot(), new Map(), new Map(), 25_000);
  assert.deepEqual(h.document().series['s/a']!.t, [15_000, 20_000, 25_000]);
});

test('downtime adds up the periods a backend spent down, the current one included', () => {
  const h = new History();
  const c = new Controller(CONFIG);
  h.sample(c.snapshot(), new Map(), new Map(), 0);
  const t = (to: 'down' | 'up', at: number) =>
    h.onTransition(
      {
        service: 's',
        backend: 'a',
        from: to === 'down' ? 'up' : 'down',
        to,
        reason: 'x',
        at: new Date(at).toISOString(),
      },
      at,
    );
  t('down', 1_000);
  t('up', 4_000);
  t('down', 10_000);
  assert.equal(h.document(12_000).downtimeMs['s/a'], 5_000);
  assert.equal(h.document(12_000).downtimeMs['s/b'], 0);
});

test('a new data-plane warning goes to the timeline once', () => {
  const h = new History();
  const events = new EventLog();
  const c = new Controller(CONFIG);
  for (const at of [0, 5_000])
    h.sample(
      c.snapshot(),
      new Map([['s', plane({}, ['return path missing for a'])]]),
      new Map(),
      at,
      events,
    );
  assert.deepEqual(
    events.list().map((e) => [e.kind, e.message]),
    [['warning', 's: return path missing for a']],
  );
});
