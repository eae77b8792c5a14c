import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { checkConfigText, formatIssue } from './load-config.js';
import { localNode, parseCidr, type HostView } from './ha.js';
import { REPO_ROOT } from '../../lab/vpnlb-process.js';

const PAIR = readFileSync(join(REPO_ROOT, 'test/fixtures/ha-pair.yaml'), 'utf8');
/** A host that is none of the nodes: interfaces cannot be checked. */
const ELSEWHERE: HostView = { hasInterface: () => false, isLocalAddress: () => false };
/** Node lb1 with its three interfaces. */
const ON_LB1: HostView = {
  hasInterface: (n) => ['sync0', 'outside0', 'inside0'].includes(n),
  isLocalAddress: (a) => a === '198.18.2.1',
};

const errors = (text: string, host: HostView = ELSEWHERE) =>
  checkConfigText(text, 'pair.yaml', host)
    .issues.filter((i) => i.severity === 'error')
    .map((i) => formatIssue('pair.yaml', i));

test('ha: the example pair loads with defaults; outside VIPs default to the services', () => {
  const r = checkConfigText(PAIR, 'pair.yaml', ON_LB1);
  assert.deepEqual(
    r.issues.filter((i) => i.severity === 'error'),
    [],
  );
  const ha = r.config?.ha;
  assert.ok(ha);
  assert.deepEqual(ha.vrrp.outside.addresses, ['198.19.0.1/32']);
  assert.deepEqual(ha.vrrp.inside.addresses, ['198.18.1.1/24', '2001:db8:1::1/64']);
  assert.equal(ha.vrrp.advertInterval, 1000);
  assert.equal(ha.sync.port, 3780);
  assert.equal(ha.conntrackUdpTimeout, 3_600_000);
  assert.ok(Object.isFrozen(ha.nodes));
  assert.equal(localNode(ha, undefined, ON_LB1)?.self.name, 'lb1');
  assert.equal(localNode(ha, undefined, ON_LB1)?.peer.name, 'lb2');
  assert.equal(localNode(ha, 'lb2', ON_LB1)?.self.name, 'lb2');
  assert.equal(localNode(ha, undefined, ELSEWHERE), undefined);
});

test('ha: the same priority on both nodes is an error at the second node, with its line', () => {
  const text = PAIR.replace('priority: 100', 'priority: 150');
  assert.deepEqual(errors(text), [
    'pair.yaml:15:30: error: ha.nodes[1].priority: both nodes have priority 150: give the node that should normally be active the higher one',
  ]);
});

test('ha: a sync address overlapping a service or server address, and a shared sync interface', () => {
  const text = PAIR.replace('syncAddress: 198.18.2.2', 'syncAddress: 198.19.0.1').replace(
    'sync: { interface: sync0 }',
    'sync: { interface: inside0 }',
  );
  const got = errors(text);
  assert.equal(got.length, 2, got.join('\n'));
  assert.match(
    got[0]!,
    /^pair\.yaml:15:48: error: ha\.nodes\[1\]\.syncAddress: sync address 198\.19\.0\.1 overlaps a service/,
  );
  assert.match(
    got[1]!,
    /^pair\.yaml:16:22: error: ha\.sync\.interface: the sync link must be dedicated, not the inside interface inside0/,
  );
  assert.match(
    errors(PAIR.replace('syncAddress: 198.18.2.1', 'syncAddress: 198.18.1.11')).join(),
    /ha\.nodes\[0\]\.syncAddress: sync address 198\.18\.1\.11 overlaps/,
  );
});

test('ha: an unknown interface is an error on a node of the pair, not elsewhere', () => {
  const text = PAIR.replace('interface: outside0', 'interface: eth9');
  assert.deepEqual(errors(text, ELSEWHERE), []);
  assert.deepEqual(errors(text, ON_LB1), [
    'pair.yaml:18:27: error: ha.vrrp.outside.interface: no interface "eth9" on this host (node lb1)',
  ]);
});

