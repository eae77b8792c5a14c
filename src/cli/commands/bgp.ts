import { loadConfigFile } from '../../config/load-config.js';
import { createLogger } from '../../log/logger.js';
import { VpnlbError } from '../../errors.js';
import { formatBgpStatus, readBgpStatus } from '../../bgp/bgp-state.js';
import { bgpPaths } from '../../bgp/paths.js';
import { renderBgpNodeFiles, resolveBgpNode } from '../../bgp/render-node.js';
import { BgpSupervisor, writeBgpFiles } from '../../bgp/supervisor.js';
import { parseCommandArgs, required, type Command } from '../command.js';
import {
  ADMIN_OPTIONS,
  adminStatusReader,
  resolveAdminEndpoint,
  untilStopSignal,
} from './admin-client.js';

/**
 * `vpnlb bgp render|start|status`: one node of a farm of active nodes behind ECMP
 * (docs/scale-out.md). `render` writes bird.conf and the reply-NAT table into `bgp.runDir`;
 * `start` does that and runs BIRD under supervision next to `vpnlb run`, announcing each
 * virtual IP while this node can serve it; `status` prints the node's announcements and peers
 * from the state the supervisor writes (no admin API needed).
 */
export const bgpCommand: Command = {
  name: 'bgp',
  summary: 'run or inspect this node of an ECMP farm (BIRD 2, health-gated announcements)',
  usage:
    'vpnlb bgp render|start|status --config FILE [--node NAME] [--admin URL|unix:PATH] [--token-file FILE] [--json]',
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
      const node = renderBgpNodeFiles(config, values.node);
      writeBgpFiles(node);
      for (const path of node.files.keys()) io.out(path);
      return 0;
    }
    if (action === 'status') {
      const { bgp } = resolveBgpNode(config, values.node);
      const s = readBgpStatus(bgpPaths(bgp.runDir).stateFile);
      io.out(values.json ? JSON.stringify(s, null, 2) : formatBgpStatus(s));
      return 0;
    }
    if (action === 'start') {
      const node = renderBgpNodeFiles(config, values.node);
      const logger = createLogger({ level: config.log.level });
      const endpoint = resolveAdminEndpoint({
        admin: values.admin,
        config: file,
        tokenFile: values['token-file'],
      });
      const readStatus = adminStatusReader(endpoint);
      const supervisor = new BgpSupervisor({ node, logger, readStatus });
      await supervisor.start();
      io.out(`vpnlb bgp running (node ${node.self.name}, files in ${node.paths.dir})`);
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
