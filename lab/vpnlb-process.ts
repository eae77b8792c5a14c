/**
 * How lab code and tests start the vpnlb CLI as a separate process, both from the compiled
 * tree (dist/, what CI runs) and from sources under tsx (development).
 */
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const isSource = import.meta.url.endsWith('.ts');
/** The repository root, from lab/ (sources) or dist/lab/ (compiled). */
export const REPO_ROOT = resolve(here, isSource ? '..' : '../..');

/** argv to spawn `vpnlb ARGS...`: `[node, ...]`. */
export function vpnlbArgv(args: readonly string[]): string[] {
  if (isSource)
    return [process.execPath, '--import', 'tsx', join(REPO_ROOT, 'src/cli/run-cli.ts'), ...args];
  const bin = join(REPO_ROOT, 'bin/vpnlb.js');
  if (!existsSync(bin)) throw new Error(`missing ${bin}`);
  return [process.execPath, bin, ...args];
}

/**
 * argv to run a lab module as a script (`[node, ...]`), given its URL as the importing module
 * computes it from sources or from dist/: `.ts` runs under tsx.
 */
export function labScriptArgv(moduleUrl: URL, args: readonly string[]): string[] {
  const path = fileURLToPath(moduleUrl);
  return path.endsWith('.ts')
    ? [process.execPath, '--import', 'tsx', path, ...args]
    : [process.execPath, path, ...args];
}
