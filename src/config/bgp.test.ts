import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { checkConfigText, formatIssue } from './load-config.js';
import { localBgpNode } from './bgp.js';
import type { HostView } from './ha.js';
import { REPO_ROOT } from '../../lab/vpnlb-process.js';

const FARM = readFileSync(join(REPO_ROOT, 'test/fixtures/ecmp.yaml'), 'utf8');
const ELSEWHERE: HostView = { hasInterface: () => false, isLocalAddress: () => false };
const ON_LB2: HostView = { hasInterface: () => true, isLocalAddress: (a) => a === '198.18.0.3' };

const errors = (text: string) =>
  checkConfigText(text, 'farm.yaml', ELSEWHERE)
    .issues.filter((i) => i.severity === 'error')
    .map((i) => formatIssue('farm.yaml', i));

test('bgp: the example farm loads with defaults; every service VIP is announced, IPv4 first', () => {
  const r = checkConfigText(FARM, 'farm.yaml', ELSEWHERE);
  assert.deepEqual(
    r.issues.filter((i) => i.severity === 'error'),
    [],
  );
  const bgp = r.config?.bgp;
  assert.ok(bgp);
  assert.deepEqual(
    bgp.announce.map((a) => [a.prefix, a.services]),
    [
      ['198.19.0.1/32', ['ike4']],
      ['2001:db8:ffff::1/128', ['ike6']],
    ],
  );
  assert.equal(bgp.holdTime, 3000);
  assert.equal(bgp.bfd, true);
  assert.equal(bgp.replyNat, true);
  assert.deepEqual(
    bgp.nodes[2]!.peers.map((p) => `${p.name}/${p.family}`),
    ['edge/4', 'edge-v6/6', 'edge2/4'],
  );
  assert.ok(Object.isFrozen(bgp.nodes));
  assert.equal(localBgpNode(bgp, undefined, ON_LB2)?.name, 'lb2');
  assert.equal(localBgpNode(bgp, 'lb3', ON_LB2)?.name, 'lb3');
  assert.equal(localBgpNode(bgp, undefined, ELSEWHERE), undefined);
});

test('bgp: identical router ids are an error at the second node, with its line', () => {
  assert.deepEqual(errors(FARM.replace('routerId: 198.18.0.3', 'routerId: 198.18.0.2')), [
    "farm.yaml:21:30: error: bgp.nodes[1].routerId: router id 198.18.0.2 is also bgp.nodes[0]'s: every node needs its own (a router drops a session from an identifier it already has)",
  ]);
  assert.match(
    errors(FARM.replace('routerId: 198.18.0.3', 'routerId: "2001:db8::3"')).join(),
    /bgp\.nodes\[1\]\.routerId: "2001:db8::3" is not a router id: write it as an IPv4 address/,
  );
});

test('bgp: a peer address of no known family, and a VIP not covered by any service', () => {
  const text = FARM.replace(
    'peers: [{ name: edge2, address: 198.18.3.1,',
    'peers: [{ name: edge2, address: rtr.example,',
  ).replace('  runDir: /run/vpnlb-bgp', '  announce: [198.19.0.1, 198.19.0.9]');
  const got = errors(text);
  assert.equal(got.length, 2, got.join('\n'));
  assert.match(
    got[0]!,
    /^farm\.yaml:22:\d+: error: bgp\.nodes\[2\]\.peers\[0\]\.address: "rtr\.example" is not an IPv4 or IPv6 address: a BGP peer needs an IPv4 or IPv6 address/,
  );
  assert.match(
    got[1]!,
    /^farm\.yaml:26:\d+: error: bgp\.announce\[1\]: 198\.19\.0\.9 is not the virtual IP of any service \(198\.19\.0\.1, 2001:db8:ffff::1\)/,
  );
  // The only IPv4 peer of lb1 and lb2 unusable: the IPv4 VIP has nowhere to go from them.
  assert.match(
    errors(FARM.replace('address: 198.18.0.1, asn', 'address: 198.18.0.1.5, asn')).join('\n'),
    /bgp: 198\.19\.0\.1 is IPv4 but node lb1 has no IPv4 peer/,
  );
});

test('bgp: an IPv6 VIP needs an IPv6 peer on every node; private ASNs are fine; timers and names', () => {
  const noV6 = FARM.replace('    - { name: edge-v6, address: "2001:db8:a::1", asn: 65000 }\n', '');
  const got = errors(noV6);
  assert.equal(got.length, 3, got.join('\n'));
  for (const [i, n] of ['lb1', 'lb2', 'lb3'].entries())
    assert.match(
      got[i]!,
      new RegExp(`bgp: 2001:db8:ffff::1 is IPv6 but node ${n} has no IPv6 peer`),
    );
  assert.deepEqual(errors(FARM.replace('asn: 65001', 'asn: 4200000001')), []);
  const bad = FARM.replace(
    '  runDir: /run/vpnlb-bgp',
    '  holdTime: 2s\n  keepaliveTime: 5s\n  node: lb9',
  )
    .replace('name: lb2,', 'name: lb1,')
    .replace('asn: 65002', 'asn: 65001');
  const lines = errors(bad).map((l) => l.replace(/^farm\.yaml:\d+:\d+: error: /, ''));
  assert.deepEqual(lines.sort(), [
    'bgp.holdTime: holdTime must be whole seconds from 3s to 65535s (RFC 4271 §4.2; got 2000 ms)',
    'bgp.keepaliveTime: keepaliveTime (5000 ms) must be shorter than holdTime (2000 ms)',
    'bgp.node: "lb9" is not one of bgp.nodes (lb1, lb3)',
    'bgp.nodes[1].name: duplicate node name "lb1" (also bgp.nodes[0])',
    "bgp.nodes[2].peers[0].asn: peer AS 65001 is the nodes' own AS: vpnlb speaks eBGP to its routers (an iBGP router would not multipath the nodes' equal routes without extra configuration)",
  ]);
  assert.match(
    errors(
      FARM.replace('name: edge, address: 198.18.0.1', 'name: edge, adress: 198.18.0.1'),
    ).join(),
    /bgp\.peers\[0\]\.adress: unknown setting "adress" \(did you mean "address"\?\)/,
  );
});

