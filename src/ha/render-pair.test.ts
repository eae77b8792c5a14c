import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { checkConfigText } from '../config/load-config.js';
import type { HostView } from '../config/ha.js';
import { REPO_ROOT } from '../../lab/vpnlb-process.js';
import { renderNodeFiles, resolveNode } from './render-pair.js';
import { evaluateHealth, formatVerdict } from './health.js';
import { noBackendWeight } from './render-keepalived.js';

const here = dirname(fileURLToPath(import.meta.url));
// Goldens live next to the sources; from dist/ (compiled run) go back to the source tree.
const goldenDir = existsSync(join(here, 'golden'))
  ? join(here, 'golden')
  : resolve(here, '../../../src/ha/golden');
const ELSEWHERE: HostView = { hasInterface: () => false, isLocalAddress: () => false };

/** The fixture pair with an IPv6 service, a fixed run directory and a dual-stack inside gateway. */
function pairConfig() {
  const text = readFileSync(join(REPO_ROOT, 'test/fixtures/ha-pair.yaml'), 'utf8')
    .replace(
      '    - { name: ike4, virtualIp: 198.19.0.1, pool: rras, monitor: ike }',
      '    - { name: ike4, virtualIp: 198.19.0.1, pool: rras, monitor: ike }\n    - { name: ike6, virtualIp: "2001:db8:ffff::1", pool: rras6 }',
    )
    .replace(
      'pools:\n',
      'pools:\n  rras6:\n    backends:\n      - { name: rras1v6, address: "2001:db8:1::11" }\n',
    )
    .replace(
      '  sync: { interface: sync0 }',
      '  runDir: /run/vpnlb-ha\n  sync: { interface: sync0 }',
    );
  const r = checkConfigText(text, '/etc/vpnlb/vpnlb.yaml', ELSEWHERE);
  assert.ok(r.config, JSON.stringify(r.issues));
  return r.config;
}

for (const node of ['lb1', 'lb2']) {
  test(`golden: the files of node ${node}`, () => {
    const { files } = renderNodeFiles(pairConfig(), node);
    assert.deepEqual(
      [...files.keys()].map((f) => basename(f)),
      ['keepalived.conf', 'conntrackd.conf', 'notify.sh', 'check.sh', 'reply-nat.nft'],
    );
    for (const [path, text] of files) {
      const golden = join(goldenDir, `${node}-${basename(path)}`);
      if (process.env.UPDATE_GOLDEN === '1') writeFileSync(golden, text);
      assert.equal(text, readFileSync(golden, 'utf8'), golden);
    }
  });
}

test('the two nodes differ only where they must (priority, sync direction, names)', () => {
  const a = renderNodeFiles(pairConfig(), 'lb1').files;
  const b = renderNodeFiles(pairConfig(), 'lb2').files;
  const ka = [...a.values()][0]!.split('\n');
  const kb = [...b.values()][0]!.split('\n');
  const diff = ka.map((l, i) => [l, kb[i]]).filter(([x, y]) => x !== y);
  assert.deepEqual(
    diff.map(([x]) => x!.trim().split(' ')[0]),
    ['#', 'router_id', 'priority', 'priority'],
  );
  assert.match(
    [...a.values()][1]!,
    /IPv4_address 198\.18\.2\.1\n\t\tIPv4_Destination_Address 198\.18\.2\.2/,
  );
  assert.match(
    [...b.values()][1]!,
    /IPv4_address 198\.18\.2\.2\n\t\tIPv4_Destination_Address 198\.18\.2\.1/,
  );
});

test('a node without usable servers drops just below its peer', () => {
  const config = pairConfig();
  assert.equal(noBackendWeight(config.ha!), -51);
  assert.ok(150 + noBackendWeight(config.ha!) < 100);
});

test('reply NAT: identical on both nodes, off with ha.replyNat: false, refused where a server answers for two addresses', () => {
  const fixture = readFileSync(join(REPO_ROOT, 'test/fixtures/ha-pair.yaml'), 'utf8');
  const text = (yaml: string) => checkConfigText(yaml, '/etc/vpnlb/vpnlb.yaml', ELSEWHERE);
  const on = text(fixture).config!;
  const table = (node: string) => {
    const f = renderNodeFiles(on, node);
    return f.files.get(f.paths.replyNat);
  };
  assert.equal(table('lb1'), table('lb2'));
  assert.match(
    table('lb1') ?? '',
    /udp sport 4500 counter name replies_nat snat ip to 198\.19\.0\.1:4500/,
  );
  const off = text(
    fixture.replace(
      '  sync: { interface: sync0 }',
      '  replyNat: false\n  sync: { interface: sync0 }',
    ),
  );
  const offFiles = renderNodeFiles(off.config!, 'lb1');
  assert.equal(offFiles.files.get(offFiles.paths.replyNat), undefined);
  const shared = fixture.replace(
    '    - { name: ike4, virtualIp: 198.19.0.1, pool: rras, monitor: ike }',
    '    - { name: ike4, virtualIp: 198.19.0.1, pool: rras, monitor: ike }\n    - { name: ike4b, virtualIp: 198.19.0.2, pool: rras, table: vpnlb_b }',
  );
  assert.deepEqual(
    text(shared)
      .issues.filter((i) => i.severity === 'error')
      .map((i) => `${i.path}: ${i.message}`),
    [
      'services.ikev2[1].pool: server 198.18.1.11 port 500 also serves services.ikev2[0] (198.19.0.1): with ha.replyNat a node cannot tell which virtual IP its packets answer for (give the server one address per service, or set ha.replyNat: false)',
    ],
  );
  assert.equal(
    text(
      shared.replace(
        '  sync: { interface: sync0 }',
        '  replyNat: false\n  sync: { interface: sync0 }',
      ),
    ).config !== undefined,
    true,
  );
});

test('which node: --node, else an error naming both nodes', () => {
  assert.equal(resolveNode(pairConfig(), 'lb2').self.name, 'lb2');
  assert.throws(
    () => resolveNode(pairConfig(), 'lb7'),
    /"lb7" is not one of lb1 \(sync address 198\.18\.2\.1\), lb2/,
  );
  const single = checkConfigText(
    'pools: { p: { backends: [{ name: a, address: 198.18.1.1 }] } }\nservices: { ikev2: [{ name: s, virtualIp: 198.19.0.1, pool: p }] }\n',
  ).config!;
  assert.throws(() => resolveNode(single), { code: 'VPNLB_HA_CONFIG' });
});

test('health: alive needs an answer and every data plane in sync; backends needs an up server per service', () => {
  const up = {
    name: 'ike4',
    dataplaneInSync: true,
    backends: [
      { name: 'a', state: 'down' },
      { name: 'b', state: 'up' },
    ],
  };
  assert.equal(formatVerdict(evaluateHealth({ services: [up] })), 'alive ok\nbackends ok\n');
  const v = evaluateHealth({
    services: [
      up,
      { name: 'ike6', dataplaneInSync: false, backends: [{ name: 'c', state: 'draining' }] },
    ],
  });
  assert.equal(
    formatVerdict(v),
    'alive fail data plane not in sync: ike6\nbackends fail no usable server: ike6\n',
  );
  assert.equal(
    formatVerdict(evaluateHealth(undefined, 'ECONNREFUSED')),
    'alive fail vpnlb does not answer: ECONNREFUSED\nbackends fail vpnlb does not answer: ECONNREFUSED\n',
  );
});
