/**
 * Default values, in one place so that docs/configuration.md and the loader agree.
 * Durations are in milliseconds.
 */
export const DEFAULTS = Object.freeze({
  admin: {
    listen: '127.0.0.1',
    port: 8088,
    // Root-only, like HAProxy's stats socket and strongSwan's secrets: created at first start.
    tokenFile: '/var/lib/vpnlb/admin.token',
    metrics: 'token' as const,
    healthEndpoint: false,
    // An operator console, not a public site: a handful of browsers, CLIs and one scraper.
    maxConnections: 32,
    sessionTimeout: 8 * 3_600_000,
    // Small enough that a flood of slow requests cannot hold memory or connections for long
    // (Node's defaults: 60 s for headers, 300 s per request).
    headersTimeout: 10_000,
    requestTimeout: 30_000,
    keepAliveTimeout: 5_000,
    maxBodyBytes: 16 * 1024,
  },
  logLevel: 'info' as const,
  allDown: 'serve-all' as const,
  monitor: {
    // What the appliances ship with (F5, Citrix ADC, Kemp): 5 s / 2 s, rise 2, fall 3.
    interval: 5_000,
    timeout: 2_000,
    rise: 2,
    fall: 3,
    jitter: 0.1,
    expectStatus: 401,
    verifyCertificate: false,
  },
  backend: { weight: 1, enabled: true, maxConnections: 0 },
  // Off unless set, as HAProxy's `slowstart` and F5's slow ramp time are.
  slowStart: 0,
  ikev2: {
    ikePort: 500,
    natTPort: 4500,
    dataplane: 'auto' as const,
    nat: 'transparent' as const,
    affinity: 'ike-spi' as const,
    method: 'maglev' as const,
    // Above the NAT-T keepalive interval (20 s, RFC 3948 §4) with a wide margin.
    flowTimeout: 180_000,
    persistenceTimeout: 3_600_000,
    maxFlows: 100_000,
    // One new flow costs ~50 µs of CPU in the relay: 5000/s is at most a quarter of a core, and
    // 10 000 clients reconnecting at once (two flows each) are placed in 4 s.
    maxNewFlowsPerSecond: 5_000,
    // A quarter of the budget per source: one flooding source leaves three quarters to the
    // others, and a carrier-grade NAT address still sets up 1250 flows/s (docs/security.md).
    maxNewFlowsPerSecondPerSourceShare: 0.25,
    // Under twice its peak load the relay kept 0.62 of its peak when the kernel queued every
    // datagram for it (bench/analysis.md): shed in nftables wherever it can.
    kernelShed: 'auto' as const,
    table: 'vpnlb',
    hashSeed: 0x7670_6e6c,
    maxSasPerAddress: 1_000,
  },
  sstp: {
    port: 443,
    mode: 'passthrough' as const,
    dataplane: 'userspace' as const,
    method: 'least-connections' as const,
    persistence: 'tls-session' as const,
    // The kernel data plane (dataplane: kernel): placement by Maglev slot of the source address,
    // in its own table (the IKEv2 services' default is `vpnlb`).
    kernelMethod: 'maglev' as const,
    kernelPersistence: 'source-ip' as const,
    table: 'vpnlb_sstp',
    hashSeed: 0x7670_6e6c,
    persistenceTimeout: 3_600_000,
    backendPortTls: 443,
    backendPortOffload: 80,
    allowCertificateMismatch: false,
    maxConnections: 'auto' as const,
    // Descriptors a tunnel costs: client and server sockets, plus two pipes when spliced.
    descriptorsPerTunnel: 6,
    // Descriptors kept out of `maxConnections: auto` for the admin API, health probes, the IKEv2
    // relay's control sockets, log files and Node itself.
    reservedDescriptors: 256,
    // One address may be a whole site behind NAT (carrier-grade NAT, a branch office): 512
    // tunnels and 20 new connections a second (after a burst of 100) let an office of several
    // hundred reconnect within seconds, and keep one hostile address to a bounded share
    // (docs/security.md, "A carrier-grade NAT in front of many clients").
    maxConnectionsPerSource: 512,
    maxNewConnectionsPerSecondPerSource: 20,
    newConnectionBurstPerSource: 100,
    // SSTP tunnels are long-lived; RRAS sends echo requests on idle links well within this.
    idleTimeout: 900_000,
    handshakeTimeout: 10_000,
    connectTimeout: 5_000,
    drainTimeout: 3_600_000,
  },
  ha: {
    syncPort: 3780,
    // keepalived's 1 s adverts: a dead node is noticed in 3 adverts + skew (RFC 5798 §6.1).
    advertInterval: 1_000,
    // Long enough for conntrackd's resync (-n) to fill a returning node before it takes back.
    preemptDelay: 5_000,
    runDir: '/run/vpnlb-ha',
    // Replicated entries lose vpnlb's per-flow ct timeout object (conntrackd does not carry it):
    // the kernel's UDP stream timeout governs them (DESIGN §6: the reference pair used 3600 s).
    conntrackUdpTimeout: 3_600_000,
    // A server's packet that reaches a node before its flow's entry (a takeover right after
    // conntrackd was cut off or restarted) leaves with the service address, not the server's.
    replyNat: true,
    checkInterval: 1_000,
    checkFall: 2,
  },
});
