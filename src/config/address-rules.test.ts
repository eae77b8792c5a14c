import { test } from 'node:test';
import assert from 'node:assert/strict';
import { canonicalAddress, checkUnicastAddress } from './address-rules.js';

test('unspecified, multicast, broadcast and zone-ID addresses are refused with the reason', () => {
  for (const [a, why] of [
    ['0.0.0.0', /unspecified/],
    ['::', /unspecified/],
    ['0:0::0', /unspecified/],
    ['::ffff:0.0.0.0', /unspecified/],
    ['224.0.0.1', /multicast/],
    ['239.255.255.250', /multicast/],
    ['ff02::1', /multicast/],
    ['FF05::2', /multicast/],
    ['255.255.255.255', /broadcast/],
    ['fe80::1%eth0', /zone ID/],
    ['198.18.1.10 ', /not an IPv4/],
  ] as const) {
    const r = checkUnicastAddress(a);
    assert.ok('problem' in r, `${a} accepted`);
    assert.match(r.problem, why, a);
  }
});

test('canonical forms: one spelling per host', () => {
  assert.equal(canonicalAddress('::ffff:198.18.1.10'), '198.18.1.10');
  assert.equal(canonicalAddress('::FFFF:C612:010A'), '198.18.1.10');
  assert.equal(canonicalAddress('2001:DB8:0:0:0:0:0:1'), '2001:db8::1');
  assert.equal(canonicalAddress('198.18.1.10'), '198.18.1.10');
  const ok = checkUnicastAddress('::1');
  assert.ok(!('problem' in ok) && ok.isLoopback);
  const v4 = checkUnicastAddress('127.0.0.5');
  assert.ok(!('problem' in v4) && v4.isLoopback && v4.family === 4);
});
