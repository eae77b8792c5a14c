/**
 * A lab stopped by a signal leaves nothing behind: a process that built a topology (a namespace
 * with a daemon inside) and is then sent SIGTERM or SIGINT removes the namespace and kills the
 * daemon before it dies of that signal (lab/netns.ts). What a runner's timeout or an operator's
 * Ctrl-C does to `vpnlb lab`.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { once } from 'node:events';
import { pathToFileURL } from 'node:url';
import { join } from 'node:path';
import { canUseNamespaces } from '../../lab/netns.js';
import { requireOrSkip } from '../../lab/requirements.js';
import { REPO_ROOT } from '../../lab/vpnlb-process.js';

const skip = requireOrSkip('lab clean-up test', canUseNamespaces());

const CHILD = `
const { Topology } = await import(process.argv[1]);
const topo = Topology.create('lclean');
const ns = await topo.addNamespace('a');
const daemon = ns.spawn('sleep', ['300']);
await new Promise((r) => setTimeout(r, 300));
const pids = (await ns.exec('ip', ['netns', 'pids', ns.name])).trim();
console.log(JSON.stringify({ ns: ns.name, pids: pids.split(/\\s+/) }));
setInterval(() => {}, 1000);
`;

/** Whether the process runs (a zombie waiting to be reaped has ended). */
const runs = (pid: number) => {
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
};

describe('a lab stopped by a signal removes its namespaces and their processes', { skip }, () => {
  for (const sig of ['SIGTERM', 'SIGINT'] as const) {
    it(sig, async () => {
      const url = pathToFileURL(join(REPO_ROOT, 'dist/lab/netns.js')).href;
      const child = spawn(process.execPath, ['--input-type=module', '-e', CHILD, url], {
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      let out = '';
      child.stdout.on('data', (b: Buffer) => {
        out += b.toString();
      });
      const deadline = Date.now() + 30_000;
      while (!out.includes('\n') && Date.now() < deadline)
        await new Promise((r) => setTimeout(r, 50));
      const { ns, pids } = JSON.parse(out) as { ns: string; pids: string[] };
      assert.ok(pids.length > 0, 'the daemon runs inside the namespace');
      assert.match(execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' }), new RegExp(ns));
      child.kill(sig);
      const [code, signal] = (await once(child, 'exit')) as [number | null, string | null];
      assert.equal(signal, sig, `died of ${sig} (exit code ${code})`);
      assert.doesNotMatch(
        execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' }),
        new RegExp(ns),
      );
      // SIGKILL is delivered, not awaited: give the kernel a moment to end them.
      const until = Date.now() + 5000;
      while (pids.some((p) => runs(Number(p))) && Date.now() < until)
        await new Promise((r) => setTimeout(r, 50));
      for (const pid of pids) assert.equal(runs(Number(pid)), false, `pid ${pid} still runs`);
    });
  }
});
