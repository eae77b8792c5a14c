/**
 * Golden files of the kernel SSTP rulesets (IPv4 source-ip, IPv6 persistence none) and the
 * placement they encode: the jhash of the source address lands in the slot decide() names, so
 * `vpnlb which` answers for the kernel too. Regenerate after a deliberate change with
 * `UPDATE_GOLDEN=1 node --import tsx --test src/dataplane/kernel/render-sstp.test.ts`.
 * (test/integration/kernel-dataplane.test.ts loads every golden file into the real nft.)
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadConfigText } from '../../config/load-config.js';
import { assignBackendIds } from './render-ruleset.js';
import { renderSstpRuleset, sstpCtTimeoutName, sstpHashKey } from './render-sstp.js';

const here = dirname(fileURLToPath(import.meta.url));
const goldenDir = existsSync(join(here, 'golden'))
  ? join(here, 'golden')
  : resolve(here, '../../../../src/dataplane/kernel/golden');

const yaml = (vip: string, a: string, b: string, extra: string) => `
pools:
  rras:
    backends:
      - { name: rras-1, address: "${a}" }
      - { name: rras-2, address: "${b}" }
services:
  sstp:
    - { name: sstp, virtualIp: "${vip}", pool: rras, dataplane: kernel, hashSeed: 4660${extra} }
`;

const CASES: Record<string, string> = {
  'sstp-ipv4-source-ip': yaml('198.19.0.1', '198.18.2.10', '198.18.2.11', ''),
  'sstp-ipv6-none': yaml(
    '2001:db8:ff::1',
    '2001:db8:2::10',
    '2001:db8:2::11',
    ', persistence: none, port: 8443, backendPort: 443, idleTimeout: 300',
  ),
};

for (const [name, text] of Object.entries(CASES)) {
  test(`kernel SSTP ruleset golden: ${name}`, () => {
    const config = loadConfigText(text);
    const service = config.services.sstp[0]!;
    const out = renderSstpRuleset({
      service,
      backends: assignBackendIds(config.pools.rras!.backends),
    });
    const file = join(goldenDir, `${name}.nft`);
    if (process.env.UPDATE_GOLDEN === '1') writeFileSync(file, out);
    assert.equal(out, readFileSync(file, 'utf8'));
  });
}

test('kernel SSTP defaults: source-ip placement, maglev, its own table, idle timeout from idleTimeout', () => {
  const service = loadConfigText(CASES['sstp-ipv4-source-ip']!).services.sstp[0]!;
  assert.equal(service.persistence, 'source-ip');
  assert.equal(service.method, 'maglev');
  assert.equal(service.table, 'vpnlb_sstp');
  assert.equal(sstpHashKey(service), 'ip saddr');
  assert.equal(sstpCtTimeoutName(service), 'tcp_900');
  const v6 = loadConfigText(CASES['sstp-ipv6-none']!).services.sstp[0]!;
  assert.equal(sstpHashKey(v6), 'ip6 saddr . tcp sport');
  assert.equal(sstpCtTimeoutName(v6), 'tcp_300');
});
