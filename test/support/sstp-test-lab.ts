/**
 * Test bench for the SSTP proxy's unit tests: simulated RRAS endpoints on distinct loopback
 * addresses (127.0.0.10, .11, ... sharing one ephemeral port, as a farm shares 443), a
 * configuration built for them, a controller and the proxy wired as the runtime wires them.
 */
import { Metrics } from '../../src/observability/metrics.js';
import { loadConfigText } from '../../src/config/load-config.js';
import type { Config } from '../../src/config/types.js';
import { Controller } from '../../src/control/controller.js';
import type { RuntimeContext } from '../../src/control/runtime-context.js';
import { silentLogger } from '../../src/log/logger.js';
import { generateTestCertificate, type TestCertificate } from '../../src/sim/rras/sstp-certs.js';
import { SimSstpEndpoint } from '../../src/sim/rras/sstp-endpoint.js';
import { SimSstpClient, type SimClientOptions } from '../../src/sim/rras/sstp-sim-client.js';
import { SstpProxy } from '../../src/dataplane/sstp/sstp-proxy.js';
import {
  loadNativeSplice,
  SPLICE_ENV,
  spliceEnabledByEnv,
  type SpliceMode,
  type SplicePlacement,
} from '../../src/dataplane/sstp/sstp-splice.js';
import {
  NATIVE_FRONT_ENV,
  nativeFrontEnabledByEnv,
} from '../../src/dataplane/sstp/sstp-native-front.js';
import { waitUntil } from '../../src/util/wait.js';
import { unresponsiveTcpListener, type TestTarget } from './loopback-targets.js';

/**
 * The ways passthrough connections are accepted and relayed; the proxy's shared suites run once
 * per way: Node accepts and pipes; Node accepts and the splice thread relays; the native front
 * accepts, dials and hands over to the splice thread (sstp-native-front.ts); the same with the
 * splice path in Node's event loop (what a process on one CPU gets). The
 * native runs are skipped, with the reason, only when the addon is not built or the
 * environment disables them.
 */
export const SPLICE_RUNS: readonly {
  readonly name: string;
  readonly splice: SpliceMode;
  readonly front: 'auto' | 'node';
  readonly placement: SplicePlacement;
  readonly skip: string | false;
}[] = (() => {
  const loaded = loadNativeSplice();
  const why =
    'unavailable' in loaded
      ? `native splice path unavailable: ${loaded.unavailable}`
      : !spliceEnabledByEnv()
        ? `native splice path disabled by ${SPLICE_ENV}`
        : false;
  if (why) console.log(`# ${why}: the proxy suites run with Node pipes only`);
  const whyFront =
    why || (!nativeFrontEnabledByEnv() ? `native front disabled by ${NATIVE_FRONT_ENV}` : false);
  if (whyFront && !why) console.log(`# ${whyFront}: the proxy suites run without it`);
  return [
    { name: 'node pipes', splice: 'off', front: 'node', placement: 'auto', skip: false },
    { name: 'native splice', splice: 'auto', front: 'node', placement: 'thread', skip: why },
    { name: 'native front', splice: 'auto', front: 'auto', placement: 'thread', skip: whyFront },
    {
      name: 'native front, splice in the event loop',
      splice: 'auto',
      front: 'auto',
      placement: 'loop',
      skip: whyFront,
    },
  ];
})();

/**
 * The fronts of the TLS-terminating modes (offload): Node's (node:tls), and the native one
 * (OpenSSL inside the addon: handshake and relay, sstp-native-front.ts).
 */
export const FRONT_RUNS: readonly {
  readonly name: string;
  readonly front: 'auto' | 'node';
  readonly skip: string | false;
}[] = (() => {
  const loaded = loadNativeSplice();
  const why =
    'unavailable' in loaded
      ? `native front unavailable: ${loaded.unavailable}`
      : !nativeFrontEnabledByEnv()
        ? `native front disabled by ${NATIVE_FRONT_ENV}`
        : false;
  return [
    { name: "Node's front", front: 'node', skip: false },
    { name: 'native front', front: 'auto', skip: why },
  ];
})();

export interface LabBackend {
  readonly name: string;
  /** Accepts and never answers. */
  readonly silent?: boolean;
  /** Presents another certificate than the front one (reencrypt tests). */
  readonly otherCertificate?: boolean;
  readonly maxConnections?: number;
  readonly weight?: number;
  /** Nothing listens there (connection refused). */
  readonly absent?: boolean;
  /** Its SYNs go unanswered, as behind a firewall that drops them (the connect times out). */
  readonly blackHole?: boolean;
}

export interface LabOptions {
  readonly backends: readonly LabBackend[];
  /** Extra service fields (mode, persistence, timeouts as YAML values...). */
  readonly service?: Record<string, unknown>;
  readonly maxTlsVersion?: 'TLSv1.2' | 'TLSv1.3';
  readonly virtualIp?: string;
  /** Backend addresses instead of 127.0.0.10, .11, ... (a test's own servers). */
  readonly backendAddresses?: readonly string[];
  /** How established passthrough tunnels are relayed (default `auto`). */
  readonly splice?: SpliceMode;
  /** Which front accepts (default: Node's, as before the native front). */
  readonly front?: 'auto' | 'node';
  /** Where the splice path relays (default `auto`). */
  readonly placement?: SplicePlacement;
  /** The open-file limit the proxy derives `maxConnections: auto` from (default: the process's). */
  readonly openFileLimit?: number;
  /** The proxy's hello memory budget (default: the product's). */
  readonly helloBytesBudget?: number;
}

