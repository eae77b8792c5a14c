/**
 * The userspace IKEv2 relay: the data plane for IKEv2 where the kernel (nftables) cannot be
 * used — demo, containers, machines without root. It listens on the virtual IP's UDP 500 and
 * 4500 and relays each client to one backend through a per-flow upstream socket, so it is full
 * NAT by nature: the backend sees the relay's (or the SNAT pool's) address, never the client's.
 *
 * Affinity (DESIGN.md §1.2): a client's IKE on 500, its IKE on 4500 — from a *new* source port
 * after the NAT-T switch (RFC 7296 §2.23) — and its ESP-in-UDP on 4500 (RFC 3948) must reach
 * one server. Each new flow is placed through an affinity *session*: with `affinity: ike-spi`
 * the session is the IKE SA, keyed by the initiator SPI that both the 500 and the 4500 IKE
 * packets carry; with `source-ip` it is the client address. A session remembers its backend
 * for `persistenceTimeout` (so the answer cannot change with the snapshot between 500 and
 * 4500); ESP arriving with no flow follows the client address's most recent session, else it is
 * dropped and counted (never sent to a random server). New sessions are placed with the one
 * decision function (`decide`), the same hash and table as the kernel plane; with `ike-spi` a
 * new session from an address whose live NAT-T flows are all on one server joins it (an Always
 * On VPN user tunnel shares its device tunnel's NAT-T flow; natt-flow-index.ts).
 *
 * Bounded under a flood: flows, sessions and pins live in `FlowTable`s of at most `maxFlows`
 * entries (second-chance eviction, refusal when nothing is evictable); at most
 * `maxPendingSetups` upstream sockets are set up at once and at most `maxNewFlowsPerSecond`
 * flows are set up per second (a setup costs several times a forwarded datagram), beyond which
 * new flows are shed (`new-flow-shed`) while existing flows keep flowing. Every dropped
 * datagram is counted by reason.
 *
 * The per-packet path of an existing flow does one map lookup under a numeric key (IPv4:
 * relay-flow-key.ts; no string is built), an allocation-free sanity check, a clock read without
 * a system call (`CoarseClock`) and one `send` without callback on a connected socket. What
 * remains per datagram is Node's own (a Buffer and an rinfo object per received datagram, the
 * send path) and the kernel's; see docs/operations.md for the measured split.
 *
 * Native fast path (fastpath/): when the optional addon is built, established flows are
 * forwarded by a native thread with recvmmsg/sendmmsg batches instead (the same quick checks,
 * mirrored in C); this class still decides everything — new flows reach it through the
 * addon's hand-off, it installs a flow once its upstream socket is connected and removes it
 * before closing that socket, and it pulls the addon's counters and last-seen times on every
 * housekeeping pass, `status()` and `stats()`. Without the addon it forwards as described above.
 */
import { createSocket, type RemoteInfo, type Socket, type SocketOptions } from 'node:dgram';
import type { Ikev2Service } from '../../config/types.js';
import type { RuntimeContext } from '../../control/runtime-context.js';
import { backendsToFlush, type ServiceSnapshot } from '../../control/snapshot.js';
import { decide } from '../../control/decide.js';
import { isSpiAffinity } from '../../balancer/affinity.js';
import { VpnlbError } from '../../errors.js';
import { parseIkeHeader } from '../../protocol/ikev2/ike-header.js';
import { classifyNatT } from '../../protocol/ikev2/nat-t.js';
import { IkeParseStats } from '../../protocol/ikev2/parse-stats.js';
import type { ConnectionCounts } from '../../balancer/balancer.js';
import type { Logger } from '../../log/logger.js';
import type {
  BackendCounters,
  DataPlane,
  DataPlaneStatus,
} from '../../control/dataplane-interface.js';
import { CoarseClock, FlowTable, type RemovalReason, type TableEntry } from './flow-table.js';
import { MONOTONIC_CLOCK, type Clock } from '../../util/clock.js';
import { flowKey, type FlowKey } from './relay-flow-key.js';
import { RelayFlow, type FlowOwner, type RelayBackend, type RelaySession } from './relay-flow.js';
import { RelayDrops, checkIkeAt, checkNatTDatagram, type RelayDropReason } from './relay-drops.js';
import { RelayMetrics } from './relay-metrics.js';
import { NewFlowBudget } from './relay-new-flow-budget.js';
import { SourceRateLimiter } from './source-rate-limiter.js';
import { openFileLimit } from '../../platform/open-file-limit.js';
import { SnatPool, type SnatPairUsage } from './snat-pool.js';
import { NatTFlowIndex } from './natt-flow-index.js';
import {
  RelayFastPath,
  type FastPathMode,
  type FastPathStatus,
} from './fastpath/relay-fast-path.js';
import { listenError } from '../../platform/capabilities.js';
import type { NftApplier } from '../kernel/nft-applier.js';
import { kernelAvailability } from '../kernel/kernel-dataplane.js';
import type { OverflowReader } from './relay-kernel-shed.js';
import { RelayShed, type KernelShedMode, type RelayShedStatus } from './relay-shed.js';

