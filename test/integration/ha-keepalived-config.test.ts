/**
 * keepalived itself reads the configuration `vpnlb ha render` writes (`keepalived --config-test`)
 * in a namespace holding the interfaces it names. keepalived accepts some configurations only in
 * part — a weighted tracker on an instance of a sync group is dropped with a message, the
 * instance keeping its priority — so the test fails on any message keepalived prints, not only
 * on its exit status: the drain (track_file weight -253) went unnoticed that way.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { canUseNamespaces, Topology } from '../../lab/netns.js';
import { hasFile, requireOrSkip } from '../../lab/requirements.js';
import { REPO_ROOT } from '../../lab/vpnlb-process.js';
import { checkConfigText } from '../../src/config/load-config.js';
import { renderNodeFiles } from '../../src/ha/render-pair.js';
import { KEEPALIVED_PATH } from '../../src/ha/supervisor.js';

const skip = requireOrSkip(
  'keepalived configuration test',
  canUseNamespaces(),
  hasFile(KEEPALIVED_PATH, 'keepalived'),
);

/**
 * The one message expected: keepalived warns that it runs scripts without `enable_script_security`
 * (the run directory's parents, e.g. /tmp in the lab, may be writable by others, which that mode
 * refuses). With it, `--config-test` exits 6 (KEEPALIVED_CHK_EXIT_CONFIG_TEST_SECURITY); any
 * other problem is 4 or 5.
 */
const EXPECTED =
  /^SECURITY VIOLATION - scripts are being executed but script_security not enabled\.$/;
const EXPECTED_EXIT = 6;

describe('keepalived accepts the rendered pair configuration in full', {
  skip,
  timeout: 120_000,
}, () => {
  for (const node of ['lb1', 'lb2']) {
    it(`node ${node}: no message but the script-security warning`, async () => {
      const dir = mkdtempSync(join(tmpdir(), 'vpnlb-kat-'));
      const topo = Topology.create('kat');
      try {
        const text = readFileSync(join(REPO_ROOT, 'test/fixtures/ha-pair.yaml'), 'utf8').replace(
          '  sync: { interface: sync0 }',
          `  runDir: ${dir}\n  sync: { interface: sync0 }`,
        );
        const r = checkConfigText(text, join(dir, 'vpnlb.yaml'), {
          hasInterface: () => true,
          isLocalAddress: () => false,
        });
        assert.ok(r.config, JSON.stringify(r.issues));
        const { files, paths } = renderNodeFiles(r.config, node);
        for (const [path, content] of files) writeFileSync(path, content);
        const ns = await topo.addNamespace(node, { forwarding: false });
        for (const ifName of ['outside0', 'inside0', 'sync0']) {
          await ns.exec('ip', [
            'link',
            'add',
            ifName,
            'type',
            'veth',
            'peer',
            'name',
            `${ifName}p`,
          ]);
          await ns.exec('ip', ['link', 'set', ifName, 'up']);
          await ns.exec('ip', ['link', 'set', `${ifName}p`, 'up']);
        }
        const { code, output } = await new Promise<{ code: number | null; output: string }>(
          (resolve) => {
            execFile(
              'ip',
              [
                'netns',
                'exec',
                ns.name,
                KEEPALIVED_PATH,
                '--config-test',
                '--use-file',
                paths.keepalivedConf,
                '--log-console',
                '--dont-fork',
              ],
              { timeout: 60_000 },
              (err, stdout, stderr) => {
                resolve({
                  code: err ? ((err as { code?: number }).code ?? 1) : 0,
                  output: `${stdout}${stderr}`,
                });
              },
            );
          },
        );
        const messages = output
          .split('\n')
          .map((l) => l.trim())
          .filter((l) => l !== '' && !EXPECTED.test(l));
        assert.deepEqual(messages, [], output);
        assert.equal(code, output.trim() === '' ? 0 : EXPECTED_EXIT, output);
      } finally {
        await topo.destroy();
        rmSync(dir, { recursive: true, force: true });
      }
    });
  }
});
