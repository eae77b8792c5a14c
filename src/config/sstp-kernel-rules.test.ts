/** What `vpnlb check` says about SSTP services on the kernel data plane (which settings need the proxy). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkConfigText, loadConfigText } from './load-config.js';

const cfg = (service: string, extraServices = '') => `
pools:
  farm:
    backends:
      - { name: a, address: 198.18.2.10 }
services:
  sstp:
    - { name: sstp, virtualIp: 198.19.0.1, pool: farm, dataplane: kernel${service} }
${extraServices}`;

const errors = (text: string) => checkConfigText(text).issues.filter((i) => i.severity === 'error');

test('a passthrough service by source address is valid on the kernel data plane', () => {
  assert.deepEqual(errors(cfg('')), []);
  assert.deepEqual(errors(cfg(', persistence: none, idleTimeout: 600')), []);
  const s = loadConfigText(cfg('')).services.sstp[0]!;
  assert.equal(s.dataplane, 'kernel');
  assert.equal(s.persistence, 'source-ip');
  assert.equal(s.method, 'maglev');
});

test('the userspace proxy stays the default, with its own defaults', () => {
  const s = loadConfigText(cfg('').replace(', dataplane: kernel', '')).services.sstp[0]!;
  assert.equal(s.dataplane, 'userspace');
  assert.equal(s.persistence, 'tls-session');
  assert.equal(s.method, 'least-connections');
});

for (const [setting, path, message] of [
  [
    ', persistence: tls-session',
    'services.sstp[0].persistence',
    /tls-session persistence reads the TLS session id .* needs the userspace proxy/,
  ],
  [
    ', mode: offload, tls: { cert: c.pem, key: k.pem }, persistence: source-ip',
    'services.sstp[0].mode',
    /mode offload terminates TLS, which needs the userspace proxy/,
  ],
  [
    ', method: least-connections',
    'services.sstp[0].method',
    /method least-connections keeps per-client state/,
  ],
  [
    ', maxConnectionsPerSource: 10',
    'services.sstp[0].maxConnectionsPerSource',
    /applied by the userspace proxy only/,
  ],
  [', port: 0', 'services.sstp[0].port', /port 0 .* needs the userspace proxy/],
  [
    ', idleTimeout: 0',
    'services.sstp[0].idleTimeout',
    /idleTimeout 0 \(never\) needs the userspace proxy/,
  ],
] as const) {
  test(`check names what needs the proxy: ${setting.slice(2)}`, () => {
    const e = errors(cfg(setting));
    const hit = e.find((i) => i.path === path);
    assert.ok(hit, JSON.stringify(e));
    assert.match(hit.message, message);
  });
}

test('two kernel services of one family cannot share a table (SSTP and IKEv2 included)', () => {
  const e = errors(
    cfg(
      ', table: shared',
      '  ikev2:\n    - { name: ike, virtualIp: 198.19.0.2, pool: farm, table: shared }\n',
    ),
  );
  assert.ok(
    e.some((i) => /nftables table "shared"/.test(i.message)),
    JSON.stringify(e),
  );
});

test('the pool must have backends of the virtual IP family', () => {
  const e = errors(cfg('').replace('198.18.2.10', '"2001:db8:2::10"'));
  assert.ok(
    e.some((i) => i.path === 'services.sstp[0].pool' && /no IPv4 backend/.test(i.message)),
    JSON.stringify(e),
  );
});
