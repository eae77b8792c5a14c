/**
 * Two runtimes on loopback, configured as two ECMP nodes with `bgp.flowSync`: each serves its
 * flow state on its admin API behind the farm's read-only token, and pulls the other's into its
 * data plane. (The data planes here record what they are given; the nft side is tested by
 * flow-state.test.ts and, with real nodes, by test/integration/ecmp.test.ts.)
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfigText } from '../config/load-config.js';
import { Runtime } from '../runtime/runtime.js';
import type { DataPlane } from '../control/dataplane-interface.js';
import type { FlowImportResult, ServiceFlowState } from '../dataplane/kernel/flow-state.js';
import { silentLogger } from '../log/logger.js';
import { waitUntil } from '../util/wait.js';

const TOKEN = 'farm-read-only-token-0123456789abcdef';

class StatefulPlane implements DataPlane {
  readonly imported: unknown[][] = [];
  constructor(
    readonly serviceName: string,
    readonly state: ServiceFlowState,
  ) {}
  async start() {}
  async apply() {}
  async stop() {}
  status() {
    return { dataplane: 'test', listeners: [], backends: {}, warnings: [] };
  }
  async exportFlowState(): Promise<ServiceFlowState> {
    return this.state;
  }
  async importFlowState(raws: readonly unknown[]): Promise<FlowImportResult> {
    this.imported.push([...raws]);
    return { plan: { changes: [], added: raws.length, refreshed: 0, moved: 0 }, invalid: [] };
  }
}

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address() as AddressInfo;
  await new Promise((r) => s.close(r));
  return port;
}

function get(
  port: number,
  path: string,
  token?: string,
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        path,
        headers: token ? { authorization: `Bearer ${token}` } : {},
      },
      (res) => {
        let body = '';
        res.on('data', (d: Buffer) => (body += d.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

test('two nodes exchange their ike-spi flow state through their admin APIs, behind the token', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'vpnlb-flowsync-'));
  const ports = [await freePort(), await freePort()];
  writeFileSync(join(dir, 'farm.token'), `${TOKEN}\n`, { mode: 0o600 });
  const runtimes: Runtime[] = [];
  const planes: StatefulPlane[] = [];
  try {
    for (const [i, name] of ['lb1', 'lb2'].entries()) {
      const yaml = `
admin: { listen: 127.0.0.1, port: ${ports[i]}, tokenFile: ${name}.token, readOnlyTokenFile: farm.token }
pools:
  rras: { backends: [{ name: rras1, address: 198.18.1.10 }] }
services:
  ikev2: [{ name: ike, virtualIp: 198.19.0.1, pool: rras, affinity: ike-spi }]
bgp:
  asn: 65001
  node: ${name}
  nodes:
    - { name: lb1, routerId: 198.18.0.2, adminUrl: "http://127.0.0.1:${ports[0]}" }
    - { name: lb2, routerId: 198.18.0.3, adminUrl: "http://127.0.0.1:${ports[1]}" }
  peers: [{ name: edge, address: 198.18.0.1, asn: 65000 }]
  runDir: ${join(dir, name)}
  flowSync: { interval: 200ms }
`;
      const state: ServiceFlowState = {
        service: 'ike',
        family: 4,
        sets: [
          {
            kind: 'pin',
            server: '198.18.1.10',
            elements: [[`198.18.2.${i + 1}`, 4500, 3000]],
          },
        ],
      };
      const plane = new StatefulPlane('ike', state);
      planes.push(plane);
      const rt = new Runtime({
        config: loadConfigText(yaml, join(dir, `${name}.yaml`)),
        logger: silentLogger(),
        createDataPlane: async () => plane,
      });
      runtimes.push(rt);
      await rt.start();
    }
    // Each node receives the other's entry for its service, and is then ready to announce.
    await waitUntil(
      'both nodes to import',
      async () => planes.every((p) => p.imported.length > 0),
      10_000,
      50,
    );
    assert.deepEqual(planes[0]!.imported[0], [planes[1]!.state]);
    assert.deepEqual(planes[1]!.imported[0], [planes[0]!.state]);
    const status = JSON.parse((await get(ports[0]!, '/api/v1/status', TOKEN)).body) as {
      bgp: { flowSync: { ready: boolean; peers: { name: string; lastError: unknown }[] } };
    };
    assert.equal(status.bgp.flowSync.ready, true);
    assert.deepEqual(
      status.bgp.flowSync.peers.map((p) => [p.name, p.lastError]),
      [['lb2', null]],
    );
    // The document itself: only with a token.
    assert.equal((await get(ports[1]!, '/api/v1/flow-state')).status, 401);
    const doc = JSON.parse((await get(ports[1]!, '/api/v1/flow-state', TOKEN)).body) as {
      node: string;
      services: unknown[];
    };
    assert.equal(doc.node, 'lb2');
    assert.deepEqual(doc.services, [planes[1]!.state]);
  } finally {
    for (const rt of runtimes) await rt.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});
