/**
 * The kernel IKEv2 data plane: the controller's snapshots rendered into one nftables table per
 * service (render-ruleset.ts) and applied atomically (nft-applier.ts). Packets never cross this
 * process: the kernel hashes each new flow into the Maglev slot map, DNATs it, and conntrack
 * carries the rest of the flow (Katran's split: the control plane computes, the kernel looks up).
 *
 * Lifecycle:
 * - `start`: when the table already exists (a previous vpnlb was killed, or stopped with
 *   `keepState`), it is adopted: its slot map is read back and only the differing slots are
 *   rewritten, its chains are re-filled in the same transaction; established tunnels keep
 *   flowing throughout. Otherwise the table is created.
 * - `apply`: only the slots that change (delete + add in one transaction); the pins, peer and
 *   learn sets and the conntrack entries of servers that went down or were disabled are
 *   deleted so that their clients' retries reach a live server at once. Draining servers keep
 *   theirs (a draining server still takes the second SA of a client whose NAT-T flow it holds).
 *   A lost server is retired first, in a transaction of its own that touches no slot (its SPIs
 *   into `spi_dead`, its sets emptied), then its conntrack entries go, and only then is the slot
 *   map rewritten: rewriting a third of 65,537 slots takes nft seconds on a loaded host, and its
 *   clients' stale DPD packets must be dropped during that time, not placed on a live server.
 * - `stop()`: deletes the table; `stop({ keepState: true })` leaves it programmed.
 */
import { isIP } from 'node:net';
import { ConnectionCounts, type Candidate } from '../../balancer/balancer.js';
import { isSpiAffinity } from '../../balancer/affinity.js';
import { MaglevBalancer, type MaglevTable } from '../../balancer/maglev/maglev.js';
import type { Ikev2Service } from '../../config/types.js';
import type { RuntimeContext } from '../../control/runtime-context.js';
import { backendsToFlush, type ServiceSnapshot } from '../../control/snapshot.js';
import { VpnlbError } from '../../errors.js';
import type { DataPlane, DataPlaneStatus } from '../../control/dataplane-interface.js';
import { createCommandRunner, type CommandRunner } from '../../platform/command-runner.js';
import { ConntrackCli, type ConntrackTable } from './conntrack.js';
import {
  diffSlotAddresses,
  renderMapUpdate,
  renderTransaction,
  slotAddressesOf,
  spisOfSetJson,
  type SlotAddresses,
} from './map-update.js';
import { NftCliApplier, readCounters, readTableState, type NftApplier } from './nft-applier.js';
import {
  NFT_OBJECTS,
  assignBackendIds,
  chainSpecs,
  counterName,
  ctTimeoutNames,
  hasPeerSets,
  hasSnatCap,
  hasSpiSets,
  learnSetName,
  peerSetName,
  sasSetName,
  spiSetName,
  snatAddresses,
  nftFamilyOf,
  pinSetName,
  renderRuleset,
  seconds,
  type NftFamily,
  type RulesetBackend,
} from './render-ruleset.js';
import { ReturnPathDetector, type ReturnPathOptions } from './return-path.js';
import { ReturnPathWatch, backendFigures, mayDeleteFlows } from './kernel-plane-parts.js';
import { checkSysctls } from './sysctl-check.js';
import { KernelMetrics } from './kernel-metrics.js';
import {
  checkServiceFlowState,
  flowStateOfSetsJson,
  planFlowImport,
  renderFlowImport,
  type FlowImportResult,
  type ServiceFlowState,
} from './flow-state.js';
import {
  describeMask,
  explainPermissionError,
  helperReceives,
  isPermissionError,
  missingCapabilityMessage,
  readProcessCapabilities,
  type CapabilityName,
  type ProcessCapabilities,
} from '../../platform/capabilities.js';

export interface KernelDataPlaneOptions {
  /** Network namespace to program (integration tests); the host's when absent. */
  readonly netns?: string;
  readonly applier?: NftApplier;
  readonly conntrack?: ConntrackTable;
  /** Runs `sysctl` and `ip route get` (defaults to the real commands, in `netns`). */
  readonly runner?: CommandRunner;
  /** Milliseconds between counter reads and return-path scans; 0 disables the timer. Default 10 s. */
  readonly pollIntervalMs?: number;
  readonly returnPath?: ReturnPathOptions;
}

