import { parseCommandArgs, type Command } from '../command.js';
import { ADMIN_OPTIONS, ADMIN_USAGE, callAdmin, resolveAdminEndpoint } from './admin-client.js';

interface ReloadBody {
  ok: boolean;
  issues: string[];
  changes: string[];
  error?: string;
}

/**
 * `vpnlb reload`: the running balancer re-reads its configuration file and applies only what
 * changed (the same as SIGHUP, but with the answer: what changed, or every problem found).
 */
export const reloadCommand: Command = {
  name: 'reload',
  summary:
    'make a running balancer re-read its configuration file (hitless; a bad file is refused)',
  usage: `vpnlb reload ${ADMIN_USAGE}`,
  async run(argv, io) {
    const { values } = parseCommandArgs(this, argv, ADMIN_OPTIONS);
    const ep = resolveAdminEndpoint({
      admin: values.admin,
      config: values.config,
      tokenFile: values['token-file'],
    });
    const { status, body } = await callAdmin(ep, '/api/v1/reload', { method: 'POST' });
    const b = body as ReloadBody;
    if (status !== 200 || !b.ok) {
      io.err(`vpnlb reload: ${b.error ?? `admin API answered ${status}`}`);
      for (const i of b.issues ?? []) io.err(i);
      return 1;
    }
    for (const i of b.issues) io.err(i);
    io.out(
      b.changes.length === 0
        ? 'reloaded: no change'
        : `reloaded:\n${b.changes.map((c) => `  ${c}`).join('\n')}`,
    );
    return 0;
  },
};
