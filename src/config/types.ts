/**
 * The resolved configuration: the schema's input types with every default applied and every
 * duration converted to milliseconds. Produced by `loadConfig`, deep-frozen.
 */
import type {
  BackendInput,
  BalancingMethod,
  Ikev2ServiceInput,
  MonitorInput,
  MonitorType,
  SstpServiceInput,
} from './schema.js';

export type { BalancingMethod, MonitorType } from './schema.js';
import type { BgpConfig } from './bgp.js';

/** Durations are resolved to milliseconds; optional scalars get their defaults. */
type Resolved<T, DurationKeys extends keyof T, OptionalKeys extends keyof T = never> = {
  readonly [K in Exclude<keyof T, DurationKeys | OptionalKeys>]-?: Exclude<T[K], undefined>;
} & { readonly [K in DurationKeys]-?: number } & {
  readonly [K in OptionalKeys]?: Exclude<T[K], undefined>;
};

export type Backend = Resolved<BackendInput, never> & {
  /** Address family, from `address`. */
  readonly family: 4 | 6;
};

export interface Pool {
  readonly name: string;
  readonly backends: readonly Backend[];
  /** Slow start in ms (0: off). */
  readonly slowStart: number;
}

export type Monitor = Resolved<MonitorInput, 'interval' | 'timeout', 'port' | 'sni' | 'ca'> & {
  readonly name: string;
  readonly type: MonitorType;
};

export interface Snat {
  readonly addresses: readonly string[];
  readonly maxSasPerAddress: number;
}

export type Ikev2Service = Resolved<
  Omit<Ikev2ServiceInput, 'snat'>,
  'flowTimeout' | 'persistenceTimeout' | 'slowStart',
  'monitor'
> & {
  readonly snat?: Snat;
  readonly family: 4 | 6;
  readonly method: BalancingMethod;
};

export type SstpService = Resolved<
  Omit<SstpServiceInput, 'tls'>,
  | 'persistenceTimeout'
  | 'idleTimeout'
  | 'handshakeTimeout'
  | 'connectTimeout'
  | 'drainTimeout'
  | 'slowStart',
  'monitor'
> & {
  readonly tls?: { readonly cert: string; readonly key: string };
  readonly family: 4 | 6;
  readonly method: BalancingMethod;
};

/** The admin listener and its security (docs/operations.md, "Securing the admin API"). */
export interface AdminConfig {
  readonly listen: string;
  readonly port: number;
  readonly tokenFile: string;
  readonly readOnlyTokenFile?: string;
  readonly socket?: string;
  readonly tls?: { readonly cert: string; readonly key: string };
  readonly allowedHosts: readonly string[];
  readonly metrics: 'token' | 'open';
  readonly healthEndpoint: boolean;
  readonly maxConnections: number;
  /** Milliseconds. */
  readonly sessionTimeout: number;
}

export interface Config {
  /** File the configuration came from (`<embedded>` for built-in ones). */
  readonly source: string;
  readonly admin: AdminConfig;
  readonly log: { readonly level: 'trace' | 'debug' | 'info' | 'warn' | 'error' };
  readonly health: { readonly allDown: 'serve-all' | 'refuse' };
  /** Processes serving the SSTP proxy (resolved: `auto` is the number of cores). */
  readonly workers: number;
  /** With `workers: auto`: how many, and why (the affinity or the cgroup quota), for the log. */
  readonly workersAuto?: string;
  readonly monitors: Readonly<Record<string, Monitor>>;
  readonly pools: Readonly<Record<string, Pool>>;
  readonly services: {
    readonly ikev2: readonly Ikev2Service[];
    readonly sstp: readonly SstpService[];
  };
  /** Present when this balancer is one node of an active/standby pair. */
  readonly ha?: HaConfig;
  /** Present when this balancer is one of N active nodes behind ECMP (docs/scale-out.md). */
  readonly bgp?: BgpConfig;
}

export interface HaNode {
  readonly name: string;
  readonly priority: number;
  readonly syncAddress: string;
}

export interface VrrpInstance {
  readonly interface: string;
  readonly virtualRouterId: number;
  /** With prefix length; IPv4 first, then IPv6 (keepalived: one family per advert). */
  readonly addresses: readonly string[];
}

export interface HaConfig {
  readonly nodes: readonly [HaNode, HaNode];
  readonly node?: string;
  readonly sync: { readonly interface: string; readonly port: number };
  readonly vrrp: {
    readonly advertInterval: number;
    readonly preemptDelay: number;
    readonly outside: VrrpInstance;
    readonly inside: VrrpInstance;
  };
  readonly runDir: string;
  readonly conntrackUdpTimeout: number;
  /** Whether `vpnlb ha start` loads the reply-NAT table (dataplane/kernel/reply-nat.ts). */
  readonly replyNat: boolean;
  readonly checkInterval: number;
  readonly checkFall: number;
}

/** A problem found in a configuration file, located by YAML path and line. */
export interface ConfigIssue {
  readonly severity: 'error' | 'warning';
  /** Dotted path such as `pools.rras.backends[1].address`; empty for the whole document. */
  readonly path: string;
  /** 1-based line and column in the file, when known. */
  readonly line?: number;
  readonly column?: number;
  readonly message: string;
}
