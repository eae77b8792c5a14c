import { existsSync } from 'node:fs';
import type { AffinityMode } from '../../balancer/affinity.js';
import { VpnlbError } from '../../errors.js';
import { parseCommandArgs, type Command } from '../command.js';

/**
 * `vpnlb lab`: real strongSwan peers in network namespaces (root only). Everything a scenario
 * creates (namespaces, processes, files) is removed at the end, also on failure.
 * - `showcase` (default): the same farm and clients behind full NAT and behind transparent mode,
 *   with a few clients stalled half-open (error 809); then the Always On VPN shapes: device +
 *   user tunnels (direct, home-NAT and CGNAT clients), a user tunnel 45 s after its device
 *   tunnel, re-keying and roaming (MOBIKE), with the default affinity and with plain SPI hashing
 *   (`--affinities` adds others, e.g. source-ip).
 * - `ha-pair`: two nodes with keepalived and conntrackd, failovers measured (lab/ha/).
 * - `ecmp`: N active nodes behind a BIRD router's ECMP route, node-set changes measured (lab/ecmp/).
 * - `chaos`: a soak run with faults and a bad-input flood (lab/scenarios/chaos/, docs/lab.md).
 */
/**
 * The lab's modules, loaded on demand: the lab (lab/, shipped as dist/lab) is not product code,
 * and no other command needs it, so nothing in src/ imports it statically. The npm package
 * ships dist/lab deliberately (package.json "files").
 */
async function loadLab() {
  const [netns, charon, showcase, haPair, ecmp, deviceUser, chaos] = await Promise.all([
    import('../../../lab/netns.js'),
    import('../../../lab/strongswan/charon.js'),
    import('../../../lab/scenarios/showcase.js'),
    import('../../../lab/ha/ha-pair.js'),
    import('../../../lab/ecmp/ecmp.js'),
    import('../../../lab/scenarios/device-user.js'),
    import('../../../lab/scenarios/chaos/chaos.js'),
  ]);
  return { ...netns, ...charon, ...showcase, ...haPair, ...ecmp, ...deviceUser, ...chaos };
}

