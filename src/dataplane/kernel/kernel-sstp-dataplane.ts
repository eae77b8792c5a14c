/**
 * The kernel SSTP passthrough plane (`dataplane: kernel` on an `sstp` service): the client's TCP
 * connection is DNATed by nftables to the server of its Maglev slot (render-sstp.ts) and
 * conntrack carries it; no byte crosses this process, and the servers see the client's address.
 *
 * The lifecycle is the IKEv2 kernel plane's (kernel-dataplane.ts), with the same building blocks:
 * - `start`: an existing table (a previous vpnlb killed, or stopped with `keepState`) is adopted:
 *   its slot map is read back and only differing slots are rewritten while its chains are
 *   re-filled in the same transaction (map-update.ts), so established tunnels keep flowing;
 * - `apply`: only the slots that change; the conntrack entries of servers that went down or were
 *   disabled are deleted after the map (their clients' next segment is placed on a live server,
 *   which resets it: the client reconnects at once). Draining servers keep their connections;
 * - `stop()` deletes the table, `stop({ keepState: true })` leaves it programmed;
 * - `refresh` (timer): per-server counters into metrics and status, and the return-path check
 *   (a server whose connections stay `[UNREPLIED]` routes its replies around the balancer).
 */
import { isIP } from 'node:net';
import { ConnectionCounts, type Candidate } from '../../balancer/balancer.js';
import { MaglevBalancer } from '../../balancer/maglev/maglev.js';
import type { SstpService } from '../../config/types.js';
import type { RuntimeContext } from '../../control/runtime-context.js';
import { backendsToFlush, type ServiceSnapshot } from '../../control/snapshot.js';
import { VpnlbError } from '../../errors.js';
import type { DataPlane, DataPlaneStatus } from '../../control/dataplane-interface.js';
import { createCommandRunner, type CommandRunner } from '../../platform/command-runner.js';
import { ConntrackCli, type ConntrackTable } from './conntrack.js';
import type { KernelDataPlaneOptions } from './kernel-dataplane.js';
import { KernelMetrics } from './kernel-metrics.js';
import {
  diffSlotAddresses,
  renderMapUpdate,
  renderTransaction,
  slotAddressesOf,
  type SlotAddresses,
} from './map-update.js';
import { NftCliApplier, readCounters, readTableState, type NftApplier } from './nft-applier.js';
import {
  assignBackendIds,
  counterName,
  nftFamilyOf,
  type NftFamily,
  type RulesetBackend,
} from './render-ruleset.js';
import { SSTP_CHAINS, SSTP_UNROUTED, renderSstpRuleset, sstpCtTimeoutName } from './render-sstp.js';
import { ReturnPathDetector } from './return-path.js';
import { ReturnPathWatch, backendFigures, mayDeleteFlows } from './kernel-plane-parts.js';
import { checkSysctls } from './sysctl-check.js';

export class KernelSstpDataPlane implements DataPlane {
  readonly serviceName: string;
  readonly #service: SstpService;
  readonly #ctx: RuntimeContext;
  readonly #family: NftFamily;
  readonly #applier: NftApplier;
  readonly #conntrack: ConntrackTable;
  readonly #runner: CommandRunner;
  readonly #pollMs: number;
  readonly #metrics: KernelMetrics;
  readonly #returnPath: ReturnPathWatch;
  readonly #staticWarnings: string[] = [];
  #backends: RulesetBackend[] = [];
  #current: SlotAddresses = [];
  #flushed = new Set<string>();
  #counters: Record<string, { packets: number; bytes: number }> = {};
  #flows: Record<string, { replied: number; unreplied: number }> = {};
  #returnPathWarnings: string[] = [];
  #lastSnapshot: ServiceSnapshot | undefined;
  #timer: NodeJS.Timeout | undefined;
  #refreshing: Promise<void> | undefined;
  #isAdopted = false;

