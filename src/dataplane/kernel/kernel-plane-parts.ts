/**
 * What the kernel planes (IKEv2: kernel-dataplane.ts, SSTP: kernel-sstp-dataplane.ts) share
 * besides the table machinery: the per-server figures shown in status, and the return-path
 * watch (transparent mode: servers must route replies back through the balancer).
 */
import type { Logger } from '../../log/logger.js';
import type { BackendCounters } from '../../control/dataplane-interface.js';
import type { CommandRunner } from '../../platform/command-runner.js';
import type { RuntimeContext } from '../../control/runtime-context.js';
import type { ConntrackEntry } from './conntrack.js';
import type { KernelMetrics } from './kernel-metrics.js';
import { counterName, type RulesetBackend } from './render-ruleset.js';
import { returnPathWarning, type FlowCounts, type ReturnPathDetector } from './return-path.js';

type NftCounters = Readonly<Record<string, { packets: number; bytes: number }>>;

/**
 * Status figures per server: nft counters both ways, and the conntrack entries of the last scan
 * as `flows` (IKEv2: UDP flows) or `connections` (SSTP: TCP connections).
 */
export function backendFigures(
  backends: readonly RulesetBackend[],
  counters: NftCounters,
  flows: Readonly<Record<string, FlowCounts>>,
  as: 'flows' | 'connections',
): Record<string, BackendCounters> {
  const out: Record<string, BackendCounters> = {};
  for (const b of backends) {
    const cin = counters[counterName(b.id, 'in')];
    const cout = counters[counterName(b.id, 'out')];
    const f = flows[b.name];
    out[b.name] = {
      ...(cin ? { packetsIn: cin.packets, bytesIn: cin.bytes } : {}),
      ...(cout ? { packetsOut: cout.packets, bytesOut: cout.bytes } : {}),
      ...(f ? { [as]: f.replied + f.unreplied } : {}),
    };
  }
  return out;
}

/** One return-path scan's outcome: flows per server, and the warnings to show. */
export interface ReturnPathScan {
  readonly flows: Record<string, FlowCounts>;
  readonly warnings: string[];
}

/**
 * Judges a conntrack listing with the detector, sets the gauge per server, and words a warning
 * (logged when a server first turns missing) with the balancer address the server should use
 * as its gateway (`ip route get`, remembered per server).
 */
export class ReturnPathWatch {
  readonly #balancerAddress = new Map<string, string | undefined>();

  constructor(
    private readonly detector: ReturnPathDetector,
    private readonly metrics: KernelMetrics,
    private readonly runner: CommandRunner,
  ) {}

  async scan(
    entries: readonly ConntrackEntry[],
    backends: readonly RulesetBackend[],
    states: ReadonlyMap<string, string>,
    log: Logger,
    service: string,
  ): Promise<ReturnPathScan> {
    const verdict = this.detector.observe(
      entries,
      backends.map((b) => ({
        name: b.name,
        address: b.address,
        state: states.get(b.name) ?? 'up',
      })),
    );
    const warnings: string[] = [];
    for (const b of backends) {
      const isMissing = verdict.missing.includes(b.name);
      const wasMissing = this.metrics.returnPathMissing(b.name, isMissing);
      if (!isMissing) continue;
      const w = returnPathWarning(b, await this.#balancerAddressFor(b.address));
      warnings.push(w);
      if (!wasMissing)
        log.warn({ backend: b.name, flows: verdict.flows[b.name] }, `${service}: ${w}`);
    }
    return { flows: { ...verdict.flows }, warnings };
  }

  async #balancerAddressFor(address: string): Promise<string | undefined> {
    if (this.#balancerAddress.has(address)) return this.#balancerAddress.get(address);
    const r = await this.runner('ip', ['-j', 'route', 'get', address]);
    let src: string | undefined;
    if (r.ok) {
      try {
        src = (JSON.parse(r.stdout) as { prefsrc?: string }[])[0]?.prefsrc;
      } catch {
        src = undefined;
      }
    }
    this.#balancerAddress.set(address, src);
    return src;
  }
}

/**
 * Whether this node may delete the conntrack entries of `backends` (both kernel planes ask
 * before deleting a lost server's flows). Not on an HA pair's standby or faulted node: conntrackd
 * would carry the deletion to the active node (RuntimeContext.ownsReplicatedFlows). Counted and
 * logged when it may not.
 */
export function mayDeleteFlows(
  ctx: RuntimeContext,
  metrics: KernelMetrics,
  log: Logger,
  serviceName: string,
  backends: readonly { name: string }[],
): boolean {
  if (backends.length === 0 || ctx.ownsReplicatedFlows?.() !== false) return true;
  const names = backends.map((b) => b.name);
  for (const n of names) metrics.conntrackKeptOnStandby(n);
  log.info(
    { backends: names },
    `${serviceName}: this node is the pair's standby: the conntrack entries of ${names.join(', ')} are kept (conntrackd would carry a deletion to the active node, which deletes its own)`,
  );
  return false;
}
