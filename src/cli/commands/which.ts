import { isIP } from 'node:net';
import { loadConfigFile } from '../../config/load-config.js';
import { Controller } from '../../control/controller.js';
import { whichAnswer, type WhichAnswer } from '../../control/decide.js';
import { VpnlbError } from '../../errors.js';
import { parseCommandArgs, required, type Command } from '../command.js';
import { callAdmin, resolveAdminEndpoint } from './admin-client.js';

/**
 * `vpnlb which`: "which server will this client get?", answered by the same decision function
 * every data plane uses, from the configuration (every enabled backend assumed up) or, with
 * `--admin URL`, from a running balancer's live state.
 */
export const whichCommand: Command = {
  name: 'which',
  summary: 'tell which server a client gets (same decision as the data planes)',
  usage:
    'vpnlb which (--config FILE | --admin URL [--token-file FILE]) --client IP [--spi HEX16] [--natt-servers NAME,... [--natt-flows N]] [--service NAME] [--json]',
  async run(argv, io) {
    const { values } = parseCommandArgs(this, argv, {
      config: { type: 'string', short: 'c' },
      admin: { type: 'string' },
      'token-file': { type: 'string' },
      client: { type: 'string' },
      spi: { type: 'string' },
      'natt-servers': { type: 'string' },
      'natt-flows': { type: 'string' },
      service: { type: 'string' },
      json: { type: 'boolean' },
    });
    const client = required(this, values.client, '--client IP');
    if (isIP(client) === 0)
      throw new VpnlbError(
        'VPNLB_CLI_USAGE',
        `--client: "${client}" is not an IP address`,
        'client',
      );
    let spi: Buffer | undefined;
    if (values.spi !== undefined) {
      const hex = values.spi.replace(/^0x/i, '');
      if (!/^[0-9a-fA-F]{16}$/.test(hex))
        throw new VpnlbError(
          'VPNLB_CLI_USAGE',
          '--spi: 16 hex digits (the 8-byte IKE initiator SPI)',
          'client',
        );
      spi = Buffer.from(hex, 'hex');
    }
    // The servers that hold the client's live NAT-T flows (affinity ike-spi: a new SA joins them when there is one).
    const natTServers = values['natt-servers']
      ?.split(',')
      .map((x) => x.trim())
      .filter(Boolean);
    // How many live NAT-T flows come from the address (two or more: several devices behind one NAT, placed by SPI).
    let natTFlows: number | undefined;
    if (values['natt-flows'] !== undefined) {
      natTFlows = Number(values['natt-flows']);
      if (!Number.isInteger(natTFlows) || natTFlows < 0)
        throw new VpnlbError(
          'VPNLB_CLI_USAGE',
          `--natt-flows: "${values['natt-flows']}" is not a count of flows`,
          'client',
        );
    }
    let answers: WhichAnswer[];
    if (values.admin) {
      const query = new URLSearchParams({ client });
      if (spi) query.set('spi', spi.toString('hex'));
      if (natTServers) query.set('nattServers', natTServers.join(','));
      if (natTFlows !== undefined) query.set('nattFlows', String(natTFlows));
      if (values.service) query.set('service', values.service);
      const ep = resolveAdminEndpoint({
        admin: values.admin,
        config: values.config,
        tokenFile: values['token-file'],
      });
      const res = await callAdmin(ep, `/api/v1/which?${query}`);
      const body = res.body as { answers?: typeof answers; error?: string };
      if (res.status !== 200 || !body.answers)
        throw new VpnlbError('VPNLB_CLI_USAGE', `admin API: ${body.error ?? res.status}`, 'client');
      answers = body.answers;
    } else {
      const config = loadConfigFile(required(this, values.config, '--config FILE or --admin URL'));
      const controller = new Controller(config);
      answers = controller
        .snapshot()
        .services.filter((s) => !values.service || s.name === values.service)
        .map((s) => whichAnswer(s, client, spi, natTServers, natTFlows));
      if (values.service && answers.length === 0)
        throw new VpnlbError('VPNLB_CLI_USAGE', `no service named "${values.service}"`, 'client');
    }
    if (values.json) {
      io.out(JSON.stringify({ client, spi: spi?.toString('hex') ?? null, answers }, null, 2));
      return 0;
    }
    for (const a of answers) {
      const by =
        a.keyKind === 'ike-spi'
          ? `IKE SPI ${spi?.toString('hex')}`
          : a.keyKind === 'source-ip'
            ? `source address ${client}`
            : a.keyKind === 'natt-flow'
              ? "the client's NAT-T flows"
              : 'session';
      const slot = a.slot !== null ? `, Maglev slot ${a.slot}` : '';
      if (a.note && !a.backend) io.out(`${a.service}: ${a.note}`);
      else
        io.out(
          a.backend
            ? `${a.service}: ${a.backend} (${a.address}) — by ${by}${slot}${a.note ? ` (${a.note})` : ''}`
            : `${a.service}: no backend available`,
        );
    }
    return 0;
  },
};
