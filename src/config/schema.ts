/**
 * The configuration schema: the single source of truth for the YAML file's shape.
 *
 * The TypeScript types of the raw file (`ConfigInput`) are derived from this schema with
 * TypeBox; `load-config.ts` validates a parsed document against it (Ajv, every error with its
 * YAML path and line), applies defaults, resolves durations, and deep-freezes the result
 * (`Config`, in `types.ts`).
 */
import { Type, type Static, type TSchema } from '@sinclair/typebox';

/**
 * A string enumeration as a plain JSON-Schema `enum` (one clear validation error, unlike a
 * union of literals), typed as the union of its members.
 */
export function StringEnum<const T extends readonly string[]>(values: T, description?: string) {
  return Type.Unsafe<T[number]>({
    type: 'string',
    enum: [...values],
    ...(description ? { description } : {}),
  });
}
export type { TSchema };

/** A duration: seconds as a number, or a string such as `500ms`, `5s`, `10m`, `2h`. */
export const DurationSchema = Type.Union(
  [Type.Number({ minimum: 0 }), Type.String({ pattern: '^[0-9]+(\\.[0-9]+)?(ms|s|m|h)$' })],
  { description: 'seconds (number) or a string like 500ms, 5s, 10m, 2h' },
);

/** A name usable in logs, metrics labels and nftables identifiers. */
export const NameSchema = Type.String({ pattern: '^[a-zA-Z][a-zA-Z0-9_-]{0,62}$' });

/** An IPv4 or IPv6 address (checked with node:net after schema validation). */
export const AddressSchema = Type.String({ minLength: 2, maxLength: 45 });

export const BackendSchema = Type.Object(
  {
    name: NameSchema,
    address: AddressSchema,
    weight: Type.Optional(Type.Integer({ minimum: 0, maximum: 1000 })),
    enabled: Type.Optional(Type.Boolean()),
    /** Per-backend cap on concurrent SSTP connections (0 = unlimited). */
    maxConnections: Type.Optional(Type.Integer({ minimum: 0 })),
  },
  { additionalProperties: false },
);

/**
 * Most backends in one pool. The Maglev table has 65537 slots (Maglev §5.3: shares of equal
 * weights differ by at most one slot only while the table is much larger than the backend
 * set); at 1024 backends of equal weight each still has ~64 slots. (Before the limit, a pool of
 * 100,000 backends loaded and 34,463 of them silently got no slot.)
 */
export const MAX_BACKENDS_PER_POOL = 1024;

export const PoolSchema = Type.Object(
  {
    backends: Type.Array(BackendSchema, { minItems: 1, maxItems: MAX_BACKENDS_PER_POOL }),
    /** Slow start: a backend that comes back up (or is added) ramps up to its full share over this time (0: off). */
    slowStart: Type.Optional(DurationSchema),
  },
  { additionalProperties: false },
);

export const MonitorTypeSchema = StringEnum(['icmp', 'ikev2', 'sstp', 'tcp']);

export const MonitorSchema = Type.Object(
  {
    type: MonitorTypeSchema,
    interval: Type.Optional(DurationSchema),
    timeout: Type.Optional(DurationSchema),
    rise: Type.Optional(Type.Integer({ minimum: 1, maximum: 100 })),
    fall: Type.Optional(Type.Integer({ minimum: 1, maximum: 100 })),
    /** Fraction of the interval by which each probe is randomly shifted (0 to 0.5). */
    jitter: Type.Optional(Type.Number({ minimum: 0, maximum: 0.5 })),
    /** Port probed (defaults: ikev2 500, sstp 443 or 80 in offload mode, tcp required). */
    port: Type.Optional(Type.Integer({ minimum: 1, maximum: 65535 })),
    /** sstp: SNI sent in the probe's ClientHello. */
    sni: Type.Optional(Type.String({ minLength: 1, maxLength: 253 })),
    /** sstp: verify the server certificate against the system CAs (or `ca`). */
    verifyCertificate: Type.Optional(Type.Boolean()),
    /** sstp: a PEM file of trusted CAs for `verifyCertificate`. */
    ca: Type.Optional(Type.String({ minLength: 1 })),
    /** sstp: HTTP status that means "up" (RRAS answers 401 to an anonymous HEAD). */
    expectStatus: Type.Optional(Type.Integer({ minimum: 100, maximum: 599 })),
  },
  { additionalProperties: false },
);