/** What retiring lost servers takes: sets to empty, SPIs (`hi . lo`) to move into `spi_dead`. */
interface Retirement {
  readonly flushSets: readonly string[];
  readonly deadSpis: readonly string[];
  /** The sets the table held (start); undefined: every set of the configuration exists. */
  readonly existingSets: readonly string[] | undefined;
}

const NO_SLOT_CHANGES = { deletes: [], adds: [] } as const;

/** Per-server sets that route to their server (emptied when it leaves the configuration). */
const RETIRABLE_SET = /^(pin|peer|learn|spi)_\w+$/;
/** A local copy of a flow-state element is refreshed once a peer's is this much younger (s). */
const FLOW_REFRESH_AFTER_S = 30;
/** Flow-state elements this close to expiry are neither imported nor replaced (s). */
const FLOW_MIN_LIFE_S = 3;
const isSpiSet = (name: string): boolean =>
  name.startsWith('spi_') && name !== NFT_OBJECTS.spiDeadSet;

/** Tables claimed by running data planes of this process: two services must not share one. */
const claimedTables = new Set<string>();

export class KernelIkeDataPlane implements DataPlane {
  readonly serviceName: string;
  readonly #service: Ikev2Service;
  readonly #ctx: RuntimeContext;
  readonly #family: NftFamily;
  readonly #applier: NftApplier;
  readonly #conntrack: ConntrackTable;
  readonly #runner: CommandRunner;
  readonly #pollMs: number;
  #refreshing: Promise<void> | undefined;
  #nextRefresh: Promise<void> | undefined;
  readonly #metrics: KernelMetrics;
  readonly #returnPath: ReturnPathWatch;
  readonly #staticWarnings: string[] = [];
  #backends: RulesetBackend[] = [];
  /** What the kernel's slot map holds (kept in step with every successful transaction). */
  #current: SlotAddresses = [];
  /** Backends whose flows were deleted and that have not come back since. */
  #flushed = new Set<string>();
  #counters: Record<string, { packets: number; bytes: number }> = {};
  #flows: Record<string, { replied: number; unreplied: number }> = {};
  #returnPathWarnings: string[] = [];
  #timer: NodeJS.Timeout | undefined;
  #claimKey: string | undefined;
  #isAdopted = false;
  #lastSnapshot: ServiceSnapshot | undefined;
  /** True once `start` found no table and created it (a failed start may then remove it). */
  #created = false;
  /** Applies in progress (refresh() skips its poll meanwhile). */
  #applying = 0;

  constructor(service: Ikev2Service, ctx: RuntimeContext, options: KernelDataPlaneOptions = {}) {
    this.serviceName = service.name;
    this.#service = service;
    this.#ctx = ctx;
    this.#family = nftFamilyOf(service);
    const runnerOpts = options.netns ? { netns: options.netns } : {};
    this.#runner = options.runner ?? createCommandRunner(runnerOpts);
    this.#applier = options.applier ?? new NftCliApplier(runnerOpts);
    this.#conntrack = options.conntrack ?? new ConntrackCli(this.#runner);
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
    const key = `${this.#family} ${s.table}`;
    if (claimedTables.has(key)) {
      throw new VpnlbError(
        'VPNLB_KERNEL_TABLE_CONFLICT',
        `${s.name}: nftables table "${key}" is already used by another IKEv2 service of this vpnlb: give each service of one address family its own "table"`,
        'client',
      );
    }
    claimedTables.add(key);
    this.#claimKey = key;
    try {
      await this.#start(snapshot);
    } catch (err) {
      claimedTables.delete(key);
      this.#claimKey = undefined;
      throw err;
    }
  }

  async #start(snapshot: ServiceSnapshot): Promise<void> {
    const s = this.#service;
    const log = this.#log();