export interface ProxyLab {
  readonly proxy: SstpProxy;
  readonly controller: Controller;
  readonly metrics: Metrics;
  readonly config: Config;
  readonly cert: TestCertificate;
  readonly sims: ReadonlyMap<string, SimSstpEndpoint>;
  /** Opens a simulated SSTP client through the proxy. */
  client(options?: Partial<SimClientOptions>): Promise<SimSstpClient>;
  /** Sum of a metric's values whose labels include `labels`. */
  metric(name: string, labels?: Record<string, string>): Promise<number>;
  close(): Promise<void>;
}

export async function startProxyLab(options: LabOptions): Promise<ProxyLab> {
  const cert = generateTestCertificate();
  const other = options.backends.some((b) => b.otherCertificate)
    ? generateTestCertificate()
    : undefined;
  const mode = (options.service?.['mode'] as string | undefined) ?? 'passthrough';
  const sims = new Map<string, SimSstpEndpoint>();
  const holes: TestTarget[] = [];
  const closeHoles = () => Promise.all(holes.map((h) => h.close()));
  let port = 0;
  const addresses = options.backends.map(
    (_, i) => options.backendAddresses?.[i] ?? `127.0.0.${10 + i}`,
  );
  try {
    for (const [i, b] of options.backends.entries()) {
      if (b.absent || b.blackHole) continue;
      const c = b.otherCertificate && other ? other : cert;
      const sim = await SimSstpEndpoint.start({
        name: b.name,
        host: addresses[i] as string,
        ...(mode === 'offload'
          ? { tlsPort: false, plainPort: port }
          : { tlsPort: port, cert: c.cert, key: c.key }),
        ...(options.maxTlsVersion ? { maxTlsVersion: options.maxTlsVersion } : {}),
        ...(b.silent ? { silent: true } : {}),
      });
      port = mode === 'offload' ? sim.plainPort : sim.tlsPort;
      sims.set(b.name, sim);
    }
    for (const [i, b] of options.backends.entries()) {
      if (!b.blackHole) continue;
      const hole = await unresponsiveTcpListener(4, { host: addresses[i] as string, port });
      holes.push(hole);
      port = hole.target.port ?? port;
    }
    if (port === 0) port = 9; // every backend absent: "discard", nothing listens on loopback
    const doc = {
      pools: {
        farm: {
          backends: options.backends.map((b, i) => ({
            name: b.name,
            address: addresses[i],
            ...(b.maxConnections !== undefined ? { maxConnections: b.maxConnections } : {}),
            ...(b.weight !== undefined ? { weight: b.weight } : {}),
          })),
        },
      },
      services: {
        sstp: [
          {
            name: 'sstp',
            virtualIp: options.virtualIp ?? '127.0.0.1',
            port: 0,
            pool: 'farm',
            backendPort: port,
            ...(mode !== 'passthrough' ? { tls: { cert: cert.certPath, key: cert.keyPath } } : {}),
            ...options.service,
          },
        ],
      },
    };
    const config = loadConfigText(JSON.stringify(doc));
    const controller = new Controller(config);
    const metrics = new Metrics();
    const ctx: RuntimeContext = { config, controller, logger: silentLogger(), metrics };
    const service = config.services.sstp[0];
    if (!service) throw new Error('no service');
    // Tunnels move to the splice path after 20 ms (not the production 1 s) so tests see it.
    const proxy = new SstpProxy(service, ctx, {
      splice: options.splice ?? 'auto',
      front: options.front ?? 'node',
      splicePlacement: options.placement ?? 'auto',
      spliceAfterMs: 20,
      ...(options.openFileLimit !== undefined ? { openFileLimit: options.openFileLimit } : {}),
      ...(options.helloBytesBudget !== undefined
        ? { helloBytesBudget: options.helloBytesBudget }
        : {}),
    });
    controller.on('snapshot', (snap) => {
      const s = snap.services.find((x) => x.name === 'sstp');
      if (s) void proxy.apply(s);
    });
    await proxy.start(controller.service('sstp') ?? controller.snapshot().services[0]!);
    const clients: SimSstpClient[] = [];
    return {
      proxy,
      controller,
      metrics,
      config,
      cert,
      sims,
      async client(o = {}) {
        const c = await SimSstpClient.connect({
          host: options.virtualIp ?? '127.0.0.1',
          port: proxy.port(),
          ca: cert.cert,
          ...o,
        });
        clients.push(c);
        return c;
      },
      async metric(name, labels = {}) {
        const m = metrics.registry.getSingleMetric(name);
        if (!m) return 0;
        const got = await m.get();
        return got.values
          .filter((v) =>
            Object.entries(labels).every(
              ([k, val]) => (v.labels as Record<string, unknown>)[k] === val,
            ),
          )
          .reduce((n, v) => n + v.value, 0);
      },
      async close() {
        for (const c of clients) c.socket.destroy();
        try {
          await proxy.stop();
        } finally {
          controller.removeAllListeners();
          await Promise.all([...sims.values()].map((s) => s.close()));
          await closeHoles();
        }
        cert.dispose();
        other?.dispose();
      },
    };
  } catch (err) {
    await closeHoles();
    await Promise.all([...sims.values()].map((s) => s.close()));
    cert.dispose();
    other?.dispose();
    throw err;
  }
}

/** Polls `cond` until true (event-driven code under test settles within a few ticks). */
export async function eventually(
  cond: () => boolean | Promise<boolean>,
  what: string,
  timeoutMs = 5_000,
): Promise<void> {
  await waitUntil(what, cond, timeoutMs, 10);
}