/** Test and tuning knobs that are not part of the configuration file. */
export interface UdpRelayOptions {
  readonly clock?: Clock;
  /** Most upstream sockets being bound/connected at once (default 256). */
  readonly maxPendingSetups?: number;
  /** Housekeeping period in ms (default: a quarter of the shortest timeout, 100 ms – 1 s). */
  readonly sweepInterval?: number;
  /**
   * Most new flows set up per second, sustained (default: the service's `maxNewFlowsPerSecond`);
   * beyond it well-formed new flows are shed (`new-flow-shed`) so that a flood of new source
   * ports cannot starve established flows (see relay-new-flow-budget.ts). Infinity: no cap.
   */
  readonly maxNewFlowsPerSecond?: number;
  /**
   * `auto` (default): forward established flows in the native fast path when its addon loads
   * and `VPNLB_RELAY_FASTPATH` is not `0`; `off`: always in JavaScript.
   */
  readonly fastPath?: FastPathMode;
  /** Overrides the service's `kernelShed` (tests); `nft`/`overflows` inject the kernel side. */
  readonly kernelShed?: KernelShedMode;
  readonly shedNft?: NftApplier;
  readonly shedOverflows?: OverflowReader;
  readonly shedTickMs?: number;
  /**
   * Listening sockets opened by someone else, already bound (worker processes: one socket of
   * each SO_REUSEPORT group, src/dataplane/workers/reuseport-group.ts); the relay adopts them
   * instead of binding the service's ports, and closes its handles on stop.
   */
  readonly sockets?: { readonly ike: Socket; readonly natT: Socket };
  /**
   * Affinity ike-spi, worker processes: IKE SA sessions this relay placed, [session key,
   * server] (batched), and again every half `persistenceTimeout` while they have flows, for
   * the other workers' `learnReplica` — a client that roams to an address served by another
   * worker (MOBIKE) stays on its server there.
   */
  readonly onSessionsLearned?: (entries: readonly (readonly [string, string])[]) => void;
  /**
   * Most sessions kept (default `maxFlows`). Workers: the whole service's `maxFlows`, since a
   * worker keeps the other workers' sessions too while its flows are its share.
   */
  readonly maxSessions?: number;
  /** Warnings its creator found (e.g. why it runs without the workers asked for), in `status()`. */
  readonly warnings?: readonly string[];
}

/** A client address's most recent session (affinity ike-spi): where its stray ESP goes. */
interface Pin extends TableEntry {
  session: RelaySession;
}

/** Counters for tests, the demo and troubleshooting. */
export interface UdpRelayStats {
  readonly flows: number;
  /** Flows set up since start. */
  readonly flowsCreated: number;
  readonly sessions: number;
  readonly pins: number;
  readonly settingUp: number;
  readonly dropped: Readonly<Record<RelayDropReason, number>>;
  readonly snat: readonly SnatPairUsage[];
  /** Whether the native fast path forwards established flows, and how many. */
  readonly fastPath: FastPathStatus;
  /** Whether a flood is shed in the kernel (nftables) before the relay's sockets. */
  readonly kernelShed: RelayShedStatus;
}

// Larger socket buffers absorb bursts instead of dropping them in the kernel (capped by
// net.core.rmem_max / wmem_max; failures to raise them are harmless).
const SOCKET_BUFFER_BYTES = 4 * 1024 * 1024;
// Replies go to literal addresses: skip the asynchronous dns.lookup Node does before each send
// (node:dgram calls lookup(address, family, callback)).
const LITERAL_LOOKUP = ((
  address: string,
  family: number,
  cb: (err: null, address: string, family: number) => void,
) => cb(null, address, family)) as unknown as SocketOptions['lookup'];

