/**
 * Sheds a flood at the network driver, before the kernel builds a socket buffer for it
 * (`kernelShed: xdp`): the same two classes and limits as the nftables table
 * (relay-kernel-shed.ts), in an XDP program attached to the interfaces the clients' traffic
 * arrives on (`kernelShedInterfaces`). The program is assembled and loaded by the optional
 * native addon native/xdp-shed (no BPF compiler needed), which also holds its maps: the
 * established flows, and per class a limit, a window count and the drops.
 *
 * Why: in the bench topology a datagram dropped by the nftables table still cost the relay's
 * core about 1.7 µs (device backlog, IP receive, the hook), against 3–4 µs for one the relay
 * forwards, so at twice its peak the relay kept only ≈ 0.4–0.6 of it whatever the limit; dropped
 * by XDP the same flood cost a few per cent of the core (bench/analysis.md).
 *
 * The program is attached through BPF links: the kernel detaches it when the relay's process
 * ends, killed or not, so nothing is left behind and there is nothing to take over at start.
 * Each limit is a token bucket that refills every window of 2^n ns, the shortest from 1.05 ms
 * that admits at least 32 (so a limit of 100,000/s refills 105 per 1.05 ms), and holds four
 * windows' worth: a smooth stream rather than a burst the relay's receive queue would overflow
 * on, yet the bursts NAPI polling makes of a steady stream under the limit pass whole.
 */
import { join } from 'node:path';
import type { NftResult } from '../kernel/nft-applier.js';
import { ipAddressBytes } from '../../protocol/ikev2/nat-detection.js';
import { enabledByEnv, loadAddon, type AddonLoad } from '../native/load-addon.js';
import type { ShedCounts, ShedFlowKey } from './relay-kernel-shed.js';

/** The addon's functions (native/xdp-shed/xdp_shed.c documents them). */
export interface NativeXdpShed {
  open(family: number, vip: Buffer, ports: number[], maxFlows: number): number;
  attach(id: number, ifname: string, allowGeneric: boolean): 'native' | 'generic';
  setLimits(id: number, establishedPerSecond: number, unknownPerSecond: number): void;
  flow(id: number, add: boolean, address: Buffer, sport: number, dport: number): void;
  counts(id: number): Float64Array;
  /** Runs the program `repeat` times on one Ethernet frame, without a device: how many it dropped. */
  run(id: number, frame: Buffer, repeat: number): number;
  close(id: number): void;
}

export const XDP_SHED_ADDON_PATH = join('native', 'xdp-shed', 'build', 'Release', 'xdp_shed.node');
/** `VPNLB_XDP_SHED=0` (or off/false/no): `kernelShed: xdp` sheds with nftables instead. */
export const XDP_SHED_ENV = 'VPNLB_XDP_SHED';

let cached: AddonLoad<NativeXdpShed> | undefined;

/** The addon, or why it is unavailable (loaded once per process). */
export function loadNativeXdpShed(): AddonLoad<NativeXdpShed> {
  if (!enabledByEnv(XDP_SHED_ENV)) return { unavailable: `${XDP_SHED_ENV} turns it off` };
  return (cached ??= loadAddon<NativeXdpShed>({
    path: XDP_SHED_ADDON_PATH,
    needs: 'bpf(2) and XDP',
    functions: ['open', 'attach', 'setLimits', 'flow', 'counts', 'run', 'close'],
  }));
}

export interface XdpShedConfig {
  readonly family: 4 | 6;
  readonly virtualIp: string;
  /** The relay's listening ports (IKE and NAT-T). */
  readonly ports: readonly number[];
  /** Datagrams/s allowed from sources without an established flow. */
  readonly unknownPerSecond: number;
  /** Interfaces the clients' datagrams arrive on. */
  readonly interfaces: readonly string[];
  /** Size of the established flows' map (the relay's `maxFlows`). */
  readonly maxFlows: number;
}

const bytesOf = (address: string) => {
  const b = ipAddressBytes(address);
  return b ? Buffer.from(b.buffer, b.byteOffset, b.length) : undefined;
};

