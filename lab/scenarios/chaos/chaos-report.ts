/** Options and the JSON report of the chaos scenario (chaos.ts); docs/lab.md explains every field. */

export interface ChaosOptions {
  /** Seconds of traffic (faults happen inside it); the set-up comes on top. */
  readonly durationSec: number;
  readonly seed: number;
  /** Tunnels (one client each): 10 % behind the CGNAT router (at most 55), 10 % IPv6, the rest IPv4. */
  readonly tunnels: number;
  /** Seconds between two pings of one tunnel. */
  readonly pingIntervalSec: number;
  /** Seconds between faults: drawn in [min, max]. */
  readonly gapSec: readonly [number, number];
  /** How long a drained server stays drained. */
  readonly drainSec: number;
  readonly flood: { readonly udpRate: number; readonly tcpRate: number; readonly seconds: number };
  /**
   * Only these faults, each exactly once (seeded order), and no repeats (the CI variant).
   * Default: every kind once, then more while time remains.
   */
  readonly faults?: readonly import('./fault-plan.js').FaultKind[];
  readonly label?: string;
  readonly progress?: (line: string) => void;
}

export type TunnelClass = 'ipv4' | 'cgnat' | 'ipv6';

/** Ping requests of the tunnels that were never displaced, in one window. */
export interface WindowLoss {
  readonly sent: number;
  readonly lost: number;
}

export interface ChaosReport {
  readonly seed: number;
  readonly durationSec: number;
  readonly tunnels: number;
  /** Tunnels up after the initial connection. */
  readonly established: number;
  readonly aliveAtEnd: number;
  /** Tunnels that had to be re-established (or were down at the end) although their server was never killed or removed. */
  readonly lostOutsideKilledServers: number;
  readonly lostClients: readonly string[];
  /** Tunnels whose server was killed or removed under them. */
  readonly displaced: number;
  /** Of those, how many established a new tunnel and had it at the end. */
  readonly displacedReestablished: number;
  readonly displacedBy: Readonly<Record<string, number>>;
  /**
   * Clients with a split handshake: UDP 500 and 4500 seen on different servers (balancer and
   * CGNAT conntrack, after every fault), or an IKE_AUTH left unanswered after its IKE_SA_INIT
   * was answered (the client's log).
   */
  readonly splitHandshakes: number;
  /** vpnlb's own `ike_split` counter over the run. */
  readonly ikeSplitPackets: number;
  readonly rssMbStart: number;
  readonly rssMbEnd: number;
  readonly fdsStart: number;
  readonly fdsEnd: number;
  /** vpnlb processes sampled (each restart is a new one). */
  readonly vpnlbStarts: number;
  /** vpnlb starts that failed and were retried (each is a finding: see lastErrors and vpnlb.log). */
  readonly vpnlbStartRetries: number;
  /** Resident memory of the client charons at start (one per tunnel). */
  readonly clientCharonRssMb: { readonly average: number; readonly total: number };
  /** Injected faults, seconds since the traffic started. */
  readonly events: readonly {
    readonly t: number;
    readonly kind: string;
    readonly detail: string;
  }[];
  /** vpnlb's memory and descriptors every 10 s. */
  readonly samples: { t: number; pid: number; rssMb: number; fds: number }[];
  /** Per tunnel class: ping requests sent and answered over the run, and the loss of never-displaced tunnels in the baseline and the flood windows. */
  readonly traffic: Partial<
    Record<
      TunnelClass,
      { tunnels: number; sent: number; received: number; baseline: WindowLoss; flood: WindowLoss }
    >
  >;
  /** Balancer conntrack at the end: the tunnels' flows to the VIPs vs tunnels alive. */
  readonly conntrack: {
    readonly natT: number;
    readonly ike: number;
    readonly flooder: number;
    readonly tunnelsAlive: number;
  };
  readonly errorsLogged: number;
  readonly warningsLogged: number;
  readonly lastErrors: readonly string[];
  readonly dropCounters: {
    /** vpnlb's kernel drop counters over the whole run (its nft counters outlive restarts). */
    readonly kernel: Readonly<Record<string, number>>;
    /** The SSTP proxy's rejections (in-process counters: since vpnlb's last start). */
    readonly sstpRejectedSinceLastStart: Readonly<Record<string, number>>;
  };
  /** What the flooder sent against what vpnlb counted, over the flood window. */
  readonly flood:
    | {
        readonly seconds: number;
        readonly udpSent: number;
        readonly udpForwardedToServers: number;
        readonly udpDropsExpected: Readonly<Record<string, number>>;
        readonly udpDropsCounted: Readonly<Record<string, number>>;
        readonly udpSendErrors: number;
        readonly tcpConnections: number;
        readonly tcpRejectsExpected: Readonly<Record<string, number>>;
        readonly tcpRejectsCounted: Readonly<Record<string, number>>;
        readonly tcpConnectErrors: number;
        /**
         * Garbage connections the SSTP proxy refused at accept, before reading a byte (its
         * per-source rate and connection limits): counted under that reason instead of the one
         * their content would have earned.
         */
        readonly tcpRefusedAtAccept: number;
        /**
         * Every expected UDP drop counted under its reason; every garbage connection counted
         * once, under the reason its content earns or a refusal at accept, and nothing else.
         */
        readonly accounted: boolean;
      }
    | undefined;
  readonly tunnelsPerServerAtEnd: Readonly<Record<string, number>>;
  /** Every tunnel in some count of trouble (lost, split, displaced and not back, never up), with what the run knows of it. */
  readonly troubledTunnels: readonly {
    readonly client: string;
    readonly class: TunnelClass;
    readonly address: string;
    readonly serverAtStart: string | null;
    readonly serverAtEnd: string | null;
    readonly establishedCount: number;
    readonly displacedBy: string | null;
    readonly split: string | null;
    readonly ping: { readonly sent: number; readonly received: number };
    readonly initiate: string;
  }[];
}
