/** `node dist/bench/render.js`: re-renders docs/benchmarks.md from bench/results/latest.json. */
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readAnalysis, renderMarkdown, type BenchResults } from './lib/report.js';

const here = dirname(fileURLToPath(import.meta.url));
const REPO = resolve(here, here.includes('/dist/') ? '../..' : '..');
const results = JSON.parse(
  readFileSync(join(REPO, 'bench/results/latest.json'), 'utf8'),
) as BenchResults;
writeFileSync(join(REPO, 'docs/benchmarks.md'), renderMarkdown(results, readAnalysis(REPO)));