/** The key prefix of an IKE SA's session (affinity ike-spi), the sessions workers share. */
const SPI_SESSION = 'spi:';

export class UdpRelay implements DataPlane {
  // Immutable configuration and collaborators.
  readonly serviceName: string;
  readonly #service: Ikev2Service;
  readonly #logger: Logger;
  readonly #clock: Clock;
  /** Read per datagram; refreshed by housekeeping and on new flows. */
  readonly #coarse: CoarseClock;
  readonly #connections: ConnectionCounts;
  readonly #drops: RelayDrops;
  readonly #metrics: RelayMetrics;
  readonly #snat: SnatPool;
  readonly #parseStats = new IkeParseStats();
  readonly #isSpiAffinity: boolean;
  /** Live NAT-T flows per client address and server (affinity ike-spi: a new SA joins its client's flows). */
  readonly #natTFlows = new NatTFlowIndex();
  readonly #maxPendingSetups: number;
  readonly #newFlowBudget: NewFlowBudget | undefined;
  /** Each source's share of the budget, taken before the service's (source-rate-limiter.ts). */
  readonly #newFlowsPerSource: SourceRateLimiter | undefined;
  readonly #sweepInterval: number;
  readonly #backends = new Map<string, RelayBackend>();
  readonly #flows: FlowTable<RelayFlow, FlowKey>;
  readonly #sessions: FlowTable<RelaySession>;
  readonly #pins: FlowTable<Pin>;
  readonly #warnings: string[] = [];
  readonly #fastPathMode: FastPathMode;
  readonly #metricsRegistry: RuntimeContext['metrics'];
  readonly #shed: RelayShed;
  readonly #adopted: UdpRelayOptions['sockets'];
  readonly #onSessionsLearned: UdpRelayOptions['onSessionsLearned'];
  /** Sessions placed here and not yet announced (flushed on the next turn of the loop). */
  #toAnnounce: (readonly [string, string])[] = [];
  /** Servers down or disabled in the last snapshot: they take no replica (`learnReplica`). */
  #flushed: ReadonlySet<string> = new Set();
  /** Replicas learned before `start` (the servers are known from then on). */
  #earlyReplicas: [string, string][] | undefined = [];
  /** When each announced session was last announced (affinity ike-spi, workers). */
  readonly #announcedAt = new WeakMap<RelaySession, number>();
  // Mutable state.
  #snapshot: ServiceSnapshot | undefined;
  #ikeSocket: Socket | undefined;
  #natTSocket: Socket | undefined;
  #ports = { ike: 0, natT: 0 };
  #settingUp = 0;
  #timer: NodeJS.Timeout | undefined;
  #fast: RelayFastPath | undefined;
  #flowsCreated = 0;

