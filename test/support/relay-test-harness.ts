/**
 * Test harness for the userspace relay: a simulated RRAS farm on loopback, a configuration
 * loaded through the real loader, a controller, and a started `UdpRelay` that receives every
 * snapshot. Used by udp-relay.test.ts (not part of the product).
 */
import { loadConfigText } from '../../src/config/load-config.js';
import { Controller } from '../../src/control/controller.js';
import { Metrics } from '../../src/observability/metrics.js';
import { silentLogger } from '../../src/log/logger.js';
import { startSimFarm, type SimFarm } from '../../src/sim/rras/sim-farm.js';
import type { IkeClientResult } from '../../src/sim/client/ike-client.js';
import { UdpRelay, type UdpRelayOptions } from '../../src/dataplane/relay/udp-relay.js';
import type { AffinityMode } from '../../src/balancer/affinity.js';
import type { Config } from '../../src/config/types.js';

export interface HarnessOptions {
  /** Three server addresses and the VIP, distinct per test file so parallel files never meet. */
  readonly serverAddresses: readonly string[];
  readonly virtualIp: string;
  readonly affinity?: AffinityMode;
  readonly extraServiceYaml?: string;
  readonly perIpLimit?: number;
  readonly relayOptions?: UdpRelayOptions;
}

export interface Harness {
  readonly farm: SimFarm;
  readonly relay: UdpRelay;
  readonly controller: Controller;
  readonly metrics: Metrics;
  readonly serviceName: string;
  readonly vip: { address: string; ikePort: number; natTPort: number };
  /** Names of the servers a client's packets reached (by its SPI and by its ESP SPI). */
  serversOf(result: IkeClientResult): string[];
  /** Resolves once every published snapshot has been applied. */
  settled(): Promise<void>;
  close(): Promise<void>;
}

/** The simulated farm and the configuration of one IKEv2 service in front of it. */
export async function startFarmAndConfig(
  o: Omit<HarnessOptions, 'relayOptions'> & {
    readonly workers?: number;
    /** `log.level` (worker processes log through their own logger). */
    readonly logLevel?: string;
  },
): Promise<{ farm: SimFarm; config: Config }> {
  const farm = await startSimFarm({
    addresses: o.serverAddresses,
    responder: { ...(o.perIpLimit ? { perIpLimit: o.perIpLimit } : {}) },
  });
  const backends = o.serverAddresses
    .map((a, i) => `      - { name: rras${i + 1}, address: ${a} }`)
    .join('\n');
  const yaml = `${o.workers ? `workers: ${o.workers}\n` : ''}${o.logLevel ? `log: { level: ${o.logLevel} }\n` : ''}
pools:
  rras:
    backends:
${backends}
services:
  ikev2:
    - name: ike
      virtualIp: ${o.virtualIp}
      ikePort: 0
      natTPort: 0
      backendIkePort: ${farm.ikePort}
      backendNatTPort: ${farm.natTPort}
      pool: rras
      dataplane: userspace
      nat: full
      affinity: ${o.affinity ?? 'ike-spi'}
${o.extraServiceYaml ?? ''}
`;
  return { farm, config: loadConfigText(yaml) };
}

export async function startHarness(o: HarnessOptions): Promise<Harness> {
  const { farm, config } = await startFarmAndConfig(o);
  const controller = new Controller(config);
  const metrics = new Metrics();
  const service = config.services.ikev2[0]!;
  const relay = new UdpRelay(
    service,
    { config, controller, logger: silentLogger(), metrics },
    { kernelShed: 'off', ...o.relayOptions },
  );
  await relay.start(controller.service(service.name)!);
  let chain: Promise<void> = Promise.resolve();
  controller.on('snapshot', (snap) => {
    const s = snap.services.find((x) => x.name === service.name);
    if (s) chain = chain.then(() => relay.apply(s));
  });
  const ports = relay.ports();
  return {
    farm,
    relay,
    controller,
    metrics,
    serviceName: service.name,
    vip: { address: o.virtualIp, ikePort: ports.ike, natTPort: ports.natT },
    serversOf(result) {
      return farm.servers
        .filter(
          (s) =>
            s.seenSpis().has(result.spiI) ||
            (result.serverEspSpi !== undefined && s.unknownEspSpis().has(result.serverEspSpi)),
        )
        .map((s) => s.name);
    },
    settled: () => chain,
    async close() {
      await relay.stop();
      await farm.close();
      controller.removeAllListeners();
    },
  };
}
