import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { loadConfigFile } from '../../config/load-config.js';
import { VpnlbError } from '../../errors.js';
import { haPaths } from '../../ha/paths.js';
import { parseTransitions } from '../../ha/ha-status.js';
import { resolveNode } from '../../ha/render-pair.js';
import { parseCommandArgs, required, type Command } from '../command.js';

/**
 * `vpnlb node drain|resume`: hands this node's addresses to the peer on purpose (maintenance),
 * or takes the drain back. The drain file lowers the node's VRRP priority to the minimum
 * (keepalived's track_file, render-keepalived.ts): the peer preempts once its preempt delay and
 * master-down interval have passed (about 9 s with the defaults), this
 * node stays a standby that takes over again if the peer dies. With `--wait` (default when
 * draining the active node) the command returns once this node reports standby.
 */
export const nodeCommand: Command = {
  name: 'node',
  summary: 'drain or resume this node of an active/standby pair',
  usage: 'vpnlb node drain|resume --config FILE [--node NAME] [--no-wait]',
  async run(argv, io) {
    const { values, positionals } = parseCommandArgs(this, argv, { config: { type: 'string', short: 'c' }, node: { type: 'string' }, 'no-wait': { type: 'boolean' } }, true);
    const [action] = positionals;
    if (action !== 'drain' && action !== 'resume') throw new VpnlbError('VPNLB_CLI_USAGE', `unknown action "${action ?? ''}"\nusage: ${this.usage}`, 'client');
    const config = loadConfigFile(required(this, values.config, '--config FILE'));
    const { ha, self, peer } = resolveNode(config, values.node);
    const paths = haPaths(ha.runDir);
    const role = () => {
      let text = '';
      try {
        text = readFileSync(paths.transitions, 'utf8');
      } catch {
        /* no transition yet */
      }
      return parseTransitions(text).at(-1)?.state;
    };
    // The run directory may not exist yet (a tmpfs after a reboot, before `vpnlb ha start`):
    // draining then keeps the node from taking the addresses when the pair starts.
    mkdirSync(paths.dir, { recursive: true, mode: 0o700 });
    writeFileSync(paths.drainFile, action === 'drain' ? '1\n' : '0\n');
    if (action === 'resume') {
      io.out(`${self.name}: resumed (takes the addresses back from ${peer.name} after ha.vrrp.preemptDelay when it has the higher priority)`);
      return 0;
    }
    if (role() === 'MASTER' && values['no-wait'] !== true) {
      // The peer preempts once it has seen a lower priority for preempt_delay, then within adverts.
      const waitMs = ha.vrrp.preemptDelay + 5 * ha.vrrp.advertInterval + 5000;
      const deadline = Date.now() + waitMs;
      while (role() === 'MASTER' && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
      if (role() === 'MASTER') {
        io.err(`${self.name}: drained, but still active after ${Math.round(waitMs / 1000)} s: is ${peer.name} up? (vpnlb ha status)`);
        return 1;
      }
    }
    io.out(`${self.name}: drained (${role() === 'MASTER' ? 'active' : 'standby'}; ${peer.name} holds the addresses while it is healthy)`);
    return 0;
  },
};
