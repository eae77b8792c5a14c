/**
 * The decision function's placement of a new IKE SA by the client's NAT-T flows (affinity
 * ike-spi): one server → join it; several (a shared NAT address) or none → by SPI; plain SPI
 * hashing (`ike-spi-hash`) and `source-ip` ignore the flows.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadConfigText } from '../config/load-config.js';
import { Controller } from './controller.js';
import { decide, whichAnswer } from './decide.js';
import type { AffinityMode } from '../balancer/affinity.js';

function snapshotFor(affinity: AffinityMode) {
  const controller = new Controller(
    loadConfigText(`
pools:
  farm:
    backends:
      - { name: s1, address: 198.18.2.10 }
      - { name: s2, address: 198.18.2.11 }
      - { name: s3, address: 198.18.2.12 }
services:
  ikev2:
    - { name: ike, virtualIp: 198.19.0.1, pool: farm, affinity: ${affinity} }
`),
  );
  return { controller, snap: () => controller.service('ike')! };
}

const CLIENT = '198.18.1.2';
/** An SPI whose hash does not pick `avoid`. */
function spiAvoiding(snap: ReturnType<typeof snapshotFor>['snap'], avoid: string): Buffer {
  for (let i = 0; ; i++) {
    const spi = Buffer.alloc(8);
    spi.writeUInt32BE(i, 4);
    if (decide(snap(), { address: CLIENT, spi }).backend?.name !== avoid) return spi;
  }
}

test('ike-spi: a new SA from an address whose NAT-T flows are all on one server joins it', () => {
  const { snap } = snapshotFor('ike-spi');
  const spi = spiAvoiding(snap, 's2');
  const d = decide(snap(), { address: CLIENT, spi, natTServers: ['s2'] });
  assert.equal(d.backend?.name, 's2');
  assert.equal(d.keyKind, 'natt-flow');
  const a = whichAnswer(snap(), CLIENT, undefined, ['s2']);
  assert.equal(a.backend, 's2');
  assert.match(a.note ?? '', /NAT-T flows are all on s2/);
});

test('ike-spi: several servers (shared NAT address) or none: by SPI', () => {
  const { snap } = snapshotFor('ike-spi');
  const spi = spiAvoiding(snap, 's2');
  const bySpi = decide(snap(), { address: CLIENT, spi });
  assert.equal(bySpi.keyKind, 'ike-spi');
  assert.deepEqual(
    decide(snap(), { address: CLIENT, spi, natTServers: ['s1', 's2'] }).backend,
    bySpi.backend,
  );
  assert.deepEqual(
    decide(snap(), { address: CLIENT, spi, natTServers: [] }).backend,
    bySpi.backend,
  );
  assert.match(
    whichAnswer(snap(), CLIENT).note ?? '',
    /joins that flow's server .*--natt-servers.*--natt-flows/,
  );
});

test('ike-spi: an address with two or more live NAT-T flows (several devices behind one NAT) is placed by SPI, even when all sit on one server', () => {
  const { snap } = snapshotFor('ike-spi');
  const spi = spiAvoiding(snap, 's2');
  const bySpi = decide(snap(), { address: CLIENT, spi });
  assert.equal(
    decide(snap(), { address: CLIENT, spi, natTServers: ['s2'], natTFlows: 1 }).backend?.name,
    's2',
    'one flow: one device, joins',
  );
  const shared = decide(snap(), { address: CLIENT, spi, natTServers: ['s2'], natTFlows: 2 });
  assert.equal(shared.keyKind, 'ike-spi');
  assert.deepEqual(shared.backend, bySpi.backend);
  const a = whichAnswer(snap(), CLIENT, spi, ['s2'], 5);
  assert.equal(a.backend, bySpi.backend?.name);
  assert.match(a.note ?? '', /5 live NAT-T flows .*placed by SPI/);
});

test('ike-spi: a down or disabled flow server is not joined; a draining one is', () => {
  const { controller, snap } = snapshotFor('ike-spi');
  const spi = spiAvoiding(snap, 's2');
  controller.setAdminState('s2', 'draining');
  assert.equal(
    decide(snap(), { address: CLIENT, spi, natTServers: ['s2'] }).backend?.name,
    's2',
    "the client's flow reaches a draining server anyway",
  );
  controller.setHealth('ike', 's2', 'down', 'test');
  assert.notEqual(
    decide(snap(), { address: CLIENT, spi, natTServers: ['s2'] }).backend?.name,
    's2',
  );
});

test('ike-spi-hash and source-ip ignore the NAT-T flows', () => {
  for (const mode of ['ike-spi-hash', 'source-ip'] as const) {
    const { snap } = snapshotFor(mode);
    // source-ip ignores the SPI, so no SPI can avoid s2 there: pick a server the hash does not give.
    const spi = Buffer.alloc(8, 7);
    const byKey = decide(snap(), { address: CLIENT, spi }).backend?.name;
    const other = ['s1', 's2', 's3'].find((n) => n !== byKey)!;
    const d = decide(snap(), { address: CLIENT, spi, natTServers: [other] });
    assert.notEqual(d.keyKind, 'natt-flow', mode);
    assert.deepEqual(d.backend, decide(snap(), { address: CLIENT, spi }).backend, mode);
  }
});
