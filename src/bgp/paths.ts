/**
 * Where one node's BGP files live below `bgp.runDir`: BIRD's configuration, its control socket
 * and pid file (never the shared /run/bird: two nodes on one host, as in the lab, would collide),
 * the reply-NAT table, the drain flag and the state vpnlb reports.
 */
import { join } from 'node:path';

export interface BgpPaths {
  readonly dir: string;
  readonly birdConf: string;
  readonly birdSocket: string;
  readonly birdPid: string;
  readonly replyNat: string;
  /** Present (content `1`) while the node is drained: every announcement is withdrawn. */
  readonly drainFile: string;
  /** The supervisor's last view (`BgpState`, JSON), rewritten after every check. */
  readonly stateFile: string;
}

export function bgpPaths(runDir: string): BgpPaths {
  return {
    dir: runDir,
    birdConf: join(runDir, 'bird.conf'),
    birdSocket: join(runDir, 'bird.ctl'),
    birdPid: join(runDir, 'bird.pid'),
    replyNat: join(runDir, 'reply-nat.nft'),
    drainFile: join(runDir, 'drain'),
    stateFile: join(runDir, 'state.json'),
  };
}
