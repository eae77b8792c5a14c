import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { silentLogger } from '../log/logger.js';
import { Metrics } from '../observability/metrics.js';
import { FlowStateSync, formatFlowSyncStatus, type FlowStatePlane } from './flow-sync.js';

/** A peer's admin API on loopback: answers `/api/v1/flow-state` as `answer` says. */
async function peer(
  answer: (auth: string | undefined) => { status: number; body: string },
): Promise<{ url: string; server: Server; hits: () => number }> {
  let hits = 0;
  const server = createServer((req, res) => {
    hits++;
    assert.equal(req.url, '/api/v1/flow-state');
    const a = answer(req.headers.authorization);
    res.writeHead(a.status, { 'content-type': 'application/json' });
    res.end(a.body);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}`, server, hits: () => hits };
}

class RecordingPlane implements FlowStatePlane {
  readonly serviceName = 'ike-spi';
  readonly received: unknown[] = [];
  async importFlowState(raws: readonly unknown[]) {
    this.received.push(...raws);
    return { plan: { changes: [], added: 2, refreshed: 1, moved: 0 }, invalid: [] };
  }
}

test('pulls every peer, imports per service, counts results; a bad peer does not stop the others', async () => {
  const doc = {
    node: 'lb2',
    generatedAt: new Date().toISOString(),
    services: [
      { service: 'ike-spi', family: 4, sets: [] },
      { service: 'not-here', family: 4, sets: [] },
    ],
  };
  const good = await peer((auth) =>
    auth === 'Bearer t0ken-for-the-farm-0123456789abcdef'
      ? { status: 200, body: JSON.stringify(doc) }
      : { status: 401, body: '{}' },
  );
  const refusing = await peer(() => ({ status: 401, body: '{}' }));
  const garbage = await peer(() => ({ status: 200, body: '{"services": 5' }));
  const plane = new RecordingPlane();
  const metrics = new Metrics();
  const sync = new FlowStateSync({
    peers: [
      { name: 'lb2', url: good.url },
      { name: 'lb3', url: refusing.url },
      { name: 'lb4', url: garbage.url },
      { name: 'lb5', url: 'http://127.0.0.1:1' },
    ],
    token: 't0ken-for-the-farm-0123456789abcdef',
    interval: 1000,
    startupWait: 60_000,
    planes: () => [plane],
    logger: silentLogger(),
    metrics,
  });
  try {
    await sync.pullOnce();
    assert.deepEqual(plane.received, [doc.services[0]]);
    const status = sync.status();
    assert.equal(status.ready, false, 'not every peer answered, and startupWait has not passed');
    const byName = Object.fromEntries(status.peers.map((p) => [p.name, p]));
    assert.notEqual(byName.lb2!.lastOkAt, null);
    assert.equal(status.added, 2);
    assert.equal(status.refreshed, 1);
    assert.match(byName.lb3!.lastError!, /refused the token \(HTTP 401\)/);
    assert.match(byName.lb4!.lastError!, /malformed flow state/);
    assert.match(byName.lb5!.lastError!, /no answer/);
    const text = await metrics.text();
    assert.match(text, /vpnlb_flow_sync_pulls_total\{node="lb2",result="ok"\} 1/);
    assert.match(text, /vpnlb_flow_sync_pulls_total\{node="lb3",result="refused"\} 1/);
    assert.match(text, /vpnlb_flow_sync_pulls_total\{node="lb4",result="invalid"\} 1/);
    assert.match(text, /vpnlb_flow_sync_pulls_total\{node="lb5",result="unreachable"\} 1/);
    assert.match(text, /vpnlb_flow_sync_elements_total\{action="added"\} 2/);
    assert.match(text, /vpnlb_flow_sync_age_seconds\{node="lb5"\} -1/);
  } finally {
    await sync.stop();
    for (const p of [good, refusing, garbage]) p.server.close();
  }
});

test('ready once every peer answered; a malformed entry counts against its node, an nft refusal is reported', async () => {
  const ok = await peer(() => ({
    status: 200,
    body: JSON.stringify({ services: [{ service: 'ike-spi', family: 4, sets: [] }] }),
  }));
  let result: Awaited<ReturnType<FlowStatePlane['importFlowState']>> = {
    invalid: [{ index: 0, error: 'ike-spi: bad pin element' }],
  };
  const plane: FlowStatePlane = { serviceName: 'ike-spi', importFlowState: async () => result };
  const sync = new FlowStateSync({
    peers: [{ name: 'lb2', url: ok.url }],
    token: 'x'.repeat(32),
    interval: 1000,
    startupWait: 60_000,
    planes: () => [plane],
    logger: silentLogger(),
    metrics: new Metrics(),
  });
  try {
    await sync.pullOnce();
    assert.equal(sync.status().ready, false);
    assert.match(sync.status().peers[0]!.lastError!, /malformed flow state.*bad pin element/);
    result = { error: 'nft refused the import: no such set', invalid: [] };
    await sync.pullOnce();
    assert.equal(sync.status().ready, true);
    assert.equal(sync.status().peers[0]!.lastError, null);
    assert.match(sync.status().lastImportError!, /ike-spi: nft refused the import/);
    result = { skipped: 'a snapshot is being applied', invalid: [] };
    await sync.pullOnce();
    assert.equal(sync.status().lastImportError, null);
  } finally {
    await sync.stop();
    ok.server.close();
  }
});

test('a peer that sends more than the size limit is cut off, not buffered', async () => {
  const { MAX_FLOW_STATE_BYTES } = await import('./flow-sync.js');
  const server = createServer((_req, res) => {
    res.writeHead(200);
    const chunk = Buffer.alloc(1024 * 1024, 0x20);
    let sent = 0;
    const write = () => {
      while (sent <= MAX_FLOW_STATE_BYTES) {
        sent += chunk.length;
        if (!res.write(chunk)) return void res.once('drain', write);
      }
      res.end();
    };
    write();
    res.on('error', () => undefined);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  const sync = new FlowStateSync({
    peers: [{ name: 'big', url: `http://127.0.0.1:${port}` }],
    token: 'x'.repeat(32),
    interval: 5000,
    startupWait: 0,
    planes: () => [],
    logger: silentLogger(),
    metrics: new Metrics(),
  });
  try {
    await sync.pullOnce();
    assert.match(sync.status().peers[0]!.lastError!, /larger than/);
    assert.equal(sync.status().ready, true, 'startupWait 0: ready at once');
  } finally {
    await sync.stop();
    server.closeAllConnections();
    server.close();
  }
});

test('status lines: each peer with its last pull and error', () => {
  const now = Date.parse('2026-12-03T10:00:10Z');
  assert.equal(
    formatFlowSyncStatus(
      {
        ready: true,
        interval: 1000,
        added: 3,
        refreshed: 1,
        moved: 0,
        lastImportError: null,
        peers: [
          {
            name: 'lb2',
            url: 'https://198.18.1.3:8443',
            lastOkAt: '2026-12-03T10:00:09.500Z',
            lastError: null,
          },
          { name: 'lb3', url: 'https://198.18.1.4:8443', lastOkAt: null, lastError: 'no answer' },
        ],
      },
      now,
    ),
    [
      'flow sync every 1000 ms: ready; taken from the other nodes: 3 added, 1 refreshed, 0 moved',
      '  lb2 https://198.18.1.3:8443: last pulled 0.5 s ago',
      '  lb3 https://198.18.1.4:8443: last pulled never; failing: no answer',
    ].join('\n'),
  );
});