    const all = snapshot.backends.filter((b) => b.family === s.family);
    const skipped = snapshot.backends.filter((b) => b.family !== s.family);
    if (skipped.length > 0)
      this.#warn(
        `the kernel data plane translates within one address family: IPv${s.family === 4 ? 6 : 4} backends ${skipped.map((b) => b.name).join(', ')} are not used by this IPv${s.family} service`,
      );
    if (s.method !== 'maglev')
      this.#warn(
        `method ${s.method} is not available in the kernel: the kernel data plane places new clients with the Maglev table (consistent hashing)`,
      );
    if (s.nat === 'full') {
      const pool = s.snat?.addresses.length ?? 0;
      this.#warn(
        `nat: full: the VPN servers see ${pool > 1 ? `only ${pool} SNAT addresses` : pool === 1 ? 'one SNAT address' : "the balancer's address"} instead of each client's: expect IKEv2 error 809 under load (Windows limits SAs per source address); prefer nat: transparent`,
      );
    }
    this.#backends = assignBackendIds(all);
    const capacity = snatCapacityWarning(s, this.#backends.length);
    if (capacity) this.#warn(capacity);

    for (const f of await checkSysctls(this.#runner, s.family, s.maxFlows, s.flowTimeout)) {
      if (f.severity === 'warning') this.#warn(f.message);
      else log.info({ sysctl: f.key, value: f.value }, f.message);
    }

    const state = await readTableState(this.#applier, this.#family, s.table);
    if (!state.ok) throw this.#applyError('reading the existing table failed', state.error);
    this.#isAdopted = state.value.exists;
    this.#created = !state.value.exists;
    const desired = this.#desiredSlots(snapshot);
    const changes = diffSlotAddresses(state.value.slots, desired);
    const ruleset = renderRuleset({ service: s, backends: this.#backends });
    const chains = chainSpecs(s);
    const capped = hasSnatCap(s);
    const wantedSets = new Set([
      ...(isSpiAffinity(s.affinity) ? this.#backends.map((b) => pinSetName(b.id)) : []),
      ...(hasSpiSets(s)
        ? [...this.#backends.map((b) => spiSetName(b.id)), NFT_OBJECTS.spiDeadSet]
        : []),
      ...(hasPeerSets(s)
        ? [
            ...this.#backends.flatMap((b) => [peerSetName(b.id), learnSetName(b.id)]),
            NFT_OBJECTS.nattFlowsSet,
            NFT_OBJECTS.nattAddrsSet,
            NFT_OBJECTS.sharedSet,
          ]
        : []),
      ...(capped ? snatAddresses(s).map((_, i) => sasSetName(i)) : []),
    ]);
    const wantedCounters = new Set([
      NFT_OBJECTS.ikeUnrouted,
      NFT_OBJECTS.nattUnrouted,
      ...(hasSpiSets(s) ? [NFT_OBJECTS.ikeStale, NFT_OBJECTS.ikeSplit] : []),
      ...(capped ? [NFT_OBJECTS.snatExhausted] : []),
      ...this.#backends.flatMap((b) => [counterName(b.id, 'in'), counterName(b.id, 'out')]),
    ]);
    const toFlush = backendsToFlush(snapshot).filter((b) => b.family === s.family);
    // Servers that left the configuration since the table was last programmed: their sets are
    // deleted below; their SAs are retired like those of a server that went down.
    const known = new Set(this.#backends.map((b) => b.address));
    const gone = [
      ...new Set(state.value.slots.filter((a): a is string => a !== undefined && !known.has(a))),
    ];
    const leftover =
      gone.length > 0
        ? state.value.sets.filter((n) => !wantedSets.has(n) && RETIRABLE_SET.test(n))
        : [];
    const retired = await this.#retire(toFlush, state.value.sets, leftover);
    const goneFlows = [
      ...toFlush.map((b) => ({ name: b.name, address: b.address })),
      ...gone.map((a) => ({ name: a, address: a })),
    ];
    // On an existing table, before the (possibly long) rewrite of slots and chains.
    const early =
      state.value.exists &&
      (await this.#retireEarly(retired, state.value.sets.includes(NFT_OBJECTS.spiDeadSet)));
    if (early) await this.#deleteFlows(goneFlows);
    const flushSets = retired.flushSets.filter((n) => !leftover.includes(n));
    const deadSpis = early ? [] : retired.deadSpis;
    const text = renderTransaction({
      family: this.#family,
      table: s.table,
      chains,
      ruleset,
      changes,
      desired,
      flushSets,
      deadSpis,
      deleteSets: state.value.sets.filter((n) => !wantedSets.has(n)),
      deleteCounters: Object.keys(state.value.counters).filter((n) => !wantedCounters.has(n)),
      deleteChains: state.value.chains.filter((n) => !chains.some((c) => c.name === n)),
      deleteCtTimeouts: state.value.ctTimeouts.filter((n) => !ctTimeoutNames(s).includes(n)),
    });
    const started = performance.now();
    const r = await this.#applier.apply(text);
    this.#metrics.applied(r.ok, changes.deletes.length + changes.adds.length);
    if (!r.ok)
      throw this.#applyError(`programming table ${this.#family} ${s.table} failed`, r.error);
    this.#current = desired;
    this.#lastSnapshot = snapshot;
    log.info(
      {
        table: `${this.#family} ${s.table}`,
        adopted: this.#isAdopted,
        slotsWritten: changes.adds.length,
        slotsDeleted: changes.deletes.length,
        ms: Math.round(performance.now() - started),
      },
      this.#isAdopted
        ? `${s.name}: adopted the existing nftables table ${this.#family} ${s.table} without flushing it (${changes.adds.length} slots rewritten); established tunnels keep flowing`
        : `${s.name}: created nftables table ${this.#family} ${s.table}`,
    );

    // Flows of servers that are down or disabled now, and of servers that left the
    // configuration since the table was last programmed, must not linger (again, after an
    // early retirement: flows created towards the old slots in the meantime).
    for (const b of toFlush) this.#flushed.add(b.name);
    await this.#deleteFlows(goneFlows);

    if (this.#pollMs > 0) {
      this.#timer = setInterval(() => void this.refresh({ poll: true }), this.#pollMs);
      this.#timer.unref();
    }
    // Not awaited: a counter read dumps the whole table (nft 1.0 fetches the 65,537-element map
    // to list any counter), seconds on a loaded host that start-up need not wait for.
    void this.refresh({ poll: true });
  }

  async apply(snapshot: ServiceSnapshot): Promise<void> {
    const s = this.#service;
    const desired = this.#desiredSlots(snapshot);
    const changes = diffSlotAddresses(this.#current, desired);
    const nowFlushed = backendsToFlush(snapshot).filter((b) => b.family === s.family);
    const newlyFlushed = nowFlushed.filter((b) => !this.#flushed.has(b.name));
    this.#flushed = new Set(nowFlushed.map((b) => b.name));
    this.#lastSnapshot = snapshot;
    this.#applying++;
    try {
      const retired = await this.#retire(newlyFlushed);
      const lost = newlyFlushed.map((b) => ({ name: b.name, address: b.address }));
      // 1. The lost servers' SAs and sets, in a transaction of a few lines; 2. their flows.
      const early = await this.#retireEarly(retired);
      if (early) await this.#deleteFlows(lost);
      // 3. The slots. The sets are emptied again in the same transaction: an SA or a pin
      // recorded on a lost server by a packet that the old slots still sent there.
      const { flushSets } = retired;
      const deadSpis = early ? [] : retired.deadSpis;
      const slotsChange = changes.adds.length + changes.deletes.length > 0;
      if (slotsChange || flushSets.length > 0) {
        const text = renderMapUpdate(this.#family, s.table, changes, desired, flushSets, deadSpis);
        const started = performance.now();
        const r = await this.#applier.apply(text);
        this.#metrics.applied(r.ok, changes.deletes.length + changes.adds.length);
        if (!r.ok) {
          // The transaction is atomic: the kernel still holds #current, so the next snapshot
          // diffs against the truth. Flows of newly failed servers are retried then.
          for (const b of newlyFlushed) this.#flushed.delete(b.name);
          this.#log().error(
            { err: r.error },
            `${s.name}: nft rejected the slot update; the kernel keeps the previous table`,
          );
          return;
        }
        this.#current = desired;
        this.#log().info(
          { slotsChanged: changes.adds.length, ms: Math.round(performance.now() - started) },
          `${s.name}: ${changes.adds.length} of ${desired.length} slots rewritten`,
        );
      }
      // 4. After the map: retries of the deleted flows must already find the new slot owners,
      // and flows that the old slots sent to a lost server during the rewrite go too.
      if (!early || slotsChange) await this.#deleteFlows(lost);
    } finally {
      this.#applying--;
    }
  }

  async stop(options: { keepState?: boolean; failedStart?: boolean } = {}): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
    if (this.#claimKey) claimedTables.delete(this.#claimKey);
    this.#claimKey = undefined;
    const table = `${this.#family} ${this.#service.table}`;
    if (options.keepState) {
      this.#log().info(
        { table },
        `${this.serviceName}: leaving nftables table ${table} programmed (keepState): a new start adopts it`,
      );
      return;
    }
    if (options.failedStart && !this.#created) {
      // A table this process did not create holds the previous process's tunnels (or could not
      // be read: a slow nft on a loaded host); deleting it would cut them all.
      this.#log().warn(
        { table },
        `${this.serviceName}: start-up failed; leaving nftables table ${table} as this process found it, for the next start to adopt`,
      );
      return;
    }
    const r = await this.#applier.deleteTable(this.#family, this.#service.table);
    if (!r.ok) throw this.#applyError(`deleting table ${table} failed`, r.error);
    this.#log().info({ table }, `${this.serviceName}: deleted nftables table ${table}`);
  }

  /**
   * This service's `ike-spi` flow state (pins, SPIs, peers with their remaining lifetimes) for
   * the other nodes of an ECMP farm; undefined for an affinity without pins.
   */
  async exportFlowState(): Promise<ServiceFlowState | undefined> {
    const s = this.#service;
    if (!isSpiAffinity(s.affinity) || s.natTPort === 0) return undefined;
    // One set at a time: `nft list sets table` would also fetch the 65,537-element map (a
    // second of CPU per call, measured; `list set` takes milliseconds).
    const names = this.#backends.flatMap((b) => [
      pinSetName(b.id),
      ...(hasSpiSets(s) ? [spiSetName(b.id)] : []),
      ...(hasPeerSets(s) ? [peerSetName(b.id)] : []),
    ]);
    const items: unknown[] = [];
    for (const name of names) {
      const r = await this.#applier.list(['set', this.#family, s.table, name]);
      if (!r.ok)
        throw this.#applyError(`reading set ${name} of ${this.#family} ${s.table} failed`, r.error);
      const listed = (r.value as { nftables?: unknown[] } | null)?.nftables;
      if (Array.isArray(listed)) items.push(...listed);
    }
    return flowStateOfSetsJson(
      { nftables: items },
      { name: s.name, family: s.family },
      this.#backends,
    );
  }

  /**
   * Adds the other nodes' flow state (`raws`: each one's document entry for this service,
   * unchecked network input) to this node's sets: what is missing here, local copies seen more
   * recently elsewhere, and pins or SPIs seen more recently on another server. A malformed
   * entry is reported by its index and left out. Nothing goes to a server that is down or
   * disabled here, nor while a snapshot is being applied (its retirement of lost servers must
   * not be undone): that round is `skipped`.
   */
  async importFlowState(raws: readonly unknown[]): Promise<FlowImportResult> {
    const s = this.#service;
    const invalid: { index: number; error: string }[] = [];
    if (!isSpiAffinity(s.affinity) || s.natTPort === 0)
      return { skipped: `affinity ${s.affinity} keeps no flow state`, invalid };
    const limits = {
      maxElements: s.maxFlows,
      maxExpires: {
        pin: seconds(s.persistenceTimeout),
        spi: seconds(s.persistenceTimeout),
        peer: seconds(s.flowTimeout),
      },
    };
    const remotes: ServiceFlowState[] = [];
    raws.forEach((raw, index) => {
      const checked = checkServiceFlowState(raw, s.family, limits);
      if (checked.ok) remotes.push(checked.value);
      else invalid.push({ index, error: checked.error });
    });
    const busy = { skipped: 'a snapshot is being applied', invalid };
    if (this.#applying > 0) return busy;
    const local = await this.exportFlowState();
    const servers = () =>
      new Set(this.#backends.filter((b) => !this.#flushed.has(b.name)).map((b) => b.address));
    const plan = planFlowImport(local!, remotes, {
      servers: servers(),
      refreshAfter: Math.min(FLOW_REFRESH_AFTER_S, Math.ceil(seconds(s.flowTimeout) / 4)),
      minLife: FLOW_MIN_LIFE_S,
    });
    if (plan.changes.length === 0) return { plan, invalid };
    // Re-checked after the read: an apply may have started and retired a server meanwhile.
    const usable = servers();
    if (this.#applying > 0 || plan.changes.some((c) => !usable.has(c.server))) return busy;
    const r = await this.#applier.apply(
      renderFlowImport(this.#family, s.table, this.#backends, plan),
    );
    if (!r.ok) return { error: `nft refused the import: ${r.error}`, invalid };
    return { plan, invalid };
  }

  status(): DataPlaneStatus {
    const s = this.#service;
    const host = (a: string) => (isIP(a) === 6 ? `[${a}]` : a);
    const listeners = [s.ikePort, s.natTPort]
      .filter((p) => p !== 0)
      .map((p) => `udp ${host(s.virtualIp)}:${p} (nft ${this.#family} ${s.table})`);
    const backends = backendFigures(this.#backends, this.#counters, this.#flows, 'flows');
    return {
      dataplane: 'kernel',
      listeners,
      backends,
      warnings: [...this.#staticWarnings, ...this.#returnPathWarnings],
    };
  }

  /**
   * Reads the counters back and, in transparent mode, runs the return-path check (the timer
   * calls it). One read at a time: on a busy host one `nft list counters` (which dumps the
   * table, map included) can outlast the poll interval, and overlapping reads only pile up
   * processes (seen: eleven at once on a loaded two-core machine). A call during a read gets
   * one more read after it (shared by every such call), so that what it sees is not older than
   * the call. A timer poll that falls during an apply is skipped: the apply's nft processes
   * need the CPU, and a failover is when the slot transaction must not wait behind a dump.
   */
  refresh(options: { poll?: boolean } = {}): Promise<void> {
    if (options.poll && (this.#applying > 0 || this.#refreshing))
      return this.#refreshing ?? Promise.resolve();
    if (this.#refreshing) {
      this.#nextRefresh ??= this.#refreshing.then(() => {
        this.#nextRefresh = undefined;
        return this.refresh();
      });
      return this.#nextRefresh;
    }
    this.#refreshing = this.#refresh().finally(() => {
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
    if (s.nat !== 'transparent') return;
    const listed = await this.#conntrack.list(s.virtualIp, s.family);
    if (!listed.ok) return;
    const states = new Map((this.#lastSnapshot?.backends ?? []).map((b) => [b.name, b.state]));
    const scan = await this.#returnPath.scan(
      listed.value,
      this.#backends,
      states,
      this.#log(),
      s.name,
    );
    this.#flows = scan.flows;
    this.#returnPathWarnings = scan.warnings;
  }

  #desiredSlots(snapshot: ServiceSnapshot): (string | undefined)[] {
    return slotAddressesOf(this.#maglevTable(snapshot));
  }

  /** The snapshot's own Maglev table (so `decide()` names the kernel's choice), or one rebuilt for this family. */
  #maglevTable(snapshot: ServiceSnapshot): MaglevTable {
    const fam = this.#service.family;
    const candidates: Candidate[] = snapshot.candidates.filter(
      (c) => (isIP(c.address) === 6 ? 6 : 4) === fam,
    );
    if (
      snapshot.balancer instanceof MaglevBalancer &&
      candidates.length === snapshot.candidates.length
    )
      return snapshot.balancer.table;
    return new MaglevBalancer({
      candidates,
      seed: this.#service.hashSeed,
      connections: new ConnectionCounts(),
    }).table;
  }

  /**
   * What a transaction does for servers that went down or were disabled: empty their pin sets
   * and their SPI sets, moving the SPIs into `spi_dead` so that the stale IKE packets of their
   * SAs (a client's DPD or DELETE, which RFC 7296 §1.4.1 / §2.4 clients keep sending until they
   * give up) are dropped instead of creating a conntrack entry that would capture the client's
   * next handshake. The SPIs are read just before the transaction; an SA recorded in between
   * is not moved (its server's slots change in the same transaction, so it is a rare race).
   *
   * `nft -j list set` reads one set only (nft fetches no other set's elements for it: ~0.1 s
   * next to seconds for anything that dumps the slot map).
   *
   * @param existingSets set names the table holds (start: an SPI set that is not there yet has
   *   nothing to move); undefined: the table is ours and complete (apply).
   * @param leftoverSets sets of servers that left the configuration (start): emptied, and the
   *   SPIs of the `spi_` ones moved too.
   */
  async #retire(
    backends: readonly { name: string }[],
    existingSets?: readonly string[],
    leftoverSets: readonly string[] = [],
  ): Promise<Retirement> {
    const s = this.#service;
    const ids = backends
      .map((b) => this.#idOf(b.name))
      .filter((id): id is string => id !== undefined);
    const flushSets = isSpiAffinity(s.affinity) ? ids.map(pinSetName) : [];
    // Their clients' next SAs must be placed afresh, not sent after their lost flows.
    const peerSets = hasPeerSets(s) ? ids.flatMap((id) => [peerSetName(id), learnSetName(id)]) : [];
    flushSets.push(...peerSets, ...leftoverSets.filter((n) => !isSpiSet(n)));
    const deadSpis: string[] = [];
    const spiSets = [
      ...(hasSpiSets(s) ? ids.map(spiSetName) : []),
      ...leftoverSets.filter(isSpiSet),
    ];
    for (const name of spiSets) {
      if (existingSets && !existingSets.includes(name)) continue;
      const r = await this.#applier.list(['set', this.#family, s.table, name]);
      if (r.ok) deadSpis.push(...spisOfSetJson(r.value));
      else
        this.#log().warn(
          { set: name, err: r.error },
          `${s.name}: could not read ${name}; stale IKE packets of its SAs will be hashed to a live server`,
        );
      flushSets.push(name);
    }
    const names = [
      ...backends.map((b) => b.name),
      ...leftoverSets.filter(isSpiSet).map((n) => n.slice(4)),
    ];
    if (deadSpis.length > 0)
      this.#log().info(
        { spis: deadSpis.length, backends: names },
        `${s.name}: ${deadSpis.length} IKE SAs of ${names.join(', ')} marked dead: their stale packets are dropped`,
      );
    return { flushSets, deadSpis, existingSets };
  }

  /**
   * Applies a retirement on its own: SPIs into `spi_dead`, the sets emptied, no slot touched —
   * a few lines that nft commits in a fraction of a second however large the map. False when
   * there was nothing to do or nft refused (the slot transaction then carries it all).
   *
   * @param hasDeadSet whether the table holds `spi_dead` yet (start: an older table may not).
   */
  async #retireEarly(retired: Retirement, hasDeadSet = true): Promise<boolean> {
    const s = this.#service;
    const flushSets = retired.existingSets
      ? retired.flushSets.filter((n) => retired.existingSets!.includes(n))
      : retired.flushSets;
    if (flushSets.length === 0) return false;
    const deadSpis = hasDeadSet ? retired.deadSpis : [];
    const started = performance.now();
    const r = await this.#applier.apply(
      renderMapUpdate(this.#family, s.table, NO_SLOT_CHANGES, [], flushSets, deadSpis),
    );
    this.#metrics.retired(r.ok);
    if (!r.ok) {
      this.#log().warn(
        { err: r.error },
        `${s.name}: nft rejected the retirement of lost servers' SAs; it is retried with the slot update`,
      );
      return false;
    }
    this.#log().info(
      { sets: flushSets, spis: deadSpis.length, ms: Math.round(performance.now() - started) },
      `${s.name}: lost servers retired (${deadSpis.length} SAs marked dead, ${flushSets.length} sets emptied) before the slot update`,
    );
    return true;
  }

  async #deleteFlows(backends: readonly { name: string; address: string }[]): Promise<void> {
    if (!mayDeleteFlows(this.#ctx, this.#metrics, this.#log(), this.serviceName, backends)) return;
    for (const b of backends) {
      const r = await this.#conntrack.deleteBackendFlows(
        this.#service.virtualIp,
        b.address,
        this.#service.family,
      );
      if (r.ok) {
        this.#metrics.conntrackDeleted(b.name, r.value);
        if (r.value > 0)
          this.#log().info(
            { backend: b.name, deleted: r.value },
            `${this.serviceName}: deleted ${r.value} conntrack entries of ${b.name} so that its clients reach a live server`,
          );
      } else {
        this.#metrics.conntrackFailed();
        this.#log().warn(
          { backend: b.name, err: r.error },
          `${this.serviceName}: could not delete the conntrack entries of ${b.name}; its clients stay on it until the entries expire`,
        );
      }
    }
  }

  #idOf(name: string): string | undefined {
    return this.#backends.find((b) => b.name === name)?.id;
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

/** The check-mode transaction `kernelAvailability` sends (nothing is created). */
const AVAILABILITY_PROBE = ['--check', 'add', 'table', 'ip', 'vpnlb_probe'] as const;

/**
 * Whether the kernel data plane can run here: `nft` will receive CAP_NET_ADMIN (root, or the
 * capability in vpnlb's ambient set: see platform/capabilities.ts), `nft` is installed, and
 * the kernel accepts an nftables transaction in check mode (it refuses without nf_tables, or in
 * a user namespace that does not own the network namespace). `missingCapability` says which
 * capability is the reason, when one is.
 */
export async function kernelAvailability(
  options: { netns?: string; capabilities?: ProcessCapabilities } = {},
): Promise<{ ok: true } | { ok: false; reason: string; missingCapability?: CapabilityName }> {
  const caps = options.capabilities ?? readProcessCapabilities();
  if (caps ? !helperReceives(caps, 'CAP_NET_ADMIN') : process.getuid?.() !== 0) {
    const held = caps
      ? `uid ${caps.uid}, ambient capabilities: ${describeMask(caps.ambient)}`
      : `uid ${process.getuid?.()}`;
    return {
      ok: false,
      reason: missingCapabilityMessage('CAP_NET_ADMIN', `nft would run without it (${held})`),
      missingCapability: 'CAP_NET_ADMIN',
    };
  }
  // The runner's default bound, as for every nft call: on a loaded host even a small command can take seconds.
  const run = createCommandRunner(options.netns ? { netns: options.netns } : {});
  const v = await run('nft', ['--version']);
  if (!v.ok) return { ok: false, reason: `nftables (nft) is not usable: ${v.message}` };
  // A transaction in check mode (sent to the kernel, then aborted): it needs nf_tables and
  // CAP_NET_ADMIN in this network namespace, as `nft list tables` does, but nft fetches nothing
  // for it, where `list tables` dumps every table's sets (a 65,537-element slot map: seconds).
  const l = await run('nft', AVAILABILITY_PROBE);
  if (!l.ok) {
    const what = `nft ${AVAILABILITY_PROBE.join(' ')} failed`;
    return isPermissionError(l.message)
      ? {
          ok: false,
          reason: `${what}: ${explainPermissionError(l.message, 'CAP_NET_ADMIN')}`,
          missingCapability: 'CAP_NET_ADMIN',
        }
      : { ok: false, reason: `${what}: ${l.message}` };
  }
  return { ok: true };
}

/**
 * Full NAT with a pool: the kernel admits at most `maxSasPerAddress` tunnels per (pool address,
 * server), and a client's pool address is fixed by a hash of its address (no spill-over to a
 * free address as in the userspace relay). Warns when the pool's total, addresses × cap ×
 * servers, is below `maxFlows` (the number of clients the service is sized for).
 */
export function snatCapacityWarning(service: Ikev2Service, servers: number): string | undefined {
  if (!hasSnatCap(service) || servers === 0) return undefined;
  const addresses = snatAddresses(service).length;
  const cap = service.snat?.maxSasPerAddress ?? 0;
  const total = addresses * cap * servers;
  if (total >= service.maxFlows) return undefined;
  return `nat: full: the SNAT pool admits at most ${total} tunnels (${addresses} address${addresses === 1 ? '' : 'es'} × snat.maxSasPerAddress ${cap} × ${servers} server${servers === 1 ? '' : 's'}), below maxFlows ${service.maxFlows}: new clients beyond it are refused (vpnlb_kernel_dropped_packets_total{reason="snat_exhausted"}); add SNAT addresses`;
}
