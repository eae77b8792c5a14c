/**
 * Every file one node of the pair needs, rendered from the configuration alone (pure): the same
 * YAML on both nodes plus `vpnlb ha start` reproduces the pair.
 */
import type { Config, HaConfig, HaNode } from '../config/types.js';
import { localNode } from '../config/ha.js';
import { renderReplyNat } from '../dataplane/kernel/reply-nat.js';
import { VpnlbError } from '../errors.js';
import { haPaths, type HaPaths } from './paths.js';
import { renderConntrackdConf } from './render-conntrackd.js';
import { renderKeepalivedConf } from './render-keepalived.js';
import { renderCheckScript, renderNotifyScript } from './render-scripts.js';

/** The pair's reply-NAT table, in each node's own network namespace. */
export const HA_REPLY_NAT_TABLE = 'vpnlb_ha';

export interface NodeFiles {
  readonly ha: HaConfig;
  readonly self: HaNode;
  readonly peer: HaNode;
  readonly paths: HaPaths;
  /** Absolute path → content. */
  readonly files: ReadonlyMap<string, string>;
}

/** Which node this is (`--node`, `ha.node`, or the sync address held here), or a clear error. */
export function resolveNode(
  config: Config,
  node?: string,
): { ha: HaConfig; self: HaNode; peer: HaNode } {
  const ha = config.ha;
  if (!ha)
    throw new VpnlbError(
      'VPNLB_HA_CONFIG',
      `${config.source}: no "ha" section: this balancer is not one node of a pair`,
      'client',
    );
  const found = localNode(ha, node);
  if (!found) {
    const names = ha.nodes.map((n) => `${n.name} (sync address ${n.syncAddress})`).join(', ');
    throw new VpnlbError(
      'VPNLB_HA_CONFIG',
      `cannot tell which node this is: ${node !== undefined ? `"${node}" is not one of ${names}` : `no sync address of ${names} is configured here; pass --node NAME or set ha.node`}`,
      'client',
    );
  }
  return { ha, ...found };
}

export function renderNodeFiles(config: Config, node?: string): NodeFiles {
  const { ha, self, peer } = resolveNode(config, node);
  const paths = haPaths(ha.runDir);
  const input = { ha, self, peer, paths, source: config.source };
  const files = new Map<string, string>([
    [paths.keepalivedConf, renderKeepalivedConf(input)],
    [paths.conntrackdConf, renderConntrackdConf(input)],
    [paths.notifyScript, renderNotifyScript(input)],
    [`${paths.dir}/check.sh`, renderCheckScript(input)],
  ]);
  // Both nodes: whichever holds the addresses answers for every service address.
  if (ha.replyNat)
    files.set(
      paths.replyNat,
      renderReplyNat(config, {
        table: HA_REPLY_NAT_TABLE,
        header: `# vpnlb: reply NAT of a node of an active/standby pair (from ${config.source}). Rendered by vpnlb ha start; do not edit.`,
        vipOf: (s) => s.virtualIp,
      }),
    );
  return { ha, self, peer, paths, files };
}
