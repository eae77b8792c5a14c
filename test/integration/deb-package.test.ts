/**
 * The Debian package (root): built from this tree with packaging/deb/build-deb.sh, checked by
 * lintian (only the explained overrides of packaging/deb/lintian-overrides remain), then
 * installed into a copy of the clean Debian 12 root by packaging/deb/check-deb.sh, which runs
 * the installed `vpnlb` there (check, demo), verifies the unit, runs the service's command line
 * with the unit's privileges, and removes the package: the nftables state must go with it.
 * Needs the Debian mirror (the package's Depends) on the first run of the clean root.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { hasFile, isRoot, requireOrSkip } from '../../lab/requirements.js';
import { REPO_ROOT } from '../../lab/vpnlb-process.js';

const execFileP = promisify(execFile);

const skip = requireOrSkip(
  'deb-package',
  isRoot('chroot, namespaces, dpkg'),
  hasFile('/usr/bin/dpkg-deb', 'dpkg'),
  hasFile('/usr/bin/lintian', 'lintian'),
  hasFile('/usr/sbin/debootstrap', 'debootstrap'),
  hasFile('/usr/bin/objdump', 'binutils'),
);

describe('Debian package: build, lintian, install into a clean Debian 12 root', {
  skip: skip || undefined,
  timeout: 1_800_000,
}, () => {
  let dir: string;
  let deb: string;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'vpnlb-deb-'));
    const { stdout } = await execFileP(
      'sh',
      [join(REPO_ROOT, 'packaging/deb/build-deb.sh'), '--no-build', dir],
      { maxBuffer: 64 << 20 },
    );
    deb = stdout.trim().split('\n').pop()!;
  });
  after(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('is named vpnlb_<version>_<arch>.deb and passes lintian (warnings included)', async () => {
    const version = (await import(join(REPO_ROOT, 'package.json'), { with: { type: 'json' } }))
      .default.version as string;
    assert.match(deb, new RegExp(`/vpnlb_${version.replace(/\./g, '\\.')}_amd64\\.deb$`));
    const r = await execFileP(
      'lintian',
      ['--fail-on', 'error,warning', '--tag-display-limit', '0', deb],
      { maxBuffer: 16 << 20 },
    ).catch((e: Error & { stdout?: string }) => ({ stdout: `FAILED: ${e.stdout ?? e.message}` }));
    assert.doesNotMatch(r.stdout, /^(E|W|FAILED):/m, r.stdout);
  });

  it("installs on a clean Debian 12 root; vpnlb runs there with the unit's privileges; removal leaves no nftables state", async () => {
    const { stdout } = await execFileP('sh', [join(REPO_ROOT, 'packaging/deb/check-deb.sh'), deb], {
      maxBuffer: 64 << 20,
      timeout: 1_500_000,
    }).catch((e: Error & { stdout?: string; stderr?: string }) => {
      throw new Error(`check-deb.sh failed: ${e.message}\n${e.stdout ?? ''}\n${e.stderr ?? ''}`);
    });
    const results = new Map(
      [...stdout.matchAll(/^check-deb: (.*)$/gm)].flatMap((m) =>
        [...m[1]!.matchAll(/(\w+)=(\S*(?: \S+)*?)(?= \w+=|$)/g)].map(
          (kv) => [kv[1]!, kv[2]!] as const,
        ),
      ),
    );
    const get = (k: string) => results.get(k) ?? `(no ${k} in:\n${stdout})`;
    assert.equal(get('vpnlb_path'), '/usr/bin/vpnlb');
    assert.equal(get('check'), 'ok');
    const demo = JSON.parse(get('demo')) as {
      phases: Record<string, { connected: number; splitHandshakes: number }>;
    };
    for (const p of Object.values(demo.phases)) {
      assert.ok(p.connected > 0, JSON.stringify(p));
      assert.equal(p.splitHandshakes, 0);
    }
    assert.equal(get('user'), 'vpnlb:vpnlb');
    assert.equal(get('shell'), '/usr/sbin/nologin');
    assert.equal(get('etc'), 'root:vpnlb:750');
    assert.match(get('conffile'), /\/etc\/vpnlb\/vpnlb\.yaml/);
    assert.equal(get('verify'), 'ok');
    const exposure = Number(get('exposure'));
    console.log(
      `# systemd-analyze security: exposure ${exposure} (0 = fully sandboxed, 10 = not at all)`,
    );
    assert.ok(
      exposure > 0 && exposure < 4,
      `exposure ${get('exposure')}: "OK" is below 4 in systemd-analyze's scale`,
    );
    assert.notEqual(get('run_uid'), '0');
    assert.equal(
      get('run_capeff'),
      '0000000000003400',
      'CAP_NET_BIND_SERVICE, CAP_NET_ADMIN, CAP_NET_RAW and nothing else',
    );
    assert.equal(get('table_programmed'), 'yes');
    assert.match(get('tables_after_kill'), /table ip vpnlb/);
    assert.equal(get('remove'), 'ok');
    assert.equal(get('tables_after_remove'), '', 'prerm (vpnlb stop) removed the nftables table');
    assert.equal(get('purge'), 'ok');
    assert.equal(get('user_after_purge'), 'absent');
    assert.equal(get('etc_after_purge'), 'absent');
  });
});
