/**
 * The relay's optional native addon (native/udp-fastpath, built by scripts/setup.sh with
 * node-gyp), loaded by ../../native/load-addon.ts: when it is missing or fails to load, the
 * caller gets the reason and forwards in JavaScript.
 */
import { join } from 'node:path';
import { enabledByEnv, loadAddon, type AddonLoad } from '../../native/load-addon.js';

/** The addon's functions (native/udp-fastpath/udp_fastpath.c documents each). */
export interface NativeFastPath {
  create(
    ikeFd: number,
    natTFd: number,
    maxFlows: number,
    onHandoff: (packets: HandoffPacket[]) => void,
  ): object;
  install(handle: object, isNatT: boolean, address: string, port: number, fd: number): number;
  remove(handle: object, slot: number): Float64Array | undefined;
  poll(handle: object): [Float64Array, Float64Array, string[], Float64Array];
  close(handle: object): void;
  now(): number;
  /** UDP sockets on one address and port, steered by source address (native/udp-fastpath/reuseport.c). */
  reuseportGroup(
    family: 4 | 6,
    address: string,
    port: number,
    count: number,
  ): { port: number; fds: number[] };
}

/** A datagram the native table did not know: [payload, client address, client port, isNatT]. */
export type HandoffPacket = [Buffer, string, number, boolean];

/** Where node-gyp puts the module, relative to the repository root. */
export const ADDON_PATH = join('native', 'udp-fastpath', 'build', 'Release', 'udp_fastpath.node');

/** The environment switch: `VPNLB_RELAY_FASTPATH=0` (or off/false/no) disables the fast path. */
export const FASTPATH_ENV = 'VPNLB_RELAY_FASTPATH';

/** True unless the environment switch turns the fast path off. */
export function fastPathEnabledByEnv(env: NodeJS.ProcessEnv = process.env): boolean {
  return enabledByEnv(FASTPATH_ENV, env);
}

let cached: AddonLoad<NativeFastPath> | undefined;

/** The addon, or why it is unavailable (looked up from this file upwards, loaded once per process). */
export function loadNativeFastPath(): AddonLoad<NativeFastPath> {
  return (cached ??= loadAddon<NativeFastPath>({
    path: ADDON_PATH,
    needs: 'epoll, recvmmsg, sendmmsg',
    functions: ['create', 'install', 'remove', 'poll', 'close', 'now', 'reuseportGroup'],
  }));
}
