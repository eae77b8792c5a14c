import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT } from '../../lab/vpnlb-process.js';

/** Every metric name declared in the sources (`name: 'vpnlb_...'`). */
function declaredMetrics(): Set<string> {
  const names = new Set<string>();
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir)) {
      const p = join(dir, entry);
      if (statSync(p).isDirectory()) walk(p);
      else if (p.endsWith('.ts') && !p.endsWith('.test.ts')) {
        for (const m of readFileSync(p, 'utf8').matchAll(/name:\s*'(vpnlb_[a-z0-9_]+)'/g))
          names.add(m[1]!);
      }
    }
  };
  walk(join(REPO_ROOT, 'src'));
  return names;
}

test('docs/metrics.md lists every metric the code declares', () => {
  const doc = readFileSync(join(REPO_ROOT, 'docs/metrics.md'), 'utf8');
  const declared = declaredMetrics();
  assert.ok(declared.size >= 4);
  for (const name of declared)
    assert.ok(doc.includes(`\`${name}\``), `${name} is missing from docs/metrics.md`);
});

test('metric names follow vpnlb_<area>_<what>, counters end in _total', () => {
  for (const name of declaredMetrics()) assert.match(name, /^vpnlb_[a-z0-9]+_[a-z0-9_]+$/);
});
