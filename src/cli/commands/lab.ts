import { existsSync } from 'node:fs';
import { canUseNftables } from '../../../lab/netns.js';
import { canUseStrongswan } from '../../../lab/strongswan/charon.js';
import { formatShowcase, runShowcase } from '../../../lab/scenarios/showcase.js';
import { formatHaPair, runHaPair } from '../../../lab/ha/ha-pair.js';
import { VpnlbError } from '../../errors.js';
import { parseCommandArgs, type Command } from '../command.js';

/**
 * `vpnlb lab`: the showcase with real strongSwan peers in network namespaces (root only).
 * The same farm and the same clients behind full NAT and behind transparent mode, with a few
 * clients stalled half-open: the numbers show why hiding client addresses fails (error 809).
 * Everything it creates (namespaces, processes, files) is removed at the end, also on failure.
 */
export const labCommand: Command = {
  name: 'lab',
  summary: 'run the real-strongSwan lab: full NAT vs transparent, or the ha-pair failovers, with numbers (root)',
  usage: 'vpnlb lab [--scenario showcase|ha-pair] [--json] [--clients N] [--stalled N] [--servers N]',
  async run(argv, io) {
    const { values } = parseCommandArgs(this, argv, {
      json: { type: 'boolean' },
      clients: { type: 'string' },
      stalled: { type: 'string' },
      servers: { type: 'string' },
      scenario: { type: 'string' },
    });
    const nft = canUseNftables();
    if (!nft.ok) {
      io.err(`vpnlb lab: ${nft.reason}. The lab builds network namespaces and nftables rules, so it must run as root (sudo vpnlb lab) with iproute2 and nftables installed.`);
      return 2;
    }
    const swan = canUseStrongswan();
    if (!swan.ok) {
      io.err(`vpnlb lab: ${swan.reason}. The lab runs real strongSwan peers: apt-get install strongswan-charon strongswan-swanctl libcharon-extra-plugins`);
      return 2;
    }
    const int = (v: string | undefined, def: number, min: number, max: number, what: string): number => {
      if (v === undefined) return def;
      const n = Number(v);
      if (!Number.isInteger(n) || n < min || n > max) throw new VpnlbError('VPNLB_CLI_USAGE', `--${what}: an integer from ${min} to ${max}`, 'client');
      return n;
    };
    const scenario = values.scenario ?? 'showcase';
    if (scenario !== 'showcase' && scenario !== 'ha-pair') throw new VpnlbError('VPNLB_CLI_USAGE', `--scenario: showcase or ha-pair (got ${scenario})`, 'client');
    if (scenario === 'ha-pair') {
      // keepalived and conntrackd: the pair's engines (docs/high-availability.md).
      for (const bin of ['/usr/sbin/keepalived', '/usr/sbin/conntrackd']) {
        if (!existsSync(bin)) {
          io.err(`vpnlb lab: ${bin} is missing: apt-get install keepalived conntrackd`);
          return 2;
        }
      }
      const clients = int(values.clients, 14, 1, 40, 'clients');
      const report = await runHaPair({ clients4: clients, progress: values.json ? () => undefined : (l) => io.err(l) });
      io.out(values.json ? JSON.stringify(report, null, 2) : formatHaPair(report));
      return 0;
    }
    const report = await runShowcase({
      clients: int(values.clients, 12, 1, 60, 'clients'),
      stalledClients: int(values.stalled, 4, 0, 20, 'stalled'),
      servers: int(values.servers, 3, 2, 3, 'servers'),
      progress: values.json ? () => undefined : (l) => io.err(l),
    });
    io.out(values.json ? JSON.stringify(report, null, 2) : formatShowcase(report));
    return 0;
  },
};