export const labCommand: Command = {
  name: 'lab',
  summary:
    'run the real-strongSwan lab: full NAT vs transparent and the Always On VPN shapes, the ha-pair failovers, the ecmp scale-out events, or the chaos soak run (root)',
  usage:
    'vpnlb lab [--scenario showcase|ha-pair|ecmp|chaos] [--json]  showcase: [--clients N] [--stalled N] [--servers N] [--part all|showcase|device-user] [--affinities ike-spi,ike-spi-hash,source-ip]  ha-pair: [--clients N]  ecmp: [--clients N]  chaos: [--duration S] [--seed N] [--tunnels N]',
  async run(argv, io) {
    const { values } = parseCommandArgs(this, argv, {
      scenario: { type: 'string' },
      json: { type: 'boolean' },
      clients: { type: 'string' },
      stalled: { type: 'string' },
      servers: { type: 'string' },
      part: { type: 'string' },
      affinities: { type: 'string' },
      duration: { type: 'string' },
      seed: { type: 'string' },
      tunnels: { type: 'string' },
    });
    const scenario = values.scenario ?? 'showcase';
    if (!['showcase', 'ha-pair', 'ecmp', 'chaos'].includes(scenario))
      throw new VpnlbError(
        'VPNLB_CLI_USAGE',
        `--scenario: showcase, ha-pair, ecmp or chaos, not ${scenario}`,
        'client',
      );
    const {
      canUseConntrack,
      canUseStrongswan,
      runHaPair,
      formatHaPair,
      runEcmp,
      formatEcmp,
      runChaos,
      chaosOptionsFor,
      runShowcase,
      formatShowcase,
      runDeviceUserComparison,
      formatDeviceUser,
    } = await loadLab();
    const ct = canUseConntrack();
    if (!ct.ok) {
      io.err(
        `vpnlb lab: ${ct.reason}. The lab builds network namespaces and nftables rules and reads conntrack, so it must run as root (sudo vpnlb lab) with iproute2, nftables and conntrack installed.`,
      );
      return 2;
    }
    const swan = canUseStrongswan();
    if (!swan.ok) {
      io.err(
        `vpnlb lab: ${swan.reason}. The lab runs real strongSwan peers: apt-get install strongswan-charon strongswan-swanctl libcharon-extra-plugins libstrongswan-standard-plugins`,
      );
      return 2;
    }
    const int = (
      v: string | undefined,
      def: number,
      min: number,
      max: number,
      what: string,
    ): number => {
      if (v === undefined) return def;
      const n = Number(v);
      if (!Number.isInteger(n) || n < min || n > max)
        throw new VpnlbError(
          'VPNLB_CLI_USAGE',
          `--${what}: an integer from ${min} to ${max}`,
          'client',
        );
      return n;
    };
    if (scenario === 'ha-pair') {
      // keepalived and conntrackd: the pair's engines (docs/high-availability.md).
      for (const bin of ['/usr/sbin/keepalived', '/usr/sbin/conntrackd']) {
        if (!existsSync(bin)) {
          io.err(`vpnlb lab: ${bin} is missing: apt-get install keepalived conntrackd`);
          return 2;
        }
      }
      const clients = int(values.clients, 14, 1, 40, 'clients');
      const report = await runHaPair({
        clients4: clients,
        progress: values.json ? () => undefined : (l) => io.err(l),
      });
      io.out(values.json ? JSON.stringify(report, null, 2) : formatHaPair(report));
      return 0;
    }
    const progress = values.json ? undefined : (l: string) => io.err(l);
    if (scenario === 'ecmp') {
      // BIRD 2: the nodes' announcements and the upstream router (docs/scale-out.md).
      if (!existsSync('/usr/sbin/bird')) {
        io.err('vpnlb lab: /usr/sbin/bird is missing: apt-get install bird2');
        return 2;
      }
      const report = await runEcmp({
        clients4: int(values.clients, 20, 2, 40, 'clients'),
        ...(progress ? { progress } : {}),
      });
      io.out(values.json ? JSON.stringify(report, null, 2) : formatEcmp(report));
      return 0;
    }
    if (scenario === 'chaos') {
      const report = await runChaos({
        ...chaosOptionsFor({
          durationSec: int(values.duration, 600, 60, 86_400, 'duration'),
          seed: int(values.seed, 1, 0, 2 ** 31 - 1, 'seed'),
          tunnels: int(values.tunnels, 200, 10, 1000, 'tunnels'),
        }),
        ...(progress ? { progress } : {}),
      });
      io.out(JSON.stringify(report, null, 2));
      return 0;
    }
    const part = values.part ?? 'all';
    if (!['all', 'showcase', 'device-user'].includes(part))
      throw new VpnlbError('VPNLB_CLI_USAGE', '--part: all, showcase or device-user', 'client');
    const modes = (values.affinities ?? 'ike-spi,ike-spi-hash').split(',').map((m) => m.trim());
    const bad = modes.find((m) => !['ike-spi', 'ike-spi-hash', 'source-ip'].includes(m));
    if (bad !== undefined || modes.length === 0)
      throw new VpnlbError(
        'VPNLB_CLI_USAGE',
        '--affinities: a list of ike-spi, ike-spi-hash, source-ip',
        'client',
      );
    const servers = int(values.servers, 3, 2, 3, 'servers');
    const showcase =
      part === 'device-user'
        ? undefined
        : await runShowcase({
            clients: int(values.clients, 12, 1, 60, 'clients'),
            stalledClients: int(values.stalled, 4, 0, 20, 'stalled'),
            servers,
            ...(progress ? { progress } : {}),
          });
    const deviceUser =
      part === 'showcase'
        ? undefined
        : await runDeviceUserComparison({
            affinities: modes as AffinityMode[],
            servers,
            ...(progress ? { progress } : {}),
          });
    if (values.json)
      io.out(
        JSON.stringify(
          { ...(showcase ? { showcase } : {}), ...(deviceUser ? { deviceUser } : {}) },
          null,
          2,
        ),
      );
    else
      io.out(
        [showcase ? formatShowcase(showcase) : '', deviceUser ? formatDeviceUser(deviceUser) : '']
          .filter(Boolean)
          .join('\n\n'),
      );
    return 0;
  },
};