export const SnatSchema = Type.Object(
  {
    /** Local source addresses the balancer uses towards the servers in full-NAT mode. */
    addresses: Type.Array(AddressSchema, { minItems: 1, maxItems: 1024 }),
    /** Most concurrent IKE SAs per (source address, server) pair; Windows' limit is the guide. */
    maxSasPerAddress: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000000 })),
  },
  { additionalProperties: false },
);

export const MethodSchema = StringEnum(['maglev', 'least-connections', 'weighted-round-robin']);

export const Ikev2ServiceSchema = Type.Object(
  {
    name: NameSchema,
    /** The virtual IP clients connect to (UDP 500 and 4500 are one service). */
    virtualIp: AddressSchema,
    /** Ports of the pair; override only for tests and labs. */
    ikePort: Type.Optional(Type.Integer({ minimum: 0, maximum: 65535 })),
    natTPort: Type.Optional(Type.Integer({ minimum: 0, maximum: 65535 })),
    /** Ports of the servers (default 500 and 4500: what RRAS and strongSwan listen on). */
    backendIkePort: Type.Optional(Type.Integer({ minimum: 1, maximum: 65535 })),
    backendNatTPort: Type.Optional(Type.Integer({ minimum: 1, maximum: 65535 })),
    pool: NameSchema,
    /** `auto` (default): kernel where root and nftables are present, else userspace. */
    dataplane: Type.Optional(StringEnum(['auto', 'kernel', 'userspace'])),
    nat: Type.Optional(StringEnum(['transparent', 'full'])),
    snat: Type.Optional(SnatSchema),
    affinity: Type.Optional(StringEnum(['ike-spi', 'ike-spi-hash', 'source-ip'])),
    method: Type.Optional(MethodSchema),
    /** Idle time after which a client's flow (address:port -> server) is forgotten. */
    flowTimeout: Type.Optional(DurationSchema),
    /** How long a client's 4500 pin / source-IP persistence outlives its last packet. */
    persistenceTimeout: Type.Optional(DurationSchema),
    /** Most flows tracked by the userspace relay (bounded memory under a flood). */
    maxFlows: Type.Optional(Type.Integer({ minimum: 16, maximum: 10000000 })),
    /** Userspace relay: most new flows set up per second (a flood of new source ports is shed beyond it). */
    maxNewFlowsPerSecond: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000000 })),
    /** Userspace relay: most new flows per second from one source address (its fair share of the budget). */
    maxNewFlowsPerSecondPerSource: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000000 })),
    /** Userspace relay: shed a flood in the kernel before the relay's sockets (`auto`: nftables where nft and CAP_NET_ADMIN are; `xdp`: at the driver of `kernelShedInterfaces`). */
    kernelShed: Type.Optional(StringEnum(['auto', 'xdp', 'off'])),
    /** `kernelShed: xdp`: the interfaces the clients' datagrams arrive on. */
    kernelShedInterfaces: Type.Optional(
      Type.Array(Type.String({ pattern: '^[^\\s/:]{1,15}$' }), {
        minItems: 1,
        maxItems: 16,
        uniqueItems: true,
      }),
    ),
    /** nftables table name for the kernel data plane. */
    table: Type.Optional(Type.String({ pattern: '^[a-zA-Z][a-zA-Z0-9_]{0,30}$' })),
    /** Hash seed shared by every balancer node of a farm. */
    hashSeed: Type.Optional(Type.Integer({ minimum: 0, maximum: 4294967295 })),
    /** Slow start for this service's backends (overrides the pool's `slowStart`). */
    slowStart: Type.Optional(DurationSchema),
    monitor: Type.Optional(NameSchema),
  },
  { additionalProperties: false },
);

export const TlsSchema = Type.Object(
  {
    cert: Type.String({ minLength: 1 }),
    key: Type.String({ minLength: 1 }),
  },
  { additionalProperties: false },
);