/**
 * The program's owner, with the same methods as the nftables table's (relay-kernel-shed.ts)
 * so that the relay's shedding (relay-shed.ts) drives either. Flow changes go to the kernel at
 * once (one bpf(2) call each, no process); `flush()` has nothing to do.
 */
export class XdpShed {
  readonly #native: NativeXdpShed;
  readonly #config: XdpShedConfig;
  #id: number | undefined;
  #limit: number | undefined;
  readonly #members = new Set<string>();
  /** Where the program is attached, and in which mode. */
  #attached: { name: string; mode: 'native' | 'generic' }[] = [];
  #flowErrors = 0;
  #lastFlowError: string | undefined;

  constructor(native: NativeXdpShed, config: XdpShedConfig) {
    this.#native = native;
    this.#config = config;
  }

  /** Where it sheds, for logs and status: e.g. `XDP on eth0 (native)`. */
  get where(): string {
    const on = this.#attached.map((a) => `${a.name} (${a.mode})`);
    return `XDP on ${on.join(', ') || this.#config.interfaces.join(', ')}`;
  }

  /** Interfaces in generic (socket-buffer) mode: their drivers have no native XDP. */
  get genericInterfaces(): string[] {
    return this.#attached.filter((a) => a.mode === 'generic').map((a) => a.name);
  }

  get members(): number {
    return this.#members.size;
  }

  get limit(): number | undefined {
    return this.#limit;
  }

  /** Flow changes the kernel refused (e.g. a full map), and the last reason. */
  get flowErrors(): { count: number; last?: string } {
    return {
      count: this.#flowErrors,
      ...(this.#lastFlowError ? { last: this.#lastFlowError } : {}),
    };
  }

  async install(): Promise<NftResult> {
    const c = this.#config;
    const vip = bytesOf(c.virtualIp);
    if (!vip) return { ok: false, error: `bad virtual IP ${c.virtualIp}` };
    if (c.interfaces.length === 0)
      return { ok: false, error: 'no interfaces (kernelShedInterfaces)' };
    let id: number | undefined;
    try {
      id = this.#native.open(c.family, vip, [...c.ports], c.maxFlows);
      const attached: { name: string; mode: 'native' | 'generic' }[] = [];
      for (const name of c.interfaces)
        attached.push({ name, mode: this.#native.attach(id, name, true) });
      this.#native.setLimits(id, 0, c.unknownPerSecond);
      this.#id = id;
      this.#attached = attached;
      this.#limit = undefined;
      this.#members.clear();
      return { ok: true, value: undefined };
    } catch (err) {
      if (id !== undefined) this.#native.close(id);
      return { ok: false, error: (err as Error).message };
    }
  }

  add(k: ShedFlowKey): void {
    this.#flow(k, true);
  }

  remove(k: ShedFlowKey): void {
    this.#flow(k, false);
  }

  #flow(k: ShedFlowKey, add: boolean): void {
    if (this.#id === undefined) return;
    const key = `${k.address}|${k.port}|${k.dport}`;
    if (add === this.#members.has(key)) return;
    const address = bytesOf(k.address);
    if (!address) return;
    try {
      this.#native.flow(this.#id, add, address, k.port, k.dport);
      if (add) this.#members.add(key);
      else this.#members.delete(key);
    } catch (err) {
      this.#flowErrors++;
      this.#lastFlowError = (err as Error).message;
    }
  }

  async flush(): Promise<NftResult> {
    return { ok: true, value: undefined };
  }

  async setLimit(limit: number | undefined): Promise<NftResult> {
    if (this.#id === undefined || limit === this.#limit) return { ok: true, value: undefined };
    this.#native.setLimits(this.#id, limit ?? 0, this.#config.unknownPerSecond);
    this.#limit = limit;
    return { ok: true, value: undefined };
  }

  async counts(): Promise<ShedCounts | undefined> {
    if (this.#id === undefined) return undefined;
    const [established, unknown] = this.#native.counts(this.#id);
    return { established: established!, unknown: unknown! };
  }

  async uninstall(): Promise<NftResult<boolean>> {
    if (this.#id === undefined) return { ok: true, value: false };
    this.#native.close(this.#id);
    this.#id = undefined;
    this.#members.clear();
    return { ok: true, value: true };
  }
}
