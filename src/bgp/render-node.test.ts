import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { checkConfigText } from '../config/load-config.js';
import type { HostView } from '../config/ha.js';
import { REPO_ROOT } from '../../lab/vpnlb-process.js';
import { renderBgpNodeFiles, resolveBgpNode } from './render-node.js';
import { BIRD_PATH } from './supervisor.js';

const here = dirname(fileURLToPath(import.meta.url));
// Goldens live next to the sources; from dist/ (compiled run) go back to the source tree.
const goldenDir = existsSync(join(here, 'golden'))
  ? join(here, 'golden')
  : resolve(here, '../../../src/bgp/golden');
const ELSEWHERE: HostView = { hasInterface: () => false, isLocalAddress: () => false };

function farmConfig(text = readFileSync(join(REPO_ROOT, 'test/fixtures/ecmp.yaml'), 'utf8')) {
  const r = checkConfigText(text, '/etc/vpnlb/vpnlb.yaml', ELSEWHERE);
  assert.ok(r.config, JSON.stringify(r.issues));
  return r.config;
}

for (const node of ['lb1', 'lb3']) {
  test(`golden: the files of node ${node}`, () => {
    const { files } = renderBgpNodeFiles(farmConfig(), node);
    assert.deepEqual(
      [...files.keys()].map((f) => basename(f)),
      ['bird.conf', 'reply-nat.nft'],
    );
    for (const [path, text] of files) {
      const golden = join(goldenDir, `${node}-${basename(path)}`);
      if (process.env.UPDATE_GOLDEN === '1') writeFileSync(golden, text);
      assert.equal(text, readFileSync(golden, 'utf8'), golden);
    }
  });
}

test('the nodes differ only in router id and their own peers; announcements start disabled', () => {
  const [a, b] = ['lb1', 'lb2'].map((n) =>
    [...renderBgpNodeFiles(farmConfig(), n).files.values()][0]!.split('\n'),
  );
  const diff = a!.map((l, i) => [l, b![i]]).filter(([x, y]) => x !== y);
  assert.deepEqual(
    diff.map(([x]) => x!.split(' ')[0]),
    ['#', 'router'],
  );
  assert.equal(a!.filter((l) => l === '\tdisabled;').length, 2);
  // An IPv6 VIP goes to the IPv6 peer only, an IPv4 one to the IPv4 peer.
  const text = a!.join('\n');
  assert.match(
    text,
    /neighbor 198\.18\.0\.1 as 65000;[^}]*ipv4 \{[^}]*export where proto = "vip1";/,
  );
  assert.match(
    text,
    /neighbor 2001:db8:a::1 as 65000;[^}]*ipv6 \{[^}]*export where proto = "vip2";/,
  );
});

test('without replyNat there is no table; with bfd off no bfd protocol', () => {
  const text = readFileSync(join(REPO_ROOT, 'test/fixtures/ecmp.yaml'), 'utf8').replace(
    '  runDir: /run/vpnlb-bgp',
    '  replyNat: false\n  bfd: false',
  );
  const { files } = renderBgpNodeFiles(farmConfig(text), 'lb1');
  assert.deepEqual(
    [...files.keys()].map((f) => basename(f)),
    ['bird.conf'],
  );
  assert.doesNotMatch([...files.values()][0]!, /bfd/);
});

test('which node: --node, else an error naming every node', () => {
  assert.equal(resolveBgpNode(farmConfig(), 'lb2').self.name, 'lb2');
  assert.throws(
    () => resolveBgpNode(farmConfig(), 'lb7'),
    /"lb7" is not one of lb1 \(router id 198\.18\.0\.2\), lb2 \(router id 198\.18\.0\.3\), lb3/,
  );
  assert.throws(() => resolveBgpNode(farmConfig()), { code: 'VPNLB_BGP_CONFIG' });
});

test('BIRD itself accepts the rendered configuration (bird -p)', {
  skip: existsSync(BIRD_PATH) ? false : `${BIRD_PATH} missing (apt-get install bird2)`,
}, () => {
  const dir = mkdtempSync(join(tmpdir(), 'vpnlb-bird-'));
  try {
    for (const node of ['lb1', 'lb3']) {
      const conf = join(dir, `${node}.conf`);
      writeFileSync(conf, [...renderBgpNodeFiles(farmConfig(), node).files.values()][0]!);
      execFileSync(BIRD_PATH, ['-p', '-c', conf], { stdio: 'pipe' });
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