export const SstpServiceSchema = Type.Object(
  {
    name: NameSchema,
    virtualIp: AddressSchema,
    port: Type.Optional(Type.Integer({ minimum: 0, maximum: 65535 })),
    pool: NameSchema,
    mode: Type.Optional(StringEnum(['passthrough', 'offload', 'reencrypt'])),
    /**
     * `userspace` (default): the TCP/TLS proxy. `kernel`: passthrough by nftables DNAT (root or
     * CAP_NET_ADMIN; persistence source-ip or none, method maglev): the servers see the client.
     */
    dataplane: Type.Optional(StringEnum(['userspace', 'kernel'])),
    /** nftables table name for the kernel data plane. */
    table: Type.Optional(Type.String({ pattern: '^[a-zA-Z][a-zA-Z0-9_]{0,30}$' })),
    /** Hash seed shared by every balancer node of a farm (Maglev placement). */
    hashSeed: Type.Optional(Type.Integer({ minimum: 0, maximum: 4294967295 })),
    method: Type.Optional(MethodSchema),
    persistence: Type.Optional(StringEnum(['tls-session', 'source-ip', 'none'])),
    persistenceTimeout: Type.Optional(DurationSchema),
    /** Certificate and key presented to clients (offload and reencrypt). */
    tls: Type.Optional(TlsSchema),
    /** Server port: 443 (passthrough, reencrypt) or 80 (offload) unless set. */
    backendPort: Type.Optional(Type.Integer({ minimum: 1, maximum: 65535 })),
    /** reencrypt: accept a server certificate that differs from the front one. */
    allowCertificateMismatch: Type.Optional(Type.Boolean()),
    /** Most concurrent connections: a number (0: no limit) or `auto` (from the open-file limit). */
    maxConnections: Type.Optional(
      Type.Union([Type.Integer({ minimum: 0 }), Type.Literal('auto')], {
        description: 'a number of connections (0: no limit) or auto',
      }),
    ),
    /** Most concurrent connections from one client address (0: no limit). */
    maxConnectionsPerSource: Type.Optional(Type.Integer({ minimum: 0, maximum: 10000000 })),
    /** Most new connections per second from one client address (0: no limit). */
    maxNewConnectionsPerSecondPerSource: Type.Optional(
      Type.Integer({ minimum: 0, maximum: 1000000 }),
    ),
    idleTimeout: Type.Optional(DurationSchema),
    handshakeTimeout: Type.Optional(DurationSchema),
    connectTimeout: Type.Optional(DurationSchema),
    drainTimeout: Type.Optional(DurationSchema),
    /** Slow start for this service's backends (overrides the pool's `slowStart`). */
    slowStart: Type.Optional(DurationSchema),
    monitor: Type.Optional(NameSchema),
  },
  { additionalProperties: false },
);

export const AdminSchema = Type.Object(
  {
    listen: Type.Optional(AddressSchema),
    port: Type.Optional(Type.Integer({ minimum: 0, maximum: 65535 })),
    /** Operator token (read and act); created with 32 random bytes, mode 0600, if missing. */
    tokenFile: Type.Optional(Type.String({ minLength: 1 })),
    /** Read-only token (status, metrics, which); created like `tokenFile` when set. */
    readOnlyTokenFile: Type.Optional(Type.String({ minLength: 1 })),
    /** A Unix socket (mode 0600) for the CLI on the balancer host: the file mode is the authentication. */
    socket: Type.Optional(Type.String({ minLength: 1, maxLength: 100 })),
    /** HTTPS for the admin listener (certificate and key files, PEM). */
    tls: Type.Optional(TlsSchema),
    /** Host names (besides IP addresses and localhost) the listener answers to (DNS-rebinding defence). */
    allowedHosts: Type.Optional(
      Type.Array(Type.String({ pattern: '^[a-zA-Z0-9.-]{1,253}$' }), { maxItems: 64 }),
    ),
    /** `open`: `/metrics` needs no token (for a Prometheus scraper); default `token`. */
    metrics: Type.Optional(StringEnum(['token', 'open'])),
    /** Serve `GET /healthz` without a token (it says only whether vpnlb runs). */
    healthEndpoint: Type.Optional(Type.Boolean()),
    /** Most concurrent admin connections (beyond: closed at once). */
    maxConnections: Type.Optional(Type.Integer({ minimum: 1, maximum: 10000 })),
    /** Dashboard session lifetime. */
    sessionTimeout: Type.Optional(DurationSchema),
  },
  { additionalProperties: false },
);

export const HealthPolicySchema = Type.Object(
  {
    /**
     * When every backend of a service is down: `serve-all` sends new clients to every enabled
     * backend anyway (a monitoring outage must not become a VPN outage), `refuse` sends none.
     */
    allDown: Type.Optional(StringEnum(['serve-all', 'refuse'])),
  },
  { additionalProperties: false },
);

/** One VRRP instance: the interface it runs on, its id, and the addresses it moves. */
export const VrrpInstanceSchema = Type.Object(
  {
    interface: Type.String({ minLength: 1, maxLength: 15 }),
    /** VRRP virtual router id (RFC 5798 §5.2.3), unique per L2 segment. */
    virtualRouterId: Type.Integer({ minimum: 1, maximum: 255 }),
    /** Addresses with prefix length (`198.19.0.1/32`, `2001:db8::1/64`); IPv4 and IPv6 may mix. */
    addresses: Type.Optional(
      Type.Array(Type.String({ minLength: 2, maxLength: 49 }), { minItems: 1, maxItems: 64 }),
    ),
  },
  { additionalProperties: false },
);

