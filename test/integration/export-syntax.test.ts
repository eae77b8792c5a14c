/**
 * The nginx and HAProxy exports pass their own tools' checks: `nginx -t` (Debian nginx +
 * libnginx-mod-stream) and `haproxy -c` (Debian haproxy), for every example configuration and
 * src/export/testdata/everything.yaml, with real certificate files where a service terminates TLS.
 *
 * `haproxy -c` only parses. `nginx -t` also binds every listen address (it opens the listening
 * sockets as a start would), so it runs inside a namespace of its own with non-local binding
 * allowed: the virtual IPs (198.19.0.0/16, 2001:db8::/32) exist nowhere, and no packet is sent.
 * A broken copy of each file must fail the same check, so a check that passes everything would
 * fail this test.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { after, describe, test } from 'node:test';
import { canUseNamespaces, Topology, type Namespace } from '../../lab/netns.js';
import { hasFile, requireOrSkip } from '../../lab/requirements.js';
import { generateTestCertificate } from '../../src/sim/rras/sstp-certs.js';
import { REPO_ROOT } from '../../lab/vpnlb-process.js';
import { loadConfigFile } from '../../src/config/load-config.js';
import { selectServices } from '../../src/export/export-format.js';
import { haproxyFormat } from '../../src/export/haproxy/render-haproxy.js';
import { nginxFormat } from '../../src/export/nginx/render-nginx.js';

const skipReason = requireOrSkip(
  'export-syntax',
  canUseNamespaces(),
  hasFile('/usr/sbin/nginx', 'nginx'),
  hasFile('/usr/lib/nginx/modules/ngx_stream_module.so', 'libnginx-mod-stream'),
  hasFile('/usr/sbin/haproxy', 'haproxy'),
);

const configs = [
  ...readdirSync(join(REPO_ROOT, 'examples'))
    .filter((f) => f.endsWith('.yaml'))
    .map((f) => join(REPO_ROOT, 'examples', f)),
  join(REPO_ROOT, 'src/export/testdata/everything.yaml'),
];
const work = mkdtempSync(join(tmpdir(), 'vpnlb-export-syntax-'));
let topo: Topology | undefined;
let checker: Promise<Namespace> | undefined;
after(async () => {
  await topo?.destroy();
  rmSync(work, { recursive: true, force: true });
});

/** A namespace where nginx may bind the virtual IPs without owning them. */
function nginxNamespace(): Promise<Namespace> {
  checker ??= (async () => {
    topo = Topology.create('xport');
    const ns = await topo.addNamespace('check', { forwarding: false });
    await ns.exec('sysctl', ['-qw', 'net.ipv4.ip_nonlocal_bind=1']);
    await ns.exec('sysctl', ['-qw', 'net.ipv6.ip_nonlocal_bind=1']);
    return ns;
  })();
  return checker;
}

/** Runs a command; resolves with its exit code and combined output (never rejects on exit != 0). */
function runTool(
  cmd: string,
  args: readonly string[],
  cwd: string,
): Promise<{ code: number; output: string }> {
  return new Promise((resolve) => {
    execFile(cmd, [...args], { cwd }, (err, stdout, stderr) => {
      resolve({
        code: err ? Number((err as { code?: number }).code ?? 1) : 0,
        output: `${stdout}${stderr}`,
      });
    });
  });
}

/** Copies the configuration into its own directory with a real certificate and key at each tls path. */
function stage(file: string): string {
  const dir = join(work, basename(file, '.yaml'));
  mkdirSync(dir, { recursive: true });
  const copy = join(dir, basename(file));
  cpSync(file, copy);
  const config = loadConfigFile(file);
  for (const s of config.services.sstp) {
    if (!s.tls) continue;
    const cert = generateTestCertificate('vpn.example.test');
    try {
      for (const [from, to] of [
        [cert.certPath, s.tls.cert],
        [cert.keyPath, s.tls.key],
      ] as const) {
        const target = join(dir, to.slice(dirname(file).length + 1));
        mkdirSync(dirname(target), { recursive: true });
        cpSync(from, target);
      }
    } finally {
      cert.dispose();
    }
  }
  return copy;
}

describe('exports pass nginx -t and haproxy -c', { skip: skipReason || undefined }, () => {
  for (const file of configs) {
    const name = basename(file, '.yaml');

    test(`nginx -t: ${name}`, async () => {
      const copy = stage(file);
      const config = loadConfigFile(copy);
      const text = nginxFormat.render(selectServices(config, undefined, dirname(copy)));
      const conf = join(dirname(copy), 'nginx.conf');
      writeFileSync(conf, text);
      const ns = await nginxNamespace();
      const check = (path: string) =>
        runTool(
          'ip',
          ['netns', 'exec', ns.name, 'nginx', '-t', '-q', '-e', 'stderr', '-c', path],
          dirname(copy),
        );
      const good = await check(conf);
      assert.equal(good.code, 0, good.output);
      const broken = join(dirname(copy), 'nginx-broken.conf');
      writeFileSync(broken, text.replace('stream {', 'stream {\n    listne 1;'));
      assert.notEqual((await check(broken)).code, 0, 'a misspelt directive fails the check');
    });

    test(`haproxy -c: ${name}`, async () => {
      const copy = stage(file);
      const config = loadConfigFile(copy);
      const text = haproxyFormat.render(selectServices(config, undefined, dirname(copy)));
      const cfg = join(dirname(copy), 'haproxy.cfg');
      writeFileSync(cfg, text);
      const good = await runTool('haproxy', ['-c', '-f', cfg], dirname(copy));
      if (config.services.sstp.length === 0) {
        // Nothing for HAProxy to listen on (IKEv2 only): valid, and says so with exit 2.
        assert.match(good.output, /has no error but will not start \(no listener\)/, good.output);
      } else {
        assert.equal(good.code, 0, good.output);
        assert.match(good.output, /Configuration file is valid/);
      }
      const broken = join(dirname(copy), 'haproxy-broken.cfg');
      writeFileSync(broken, text.replace('defaults\n', 'defaults\n    tiemout client 1s\n'));
      const bad = await runTool('haproxy', ['-c', '-f', broken], dirname(copy));
      assert.doesNotMatch(
        bad.output,
        /Configuration file is valid|has no error/,
        'a misspelt keyword fails the check',
      );
    });
  }
});
