/**
 * One suite for every export format: golden files for every example configuration (and
 * `testdata/everything.yaml`) × every format, and the rules each renderer must keep — every
 * server and virtual IP present, and a "no equivalent" comment wherever a vpnlb feature has none.
 * Update the golden files after an intended change:
 * `UPDATE_GOLDEN=1 node --test dist/src/export/export.test.js` (writes into src/export/golden).
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { describe, test } from 'node:test';
import { REPO_ROOT } from '../../lab/vpnlb-process.js';
import { loadConfigFile } from '../config/load-config.js';
import type { Config } from '../config/types.js';
import { selectServices, type ExportInput } from './export-format.js';
import { EXPORT_FORMATS } from './formats.js';

const root = REPO_ROOT;
const goldenDir = join(root, 'src/export/golden');
const EXPORT_CONFIGS: readonly string[] = [
  ...readdirSync(join(root, 'examples'))
    .filter((f) => f.endsWith('.yaml'))
    .map((f) => join(root, 'examples', f)),
  join(root, 'src/export/testdata/everything.yaml'),
];

function inputFor(file: string, service?: string): ExportInput {
  const config: Config = loadConfigFile(file);
  return selectServices(config, service, dirname(resolve(file)));
}

for (const format of EXPORT_FORMATS) {
  describe(`export --format ${format.name}`, () => {
    for (const file of EXPORT_CONFIGS) {
      const name = basename(file, '.yaml');
      test(`golden: ${name}`, () => {
        const text = format.render(inputFor(file));
        const golden = join(goldenDir, `${name}.${format.name}.${format.extension}`);
        if (process.env.UPDATE_GOLDEN === '1') writeFileSync(golden, text);
        assert.equal(text, readFileSync(golden, 'utf8'));
      });

      test(`${name}: every server, virtual IP and missing feature is in the output`, () => {
        const input = inputFor(file);
        const text = format.render(input);
        assert.equal(format.render(input), text, 'pure: the same input gives the same text');
        for (const s of [...input.ikev2, ...input.sstp]) {
          assert.ok(text.includes(s.virtualIp), `${s.name}: virtual IP ${s.virtualIp}`);
          for (const b of input.config.pools[s.pool]?.backends ?? [])
            assert.ok(text.includes(b.address), `${s.name}: server ${b.address}`);
        }
        const noEquivalent = text.split('\n').filter((l) => l.includes('no equivalent:'));
        const says = (what: RegExp, why: string) =>
          assert.ok(
            noEquivalent.some((l) => what.test(l)),
            `${why}: no "no equivalent" comment in\n${noEquivalent.join('\n')}`,
          );
        for (const s of input.ikev2) {
          if (s.affinity === 'ike-spi') says(/IKE-SPI/, `${s.name} uses IKE-SPI affinity`);
          if (s.method === 'maglev') says(/Maglev/, `${s.name} uses Maglev`);
          if (input.config.monitors[s.monitor ?? '']?.type === 'ikev2')
            says(/stateless IKEv2 probe/, `${s.name} uses the IKEv2 probe`);
        }
        for (const s of input.sstp)
          if (s.method === 'maglev' && s.persistence === 'none')
            says(/Maglev/, `${s.name} uses Maglev`);
      });
    }

    test('--service keeps only the named service', () => {
      const file = join(root, 'examples/rras-farm.yaml');
      const text = format.render(inputFor(file, 'aovpn-sstp'));
      assert.match(text, /aovpn-sstp/);
      assert.doesNotMatch(text, /aovpn-ike/);
    });
  });
}

test('selectServices: an unknown service is a usage error that lists the services', () => {
  const config = loadConfigFile(join(root, 'examples/rras-farm.yaml'));
  assert.throws(
    () => selectServices(config, 'nope', root),
    (err: Error & { code?: string }) => {
      assert.equal(err.code, 'VPNLB_CLI_USAGE');
      assert.match(err.message, /no service named "nope".*aovpn-ike, aovpn-sstp/);
      return true;
    },
  );
});

test('every golden file belongs to a configuration and a format (none left over)', () => {
  const expected = new Set(
    EXPORT_CONFIGS.flatMap((f) =>
      EXPORT_FORMATS.map((x) => `${basename(f, '.yaml')}.${x.name}.${x.extension}`),
    ),
  );
  assert.deepEqual(
    readdirSync(goldenDir).filter((f) => !expected.has(f)),
    [],
  );
});

test('kemp: every export is a shell script that sh -n accepts', () => {
  for (const file of EXPORT_CONFIGS) {
    const text = EXPORT_FORMATS.find((f) => f.name === 'kemp')?.render(inputFor(file)) ?? '';
    execFileSync('sh', ['-n'], { input: text });
    assert.throws(() =>
      execFileSync('sh', ['-n'], {
        input: `${text}\nif then\n`,
        stdio: ['pipe', 'ignore', 'ignore'],
      }),
    );
  }
});