export const HaNodeSchema = Type.Object(
  {
    name: NameSchema,
    /** VRRP priority (1–254): the higher one is active while healthy. */
    priority: Type.Integer({ minimum: 1, maximum: 254 }),
    /** This node's address on the dedicated sync link (conntrackd FTFW over UDP). */
    syncAddress: AddressSchema,
  },
  { additionalProperties: false },
);

export const HaSchema = Type.Object(
  {
    /** The two nodes of the pair; the same file serves both (a node finds itself by its sync address). */
    nodes: Type.Array(HaNodeSchema, { minItems: 2, maxItems: 2 }),
    /** Which node this is, when its sync address cannot tell (overridden by `--node`). */
    node: Type.Optional(NameSchema),
    sync: Type.Object(
      {
        /** The dedicated link between the two nodes. */
        interface: Type.String({ minLength: 1, maxLength: 15 }),
        port: Type.Optional(Type.Integer({ minimum: 1, maximum: 65535 })),
      },
      { additionalProperties: false },
    ),
    vrrp: Type.Object(
      {
        advertInterval: Type.Optional(DurationSchema),
        /** Seconds a recovered higher-priority node waits (state sync) before taking back. */
        preemptDelay: Type.Optional(DurationSchema),
        /** The clients' side: every service virtual IP (default: each as /32 or /128). */
        outside: VrrpInstanceSchema,
        /** The servers' side: the gateway address the VPN servers route through. */
        inside: VrrpInstanceSchema,
      },
      { additionalProperties: false },
    ),
    /** Where the generated files, pid files, sockets and the role file live. */
    runDir: Type.Optional(Type.String({ minLength: 1 })),
    /** UDP conntrack timeout of replicated flows (the kernel's nf_conntrack_udp_timeout_stream). */
    conntrackUdpTimeout: Type.Optional(DurationSchema),
    /** SNAT to the service address a server's packet of a flow this node does not know (reply NAT). */
    replyNat: Type.Optional(Type.Boolean()),
    /** How often `keepalived` runs `vpnlb ha check`, and how many failures take the addresses away. */
    checkInterval: Type.Optional(DurationSchema),
    checkFall: Type.Optional(Type.Integer({ minimum: 1, maximum: 10 })),
  },
  { additionalProperties: false },
);

/**
 * The `bgp:` section (docs/scale-out.md): N active nodes behind ECMP, each announcing the service
 * virtual IPs to its routers through BIRD 2 while it can serve them.
 */
/** A 4-byte AS number (RFC 6793); private ranges (64512–65534, 4200000000–4294967294) are fine. */
const AsnSchema = Type.Integer({ minimum: 1, maximum: 4294967294 });

export const BgpPeerSchema = Type.Object(
  {
    name: NameSchema,
    /** The router's address: an IPv4 peer carries the IPv4 VIPs, an IPv6 peer the IPv6 ones. */
    address: AddressSchema,
    asn: AsnSchema,
  },
  { additionalProperties: false },
);

export const BgpNodeSchema = Type.Object(
  {
    name: NameSchema,
    /** BGP identifier (RFC 4271 §4.2: a 4-byte value, written as an IPv4 address), unique per node. */
    routerId: AddressSchema,
    /** Peers of this node only (routers on its own links), besides `bgp.peers`. */
    peers: Type.Optional(Type.Array(BgpPeerSchema, { maxItems: 16 })),
    /**
     * This node's admin API as the other nodes reach it (`http(s)://ADDRESS:PORT`): they pull its
     * `ike-spi` flow state from there (`bgp.flowSync`). Set on every node or on none.
     */
    adminUrl: Type.Optional(Type.String({ minLength: 1, maxLength: 300 })),
  },
  { additionalProperties: false },
);

