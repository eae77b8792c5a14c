/**
 * Every file one node of an ECMP farm needs, from the configuration alone (pure): the same YAML
 * on every node plus `vpnlb bgp start` reproduces the farm.
 */
import { localBgpNode, type BgpConfig, type BgpNode } from '../config/bgp.js';
import type { Config } from '../config/types.js';
import { VpnlbError } from '../errors.js';
import { bgpPaths, type BgpPaths } from './paths.js';
import { renderBirdConf } from './render-bird.js';
import { renderBgpReplyNat } from './render-reply-nat.js';

export interface BgpNodeFiles {
  readonly bgp: BgpConfig;
  readonly self: BgpNode;
  readonly paths: BgpPaths;
  /** Absolute path → content. */
  readonly files: ReadonlyMap<string, string>;
}

/** Which node this is (`--node`, `bgp.node`, or the router id held here), or a clear error. */
export function resolveBgpNode(config: Config, node?: string): { bgp: BgpConfig; self: BgpNode } {
  const bgp = config.bgp;
  if (!bgp)
    throw new VpnlbError(
      'VPNLB_BGP_CONFIG',
      `${config.source}: no "bgp" section: this balancer is not a node behind ECMP`,
      'client',
    );
  const self = localBgpNode(bgp, node);
  if (!self) {
    const names = bgp.nodes.map((n) => `${n.name} (router id ${n.routerId})`).join(', ');
    throw new VpnlbError(
      'VPNLB_BGP_CONFIG',
      `cannot tell which node this is: ${node !== undefined ? `"${node}" is not one of ${names}` : `no router id of ${names} is an address here; pass --node NAME or set bgp.node`}`,
      'client',
    );
  }
  return { bgp, self };
}

export function renderBgpNodeFiles(config: Config, node?: string): BgpNodeFiles {
  const { bgp, self } = resolveBgpNode(config, node);
  const paths = bgpPaths(bgp.runDir);
  const files = new Map<string, string>([
    [paths.birdConf, renderBirdConf({ bgp, self, paths, source: config.source })],
  ]);
  if (bgp.replyNat) files.set(paths.replyNat, renderBgpReplyNat(config, bgp));
  return { bgp, self, paths, files };
}
