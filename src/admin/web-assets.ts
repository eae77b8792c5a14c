/**
 * The dashboard's files, served by vpnlb itself (the admin host may have no Internet): the page,
 * its script and style from `web/`, and the charting library from its npm package. Read once,
 * at first use; nothing else on disk can be reached through `/assets/`.
 */
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface Asset {
  readonly contentType: string;
  readonly body: Buffer;
}

const TYPES: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
};

/** The repository (package) root: the nearest ancestor with a package.json (src/ or dist/src/). */
function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) {
    const up = dirname(dir);
    if (up === dir) throw new Error('vpnlb: cannot find the package root (web assets)');
    dir = up;
  }
  return dir;
}

/** Name served under /assets/ → file. The only files that can be served. */
function assetFiles(): Record<string, string> {
  const root = packageRoot();
  const web = join(root, 'web');
  const require = createRequire(join(root, 'package.json'));
  const files: Record<string, string> = {
    'index.html': join(web, 'index.html'),
    'app.js': join(web, 'app.js'),
    'app.css': join(web, 'app.css'),
    'icon.svg': join(web, 'icon.svg'),
  };
  for (const [name, spec] of Object.entries({
    'uplot.js': 'uplot/dist/uPlot.iife.min.js',
    'uplot.css': 'uplot/dist/uPlot.min.css',
  })) {
    try {
      files[name] = require.resolve(spec);
    } catch {
      /* the dashboard draws no charts without it; everything else works */
    }
  }
  return files;
}

export class WebAssets {
  #cache: Map<string, Asset> | undefined;

  get(name: string): Asset | undefined {
    if (!this.#cache) {
      this.#cache = new Map();
      for (const [n, file] of Object.entries(assetFiles())) {
        const ext = /\.[a-z]+$/.exec(n)?.[0] ?? '';
        try {
          this.#cache.set(n, {
            contentType: TYPES[ext] ?? 'application/octet-stream',
            body: readFileSync(file),
          });
        } catch {
          /* missing optional asset */
        }
      }
    }
    return this.#cache.get(name);
  }
}