  constructor(service: SstpService, ctx: RuntimeContext, options: KernelDataPlaneOptions = {}) {
    this.serviceName = service.name;
    this.#service = service;
    this.#ctx = ctx;
    this.#family = nftFamilyOf(service);
    const runnerOpts = options.netns ? { netns: options.netns } : {};
    this.#runner = options.runner ?? createCommandRunner(runnerOpts);
    this.#applier = options.applier ?? new NftCliApplier(runnerOpts);
    this.#conntrack = options.conntrack ?? new ConntrackCli(this.#runner, 'tcp');
    this.#pollMs = options.pollIntervalMs ?? 10_000;
    this.#metrics = new KernelMetrics(ctx.metrics, service.name);
    this.#returnPath = new ReturnPathWatch(
      new ReturnPathDetector(options.returnPath),
      this.#metrics,
      this.#runner,
    );
  }

  /** True when `start` found the table and adopted it instead of creating it. */
  get isAdopted(): boolean {
    return this.#isAdopted;
  }

  async start(snapshot: ServiceSnapshot): Promise<void> {
    const s = this.#service;
    const skipped = snapshot.backends.filter((b) => b.family !== s.family);
    if (skipped.length > 0)
      this.#warn(
        `the kernel data plane translates within one address family: IPv${s.family === 4 ? 6 : 4} backends ${skipped.map((b) => b.name).join(', ')} are not used by this IPv${s.family} service`,
      );
    this.#backends = assignBackendIds(snapshot.backends.filter((b) => b.family === s.family));
    // Only forwarding matters here; the other host checks are about UDP flows (IKEv2).
    for (const f of await checkSysctls(this.#runner, s.family, 0, s.idleTimeout)) {
      if (f.severity === 'warning' && f.key.includes('forward')) this.#warn(f.message);
    }

    const state = await readTableState(this.#applier, this.#family, s.table);
    if (!state.ok) throw this.#applyError('reading the existing table failed', state.error);
    this.#isAdopted = state.value.exists;
    const desired = this.#desiredSlots(snapshot);
    const changes = diffSlotAddresses(state.value.slots, desired);
    const wantedCounters = new Set([
      SSTP_UNROUTED,
      ...this.#backends.flatMap((b) => [counterName(b.id, 'in'), counterName(b.id, 'out')]),
    ]);
    const text = renderTransaction({
      family: this.#family,
      table: s.table,
      chains: SSTP_CHAINS,
      ruleset: renderSstpRuleset({ service: s, backends: this.#backends }),
      changes,
      desired,
      // An adopted table of another kind or an older configuration: drop what this one does not use.
      deleteSets: state.value.sets,
      deleteCounters: Object.keys(state.value.counters).filter((n) => !wantedCounters.has(n)),
      deleteChains: state.value.chains.filter((n) => !SSTP_CHAINS.some((c) => c.name === n)),
      deleteCtTimeouts: state.value.ctTimeouts.filter((n) => n !== sstpCtTimeoutName(s)),
    });
    const started = performance.now();
    const r = await this.#applier.apply(text);
    this.#metrics.applied(r.ok, changes.deletes.length + changes.adds.length);
    if (!r.ok)
      throw this.#applyError(`programming table ${this.#family} ${s.table} failed`, r.error);
    this.#current = desired;
    this.#lastSnapshot = snapshot;
    this.#log().info(
      {
        table: `${this.#family} ${s.table}`,
        adopted: this.#isAdopted,
        slotsWritten: changes.adds.length,
        ms: Math.round(performance.now() - started),
      },
      this.#isAdopted
        ? `${s.name}: adopted the existing nftables table ${this.#family} ${s.table} (${changes.adds.length} slots rewritten); established SSTP connections keep flowing`
        : `${s.name}: created nftables table ${this.#family} ${s.table} (SSTP passthrough in the kernel: the servers see the clients' addresses)`,
    );
    // Connections of servers that are down or disabled, or that left the configuration since
    // the table was last programmed, must not linger.
    const toFlush = backendsToFlush(snapshot).filter((b) => b.family === s.family);
    const known = new Set(this.#backends.map((b) => b.address));
    const gone = [
      ...new Set(state.value.slots.filter((a): a is string => a !== undefined && !known.has(a))),
    ];
    for (const b of toFlush) this.#flushed.add(b.name);
    await this.#deleteFlows([...toFlush, ...gone.map((a) => ({ name: a, address: a }))]);
    if (this.#pollMs > 0) {
      this.#timer = setInterval(() => void this.refresh(), this.#pollMs);
      this.#timer.unref();
    }
    await this.refresh();
  }

  async apply(snapshot: ServiceSnapshot): Promise<void> {
    const s = this.#service;
    const desired = this.#desiredSlots(snapshot);
    const changes = diffSlotAddresses(this.#current, desired);
    const nowFlushed = backendsToFlush(snapshot).filter((b) => b.family === s.family);
    const newlyFlushed = nowFlushed.filter((b) => !this.#flushed.has(b.name));
    this.#flushed = new Set(nowFlushed.map((b) => b.name));
    this.#lastSnapshot = snapshot;
    if (changes.adds.length + changes.deletes.length > 0) {
      const r = await this.#applier.apply(renderMapUpdate(this.#family, s.table, changes, desired));
      this.#metrics.applied(r.ok, changes.deletes.length + changes.adds.length);
      if (!r.ok) {
        // Atomic: the kernel still holds #current; the next snapshot retries, flows included.
        for (const b of newlyFlushed) this.#flushed.delete(b.name);
        this.#log().error(
          { err: r.error },
          `${s.name}: nft rejected the slot update; the kernel keeps the previous table`,
        );
        return;
      }
      this.#current = desired;
      this.#log().info(
        { slotsChanged: changes.adds.length },
        `${s.name}: ${changes.adds.length} of ${desired.length} slots rewritten`,
      );
    }
    // After the map: a client's next segment must already find the new slot owner.
    await this.#deleteFlows(newlyFlushed);
  }

  async stop(options: { keepState?: boolean } = {}): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
    const table = `${this.#family} ${this.#service.table}`;
    if (options.keepState) {
      this.#log().info(
        { table },
        `${this.serviceName}: leaving nftables table ${table} programmed (keepState): a new start adopts it`,
      );
      return;
    }
    const r = await this.#applier.deleteTable(this.#family, this.#service.table);
    if (!r.ok) throw this.#applyError(`deleting table ${table} failed`, r.error);
    this.#log().info({ table }, `${this.serviceName}: deleted nftables table ${table}`);
  }

  status(): DataPlaneStatus {
    const s = this.#service;
    const host = isIP(s.virtualIp) === 6 ? `[${s.virtualIp}]` : s.virtualIp;
    const backends = backendFigures(this.#backends, this.#counters, this.#flows, 'connections');
    return {
      dataplane: 'kernel',
      listeners: [`tcp ${host}:${s.port} (nft ${this.#family} ${s.table})`],
      backends,
      warnings: [...this.#staticWarnings, ...this.#returnPathWarnings],
    };
  }

  /** Reads counters and connections, one read at a time (the timer calls it). */
  refresh(): Promise<void> {
    this.#refreshing ??= this.#refresh().finally(() => {
      this.#refreshing = undefined;
    });
    return this.#refreshing;
  }

  async #refresh(): Promise<void> {
    const s = this.#service;
    const c = await readCounters(this.#applier, this.#family, s.table);
    if (c.ok) {
      this.#metrics.counters(this.#counters, c.value, this.#backends);
      this.#counters = c.value;
    }
    const listed = await this.#conntrack.list(s.virtualIp, s.family);
    if (!listed.ok) return;
    const ours = listed.value.filter((e) => e.original.dport === s.port);
    const states = new Map((this.#lastSnapshot?.backends ?? []).map((b) => [b.name, b.state]));
    const scan = await this.#returnPath.scan(ours, this.#backends, states, this.#log(), s.name);
    this.#flows = scan.flows;
    this.#returnPathWarnings = scan.warnings;
  }

  /** The snapshot's Maglev table when it covers this family (decide() then names the kernel's choice). */
  #desiredSlots(snapshot: ServiceSnapshot): (string | undefined)[] {
    const fam = this.#service.family;
    const candidates: Candidate[] = snapshot.candidates.filter(
      (c) => (isIP(c.address) === 6 ? 6 : 4) === fam,
    );
    if (
      snapshot.balancer instanceof MaglevBalancer &&
      candidates.length === snapshot.candidates.length
    )
      return slotAddressesOf(snapshot.balancer.table);
    return slotAddressesOf(
      new MaglevBalancer({
        candidates,
        seed: this.#service.hashSeed,
        connections: new ConnectionCounts(),
      }).table,
    );
  }

  async #deleteFlows(backends: readonly { name: string; address: string }[]): Promise<void> {
    if (!mayDeleteFlows(this.#ctx, this.#metrics, this.#log(), this.serviceName, backends)) return;
    for (const b of backends) {
      const r = await this.#conntrack.deleteBackendFlows(
        this.#service.virtualIp,
        b.address,
        this.#service.family,
      );
      if (!r.ok) {
        this.#metrics.conntrackFailed();
        this.#log().warn(
          { backend: b.name, err: r.error },
          `${this.serviceName}: could not delete the connections of ${b.name}; its clients stay on it until they give up`,
        );
        continue;
      }
      this.#metrics.conntrackDeleted(b.name, r.value);
      if (r.value > 0)
        this.#log().info(
          { backend: b.name, deleted: r.value },
          `${this.serviceName}: deleted ${r.value} conntrack entries of ${b.name}: its clients' next segments are reset by a live server and they reconnect`,
        );
    }
  }

  #warn(message: string): void {
    this.#staticWarnings.push(message);
    this.#log().warn(`${this.serviceName}: ${message}`);
  }

  #applyError(what: string, detail: string): VpnlbError {
    return new VpnlbError(
      'VPNLB_DATAPLANE_APPLY',
      `${this.serviceName}: ${what}: ${detail}`,
      'internal',
    );
  }

  #log() {
    return this.#ctx.logger.child({ component: 'dataplane-kernel', service: this.serviceName });
  }
}
