import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { loadConfigFile } from '../../config/load-config.js';
import { VpnlbError } from '../../errors.js';
import { haPaths } from '../../ha/paths.js';
import { parseTransitions } from '../../ha/ha-status.js';
import { resolveNode } from '../../ha/render-pair.js';
import { createCommandRunner } from '../../platform/command-runner.js';
import { drainNode } from '../../bgp/drain.js';
import { bgpPaths } from '../../bgp/paths.js';
import { resolveBgpNode } from '../../bgp/render-node.js';
import type { Config } from '../../config/types.js';

import { parseCommandArgs, required, type Command, type CommandIo } from '../command.js';

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
  summary: 'drain or resume this node of an active/standby pair or of an ECMP farm',
  usage: 'vpnlb node drain|resume --config FILE [--node NAME] [--no-wait] [--json]',
  async run(argv, io) {
    const { values, positionals } = parseCommandArgs(
      this,
      argv,
      {
        config: { type: 'string', short: 'c' },
        node: { type: 'string' },
        'no-wait': { type: 'boolean' },
        json: { type: 'boolean' },
      },
      true,
    );
    const [action] = positionals;
    if (action !== 'drain' && action !== 'resume')
      throw new VpnlbError(
        'VPNLB_CLI_USAGE',
        `unknown action "${action ?? ''}"\nusage: ${this.usage}`,
        'client',
      );
    const config = loadConfigFile(required(this, values.config, '--config FILE'));
    if (config.bgp && !config.ha)
      return drainBgpNode(
        config,
        action,
        values.node,
        values['no-wait'] === true,
        values.json === true,
        io,
      );
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
      io.out(
        `${self.name}: resumed (takes the addresses back from ${peer.name} after ha.vrrp.preemptDelay when it has the higher priority)`,
      );
      return 0;
    }
    if (role() === 'MASTER' && values['no-wait'] !== true) {
      // The peer preempts once it has seen a lower priority for preempt_delay, then within adverts.
      const waitMs = ha.vrrp.preemptDelay + 5 * ha.vrrp.advertInterval + 5000;
      const deadline = Date.now() + waitMs;
      while (role() === 'MASTER' && Date.now() < deadline)
        await new Promise((r) => setTimeout(r, 100));
      if (role() === 'MASTER') {
        io.err(
          `${self.name}: drained, but still active after ${Math.round(waitMs / 1000)} s: is ${peer.name} up? (vpnlb ha status)`,
        );
        return 1;
      }
    }
    io.out(
      `${self.name}: drained (${role() === 'MASTER' ? 'active' : 'standby'}; ${peer.name} holds the addresses while it is healthy)`,
    );
    return 0;
  },
};

/**
 * A node behind ECMP: `drain` withdraws its announcements and (unless --no-wait) waits until
 * the routers stopped sending it clients, then reports; `resume` lets it announce again at the
 * supervisor's next check (docs/scale-out.md).
 */
async function drainBgpNode(
  config: Config,
  action: 'drain' | 'resume',
  node: string | undefined,
  noWait: boolean,
  json: boolean,
  io: CommandIo,
): Promise<number> {
  const { bgp, self } = resolveBgpNode(config, node);
  const paths = bgpPaths(bgp.runDir);
  if (action === 'resume') {
    writeFileSync(paths.drainFile, '0\n');
    io.out(`${self.name}: resumed (announces again at the next check while healthy)`);
    return 0;
  }
  if (noWait) {
    writeFileSync(paths.drainFile, '1\n');
    io.out(`${self.name}: drained (withdraws at the next check)`);
    return 0;
  }
  const r = await drainNode({
    paths,
    run: createCommandRunner({ timeoutMs: 10_000 }),
    timeoutMs: bgp.drainTimeout,
  });
  if (r.withdrawMs === null) {
    io.err(
      `${self.name}: drained, but the announcements were not withdrawn within ${Math.round(bgp.drainTimeout / 1000)} s: is vpnlb bgp start running? (vpnlb bgp status)`,
    );
    return 1;
  }
  if (r.timedOut) {
    io.err(
      `${self.name}: withdrawn in ${r.withdrawMs} ms, but client packets still arrive after ${Math.round(bgp.drainTimeout / 1000)} s (${r.packetsAfterWithdraw} since the withdrawal): does a router still route here?`,
    );
    return 1;
  }
  if (json) io.out(JSON.stringify({ node: self.name, ...r }));
  else
    io.out(
      `${self.name}: drained: withdrawn in ${r.withdrawMs} ms; the last client packet arrived ${r.quietAfterMs} ms after the drain (${r.packetsAfterWithdraw} packets after the withdrawal)`,
    );
  return 0;
}