test('bgp: reply NAT needs one virtual IP per server address and port', () => {
  const shared = FARM.replace(
    '    - { name: ike6,',
    '    - { name: ike4b, virtualIp: 198.19.0.2, pool: rras, table: vpnlb_b }\n    - { name: ike6,',
  );
  assert.match(
    errors(shared).join(),
    /services\.ikev2\[1\]\.pool: server 198\.18\.1\.11 port 500 also serves services\.ikev2\[0\] \(198\.19\.0\.1\)/,
  );
  assert.deepEqual(errors(shared.replace('  runDir: /run/vpnlb-bgp', '  replyNat: false')), []);
});

test('bgp: flow sync needs an admin URL on every node and a token; URLs are checked', () => {
  const withUrls = FARM.replace(
    '{ name: lb1, routerId: 198.18.0.2 }',
    '{ name: lb1, routerId: 198.18.0.2, adminUrl: "https://198.18.1.2:8443" }',
  )
    .replace(
      '{ name: lb2, routerId: 198.18.0.3 }',
      '{ name: lb2, routerId: 198.18.0.3, adminUrl: "https://198.18.1.3:8443" }',
    )
    .replace(
      '{ name: lb3, routerId: 198.18.0.4,',
      '{ name: lb3, routerId: 198.18.0.4, adminUrl: "https://198.18.1.4:8443",',
    );
  const admin =
    'admin: { listen: 0.0.0.0, port: 8443, readOnlyTokenFile: farm.token, tls: { cert: c.pem, key: k.pem } }\n';
  const r = checkConfigText(admin + withUrls, '/etc/vpnlb/farm.yaml', ELSEWHERE);
  assert.deepEqual(
    r.issues.filter((i) => i.severity === 'error'),
    [],
  );
  assert.deepEqual(r.config?.bgp?.flowSync, {
    interval: 1000,
    tokenFile: '/etc/vpnlb/farm.token',
    startupWait: 10_000,
  });
  assert.equal(r.config?.bgp?.nodes[1]?.adminUrl, 'https://198.18.1.3:8443');
  assert.equal(checkConfigText(FARM, 'farm.yaml', ELSEWHERE).config?.bgp?.flowSync, undefined);

  // No token to present.
  assert.match(
    errors(withUrls).join('\n'),
    /error: bgp: the nodes pull one another's flow state with a token: set admin.readOnlyTokenFile/,
  );
  // A node without a URL, a URL with a path, another scheme, a bad interval.
  const broken = (admin + withUrls)
    .replace(', adminUrl: "https://198.18.1.3:8443"', '')
    .replace('https://198.18.1.4:8443', 'https://198.18.1.4:8443/api')
    .replace('https://198.18.1.2:8443', 'ftp://198.18.1.2')
    .replace('runDir: /run/vpnlb-bgp', 'runDir: /run/vpnlb-bgp\n  flowSync: { interval: 10ms }');
  const e = errors(broken).join('\n');
  assert.match(e, /bgp\.nodes\[1\]: node lb2 has no adminUrl while bgp\.nodes\[0\] has one/);
  assert.match(
    e,
    /bgp\.nodes\[2\]\.adminUrl: "https:\/\/198.18.1.4:8443\/api": give the scheme, host and port only/,
  );
  assert.match(
    e,
    /bgp\.nodes\[0\]\.adminUrl: "ftp:\/\/198.18.1.2": the admin API speaks http or https, not ftp/,
  );
  assert.match(e, /bgp\.flowSync\.interval: interval must be from 100ms to 60s \(got 10 ms\)/);
  // flowSync without any URL; the admin API on loopback only is a warning.
  assert.match(
    errors(FARM.replace('runDir: /run/vpnlb-bgp', 'runDir: /run/vpnlb-bgp\n  flowSync: {}')).join(),
    /bgp\.flowSync: flowSync needs every node's admin API/,
  );
  const loopback = checkConfigText(
    'admin: { readOnlyTokenFile: farm.token }\n' + withUrls,
    'farm.yaml',
    ELSEWHERE,
  ).issues.filter((i) => i.severity === 'warning');
  assert.ok(
    loopback.some((i) => /the other nodes cannot pull this node's flow state/.test(i.message)),
  );
});
