/**
 * Where the pair's files live below `ha.runDir` (one directory per node, owned by root: keepalived's
 * script security refuses scripts in directories others can write). keepalived and conntrackd
 * each get their pid, lock and socket files here, never in the shared /run (DESIGN §6: two
 * instances on one host, as in the lab, otherwise collide).
 */
import { join } from 'node:path';

export interface HaPaths {
  readonly dir: string;
  readonly keepalivedConf: string;
  readonly conntrackdConf: string;
  readonly notifyScript: string;
  /** keepalived's private /run (bind-mounted over /run for it alone). */
  readonly keepalivedRun: string;
  readonly conntrackdSocket: string;
  readonly conntrackdLock: string;
  readonly conntrackdLog: string;
  /** One line per VRRP transition: `<unix ms> <MASTER|BACKUP|FAULT|STOP> <priority>` (notify script). */
  readonly transitions: string;
  /** Present (content `1`) while the node is drained: keepalived's track_file lowers its priority. */
  readonly drainFile: string;
  /** The last `vpnlb ha check` result: `ok` or the reason it failed (the cause of a FAULT). */
  readonly checkFile: string;
  /** The reply-NAT table (`nft -f`), when `ha.replyNat`. */
  readonly replyNat: string;
}

export function haPaths(runDir: string): HaPaths {
  return {
    dir: runDir,
    keepalivedConf: join(runDir, 'keepalived.conf'),
    conntrackdConf: join(runDir, 'conntrackd.conf'),
    notifyScript: join(runDir, 'notify.sh'),
    keepalivedRun: join(runDir, 'keepalived-run'),
    conntrackdSocket: join(runDir, 'conntrackd.ctl'),
    conntrackdLock: join(runDir, 'conntrackd.lock'),
    conntrackdLog: join(runDir, 'conntrackd.log'),
    transitions: join(runDir, 'transitions'),
    drainFile: join(runDir, 'drain'),
    checkFile: join(runDir, 'check'),
    replyNat: join(runDir, 'reply-nat.nft'),
  };
}
