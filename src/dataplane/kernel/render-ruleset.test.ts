/**
 * Golden files of the rendered rulesets (IPv4/IPv6, ike-spi/source-ip, transparent/full NAT),
 * and pinned slot elements: a refactor that changes a rule or reshuffles the Maglev map (which
 * would move live clients) fails here. Regenerate after a deliberate change with
 * `UPDATE_GOLDEN=1 node --import tsx --test src/dataplane/kernel/render-ruleset.test.ts`.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync, existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadConfigText } from '../../config/load-config.js';
import type { Ikev2Service } from '../../config/types.js';
import { ConnectionCounts } from '../../balancer/balancer.js';
import { MaglevBalancer } from '../../balancer/maglev/maglev.js';
import {
  assignBackendIds,
  renderRuleset,
  renderSlotElements,
  nftFamilyOf,
} from './render-ruleset.js';
import { slotAddressesOf } from './map-update.js';

const here = dirname(fileURLToPath(import.meta.url));
// Goldens live next to the sources; from dist/ (compiled run) go back to the source tree.
const goldenDir = existsSync(join(here, 'golden'))
  ? join(here, 'golden')
  : resolve(here, '../../../../src/dataplane/kernel/golden');

function serviceOf(yaml: string): {
  service: Ikev2Service;
  backends: { name: string; address: string }[];
} {
  const config = loadConfigText(yaml);
  const service = config.services.ikev2[0] as Ikev2Service;
  const pool = config.pools[service.pool];
  assert.ok(pool);
  return { service, backends: pool.backends.map((b) => ({ name: b.name, address: b.address })) };
}

const V4 = `
pools:
  rras:
    backends:
      - { name: rras-1, address: 198.18.2.10 }
      - { name: rras-2, address: 198.18.2.11 }
      - { name: rras_2, address: 198.18.2.12 }
`;
const V6 = `
pools:
  rras:
    backends:
      - { name: rras-1, address: "2001:db8:2::10" }
      - { name: rras-2, address: "2001:db8:2::11" }
`;

const CASES: Record<string, string> = {
  'ipv4-ike-spi-transparent': `${V4}
services:
  ikev2:
    - { name: ike, virtualIp: 198.19.0.1, pool: rras, hashSeed: 4660 }
`,
  'ipv4-ike-spi-hash-transparent': `${V4}
services:
  ikev2:
    - { name: ike, virtualIp: 198.19.0.1, pool: rras, hashSeed: 4660, affinity: ike-spi-hash }
`,
  'ipv4-source-ip-transparent': `${V4}
services:
  ikev2:
    - { name: ike, virtualIp: 198.19.0.1, pool: rras, affinity: source-ip, backendIkePort: 1500, backendNatTPort: 14500, table: vpnlb_src }
`,
  'ipv4-ike-spi-full-nat': `${V4}
services:
  ikev2:
    - name: ike
      virtualIp: 198.19.0.1
      pool: rras
      nat: full
      snat: { addresses: [198.18.9.1, 198.18.9.2, 198.18.9.3] }
      persistenceTimeout: 10m
`,
  'ipv4-source-ip-masquerade': `${V4}
services:
  ikev2:
    - { name: ike, virtualIp: 198.19.0.1, pool: rras, affinity: source-ip, nat: full }
`,
  'ipv6-ike-spi-transparent': `${V6}
services:
  ikev2:
    - { name: ike6, virtualIp: "2001:db8::1", pool: rras }
`,
  'ipv6-source-ip-full-nat': `${V6}
services:
  ikev2:
    - { name: ike6, virtualIp: "2001:db8::1", pool: rras, affinity: source-ip, nat: full, snat: { addresses: ["2001:db8:9::1", "2001:db8:9::2"] } }
`,
};

for (const [name, yaml] of Object.entries(CASES)) {
  test(`golden: ${name}`, () => {
    const { service, backends } = serviceOf(yaml);
    const text = renderRuleset({ service, backends: assignBackendIds(backends) });
    const file = join(goldenDir, `${name}.nft`);
    if (process.env.UPDATE_GOLDEN === '1') writeFileSync(file, text);
    assert.equal(text, readFileSync(file, 'utf8'));
  });
}

test('backend ids are nft identifiers, unique, and independent of configuration order', () => {
  const a = assignBackendIds([
    { name: 'rras_2', address: 'x' },
    { name: 'rras-2', address: 'y' },
    { name: 'rras-1', address: 'z' },
  ]);
  assert.deepEqual(
    a.map((b) => [b.name, b.id]),
    [
      ['rras-1', 'rras_1'],
      ['rras-2', 'rras_2'],
      ['rras_2', 'rras_2_2'],
    ],
  );
  for (const b of a) assert.match(b.id, /^[a-zA-Z][a-zA-Z0-9_]*$/);
});

test('slot elements: the full map is pinned (count, hash, first entries)', () => {
  const { service, backends } = serviceOf(CASES['ipv4-ike-spi-transparent'] as string);
  const table = new MaglevBalancer({
    candidates: backends.map((b) => ({ ...b, weight: 1 })),
    seed: service.hashSeed,
    connections: new ConnectionCounts(),
  }).table;
  const addresses = slotAddressesOf(table);
  const slots = addresses.map((_, i) => i);
  const text = renderSlotElements('add', nftFamilyOf(service), service.table, slots, addresses);
  assert.equal(text.split('\n').filter(Boolean).length, Math.ceil(65537 / 4096));
  assert.ok(
    text.startsWith(
      'add element ip vpnlb slots { 0 : 198.18.2.12, 1 : 198.18.2.10, 2 : 198.18.2.12, 3 : ',
    ),
    text.slice(0, 100),
  );
  assert.equal(createHash('sha256').update(text).digest('hex').slice(0, 16), 'afb75f747f6dde79');
  assert.equal((text.match(/ : /g) ?? []).length, 65537);
});

test('slot elements: delete lists keys only; empty input renders nothing', () => {
  assert.equal(
    renderSlotElements('delete', 'ip6', 't', [3, 9], []),
    'delete element ip6 t slots { 3, 9 }\n',
  );
  assert.equal(renderSlotElements('add', 'ip', 't', [], []), '');
});

test('handshake integrity: in dnat_in a known SPI wins over the map, a dead SA is dropped first, IKE_SA_INIT never', () => {
  const { service, backends } = serviceOf(CASES['ipv4-ike-spi-transparent'] as string);
  const text = renderRuleset({ service, backends: assignBackendIds(backends) });
  const dnat = text.slice(text.indexOf('chain dnat_in'), text.indexOf('chain track')).split('\n');
  for (const [port, spi, exchange] of [
    [500, '@th,64,32 . @th,96,32', '@th,208,8'],
    [4500, '@th,96,32 . @th,128,32', '@th,240,8'],
  ] as const) {
    const at = (re: RegExp) =>
      dnat.findIndex((l) => l.includes(`udp dport ${port} `) && re.test(l));
    const live = dnat.filter(
      (l) => l.includes(`udp dport ${port} `) && l.includes(`${spi} @spi_rras`),
    );
    assert.equal(live.length, 3, `port ${port}: one rule per server`);
    const dead = at(/@spi_dead counter name ike_stale drop$/);
    assert.ok(
      dead > 0 && dnat[dead]!.includes(`${exchange} != 34`),
      `port ${port}: IKE_SA_INIT is exempt`,
    );
    assert.ok(
      at(new RegExp(`${spi.replace(/[.]/g, '\\.')} @spi_rras_2_2 dnat`)) < dead,
      `port ${port}: live SPI sets first`,
    );
    assert.ok(dead < at(/dnat to jhash/), `port ${port}: the dead drop precedes the hash`);
  }
  // Source-ip services have none of it.
  const src = serviceOf(CASES['ipv4-source-ip-transparent'] as string);
  assert.doesNotMatch(
    renderRuleset({ service: src.service, backends: assignBackendIds(src.backends) }),
    /spi_|ike_stale|ike_split/,
  );
});

test("client placement: an address that shows a second NAT-T flow (natt_shared) does not join its flows' server", () => {
  const { service, backends } = serviceOf(CASES['ipv4-ike-spi-transparent'] as string);
  const text = renderRuleset({ service, backends: assignBackendIds(backends) });
  assert.match(
    text,
    /set natt_flows \{\n\t\ttypeof ip saddr \. udp sport\n\t\tsize \d+\n\t\tflags dynamic,timeout\n\t\ttimeout 185s\n/,
  );
  assert.match(
    text,
    /set natt_addrs \{\n\t\ttypeof ip saddr\n\t\tsize \d+\n\t\tflags dynamic,timeout\n\t\ttimeout 180s\n/,
  );
  assert.match(
    text,
    /set natt_shared \{\n\t\ttypeof ip saddr\n\t\tsize \d+\n\t\tflags dynamic,timeout\n\t\ttimeout 180s\n/,
  );
  const dnat = text.slice(text.indexOf('chain dnat_in'), text.indexOf('chain track')).split('\n');
  const joins = dnat.filter((l) => /saddr @peer_/.test(l));
  assert.equal(joins.length, 6, 'one join rule per server and port');
  for (const l of joins) assert.match(l, /ip saddr != @natt_shared dnat to /);
  // A learnt miss serves one retry: the rule that places it deletes it.
  const learnt = dnat.filter((l) => /saddr @learn_/.test(l));
  assert.equal(learnt.length, 6);
  for (const l of learnt) {
    const set = /saddr @(learn_\w+)/.exec(l)![1];
    assert.match(l, new RegExp(`delete @${set} \\{ ip saddr \\} dnat to `));
  }
  // Every packet that refreshes peer_<server> from the client's side also records its flow
  // and its address, as the rule's last statements.
  const track = text.slice(text.indexOf('chain track')).split('\n');
  const refresh = track.filter((l) =>
    /ct direction original .*update @peer_\w+ \{ ip saddr \}/.test(l),
  );
  assert.equal(refresh.length, 9, 'IKE, NAT keepalive and ESP sample, per server');
  for (const l of refresh)
    assert.match(
      l,
      /update @peer_\w+ \{ ip saddr \} update @natt_flows \{ ip saddr \. udp sport \} update @natt_addrs \{ ip saddr \}$/,
    );
  // A known address with an unrecorded flow is shared, checked before any refresh records it.
  const shared = track.filter((l) => /update @natt_shared/.test(l));
  assert.equal(shared.length, 2, 'IKE and NAT keepalive');
  for (const l of shared)
    assert.match(
      l,
      /ip saddr @natt_addrs ip saddr \. udp sport != @natt_flows update @natt_shared \{ ip saddr \}$/,
    );
  assert.ok(
    track.findIndex((l) => /update @natt_shared/.test(l)) <
      track.findIndex((l) => /update @natt_flows/.test(l)),
  );
  // ike-spi-hash and source-ip have neither.
  for (const c of ['ipv4-ike-spi-hash-transparent', 'ipv4-source-ip-transparent'] as const) {
    const s = serviceOf(CASES[c] as string);
    assert.doesNotMatch(
      renderRuleset({ service: s.service, backends: assignBackendIds(s.backends) }),
      /natt_flows|natt_addrs|natt_shared/,
    );
  }
});

test('track: ESP leaves the chain after the counters, but for the sample that refreshes its address', () => {
  const { service, backends } = serviceOf(CASES['ipv4-ike-spi-transparent']!);
  const text = renderRuleset({ service, backends: assignBackendIds(backends) });
  const track = text
    .slice(text.indexOf('chain track'))
    .split('\n')
    .map((l) => l.trim());
  const idx = (re: RegExp) => track.findIndex((l) => re.test(l));
  const counterIn = idx(
    /^ct direction original .* counter name ip daddr map \{ 198\.18\.2\.10 : "b_rras_1_in"/,
  );
  const counterOut = idx(
    /^ct direction reply .* counter name ip saddr map \{ 198\.18\.2\.10 : "b_rras_1_out"/,
  );
  const espOut = idx(/udp dport 4500 @th,64,32 != 0 numgen random mod 32 != 0 return$/);
  const espBack = idx(/^ct direction reply .* udp sport 4500 @th,64,32 != 0 return$/);
  const firstUpdate = idx(/ (update|add|delete) @/);
  for (const i of [counterIn, counterOut, espOut, espBack]) assert.ok(i > 0);
  assert.ok(
    counterIn < espOut && counterOut < espOut && espBack < firstUpdate && espOut < firstUpdate,
  );
  // One counter rule per direction, whatever the number of servers.
  assert.equal(track.filter((l) => l.includes('counter name ip daddr map')).length, 1);
  // The sampled ESP that got through refreshes its address without sampling again.
  const sampled = track.filter((l) => /@th,64,32 != 0 update @peer_rras_1 /.test(l));
  assert.equal(sampled.length, 1);
  assert.ok(!track.some((l) => /numgen random mod 32 0/.test(l)));

  // source-ip keeps nothing per packet but the counters: no early return to render.
  const src = serviceOf(CASES['ipv4-source-ip-transparent']!);
  const srcText = renderRuleset({ service: src.service, backends: assignBackendIds(src.backends) });
  assert.ok(!srcText.includes(' return'));
});