export const BgpSchema = Type.Object(
  {
    /** The AS of the balancer nodes (one for the farm: the routers see equal AS paths and multipath them). */
    asn: AsnSchema,
    /** Every node of the farm; the same file serves all (a node finds itself by its router id). */
    nodes: Type.Array(BgpNodeSchema, { minItems: 1, maxItems: 64 }),
    /** Which node this is, when its router id is not an address of this host (overridden by `--node`). */
    node: Type.Optional(NameSchema),
    /** Routers every node peers with. */
    peers: Type.Optional(Type.Array(BgpPeerSchema, { maxItems: 16 })),
    /** Addresses to announce (default: every service virtual IP), as /32 or /128. */
    announce: Type.Optional(Type.Array(AddressSchema, { minItems: 1, maxItems: 256 })),
    /** BGP hold time (RFC 4271 §4.2, 3 s or more) and keepalive interval. */
    holdTime: Type.Optional(DurationSchema),
    keepaliveTime: Type.Optional(DurationSchema),
    /** Bidirectional Forwarding Detection (RFC 5880) on every session: sub-second failure detection. */
    bfd: Type.Optional(Type.Boolean()),
    bfdInterval: Type.Optional(DurationSchema),
    bfdMultiplier: Type.Optional(Type.Integer({ minimum: 1, maximum: 255 })),
    /** How often the node checks its own vpnlb, and how many failures in a row withdraw. */
    checkInterval: Type.Optional(DurationSchema),
    checkFall: Type.Optional(Type.Integer({ minimum: 1, maximum: 10 })),
    /** How long `vpnlb node drain` waits for client packets to stop reaching the node. */
    drainTimeout: Type.Optional(DurationSchema),
    /** Where bird.conf, BIRD's control socket and the announcement state live. */
    runDir: Type.Optional(Type.String({ minLength: 1 })),
    /**
     * Give the servers' packets that reach a node which did not forward their flow the service's
     * address (SNAT to the VIP), so that the servers may route through any node (default true).
     */
    replyNat: Type.Optional(Type.Boolean()),
    /** Exchange of `ike-spi` flow state between the nodes (with `bgp.nodes[].adminUrl`). */
    flowSync: Type.Optional(
      Type.Object(
        {
          /** How often each node pulls every other node's flow state. */
          interval: Type.Optional(DurationSchema),
          /** A token the other nodes' admin APIs accept (default: `admin.readOnlyTokenFile`). */
          tokenFile: Type.Optional(Type.String({ minLength: 1 })),
          /** CA certificate (PEM) that signs the other nodes' admin certificates (https URLs). */
          ca: Type.Optional(Type.String({ minLength: 1 })),
          /** How long a starting node may wait for its first pull from every other node before it announces. */
          startupWait: Type.Optional(DurationSchema),
        },
        { additionalProperties: false },
      ),
    ),
  },
  { additionalProperties: false },
);

export const ConfigSchema = Type.Object(
  {
    admin: Type.Optional(AdminSchema),
    log: Type.Optional(
      Type.Object(
        {
          level: Type.Optional(StringEnum(['trace', 'debug', 'info', 'warn', 'error'])),
        },
        { additionalProperties: false },
      ),
    ),
    health: Type.Optional(HealthPolicySchema),
    /** Processes that serve the SSTP proxy and the userspace IKEv2 relay (`auto`: one per core; 1: in the main process). */
    workers: Type.Optional(
      Type.Union([Type.Integer({ minimum: 1, maximum: 64 }), Type.Literal('auto')], {
        description: 'a number of processes (1 to 64) or auto',
      }),
    ),
    /** Active/standby pair on keepalived (VRRP) and conntrackd (docs/high-availability.md). */
    ha: Type.Optional(HaSchema),
    /** Active nodes behind ECMP, announced over BGP by BIRD 2 (docs/scale-out.md). */
    bgp: Type.Optional(BgpSchema),
    monitors: Type.Optional(Type.Record(NameSchema, MonitorSchema)),
    pools: Type.Record(NameSchema, PoolSchema),
    services: Type.Object(
      {
        ikev2: Type.Optional(Type.Array(Ikev2ServiceSchema)),
        sstp: Type.Optional(Type.Array(SstpServiceSchema)),
      },
      { additionalProperties: false },
    ),
  },
  { additionalProperties: false },
);

/** The configuration file as written (before defaults). */
export type ConfigInput = Static<typeof ConfigSchema>;
export type BackendInput = Static<typeof BackendSchema>;
export type MonitorInput = Static<typeof MonitorSchema>;
export type Ikev2ServiceInput = Static<typeof Ikev2ServiceSchema>;
export type SstpServiceInput = Static<typeof SstpServiceSchema>;
export type BalancingMethod = Static<typeof MethodSchema>;
export type MonitorType = Static<typeof MonitorTypeSchema>;
export type HaInput = Static<typeof HaSchema>;
export type BgpInput = Static<typeof BgpSchema>;
