/**
 * Loads the relay's optional native addon (native/udp-fastpath, built by scripts/setup.sh with
 * node-gyp) — the way `ws` loads `bufferutil`: when it is missing or fails to load, the caller
 * gets the reason and forwards in JavaScript.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The addon's functions (native/udp-fastpath/udp_fastpath.c documents each). */
export interface NativeFastPath {
  create(ikeFd: number, natTFd: number, maxFlows: number, onHandoff: (packets: HandoffPacket[]) => void): object;
  install(handle: object, isNatT: boolean, address: string, port: number, fd: number): number;
  remove(handle: object, slot: number): Float64Array | undefined;
  poll(handle: object): [Float64Array, Float64Array, string[], Float64Array];
  close(handle: object): void;
  now(): number;
}

/** A datagram the native table did not know: [payload, client address, client port, isNatT]. */
export type HandoffPacket = [Buffer, string, number, boolean];

/** Where node-gyp puts the module, relative to the repository root. */
export const ADDON_PATH = join('native', 'udp-fastpath', 'build', 'Release', 'udp_fastpath.node');

/** The environment switch: `VPNLB_RELAY_FASTPATH=0` (or off/false/no) disables the fast path. */
export const FASTPATH_ENV = 'VPNLB_RELAY_FASTPATH';

/** True unless the environment switch turns the fast path off. */
export function fastPathEnabledByEnv(env: NodeJS.ProcessEnv = process.env): boolean {
  const v = env[FASTPATH_ENV]?.trim().toLowerCase();
  return !(v === '0' || v === 'off' || v === 'false' || v === 'no');
}

let cached: { binding: NativeFastPath } | { unavailable: string } | undefined;

/**
 * The addon, or why it is unavailable. Looked up from this file upwards (src/… under tsx,
 * dist/src/… compiled), loaded once per process.
 */
export function loadNativeFastPath(): { binding: NativeFastPath } | { unavailable: string } {
  if (cached !== undefined) return cached;
  if (process.platform !== 'linux') return (cached = { unavailable: `not supported on ${process.platform} (needs epoll, recvmmsg, sendmmsg)` });
  let dir = dirname(fileURLToPath(import.meta.url));
  let path: string | undefined;
  for (let i = 0; i < 8 && path === undefined; i++) {
    const candidate = join(dir, ADDON_PATH);
    if (existsSync(candidate)) path = candidate;
    dir = dirname(dir);
  }
  if (path === undefined) return (cached = { unavailable: `addon not built (${ADDON_PATH} not found; run scripts/setup.sh)` });
  try {
    const binding = createRequire(import.meta.url)(path) as NativeFastPath;
    for (const fn of ['create', 'install', 'remove', 'poll', 'close', 'now'] as const) {
      if (typeof binding[fn] !== 'function') return (cached = { unavailable: `addon ${path} lacks ${fn}()` });
    }
    return (cached = { binding });
  } catch (err) {
    return (cached = { unavailable: `addon ${path} failed to load: ${(err as Error).message.split('\n')[0]}` });
  }
}
