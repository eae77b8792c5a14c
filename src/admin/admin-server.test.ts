import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadConfigText } from '../config/load-config.js';
import { Runtime } from '../control/runtime.js';
import { decide } from '../control/decide.js';
import type { DataPlane } from '../dataplane/dataplane.js';
import type { ServiceSnapshot } from '../control/snapshot.js';
import { silentLogger } from '../log/logger.js';

const CONFIG = `
pools:
  rras:
    backends:
      - { name: rras1, address: 198.18.1.10 }
      - { name: rras2, address: 198.18.1.11 }
      - { name: rras3, address: 198.18.1.12 }
services:
  ikev2:
    - { name: ike, virtualIp: 198.19.0.1, pool: rras, affinity: ike-spi }
  sstp:
    - { name: sstp, virtualIp: 198.19.0.1, pool: rras }
`;

/** A data plane that records what it is given (the admin API sits above the data planes). */
class RecordingDataPlane implements DataPlane {
  readonly applied: ServiceSnapshot[] = [];
  constructor(readonly serviceName: string) {}
  async start(s: ServiceSnapshot) {
    this.applied.push(s);
  }
  async apply(s: ServiceSnapshot) {
    this.applied.push(s);
  }
  async stop() {}
  status() {
    return { dataplane: 'recording', listeners: ['test'], backends: { rras1: { packetsIn: 7 } }, warnings: ['a warning'] };
  }
}

async function withRuntime(fn: (base: string, rt: Runtime, planes: Map<string, RecordingDataPlane>) => Promise<void>) {
  const planes = new Map<string, RecordingDataPlane>();
  const rt = new Runtime({
    config: loadConfigText(CONFIG),
    logger: silentLogger(),
    admin: { host: '127.0.0.1', port: 0 },
    createDataPlane: async (s) => {
      const dp = new RecordingDataPlane(s.name);
      planes.set(s.name, dp);
      return dp;
    },
  });
  await rt.start();
  try {
    await fn(`http://127.0.0.1:${rt.adminAddress!.port}`, rt, planes);
  } finally {
    await rt.stop();
  }
}

test('GET /api/v1/status: services, backends with state, counters and warnings', async () => {
  await withRuntime(async (base) => {
    const res = await fetch(`${base}/api/v1/status`);
    assert.equal(res.status, 200);
    const body = (await res.json()) as { services: { name: string; dataplane: string; backends: { name: string; state: string; counters: object }[] }[]; warnings: string[] };
    assert.deepEqual(body.services.map((s) => s.name), ['ike', 'sstp']);
    assert.equal(body.services[0]!.dataplane, 'recording');
    assert.deepEqual(body.services[0]!.backends.map((b) => [b.name, b.state]), [['rras1', 'up'], ['rras2', 'up'], ['rras3', 'up']]);
    assert.deepEqual(body.services[0]!.backends[0]!.counters, { packetsIn: 7 });
    assert.ok(body.warnings.includes('ike: a warning'));
  });
});

test('POST drain: state changes, every data plane gets the new snapshot, metrics follow', async () => {
  await withRuntime(async (base, rt, planes) => {
    const res = await fetch(`${base}/api/v1/backends/rras2/drain`, { method: 'POST' });
    assert.equal(res.status, 200);
    await rt.settled();
    const status = (await (await fetch(`${base}/api/v1/status`)).json()) as { snapshotVersion: number; services: { dataplaneInSync: boolean; appliedSnapshotVersion: number }[] };
    assert.ok(status.services.every((s) => s.dataplaneInSync && s.appliedSnapshotVersion === status.snapshotVersion));
    const last = planes.get('ike')!.applied.at(-1)!;
    assert.equal(last.backends.find((b) => b.name === 'rras2')!.state, 'draining');
    assert.ok(!last.candidates.some((c) => c.name === 'rras2'));
    const metrics = await (await fetch(`${base}/metrics`)).text();
    assert.match(metrics, /vpnlb_backend_state\{service="ike",backend="rras2",state="draining"\} 1/);
    assert.match(metrics, /vpnlb_backend_transitions_total\{service="ike",backend="rras2",to="draining"\} 1/);
    const again = await fetch(`${base}/api/v1/backends/rras2/enable`, { method: 'POST' });
    assert.equal(again.status, 200);
  });
});

test('unknown backend: 404 with a stable code', async () => {
  await withRuntime(async (base) => {
    const res = await fetch(`${base}/api/v1/backends/nope/disable`, { method: 'POST' });
    assert.equal(res.status, 404);
    assert.equal(((await res.json()) as { code: string }).code, 'VPNLB_UNKNOWN_BACKEND');
  });
});

test('GET /api/v1/which answers like the decision function; needs an SPI for ike-spi', async () => {
  await withRuntime(async (base, rt) => {
    // Several clients and SPIs, each compared with decide() on the runtime's own snapshot.
    for (let i = 0; i < 8; i++) {
      const client = `203.0.113.${i + 1}`;
      const spi = Buffer.from([1, 2, 3, 4, 5, 6, 7, i]);
      const res = await fetch(`${base}/api/v1/which?client=${client}&spi=${spi.toString('hex')}`);
      const body = (await res.json()) as { answers: { service: string; backend: string; keyKind: string; slot: number | null }[] };
      const ike = body.answers.find((a) => a.service === 'ike')!;
      const expected = decide(rt.controller.service('ike')!, { address: client, spi });
      assert.equal(ike.keyKind, 'ike-spi');
      assert.equal(ike.backend, expected.backend!.name, `${client} spi ${spi.toString('hex')}`);
      assert.equal(ike.slot, expected.slot);
    }
    const noSpi = (await (await fetch(`${base}/api/v1/which?client=203.0.113.5&service=ike`)).json()) as { answers: { backend: null; note: string }[] };
    assert.equal(noSpi.answers[0]!.backend, null);
    assert.match(noSpi.answers[0]!.note, /SPI/);
    assert.equal((await fetch(`${base}/api/v1/which?client=nope`)).status, 400);
  });
});

test('GET / serves the dashboard page', async () => {
  await withRuntime(async (base) => {
    const res = await fetch(`${base}/`);
    assert.equal(res.status, 200);
    assert.match(await res.text(), /<title>vpnlb<\/title>/);
  });
});
