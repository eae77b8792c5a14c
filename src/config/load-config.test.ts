import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import {
  checkConfigFile,
  checkConfigText,
  loadConfigText,
  parseDuration,
  ConfigError,
} from './load-config.js';
import { REPO_ROOT } from '../../lab/vpnlb-process.js';

const MINIMAL = `
pools:
  rras:
    backends:
      - { name: rras1, address: 198.18.1.10 }
services:
  ikev2:
    - { name: ike, virtualIp: 198.19.0.1, pool: rras }
`;

test('every example in examples/ is valid', () => {
  const dir = join(REPO_ROOT, 'examples');
  const files = readdirSync(dir).filter((f) => f.endsWith('.yaml'));
  assert.ok(files.length >= 3, 'at least three examples');
  for (const f of files) {
    const r = checkConfigFile(join(dir, f));
    assert.deepEqual(
      r.issues.filter((i) => i.severity === 'error'),
      [],
      f,
    );
    assert.ok(r.config, f);
  }
});

test('a broken file: every problem, each with its path and line', () => {
  const r = checkConfigFile(join(REPO_ROOT, 'test/fixtures/broken.yaml'));
  assert.equal(r.config, undefined);
  const got = r.issues.filter((i) => i.severity === 'error').map((i) => `${i.line} ${i.path}`);
  assert.deepEqual(got, [
    '2 admin.port',
    '5 monitors.ike.type',
    '6 monitors.ike.interval',
    '7 monitors.ike.timeout',
    '12 pools.rras.backends[0].address',
    '13 pools.rras.backends[1].name',
    '15 pools.rras.backends[1].wieght',
    '20 services.ikev2[0].pool',
    '21 services.ikev2[0].nat',
    '22 services.ikev2[0].snat',
    '23 services.ikev2[0].snat.addresses[1]',
    '24 services.ikev2[0].monitor',
    '26 services.sstp[0]',
    '26 services.sstp[0].name',
  ]);
  const typo = r.issues.find((i) => i.path.endsWith('wieght'));
  assert.match(typo?.message ?? '', /did you mean "weight"/);
});

test('YAML syntax errors carry their line', () => {
  const r = checkConfigText('pools:\n  rras: [\n', 'x.yaml');
  assert.equal(r.config, undefined);
  assert.ok(r.issues.length > 0);
  assert.ok(r.issues.every((i) => i.severity === 'error' && typeof i.line === 'number'));
});

test('duplicate keys are errors, not silently merged', () => {
  const r = checkConfigText(`${MINIMAL}\npools:\n  other: {}\n`);
  assert.equal(r.config, undefined);
  assert.match(r.issues[0]?.message ?? '', /YAML/);
});

test('an empty file says what is needed', () => {
  const r = checkConfigText('', 'empty.yaml');
  assert.match(r.issues[0]?.message ?? '', /empty/);
});

test('defaults are applied and the result is deeply frozen', () => {
  const c = loadConfigText(MINIMAL);
  const s = c.services.ikev2[0]!;
  assert.equal(s.ikePort, 500);
  assert.equal(s.natTPort, 4500);
  assert.equal(s.backendIkePort, 500);
  assert.equal(s.nat, 'transparent');
  assert.equal(s.affinity, 'ike-spi');
  assert.equal(s.method, 'maglev');
  assert.equal(s.dataplane, 'auto');
  assert.equal(s.flowTimeout, 180_000);
  assert.equal(c.pools.rras!.backends[0]!.weight, 1);
  assert.equal(c.pools.rras!.backends[0]!.enabled, true);
  assert.equal(c.admin.listen, '127.0.0.1');
  assert.ok(Object.isFrozen(c) && Object.isFrozen(c.services.ikev2) && Object.isFrozen(s));
  assert.throws(() => {
    (c.pools.rras!.backends as unknown as unknown[]).push({});
  });
});

