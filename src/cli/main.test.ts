import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { main } from './main.js';
import { captureIo as capture } from '../../test/support/command-io.js';
import { REPO_ROOT } from '../../lab/vpnlb-process.js';
import { loadConfigFile } from '../config/load-config.js';
import { Controller } from '../control/controller.js';
import { decide } from '../control/decide.js';

const example = join(REPO_ROOT, 'examples/rras-farm.yaml');

test('check: exit 0 on a valid file, 1 with every problem on a broken one', async () => {
  const ok = capture();
  assert.equal(await main(['check', '--config', example], ok), 0);
  assert.match(ok.stdout, /valid/);
  const bad = capture();
  assert.equal(
    await main(['check', '--config', join(REPO_ROOT, 'test/fixtures/broken.yaml')], bad),
    1,
  );
  assert.match(bad.stderr, /broken\.yaml:15:9: error: pools\.rras\.backends\[1\]\.wieght/);
  assert.match(bad.stderr, /14 error\(s\)/);
  const json = capture();
  assert.equal(
    await main(['check', '--config', join(REPO_ROOT, 'test/fixtures/broken.yaml'), '--json'], json),
    1,
  );
  assert.equal(JSON.parse(json.stdout).valid, false);
});

test('which: the same answer as the decision function, for SPI and source-IP services', async () => {
  const io = capture();
  assert.equal(
    await main(
      [
        'which',
        '--config',
        example,
        '--client',
        '203.0.113.7',
        '--spi',
        '0a0b0c0d0e0f1011',
        '--json',
      ],
      io,
    ),
    0,
  );
  const answers = JSON.parse(io.stdout).answers as {
    service: string;
    backend: string;
    slot: number | null;
  }[];
  const snap = new Controller(loadConfigFile(example)).snapshot();
  const ike = snap.services.find((s) => s.name === 'aovpn-ike')!;
  const expected = decide(ike, {
    address: '203.0.113.7',
    spi: Buffer.from('0a0b0c0d0e0f1011', 'hex'),
  });
  assert.equal(answers.find((a) => a.service === 'aovpn-ike')!.backend, expected.backend!.name);
  assert.equal(answers.find((a) => a.service === 'aovpn-ike')!.slot, expected.slot);
  const text = capture();
  assert.equal(
    await main(
      ['which', '--config', example, '--client', '203.0.113.7', '--spi', '0a0b0c0d0e0f1011'],
      text,
    ),
    0,
  );
  assert.match(
    text.stdout,
    /aovpn-ike: rras[12] \(198\.18\.1\.1[01]\) — by IKE SPI 0a0b0c0d0e0f1011, Maglev slot \d+/,
  );
});

test('which: usage errors are clear and exit 2', async () => {
  const io = capture();
  assert.equal(await main(['which', '--config', example, '--client', 'not-an-ip'], io), 2);
  assert.match(io.stderr, /not an IP address \[VPNLB_CLI_USAGE\]/);
  const spi = capture();
  assert.equal(
    await main(['which', '--config', example, '--client', '203.0.113.7', '--spi', 'xyz'], spi),
    2,
  );
  assert.match(spi.stderr, /16 hex digits/);
});

test('unknown command and help', async () => {
  const io = capture();
  assert.equal(await main(['frobnicate'], io), 2);
  assert.match(io.stderr, /unknown command "frobnicate"/);
  const help = capture();
  assert.equal(await main(['help'], help), 0);
  assert.match(help.stdout, /check/);
  assert.match(help.stdout, /which/);
});

test('backend: a clear error when no balancer is running there', async () => {
  const io = capture();
  assert.equal(await main(['backend', 'drain', 'rras1', '--admin', 'http://127.0.0.1:9'], io), 2);
  assert.match(io.stderr, /cannot reach the admin API/);
});