test('ha: outside addresses must cover every service VIP; inside needs its gateway; ids and intervals', () => {
  const text = PAIR.replace(
    'outside: { interface: outside0, virtualRouterId: 51 }',
    'outside: { interface: outside0, virtualRouterId: 52, addresses: [198.19.0.2/32, 198.19.0.9] }',
  )
    .replace(', addresses: [198.18.1.1/24, "2001:db8:1::1/64"]', '')
    .replace('  vrrp:\n', '  vrrp:\n    advertInterval: 500ms\n');
  const got = errors(text).map((l) => l.replace(/^pair\.yaml:\d+:\d+: error: /, ''));
  assert.deepEqual(
    got.sort(),
    [
      'ha.vrrp.advertInterval: advertInterval must be whole seconds from 1s to 255s (got 500 ms)',
      'ha.vrrp.inside.virtualRouterId: the inside instance reuses virtual router id 52 of the outside one',
      'ha.vrrp.inside: missing "addresses": the inside gateway address(es) the VPN servers route through (transparent mode needs the return path to follow the active node)',
      'ha.vrrp.outside.addresses: service virtual IP 198.19.0.1 (services.ikev2[0].virtualIp) is not among the outside VRRP addresses: both nodes would claim it, or neither',
      'ha.vrrp.outside.addresses[1]: "198.19.0.9" is not an address with prefix length (198.19.0.1/32, 2001:db8::1/64)',
    ].sort(),
  );
});

test('ha: schema errors (three nodes, unknown setting, node not in nodes)', () => {
  const three = PAIR.replace(
    '  sync:',
    '    - { name: lb3, priority: 50, syncAddress: 198.18.2.3 }\n  sync:',
  ).replace('  sync:', '  node: lb9\n  sync:');
  const got = errors(three).join('\n');
  assert.match(got, /ha\.nodes: at most 2 entries \(got 3\)/);
  assert.match(got, /ha\.node: "lb9" is not one of ha\.nodes/);
  assert.match(
    errors(
      PAIR.replace('sync: { interface: sync0 }', 'sync: { interface: sync0, prot: 1 }'),
    ).join(),
    /ha\.sync\.prot: unknown setting "prot" \(did you mean "port"\?\)/,
  );
});

test('parseCidr', () => {
  assert.deepEqual(parseCidr('198.19.0.1/32'), { address: '198.19.0.1', prefix: 32, family: 4 });
  assert.deepEqual(parseCidr('2001:db8::1/64'), { address: '2001:db8::1', prefix: 64, family: 6 });
  assert.equal(parseCidr('198.19.0.1/33'), undefined);
  assert.equal(parseCidr('198.19.0.1'), undefined);
});

test('ha: an interface that drops its IPv6 addresses on link down is a warning on the node itself', () => {
  const warnings = (host: HostView) =>
    checkConfigText(PAIR, 'pair.yaml', host)
      .issues.filter((i) => i.severity === 'warning' && /keep_addr_on_down/.test(i.message))
      .map((i) => formatIssue('pair.yaml', i));
  const dropped = warnings({ ...ON_LB1, keepsIpv6OnLinkDown: () => false });
  // Only the inside instance has IPv6 addresses in the example.
  assert.equal(dropped.length, 1, dropped.join('\n'));
  assert.match(dropped[0]!, /ha\.vrrp\.inside\.interface/);
  assert.match(dropped[0]!, /inside0 drops its IPv6 addresses when its link goes down/);
  assert.deepEqual(warnings({ ...ON_LB1, keepsIpv6OnLinkDown: () => true }), []);
  assert.deepEqual(warnings({ ...ON_LB1, keepsIpv6OnLinkDown: () => undefined }), []);
  // Elsewhere (not a node of the pair) nothing about this host's interfaces is said.
  assert.deepEqual(warnings({ ...ELSEWHERE, keepsIpv6OnLinkDown: () => false }), []);
});