test('warnings: full NAT names the 809 risk; no monitor is flagged', () => {
  const r = checkConfigText(MINIMAL.replace('pool: rras }', 'pool: rras, nat: full }'));
  assert.ok(r.config);
  const w = r.issues.filter((i) => i.severity === 'warning').map((i) => i.message);
  assert.ok(
    w.some((m) => /error 809/.test(m) && /balancer's own address/.test(m)),
    w.join('\n'),
  );
  assert.ok(w.some((m) => /no monitor/.test(m)));
});

test('warnings: kernelShed is not used by a relay in worker processes', () => {
  const shed = (text: string) =>
    checkConfigText(text)
      .issues.filter((i) => i.severity === 'warning' && /kernelShed/.test(i.message))
      .map((i) => i.message);
  const relay = MINIMAL.replace('pool: rras }', 'pool: rras, dataplane: userspace }');
  assert.match(
    shed(`workers: 2\n${relay}`).join('\n'),
    /not used while the relay runs in 2 worker/,
  );
  assert.deepEqual(shed(relay), [], 'one process sheds');
  assert.deepEqual(
    shed(`workers: 2\n${relay.replace('userspace }', 'userspace, kernelShed: off }')}`),
    [],
    'nothing to warn about when shedding is off',
  );
  assert.deepEqual(
    shed(`workers: 2\n${relay.replace('userspace }', 'kernel }')}`),
    [],
    'the kernel plane has no relay',
  );
});

test('kernel IKEv2 services cannot use stateful methods or cross address families', () => {
  const lc = checkConfigText(
    MINIMAL.replace('pool: rras }', 'pool: rras, method: least-connections }'),
  );
  assert.match(lc.issues.find((i) => i.severity === 'error')?.message ?? '', /userspace/);
  const v6 = checkConfigText(MINIMAL.replace('virtualIp: 198.19.0.1', 'virtualIp: "2001:db8::1"'));
  assert.match(v6.issues.find((i) => i.severity === 'error')?.message ?? '', /IPv6/);
  const ok = checkConfigText(
    MINIMAL.replace(
      'pool: rras }',
      'pool: rras, dataplane: userspace, method: least-connections }',
    ),
  );
  assert.ok(ok.config);
});

test('listener conflicts between services are reported', () => {
  const r = checkConfigText(`${MINIMAL}    - { name: ike2, virtualIp: 198.19.0.1, pool: rras }\n`);
  assert.ok(r.issues.some((i) => i.severity === 'error' && /already used/.test(i.message)));
});

test('SSTP mode rules', () => {
  const base = MINIMAL.replace(/services:[\s\S]*/, 'services:\n  sstp:\n');
  const offload = checkConfigText(
    `${base}    - { name: s, virtualIp: 198.19.0.1, pool: rras, mode: offload }\n`,
  );
  assert.ok(offload.issues.some((i) => /needs "tls"/.test(i.message)));
  const persist = checkConfigText(
    `${base}    - { name: s, virtualIp: 198.19.0.1, pool: rras, mode: offload, persistence: tls-session, tls: { cert: a, key: b } }\n`,
  );
  assert.ok(
    persist.issues.some(
      (i) => i.severity === 'error' && /tls-session persistence needs passthrough/.test(i.message),
    ),
  );
  const pass = loadConfigText(`${base}    - { name: s, virtualIp: 198.19.0.1, pool: rras }\n`);
  assert.equal(pass.services.sstp[0]!.mode, 'passthrough');
  assert.equal(pass.services.sstp[0]!.method, 'least-connections');
  assert.equal(pass.services.sstp[0]!.persistence, 'tls-session');
  assert.equal(pass.services.sstp[0]!.backendPort, 443);
});

test('loadConfigText throws ConfigError carrying every issue', () => {
  assert.throws(
    () => loadConfigText('pools: {}\nservices: {}\n'),
    (err: unknown) =>
      err instanceof ConfigError && err.issues.length > 0 && err.code === 'VPNLB_CONFIG_INVALID',
  );
});

test('parseDuration', () => {
  assert.equal(parseDuration(5), 5000);
  assert.equal(parseDuration(0.5), 500);
  assert.equal(parseDuration('500ms'), 500);
  assert.equal(parseDuration('5s'), 5000);
  assert.equal(parseDuration('10m'), 600_000);
  assert.equal(parseDuration('2h'), 7_200_000);
  assert.equal(parseDuration('1.5s'), 1500);
  assert.throws(() => parseDuration('5 s'));
});

test('two kernel IKEv2 services of one family need distinct nftables tables', () => {
  const r = checkConfigText(`${MINIMAL}    - { name: ike2, virtualIp: 198.19.0.2, pool: rras }\n`);
  assert.ok(
    r.issues.some(
      (i) =>
        i.severity === 'error' &&
        /nftables table "vpnlb"/.test(i.message) &&
        i.path === 'services.ikev2[1]',
    ),
  );
  const distinct = checkConfigText(
    `${MINIMAL}    - { name: ike2, virtualIp: 198.19.0.2, pool: rras, table: vpnlb2 }\n`,
  );
  assert.ok(distinct.config, JSON.stringify(distinct.issues));
  const families = checkConfigText(`
pools:
  rras: { backends: [{ name: r4, address: 198.18.1.10 }] }
  rras6: { backends: [{ name: r6, address: "2001:db8::10" }] }
services:
  ikev2:
    - { name: a, virtualIp: 198.19.0.1, pool: rras }
    - { name: b, virtualIp: "2001:db8::1", pool: rras6 }
`);
  assert.ok(
    families.config,
    'an IPv4 and an IPv6 service share the table name (one table per family)',
  );
});

test('kernelShed: xdp needs its interfaces; interfaces alone are flagged', () => {
  const at = (yaml: string, severity: 'error' | 'warning') =>
    checkConfigText(yaml)
      .issues.filter((i) => i.severity === severity)
      .map((i) => `${i.path} ${i.message}`);
  const relay = (extra: string) =>
    MINIMAL.replace('pool: rras }', `pool: rras, dataplane: userspace${extra} }`);
  assert.match(
    at(relay(', kernelShed: xdp'), 'error').join('\n'),
    /services\.ikev2\[0\]\.kernelShed kernelShed: xdp needs kernelShedInterfaces/,
  );
  const ok = checkConfigText(relay(', kernelShed: xdp, kernelShedInterfaces: [eth0, bond0.12]'));
  assert.deepEqual(
    ok.issues.filter((i) => i.severity === 'error'),
    [],
  );
  assert.deepEqual(ok.config?.services.ikev2[0]?.kernelShedInterfaces, ['eth0', 'bond0.12']);
  assert.match(
    at(relay(', kernelShedInterfaces: [eth0]'), 'warning').join('\n'),
    /kernelShedInterfaces is used only with kernelShed: xdp/,
  );
  // One XDP program per interface.
  const two = checkConfigText(
    `${relay(', kernelShed: xdp, kernelShedInterfaces: [eth0]')}    - { name: ike2, virtualIp: 198.19.0.2, pool: rras, dataplane: userspace, kernelShed: xdp, kernelShedInterfaces: [eth1, eth0] }\n`,
  );
  assert.match(
    two.issues
      .filter((i) => i.severity === 'error')
      .map((i) => `${i.path} ${i.message}`)
      .join('\n'),
    /services\.ikev2\[1\]\.kernelShedInterfaces\[1\] XDP on eth0 is already used by services\.ikev2\[0\]\.kernelShedInterfaces\[0\]/,
  );
  // An interface name is at most 15 characters, without spaces, slashes or colons.
  assert.ok(
    at(relay(', kernelShed: xdp, kernelShedInterfaces: [a-much-too-long-name]'), 'error').length,
  );
  assert.ok(at(relay(', kernelShed: xdp, kernelShedInterfaces: ["eth0:1"]'), 'error').length);
  assert.match(
    at(
      MINIMAL.replace(
        'pool: rras }',
        'pool: rras, dataplane: kernel, kernelShed: xdp, kernelShedInterfaces: [eth0] }',
      ),
      'warning',
    ).join('\n'),
    /userspace relay only/,
  );
});

test('workers: auto resolves to the usable CPUs and keeps why for the start log', () => {
  const auto = checkConfigText(`workers: auto\n${MINIMAL}`).config;
  assert.ok(auto && auto.workers >= 1 && auto.workers <= 64);
  assert.match(auto.workersAuto ?? '', new RegExp(`^${auto.workers}: .*affinity`));
  const fixed = checkConfigText(`workers: 3\n${MINIMAL}`).config;
  assert.equal(fixed?.workers, 3);
  assert.equal(fixed?.workersAuto, undefined);
});
