/**
 * Loads an optional native addon (native/udp-fastpath, native/tcp-splice, built by
 * scripts/setup.sh with node-gyp) — the way `ws` loads `bufferutil`: when it is missing or fails
 * to load, the caller gets the reason and keeps working in JavaScript. Shared by the relay's fast
 * path and the SSTP proxy's splice path.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export type AddonLoad<T> = { binding: T } | { unavailable: string };

export interface AddonSpec<T> {
  /** Where node-gyp puts the module, relative to the repository root. */
  readonly path: string;
  /** What the addon needs from the kernel, for the message on other platforms. */
  readonly needs: string;
  /** The functions the binding must export. */
  readonly functions: readonly (keyof T & string)[];
}

/** True unless an environment switch (`0`, `off`, `false`, `no`) turns a native path off. */
export function enabledByEnv(name: string, env: NodeJS.ProcessEnv = process.env): boolean {
  const v = env[name]?.trim().toLowerCase();
  return !(v === '0' || v === 'off' || v === 'false' || v === 'no');
}

/**
 * The addon, or why it is unavailable. Looked up from this file upwards (src/… under tsx,
 * dist/src/… compiled). Callers cache the result: one load per process.
 */
export function loadAddon<T>(spec: AddonSpec<T>): AddonLoad<T> {
  if (process.platform !== 'linux')
    return { unavailable: `not supported on ${process.platform} (needs ${spec.needs})` };
  let dir = dirname(fileURLToPath(import.meta.url));
  let path: string | undefined;
  for (let i = 0; i < 8 && path === undefined; i++) {
    const candidate = join(dir, spec.path);
    if (existsSync(candidate)) path = candidate;
    dir = dirname(dir);
  }
  if (path === undefined)
    return { unavailable: `addon not built (${spec.path} not found; run scripts/setup.sh)` };
  try {
    const binding = createRequire(import.meta.url)(path) as T;
    for (const fn of spec.functions) {
      if (typeof binding[fn] !== 'function') return { unavailable: `addon ${path} lacks ${fn}()` };
    }
    return { binding };
  } catch (err) {
    return {
      unavailable: `addon ${path} failed to load: ${(err as Error).message.split('\n')[0]}`,
    };
  }
}
