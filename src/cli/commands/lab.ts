import { canUseConntrack } from '../../../lab/netns.js';
import { canUseStrongswan } from '../../../lab/strongswan/charon.js';
import { formatShowcase, runShowcase } from '../../../lab/scenarios/showcase.js';
import { chaosOptionsFor, runChaos } from '../../../lab/scenarios/chaos/chaos.js';
import { VpnlbError } from '../../errors.js';
import { parseCommandArgs, type Command } from '../command.js';

/**
 * `vpnlb lab`: real strongSwan peers in network namespaces (root only). Everything a scenario
 * creates (namespaces, processes, files) is removed at the end, also on failure.
 * - `showcase` (default): the same farm and clients behind full NAT and behind transparent mode,
 *   with a few clients stalled half-open: the numbers show why hiding client addresses fails
 *   (error 809).
 * - `chaos`: a soak run with faults and a bad-input flood (lab/scenarios/chaos/, docs/lab.md).
 */
export const labCommand: Command = {
  name: 'lab',
  summary: 'run the real-strongSwan lab: full NAT vs transparent, or the chaos soak run (root)',
  usage:
    'vpnlb lab [--scenario showcase|chaos] [--json]  showcase: [--clients N] [--stalled N] [--servers N]  chaos: [--duration S] [--seed N] [--tunnels N]',
  async run(argv, io) {
    const { values } = parseCommandArgs(this, argv, {
      scenario: { type: 'string' },
      json: { type: 'boolean' },
      clients: { type: 'string' },
      stalled: { type: 'string' },
      servers: { type: 'string' },
      duration: { type: 'string' },
      seed: { type: 'string' },
      tunnels: { type: 'string' },
    });
    const scenario = values.scenario ?? 'showcase';
    if (scenario !== 'showcase' && scenario !== 'chaos') throw new VpnlbError('VPNLB_CLI_USAGE', `--scenario: showcase or chaos, not ${scenario}`, 'client');
    const ct = canUseConntrack();
    if (!ct.ok) {
      io.err(`vpnlb lab: ${ct.reason}. The lab builds network namespaces and nftables rules and reads conntrack, so it must run as root (sudo vpnlb lab) with iproute2, nftables and conntrack installed.`);
      return 2;
    }
    const swan = canUseStrongswan();
    if (!swan.ok) {
      io.err(`vpnlb lab: ${swan.reason}. The lab runs real strongSwan peers: apt-get install strongswan-charon strongswan-swanctl libcharon-extra-plugins libstrongswan-standard-plugins`);
      return 2;
    }
    const int = (v: string | undefined, def: number, min: number, max: number, what: string): number => {
      if (v === undefined) return def;
      const n = Number(v);
      if (!Number.isInteger(n) || n < min || n > max) throw new VpnlbError('VPNLB_CLI_USAGE', `--${what}: an integer from ${min} to ${max}`, 'client');
      return n;
    };
    const progress = values.json ? undefined : (l: string) => io.err(l);
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
    const report = await runShowcase({
      clients: int(values.clients, 12, 1, 60, 'clients'),
      stalledClients: int(values.stalled, 4, 0, 20, 'stalled'),
      servers: int(values.servers, 3, 2, 3, 'servers'),
      ...(progress ? { progress } : {}),
    });
    io.out(values.json ? JSON.stringify(report, null, 2) : formatShowcase(report));
    return 0;
  },
};