  constructor(service: Ikev2Service, ctx: RuntimeContext, options: UdpRelayOptions = {}) {
    this.serviceName = service.name;
    this.#service = service;
    this.#logger = ctx.logger.child({ component: 'udp-relay', service: service.name });
    this.#clock = options.clock ?? MONOTONIC_CLOCK;
    this.#coarse = new CoarseClock(this.#clock);
    this.#connections = ctx.controller.connections(service.name);
    this.#drops = new RelayDrops(service.name, this.#logger, this.#coarse);
    this.#metrics = new RelayMetrics(service.name, ctx.metrics);
    this.#metricsRegistry = ctx.metrics;
    this.#fastPathMode = options.fastPath ?? 'auto';
    this.#adopted = options.sockets;
    this.#warnings.push(...(options.warnings ?? []));
    this.#onSessionsLearned = options.onSessionsLearned;
    this.#snat = new SnatPool(service.snat?.addresses, service.snat?.maxSasPerAddress ?? Infinity);
    this.#isSpiAffinity = isSpiAffinity(service.affinity);
    this.#maxPendingSetups = options.maxPendingSetups ?? 256;
    const perSecond = options.maxNewFlowsPerSecond ?? service.maxNewFlowsPerSecond;
    this.#newFlowBudget = Number.isFinite(perSecond)
      ? new NewFlowBudget(perSecond, this.#clock.now())
      : undefined;
    const perSource = service.maxNewFlowsPerSecondPerSource;
    this.#newFlowsPerSource =
      Number.isFinite(perSource) && perSource < perSecond
        ? new SourceRateLimiter({ perSecond: perSource })
        : undefined;
    this.#sweepInterval =
      options.sweepInterval ??
      Math.min(
        1000,
        Math.max(100, Math.floor(Math.min(service.flowTimeout, service.persistenceTimeout) / 4)),
      );
    const clock = this.#clock;
    this.#flows = new FlowTable<RelayFlow, FlowKey>({
      maxEntries: service.maxFlows,
      idleTimeout: service.flowTimeout,
      clock,
      onRemove: (_key, flow, reason) => this.#flowRemoved(flow, reason),
    });
    this.#sessions = new FlowTable<RelaySession>({
      maxEntries: options.maxSessions ?? service.maxFlows,
      idleTimeout: service.persistenceTimeout,
      clock,
    });
    this.#pins = new FlowTable<Pin>({
      maxEntries: service.maxFlows,
      idleTimeout: service.persistenceTimeout,
      clock,
    });
    this.#shed = new RelayShed({
      mode: options.kernelShed ?? service.kernelShed,
      serviceName: service.name,
      family: service.family,
      virtualIp: service.virtualIp,
      maxNewFlowsPerSecond: Number.isFinite(perSecond) ? perSecond : service.maxNewFlowsPerSecond,
      interfaces: service.kernelShedInterfaces,
      maxFlows: service.maxFlows,
      logger: this.#logger,
      metrics: ctx.metrics,
      availability: () => kernelAvailability(),
      ...(options.shedNft ? { nft: options.shedNft } : {}),
      ...(options.shedOverflows ? { overflows: options.shedOverflows } : {}),
      ...(options.shedTickMs ? { tickMs: options.shedTickMs } : {}),
    });
  }

  /** The bound ports (useful when the configuration asks for port 0). */
  ports(): { ike: number; natT: number } {
    return { ...this.#ports };
  }

  async start(snapshot: ServiceSnapshot): Promise<void> {
    if (snapshot.kind !== 'ikev2')
      throw new VpnlbError(
        'VPNLB_DATAPLANE_APPLY',
        `${this.serviceName}: the UDP relay serves IKEv2 services only`,
        'internal',
      );
    this.#snapshot = snapshot;
    for (const b of snapshot.backends) {
      this.#backends.set(b.name, {
        name: b.name,
        address: b.address,
        family: b.family,
        traffic: { packetsIn: 0, bytesIn: 0, packetsOut: 0, bytesOut: 0, flows: 0 },
      });
    }
    const s = this.#service;
    if (this.#adopted) {
      this.#ikeSocket = this.#configure(this.#adopted.ike, this.#onIkeDatagram);
      this.#natTSocket = this.#configure(this.#adopted.natT, this.#onNatTDatagram);
    } else {
      this.#ikeSocket = await this.#listen(s.ikePort, this.#onIkeDatagram);
      try {
        this.#natTSocket = await this.#listen(s.natTPort, this.#onNatTDatagram);
      } catch (err) {
        this.#ikeSocket.close();
        throw err;
      }
    }
    this.#ports = { ike: this.#ikeSocket.address().port, natT: this.#natTSocket.address().port };
    this.#fast = new RelayFastPath({
      mode: this.#fastPathMode,
      serviceName: s.name,
      ike: this.#ikeSocket,
      natT: this.#natTSocket,
      maxFlows: s.maxFlows,
      logger: this.#logger,
      metrics: this.#metricsRegistry,
      drops: this.#drops,
      clock: this.#coarse,
      onDatagram: (msg, rinfo, isNatT) =>
        isNatT ? this.#onNatTDatagram(msg, rinfo) : this.#onIkeDatagram(msg, rinfo),
      warnings: this.#warnings,
    });
    this.#warnFullNat();
    this.#warnFileLimit();
    await this.#shed.start([this.#ports.ike, this.#ports.natT], () => this.#forwardedToBackends());
    this.#flushed = new Set(backendsToFlush(snapshot).map((b) => b.name));
    const early = this.#earlyReplicas ?? [];
    this.#earlyReplicas = undefined;
    for (const [key, backend] of early) this.learnReplica(key, backend);
    this.#timer = setInterval(() => this.#housekeeping(), this.#sweepInterval);
    this.#timer.unref();
  }

  async apply(snapshot: ServiceSnapshot): Promise<void> {
    if (snapshot.kind !== 'ikev2') return;
    this.#snapshot = snapshot;
    // Down or disabled backends lose their flows now (clients retry and are placed elsewhere);
    // draining ones keep theirs and only stop receiving new sessions (decide() skips them).
    const flush = new Set(backendsToFlush(snapshot).map((b) => b.name));
    this.#flushed = flush;
    if (flush.size === 0) return;
    const flows = this.#flows.removeWhere((f) => flush.has(f.backend.name), 'flushed');
    const sessions = this.#sessions.removeWhere((x) => flush.has(x.backend.name), 'flushed');
    this.#pins.removeWhere((p) => flush.has(p.session.backend.name), 'flushed');
    if (flows + sessions > 0) {
      this.#logger.info(
        { backends: [...flush], flows, sessions },
        `${this.serviceName}: removed ${flows} flow(s) and ${sessions} session(s) of ${[...flush].join(', ')} (down or disabled)`,
      );
    }
  }

  async stop(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
    await this.#shed.stop();
    // The native thread stops before Node closes the listeners it reads.
    this.#fast?.close();
    for (const sock of [this.#ikeSocket, this.#natTSocket]) {
      if (!sock) continue;
      await new Promise<void>((resolve) => {
        try {
          sock.close(() => resolve());
        } catch {
          resolve();
        }
      });
    }
    this.#ikeSocket = this.#natTSocket = undefined;
    this.#flows.clear('stopped');
    this.#sessions.clear('stopped');
    this.#pins.clear('stopped');
    this.#metrics.flush(this.#backends.values(), this.#drops, this.#snat.size);
  }

  status(): DataPlaneStatus {
    this.#fast?.sync();
    const vip = this.#service.virtualIp.includes(':')
      ? `[${this.#service.virtualIp}]`
      : this.#service.virtualIp;
    const backends: Record<string, BackendCounters> = {};
    for (const b of this.#backends.values()) {
      const t = b.traffic;
      backends[b.name] = {
        packetsIn: t.packetsIn,
        bytesIn: t.bytesIn,
        packetsOut: t.packetsOut,
        bytesOut: t.bytesOut,
        flows: t.flows,
        connections: this.#connections.get(b.name),
      };
    }
    const listeners = this.#ikeSocket
      ? [`udp ${vip}:${this.#ports.ike}`, `udp ${vip}:${this.#ports.natT}`]
      : [];
    return { dataplane: 'userspace-relay', listeners, backends, warnings: [...this.#warnings] };
  }

  /** Table sizes, drops by reason and SNAT use (tests, demo, troubleshooting). */
  stats(): UdpRelayStats {
    this.#fast?.sync();
    return {
      flows: this.#flows.size,
      flowsCreated: this.#flowsCreated,
      sessions: this.#sessions.size,
      pins: this.#pins.size,
      settingUp: this.#settingUp,
      dropped: { ...this.#drops.counts },
      snat: this.#snat.usage(),
      fastPath: this.#fast?.status() ?? {
        active: false,
        reason: 'not started',
        flows: 0,
        forwardedIn: 0,
        forwardedOut: 0,
      },
      kernelShed: this.#shed.status(),
    };
  }

  /**
   * A session another worker placed (`onSessionsLearned` there): kept like one of this relay's
   * own, without flows, for `persistenceTimeout` after it was last announced; a session this
   * relay holds itself is left as it is. Ignored when the server is unknown, down or disabled.
   * Before `start` it is held until the servers are known.
   */
  learnReplica(key: string, backendName: string): void {
    if (this.#earlyReplicas) {
      this.#earlyReplicas.push([key, backendName]);
      return;
    }
    const backend = this.#backends.get(backendName);
    if (backend === undefined || this.#flushed.has(backendName)) return;
    const existing = this.#sessions.get(key);
    if (existing !== undefined) {
      if (existing.backend === backend && existing.flows === 0) this.#sessions.touch(existing);
      return;
    }
    this.#sessions.insert(key, {
      key,
      clientAddress: '',
      backend,
      lease: undefined,
      flows: 0,
      lastSeen: 0,
      referenced: false,
    });
  }

  /** Queues a session for `onSessionsLearned` (one batch per turn of the event loop). */
  #announce(session: RelaySession): void {
    if (this.#onSessionsLearned === undefined) return;
    this.#announcedAt.set(session, this.#coarse.now());
    if (this.#toAnnounce.push([session.key, session.backend.name]) === 1)
      setImmediate(() => {
        const batch = this.#toAnnounce;
        this.#toAnnounce = [];
        this.#onSessionsLearned?.(batch);
      });
  }

  // --- per-datagram path ------------------------------------------------------------------

  readonly #onIkeDatagram = (msg: Buffer, rinfo: RemoteInfo): void => {
    const flow = this.#flows.get(flowKey(rinfo.address, rinfo.port, false));
    if (flow === undefined) return this.#newFlow(msg, rinfo, false);
    const bad = checkIkeAt(msg, 0);
    if (bad !== undefined) return this.#drops.drop(bad, rinfo.address);
    this.#forward(flow, msg);
  };

  readonly #onNatTDatagram = (msg: Buffer, rinfo: RemoteInfo): void => {
    const flow = this.#flows.get(flowKey(rinfo.address, rinfo.port, true));
    if (flow === undefined) return this.#newFlow(msg, rinfo, true);
    const bad = checkNatTDatagram(msg);
    if (bad !== undefined) return this.#drops.drop(bad, rinfo.address);
    this.#forward(flow, msg);
  };

  #forward(flow: RelayFlow, msg: Buffer): void {
    flow.lastSeen = this.#coarse.now();
    flow.referenced = true;
    if (flow.isReady) flow.socket!.send(msg);
    else if (!flow.enqueue(msg)) return this.#drops.drop('queue-full', flow.clientAddress);
    const t = flow.backend.traffic;
    t.packetsIn++;
    t.bytesIn += msg.length;
  }

  readonly #owner: FlowOwner = {
    onReply: (flow, msg) => {
      if (flow.isClosed) return;
      flow.lastSeen = this.#coarse.now();
      flow.referenced = true;
      const t = flow.backend.traffic;
      t.packetsOut++;
      t.bytesOut += msg.length;
      const listener = flow.isNatT ? this.#natTSocket : this.#ikeSocket;
      listener?.send(msg, flow.clientPort, flow.clientAddress);
    },
    onReady: (flow) => {
      this.#settingUp--;
      // Connected: from now on the native thread forwards this flow (when the fast path runs),
      // and its datagrams count as established in the kernel's shedding.
      this.#fast?.install(flow);
      this.#shed.flowReady(
        flow.clientAddress,
        flow.clientPort,
        flow.isNatT ? this.#ports.natT : this.#ports.ike,
      );
    },
    onSocketError: (flow, err) => {
      const code = (err as NodeJS.ErrnoException).code ?? err.message;
      this.#drops.drop('socket-error', flow.clientAddress, `${flow.backend.name}: ${code}`);
      // A socket that never got ready is useless: remove the flow so the client's retry starts
      // afresh. A connected one may report an ICMP error (ECONNREFUSED: nothing listens on the
      // backend); the flow stays, the health monitor judges the backend.
      if (!flow.isReady) this.#flows.delete(flow.key, 'error');
    },
  };

  /** A datagram from a client with no flow on this port: classify, place, open a flow. */
  #newFlow(msg: Buffer, rinfo: RemoteInfo, isNatT: boolean): void {
    const from = rinfo.address;
    // Shed new-flow work first under a flood: existing flows never wait behind it.
    if (this.#settingUp >= this.#maxPendingSetups) return this.#drops.drop('new-flow-shed', from);
    const snapshot = this.#snapshot;
    if (snapshot === undefined) return;
    let spi: Buffer | undefined;
    let session: RelaySession | undefined;
    if (!isNatT) {
      const parsed = parseIkeHeader(msg, this.#parseStats);
      if (parsed.kind === 'invalid') return this.#drops.drop(`ike-${parsed.code}`, from);
      spi = msg.subarray(0, 8);
    } else {
      const c = classifyNatT(msg, this.#parseStats);
      if (c.kind === 'invalid') return this.#drops.drop(c.code, from);
      if (c.kind === 'keepalive') return this.#drops.drop('keepalive-no-flow', from);
      if (c.kind === 'esp') {
        session = this.#isSpiAffinity
          ? this.#pins.get(from)?.session
          : this.#sessions.get('ip:' + from);
        if (session === undefined)
          return this.#drops.drop('esp-no-flow', from, `ESP SPI 0x${c.spi.toString(16)}`);
      } else {
        spi = msg.subarray(4, 12); // RFC 3948 §2.2: the IKE header follows the 4-octet marker
      }
    }
    // Well-formed and about to cost a setup (~50 µs): only within the new-flow budget, so that
    // a flood of new source ports is shed before it starves established flows; and within the
    // source's own share of it first, so that one source cannot spend the budget of all (a
    // source shed by its own share takes nothing from the others').
    const now = this.#coarse.refresh();
    if (this.#newFlowsPerSource !== undefined && !this.#newFlowsPerSource.take(from, now))
      return this.#drops.drop('new-flow-source-shed', from);
    if (this.#newFlowBudget !== undefined && !this.#newFlowBudget.take(now))
      return this.#drops.drop('new-flow-shed', from);
    if (session === undefined) {
      const key = this.#isSpiAffinity ? SPI_SESSION + spi!.toString('hex') : 'ip:' + from;
      session = this.#sessions.get(key);
      if (session === undefined) {
        // A new SA joins the server of its client's NAT-T flow when the address has one (one
        // device; decide() applies it for affinity ike-spi): it will share that flow. Two or
        // more flows are several devices behind one NAT: placed by SPI, they spread.
        const d = decide(snapshot, {
          address: from,
          ...(spi ? { spi } : {}),
          natTServers: this.#natTFlows.serversOf(from),
          natTFlows: this.#natTFlows.flowsOf(from),
        });
        const backend = d.backend ? this.#backends.get(d.backend.name) : undefined;
        if (backend === undefined) return this.#drops.drop('no-backend', from);
        session = {
          key,
          clientAddress: from,
          backend,
          lease: undefined,
          flows: 0,
          lastSeen: 0,
          referenced: false,
        };
        if (!this.#sessions.insert(key, session))
          return this.#drops.drop('session-table-full', from);
        if (this.#isSpiAffinity) this.#announce(session);
      }
      if (this.#isSpiAffinity) {
        const pin = this.#pins.get(from);
        if (pin !== undefined) {
          pin.session = session;
          this.#pins.touch(pin);
        } else {
          this.#pins.insert(from, { session, lastSeen: 0, referenced: false });
        }
      }
    }
    const backend = session.backend;
    const lease = this.#snat.acquire(session.key, backend.name, backend.family);
    if (lease === undefined) {
      return this.#drops.drop(
        'snat-exhausted',
        from,
        `every SNAT address has ${this.#snat.maxPerPair} session(s) on ${backend.name}`,
      );
    }
    const key = flowKey(from, rinfo.port, isNatT);
    // A full table evicts by the `referenced` marks: bring the native flows' marks up to date.
    if (this.#flows.size >= this.#flows.maxEntries) this.#fast?.sync();
    const flow = new RelayFlow(key, from, rinfo.port, isNatT, session, lease);
    if (!this.#flows.insert(key, flow)) {
      this.#snat.release(lease);
      return this.#drops.drop('flow-table-full', from);
    }
    if (isNatT) this.#natTFlows.add(from, backend.name);
    session.lease = lease;
    session.lastSeen = now;
    session.referenced = true;
    if (session.flows++ === 0) this.#connections.increment(backend.name);
    backend.traffic.flows++;
    this.#flowsCreated++;
    this.#settingUp++;
    flow.open(this.#owner, isNatT ? this.#service.backendNatTPort : this.#service.backendIkePort);
    this.#forward(flow, msg);
  }

  #flowRemoved(flow: RelayFlow, reason: RemovalReason): void {
    if (!flow.isReady && !flow.isClosed) this.#settingUp--;
    this.#fast?.remove(flow); // before close: the addon must be done with the socket
    this.#shed.flowGone(
      flow.clientAddress,
      flow.clientPort,
      flow.isNatT ? this.#ports.natT : this.#ports.ike,
    );
    flow.close();
    this.#snat.release(flow.lease);
    flow.backend.traffic.flows--;
    if (flow.isNatT) this.#natTFlows.remove(flow.clientAddress, flow.backend.name);
    const session = flow.session;
    if (--session.flows === 0) {
      this.#connections.decrement(flow.backend.name);
      session.lease = undefined;
      session.lastSeen = this.#clock.now(); // persistence runs from the last flow's end
    }
    this.#metrics.removed[reason]++;
  }

  // --- housekeeping -------------------------------------------------------------------------

  /** Datagrams forwarded towards the servers since start (the shedding's measure of capacity). */
  #forwardedToBackends(): number {
    this.#fast?.sync();
    let n = 0;
    for (const b of this.#backends.values()) n += b.traffic.packetsIn;
    return n;
  }

  #housekeeping(): void {
    const now = this.#coarse.refresh();
    this.#fast?.sync();
    this.#flows.sweep();
    // A session lives as long as one of its flows, then `persistenceTimeout` more; so do the
    // other workers' replicas of it, announced again every half of that while it has flows
    // here (also a replica whose client moved here: this worker announces it from now on).
    const announceBefore = now - this.#service.persistenceTimeout / 2;
    const announces = this.#onSessionsLearned !== undefined;
    for (const s of this.#sessions.values()) {
      if (s.flows > 0) {
        s.lastSeen = now;
        s.referenced = true;
        if (announces && s.key.startsWith(SPI_SESSION)) {
          const at = this.#announcedAt.get(s);
          if (at === undefined || at < announceBefore) this.#announce(s);
        }
      }
    }
    this.#sessions.sweep();
    this.#pins.sweep();
    this.#metrics.flush(this.#backends.values(), this.#drops, this.#snat.size);
  }

  async #listen(
    port: number,
    onMessage: (msg: Buffer, rinfo: RemoteInfo) => void,
  ): Promise<Socket> {
    const s = this.#service;
    const socket = createSocket({
      type: s.family === 6 ? 'udp6' : 'udp4',
      lookup: LITERAL_LOOKUP,
    });
    await new Promise<void>((resolve, reject) => {
      const onError = (err: Error) => {
        socket.close();
        reject(listenError(`${s.name}: cannot listen on UDP ${s.virtualIp}:${port}`, port, err));
      };
      socket.once('error', onError);
      socket.bind({ port, address: s.virtualIp, exclusive: true }, () => {
        socket.off('error', onError);
        resolve();
      });
    });
    return this.#configure(socket, onMessage);
  }

  /** Buffers, error and datagram handlers of a bound listening socket. */
  #configure(socket: Socket, onMessage: (msg: Buffer, rinfo: RemoteInfo) => void): Socket {
    const s = this.#service;
    for (const set of [
      () => socket.setRecvBufferSize(SOCKET_BUFFER_BYTES),
      () => socket.setSendBufferSize(SOCKET_BUFFER_BYTES),
    ]) {
      try {
        set();
      } catch {
        // capped by the kernel: keep its default
      }
    }
    // A send error towards one client (e.g. EPERM from a local firewall) must not stop the relay.
    socket.on('error', (err) =>
      this.#drops.drop(
        'socket-error',
        s.virtualIp,
        (err as NodeJS.ErrnoException).code ?? err.message,
      ),
    );
    socket.on('message', onMessage);
    return socket;
  }

  /** The error-809 warning: full NAT hides client addresses from the servers' per-IP limit. */
  #warnFullNat(): void {
    const s = this.#service;
    const snat = s.snat;
    const text = snat
      ? `full NAT (userspace relay): the VPN servers see clients as coming from ${snat.addresses.length} SNAT address(es), at most ${snat.maxSasPerAddress} session(s) per address and server; keep that below the servers' per-source-IP IKE SA limit or expect IKEv2 error 809; see docs/operations.md ("The userspace IKEv2 relay")`
      : `full NAT (userspace relay): the VPN servers will see every client as coming from the relay's own address: expect IKEv2 error 809 under load (servers limit IKE SAs per source address); configure snat.addresses or use the kernel data plane; see docs/operations.md ("Transparent vs full NAT")`;
    this.#warnings.push(text);
    this.#logger.warn(
      { nat: 'full', snatAddresses: snat?.addresses.length ?? 0 },
      `${s.name}: ${text}`,
    );
  }

  /** Each flow holds a socket: warn when `maxFlows` cannot be reached within the file limit. */
  #warnFileLimit(): void {
    const soft = openFileLimit();
    if (soft !== undefined && this.#service.maxFlows > soft) {
      const text = `maxFlows ${this.#service.maxFlows} exceeds the open-file limit ${soft} (one socket per flow): new flows will fail with socket-error before the table is full; raise LimitNOFILE or lower maxFlows`;
      this.#warnings.push(text);
      this.#logger.warn(
        { maxFlows: this.#service.maxFlows, openFileLimit: soft },
        `${this.serviceName}: ${text}`,
      );
    }
  }
}
