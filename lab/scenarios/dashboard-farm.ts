/**
 * A small farm on loopback for the dashboard (browser tests, screenshots): three simulated RRAS
 * servers that each answer SSTP (TLS, the `HEAD /sra_…/` → 401 monitor) and IKEv2; an SSTP
 * service and a userspace IKEv2 service in one in-process `Runtime` with real monitors, data
 * planes and admin listener; and simulated clients that keep traffic flowing. No root.
 */
import { generateToken, AdminCredentials } from '../../src/admin/credentials.js';
import { loadConfigText } from '../../src/config/load-config.js';
import { Runtime } from '../../src/runtime/runtime.js';
import { createDataPlane } from '../../src/dataplane/registry.js';
import { createHealthChecker } from '../../src/health/index.js';
import { silentLogger } from '../../src/log/logger.js';
import { runIkeClient } from '../../src/sim/client/ike-client.js';
import { generateTestCertificate } from '../../src/sim/rras/sstp-certs.js';
import { SimSstpEndpoint } from '../../src/sim/rras/sstp-endpoint.js';
import { SimSstpClient } from '../../src/sim/rras/sstp-sim-client.js';
import { startSimFarm, type SimFarm } from '../../src/sim/rras/sim-farm.js';

const SERVERS = ['127.0.40.1', '127.0.40.2', '127.0.40.3'] as const;
const VIP = '127.0.41.1';

export interface DashboardFarm {
  readonly runtime: Runtime;
  /** http://127.0.0.1:PORT */
  readonly baseUrl: string;
  /** The operator token (the browser logs in with it). */
  readonly token: string;
  /** The SSTP side of each simulated server, by backend name. */
  readonly sstpServers: ReadonlyMap<string, SimSstpEndpoint>;
  /** Stops one simulated server's SSTP listener (its monitor then fails). */
  stopSstpServer(name: string): Promise<void>;
  close(): Promise<void>;
}

export async function startDashboardFarm(
  options: { clients?: number } = {},
): Promise<DashboardFarm> {
  const cert = generateTestCertificate();
  const sstp = new Map<string, SimSstpEndpoint>();
  let ike: SimFarm | undefined;
  let runtime: Runtime | undefined;
  const clients: SimSstpClient[] = [];
  let stopped = false;
  const loops: Promise<void>[] = [];
  const close = async () => {
    stopped = true;
    await Promise.allSettled(loops);
    await Promise.allSettled(clients.map((c) => c.close()));
    await runtime?.stop();
    await Promise.allSettled([...sstp.values()].map((s) => s.close()));
    await ike?.close();
  };
  try {
    // One TLS port on every server address (the service has one backend port).
    let port = 0;
    for (const [i, address] of SERVERS.entries()) {
      const s = await SimSstpEndpoint.start({
        name: `rras${i + 1}`,
        host: address,
        tlsPort: port,
        cert: cert.cert,
        key: cert.key,
      });
      port = s.tlsPort;
      sstp.set(`rras${i + 1}`, s);
    }
    ike = await startSimFarm({
      addresses: SERVERS,
      responder: { perIpLimit: 1000, idleTimeout: 600_000, halfOpenTimeout: 600_000 },
    });
    // One process: the dashboard is under test here, not the SSTP workers (their own test:
    // src/dataplane/workers/sstp-worker-pool.test.ts).
    const config = loadConfigText(
      `
workers: 1
admin: { listen: 127.0.0.1, port: 0 }
monitors:
  sstp: { type: sstp, port: ${port}, interval: 500ms, timeout: 400ms, rise: 1, fall: 2, jitter: 0 }
pools:
  rras:
    backends:
      - { name: rras1, address: ${SERVERS[0]}, weight: 2 }
      - { name: rras2, address: ${SERVERS[1]} }
      - { name: rras3, address: ${SERVERS[2]} }
services:
  sstp:
    - { name: sstp, virtualIp: ${VIP}, port: 0, pool: rras, backendPort: ${port}, monitor: sstp }
  ikev2:
    - { name: ikev2, virtualIp: ${VIP}, ikePort: 0, natTPort: 0, backendIkePort: ${ike.ikePort}, backendNatTPort: ${ike.natTPort}, pool: rras, dataplane: userspace, nat: full, affinity: ike-spi, maxFlows: 4096 }
`,
      '<dashboard-farm>',
    );
    const token = generateToken();
    runtime = new Runtime({
      config,
      logger: silentLogger(),
      createDataPlane,
      createWatcher: (ctx) => createHealthChecker(ctx),
      admin: { host: '127.0.0.1', port: 0 },
      adminCredentials: new AdminCredentials({ operator: token }),
    });
    await runtime.start();
    const listener = (name: string) => {
      const st = runtime!.dataPlanes().get(name)!.status();
      return st.listeners.map((l) => /:(\d+)/.exec(l)?.[1]).map(Number);
    };
    const [sstpPort] = listener('sstp');
    const [ikePort, natTPort] = listener('ikev2');
    // SSTP clients that stay connected and echo now and then (tunnels, bytes both ways).
    for (let i = 0; i < (options.clients ?? 9); i++) {
      try {
        clients.push(
          await SimSstpClient.connect({
            host: VIP,
            port: sstpPort!,
            ca: Buffer.from(cert.cert),
            servername: 'vpn.example.test',
            localAddress: `127.0.42.${i + 1}`,
          }),
        );
      } catch {
        /* a client that cannot connect is not what the dashboard farm is about */
      }
    }
    loops.push(
      (async () => {
        while (!stopped) {
          await Promise.allSettled(clients.filter((c) => !c.isClosed).map((c) => c.echo()));
          await new Promise((r) => setTimeout(r, 200));
        }
      })(),
    );
    // IKEv2 clients through the relay, a few at a time, each with a stream of ESP.
    loops.push(
      (async () => {
        for (let n = 0; !stopped; n++) {
          await Promise.allSettled(
            [0, 1, 2].map((k) =>
              runIkeClient({
                localAddress: `127.0.43.${((n * 3 + k) % 250) + 1}`,
                server: { address: VIP, ikePort: ikePort!, natTPort: natTPort! },
                espPackets: 20,
                espInterval: 25,
              }),
            ),
          );
        }
      })(),
    );
    return {
      runtime,
      baseUrl: `http://127.0.0.1:${runtime.adminAddress!.port}`,
      token,
      sstpServers: sstp,
      stopSstpServer: async (name) => {
        await sstp.get(name)?.close();
      },
      close,
    };
  } catch (err) {
    await close();
    throw err;
  }
}
