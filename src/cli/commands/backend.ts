import { VpnlbError } from '../../errors.js';
import { parseCommandArgs, required, type Command } from '../command.js';
import { ADMIN_OPTIONS, ADMIN_USAGE, callAdmin, resolveAdminEndpoint } from './admin-client.js';

/** `vpnlb backend drain|disable|enable NAME`: operator actions through the admin API. */
export const backendCommand: Command = {
  name: 'backend',
  summary: 'drain, disable or enable a backend of a running balancer',
  usage: `vpnlb backend drain|disable|enable NAME|POOL/NAME ${ADMIN_USAGE}`,
  async run(argv, io) {
    const { values, positionals } = parseCommandArgs(this, argv, ADMIN_OPTIONS, true);
    const [action, name] = positionals;
    if (action !== 'drain' && action !== 'disable' && action !== 'enable') {
      throw new VpnlbError(
        'VPNLB_CLI_USAGE',
        `unknown action "${action ?? ''}"\nusage: ${this.usage}`,
        'client',
      );
    }
    const ref = required(this, name, 'backend NAME');
    const ep = resolveAdminEndpoint({
      admin: values.admin,
      config: values.config,
      tokenFile: values['token-file'],
    });
    const { status, body } = await callAdmin(
      ep,
      `/api/v1/backends/${encodeURIComponent(ref)}/${action}`,
      { method: 'POST' },
    );
    if (status !== 200) {
      io.err(`vpnlb: ${(body as { error?: string }).error ?? `admin API answered ${status}`}`);
      return 1;
    }
    for (const b of (
      body as { backends: { pool: string; name: string; state: string; reason: string }[] }
    ).backends) {
      io.out(`${b.pool}/${b.name}: ${b.state} (${b.reason})`);
    }
    return 0;
  },
};
