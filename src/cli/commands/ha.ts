import { loadConfigFile } from '../../config/load-config.js';
import { createLogger } from '../../log/logger.js';
import { VpnlbError } from '../../errors.js';
import { HaStatusReader, type HaStatus } from '../../ha/ha-status.js';
import { renderNodeFiles, resolveNode } from '../../ha/render-pair.js';
import { HaSupervisor, writeNodeFiles } from '../../ha/supervisor.js';
import { parseCommandArgs, required, type Command } from '../command.js';
import {
  ADMIN_OPTIONS,
  adminStatusReader,
  resolveAdminEndpoint,
  untilStopSignal,
} from './admin-client.js';

/**
 * `vpnlb ha render|start|status`: one node of an active/standby pair (docs/high-availability.md).
 * `render` writes keepalived.conf, conntrackd.conf and the scripts into `ha.runDir`; `start`
 * does that and runs keepalived and conntrackd under supervision next to `vpnlb run`;
 * `status` prints this node's role from the files the pair writes (no admin API needed).
 */
export const haCommand: Command = {
  name: 'ha',
  summary: 'run or inspect this node of an active/standby pair (keepalived + conntrackd)',
  usage:
    'vpnlb ha render|start|status --config FILE [--node NAME] [--admin URL|unix:PATH] [--token-file FILE] [--json]',
  async run(argv, io) {
    const { values, positionals } = parseCommandArgs(
      this,
      argv,
      { ...ADMIN_OPTIONS, node: { type: 'string' }, json: { type: 'boolean' } },
      true,
    );
    const [action] = positionals;
    const file = required(this, values.config, '--config FILE');
    const config = loadConfigFile(file);
    if (action === 'render') {
      const node = renderNodeFiles(config, values.node);
      writeNodeFiles(node);
      for (const path of node.files.keys()) io.out(path);
      return 0;
    }
    if (action === 'status') {
      const { ha, self, peer } = resolveNode(config, values.node);
      const s = new HaStatusReader(ha, self, peer).status;
      if (values.json) io.out(JSON.stringify(s, null, 2));
      else io.out(formatHaStatus(s));
      return 0;
    }
    if (action === 'start') {
      const node = renderNodeFiles(config, values.node);
      const logger = createLogger({ level: config.log.level });
      // The admin API of this node's vpnlb, with the token it wrote (or the Unix socket).
      const endpoint = resolveAdminEndpoint({
        admin: values.admin,
        config: file,
        tokenFile: values['token-file'],
      });
      const readStatus = adminStatusReader(endpoint);
      const supervisor = new HaSupervisor({ node, logger, readStatus });
      await supervisor.start();
      io.out(
        `vpnlb ha running (node ${node.self.name}, peer ${node.peer.name}, files in ${node.paths.dir})`,
      );
      await untilStopSignal();
      await supervisor.stop();
      return 0;
    }
    throw new VpnlbError(
      'VPNLB_CLI_USAGE',
      `unknown action "${action ?? ''}"\nusage: ${this.usage}`,
      'client',
    );
  },
};

/** The pair's lines of `vpnlb status` and `vpnlb ha status`. */
export function formatHaStatus(s: HaStatus): string {
  const lines = [
    `node ${s.node}: ${s.role}${s.drained ? ' (drained)' : ''}, priority ${s.priority}; peer ${s.peer.name} (${s.peer.syncAddress}, priority ${s.peer.priority})`,
    `  health: ${s.check}`,
    `  sync: conntrackd ${s.sync.conntrackd}${s.sync.entries !== null ? `, ${s.sync.entries} entries` : ''} — ${s.sync.detail}`,
    `  last failover: ${s.lastFailover ? `${s.lastFailover.at} ${s.lastFailover.from} -> ${s.lastFailover.to}: ${s.lastFailover.cause}` : 'none'}`,
  ];
  return lines.join('\n');
}
