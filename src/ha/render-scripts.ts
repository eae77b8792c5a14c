/**
 * The two shell scripts keepalived runs (as root, from the node's run directory):
 *
 * - `notify.sh GROUP NAME STATE PRIORITY` (keepalived's sync-group `notify`): records the
 *   transition for `vpnlb status` and drives conntrackd as the shipped `primary-backup.sh` does,
 *   adapted to `DisableExternalCache on` (render-conntrackd.ts): on MASTER there is no external
 *   cache to commit (`-c`); `-R` reloads the internal cache from the kernel table the node now
 *   owns and `-B` sends it all to the peer. On BACKUP `-n` asks the new master for its table.
 *   `-t` (shorten kernel timers) is left out: with the external cache disabled, the standby's
 *   kernel table *is* the replica, and shortening it would drop tunnels at the next takeover.
 * - `check.sh alive|backends` (the `vrrp_script`s): succeeds when the supervisor's last health
 *   check is fresh and says `ok` for that line. The check itself runs inside `vpnlb ha start`
 *   (one HTTP request per interval); the script stays a few microseconds of `sh`, so keepalived
 *   never waits on a slow Node start, and a dead supervisor (stale file) fails `alive`.
 */
import type { HaConfig, HaNode } from '../config/types.js';
import type { HaPaths } from './paths.js';

export const CONNTRACKD_PATH = '/usr/sbin/conntrackd';

/** Shell single-quoting. */
function q(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

export function renderNotifyScript(input: {
  ha: HaConfig;
  self: HaNode;
  paths: HaPaths;
  source: string;
}): string {
  const { paths } = input;
  const links = [input.ha.vrrp.outside.interface, input.ha.vrrp.inside.interface].map(q).join(' ');
  return `#!/bin/sh
# vpnlb ${input.self.name}: keepalived's notify for the sync group, rendered from ${input.source} by \`vpnlb ha render\`.
# $1 GROUP, $2 group name, $3 MASTER|BACKUP|FAULT|STOP, $4 priority.
# One line per transition, with what explains it: the drain file and the first failed check,
# or else the VRRP interfaces that are not up (keepalived's own reason for a FAULT).
state="$3"
log=${q(paths.transitions)}
drain=$(cat ${q(paths.drainFile)} 2>/dev/null || echo 0)
check=$(grep -v ' ok$' ${q(paths.checkFile)} 2>/dev/null | head -n 1)
if [ -z "$check" ]; then
    down=
    for i in ${links}; do
        case "$(cat "/sys/class/net/$i/operstate" 2>/dev/null)" in
            up|unknown) ;;
            *) down="\${down:+$down }$i" ;;
        esac
    done
    [ -z "$down" ] || check="link down: $down"
fi
printf '%s %s %s drain=%s check=%s\\n' "$(date +%s%3N)" "$state" "\${4:-0}" "\${drain:-0}" "\${check:-ok}" >> "$log"
ct() {
    ${CONNTRACKD_PATH} -C ${q(paths.conntrackdConf)} "$@" >/dev/null 2>&1 ||
        printf '%s conntrackd %s failed\\n' "$(date +%s%3N)" "$*" >> "$log"
}
case "$state" in
    MASTER)
        ct -R
        ct -B
        ;;
    BACKUP)
        ct -n
        ;;
esac
exit 0
`;
}

export function renderCheckScript(input: {
  ha: HaConfig;
  self: HaNode;
  paths: HaPaths;
  source: string;
}): string {
  // Stale after five intervals (at least 10 s): the supervisor writes the file every interval
  // plus the time of one status request, which a busy host can stretch to seconds.
  const staleSec = Math.max(10, Math.ceil((5 * input.ha.checkInterval) / 1000));
  return `#!/bin/sh
# vpnlb ${input.self.name}: keepalived's health check, rendered from ${input.source} by \`vpnlb ha render\`.
# $1 alive|backends: succeeds when \`vpnlb ha start\` wrote "$1 ok" less than ${staleSec} s ago.
f=${q(input.paths.checkFile)}
age=$(( $(date +%s) - $(stat -c %Y "$f" 2>/dev/null || echo 0) ))
[ "$age" -lt ${staleSec} ] || exit 1
grep -q "^$1 ok" "$f"
`;
}
