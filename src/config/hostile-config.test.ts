/**
 * The loader on hostile or careless input (issue 11, findings 5 and 6): it never throws for a
 * problem inside the file, bounds what it reads and prints, and refuses addresses that cannot
 * be a VPN server or a virtual service.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  checkConfigFile,
  checkConfigText,
  formatIssue,
  MAX_CONFIG_BYTES,
  MAX_ISSUES,
  MAX_QUOTED_LENGTH,
} from './load-config.js';
import { MAX_BACKENDS_PER_POOL } from './schema.js';
import { mulberry32 } from '../../lab/prng.js';

const errors = (text: string) => checkConfigText(text).issues.filter((i) => i.severity === 'error');
const warnings = (text: string) =>
  checkConfigText(text).issues.filter((i) => i.severity === 'warning');
const printed = (text: string) =>
  checkConfigText(text, 'f.yaml')
    .issues.map((i) => formatIssue('f.yaml', i))
    .join('\n');

function farm(backends: string, vip = '198.19.0.1', extra = ''): string {
  return `${extra}
pools:
  rras:
    backends:
${backends}
services:
  ikev2:
    - { name: ike, virtualIp: "${vip}", pool: rras, monitor: m }
monitors:
  m: { type: ikev2 }
`;
}

test('a YAML alias bomb is an ordinary issue with its line, not a stack trace', () => {
  const bomb = ['a: &a ["x","x","x","x","x","x","x","x","x"]'];
  for (let i = 1; i < 9; i++)
    bomb.push(
      `${String.fromCharCode(97 + i)}: &${String.fromCharCode(97 + i)} [${Array(9)
        .fill(`*${String.fromCharCode(96 + i)}`)
        .join(',')}]`,
    );
  let r: ReturnType<typeof checkConfigText> | undefined;
  assert.doesNotThrow(() => (r = checkConfigText(bomb.join('\n'))));
  const e = r!.issues.filter((i) => i.severity === 'error');
  assert.equal(e.length, 1);
  assert.match(e[0]!.message, /aliases expand too far/);
  assert.equal(e[0]!.line, 2, 'the first alias');
});

test('a file over the size limit is refused before it is parsed, with a clear message', () => {
  const dir = mkdtempSync(join(tmpdir(), 'vpnlb-config-'));
  try {
    const f = join(dir, 'big.yaml');
    writeFileSync(f, `pools: "${'x'.repeat(MAX_CONFIG_BYTES + 10)}"\n`);
    const r = checkConfigFile(f);
    assert.equal(r.issues.length, 1);
    assert.match(r.issues[0]!.message, /at most 1048576 bytes \(1 MiB\)/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  assert.match(checkConfigText('x'.repeat(MAX_CONFIG_BYTES + 1)).issues[0]!.message, /at most/);
});

test('long values are cut in messages; random bytes print a bounded number of issues', () => {
  const long = 'y'.repeat(100_000);
  const out = printed(farm(`      - { name: rras1, address: 198.18.1.10, weight: "${long}" }`));
  assert.ok(out.length < 2_000, `printed ${out.length} characters`);
  assert.match(out, /\(100002 characters\)/);
  const rnd = mulberry32(11);
  const bytes = Buffer.alloc(MAX_CONFIG_BYTES - 1);
  for (let i = 0; i < bytes.length; i++) bytes[i] = Math.floor(rnd() * 256);
  const r = checkConfigText(bytes.toString('latin1'));
  assert.ok(r.issues.length <= MAX_ISSUES + 1, `${r.issues.length} issues`);
  const text = r.issues.map((i) => formatIssue('r.yaml', i)).join('\n');
  assert.ok(
    text.length < (MAX_ISSUES + 1) * (MAX_QUOTED_LENGTH + 200),
    `printed ${text.length} characters`,
  );
  // biome-ignore lint/suspicious/noControlCharactersInRegex: the test looks for control characters
  const control = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/;
  assert.doesNotMatch(text, control, 'no control character reaches the terminal');
});

test('control characters and escape sequences in keys and values are escaped in messages', () => {
  const out = printed(
    farm(
      '      - { name: rras1, address: 198.18.1.10 }',
      '198.19.0.1',
      '"evil\\e[2J\\u202e": 1\nlog: { level: "\\e]0;owned\\a" }\n',
    ),
  );
  // biome-ignore lint/suspicious/noControlCharactersInRegex: the test looks for control characters
  assert.doesNotMatch(out, /[\u001b\u0007\u202e]/);
  assert.match(
    out,
    /evil\\u\{1b\}\[2J\\u\{202e\}: unknown setting/,
    'the key, escaped in the path',
  );
  assert.match(out, /\\u001b\]0;owned\\u0007/, 'the value, escaped');
});

test('admin.listen must be an address (check used to accept not-an-ip)', () => {
  const e = errors(
    farm(
      '      - { name: rras1, address: 198.18.1.10 }',
      '198.19.0.1',
      'admin: { listen: not-an-ip }\n',
    ),
  );
  assert.equal(e.length, 1);
  assert.equal(e[0]!.path, 'admin.listen');
  assert.equal(e[0]!.line, 1);
  assert.deepEqual(
    errors(
      farm(
        '      - { name: rras1, address: 198.18.1.10 }',
        '198.19.0.1',
        'admin: { listen: "::" }\n',
      ),
    ),
    [],
  );
});

test('unspecified, multicast, broadcast and zone-ID addresses are refused as virtual IP, backend and SNAT address', () => {
  for (const bad of ['0.0.0.0', '::', '224.0.0.5', 'ff02::1', '255.255.255.255', 'fe80::1%eth0']) {
    const asBackend = errors(farm(`      - { name: rras1, address: "${bad}" }`));
    assert.deepEqual(
      asBackend.map((i) => i.path),
      ['pools.rras.backends[0].address'],
      `backend ${bad}`,
    );
    const asVip = errors(farm('      - { name: rras1, address: 198.18.1.10 }', bad));
    assert.ok(
      asVip.some((i) => i.path === 'services.ikev2[0].virtualIp'),
      `virtual IP ${bad}`,
    );
  }
  const snat = errors(`
pools: { rras: { backends: [ { name: rras1, address: 198.18.1.10 } ] } }
services:
  ikev2:
    - { name: ike, virtualIp: 198.19.0.1, pool: rras, dataplane: userspace, nat: full, snat: { addresses: ["0.0.0.0", 198.18.2.1, "::ffff:198.18.2.1"] } }
`);
  assert.deepEqual(
    snat.map((i) => i.path),
    ['services.ikev2[0].snat.addresses[0]', 'services.ikev2[0].snat.addresses[2]'],
  );
});

test('the same host in two notations is a duplicate', () => {
  const e = errors(
    farm(
      '      - { name: rras1, address: 198.18.1.10 }\n      - { name: rras2, address: "::ffff:198.18.1.10" }\n      - { name: rras3, address: "2001:db8::1" }\n      - { name: rras4, address: "2001:DB8:0:0::1" }',
    ),
  );
  assert.deepEqual(
    e.map((i) => i.path),
    ['pools.rras.backends[1].address', 'pools.rras.backends[3].address'],
  );
});

test('warnings: a loopback backend, a virtual IP that is also a backend, a weight below one Maglev slot', () => {
  const w = warnings(
    farm(
      '      - { name: rras1, address: 127.0.0.10 }\n      - { name: rras2, address: 198.18.1.10 }',
      '198.18.1.10',
    ),
  );
  assert.ok(
    w.some((i) => i.path === 'pools.rras.backends[0].address' && /loopback/.test(i.message)),
  );
  assert.ok(
    w.some(
      (i) =>
        i.path === 'services.ikev2[0].virtualIp' &&
        /also the address of backend rras2/.test(i.message),
    ),
  );
  const lines = Array.from(
    { length: 80 },
    (_, i) =>
      `      - { name: b${i}, address: 198.18.${1 + (i >> 8)}.${(i % 250) + 1}, weight: ${i === 0 ? 1 : 1000} }`,
  ).join('\n');
  const tiny = warnings(farm(lines));
  assert.ok(
    tiny.some(
      (i) =>
        i.path === 'pools.rras.backends[0].weight' &&
        /less than one of the 65537 Maglev slots/.test(i.message),
    ),
  );
});

test(`more than ${MAX_BACKENDS_PER_POOL} backends in a pool is an error with the documented limit, not a silent loss of slots`, () => {
  const lines = Array.from(
    { length: MAX_BACKENDS_PER_POOL + 1 },
    (_, i) => `      - { name: b${i}, address: 198.18.${1 + (i >> 8)}.${i & 0xff} }`,
  ).join('\n');
  const e = errors(farm(lines));
  assert.equal(e.length, 1);
  assert.equal(e[0]!.path, 'pools.rras.backends');
  assert.match(e[0]!.message, /at most 1024 entries \(got 1025\)/);
});

test('a long string where an address is expected is quoted cut, not whole', () => {
  const out = printed(farm(`      - { name: rras1, address: "${'1'.repeat(10_000)}" }`));
  assert.ok(out.length < 2_000, `printed ${out.length} characters`);
  assert.match(out, /\(10000 characters\) is not an IPv4 or IPv6 address/);
});
