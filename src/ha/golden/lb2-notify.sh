#!/bin/sh
# vpnlb lb2: keepalived's notify for the sync group, rendered from /etc/vpnlb/vpnlb.yaml by `vpnlb ha render`.
# $1 GROUP, $2 group name, $3 MASTER|BACKUP|FAULT|STOP, $4 priority.
# One line per transition, with what explains it: the drain file and the first failed check,
# or else the VRRP interfaces that are not up (keepalived's own reason for a FAULT).
state="$3"
log='/run/vpnlb-ha/transitions'
drain=$(cat '/run/vpnlb-ha/drain' 2>/dev/null || echo 0)
check=$(grep -v ' ok$' '/run/vpnlb-ha/check' 2>/dev/null | head -n 1)
if [ -z "$check" ]; then
    down=
    for i in 'outside0' 'inside0'; do
        case "$(cat "/sys/class/net/$i/operstate" 2>/dev/null)" in
            up|unknown) ;;
            *) down="${down:+$down }$i" ;;
        esac
    done
    [ -z "$down" ] || check="link down: $down"
fi
printf '%s %s %s drain=%s check=%s\n' "$(date +%s%3N)" "$state" "${4:-0}" "${drain:-0}" "${check:-ok}" >> "$log"
ct() {
    /usr/sbin/conntrackd -C '/run/vpnlb-ha/conntrackd.conf' "$@" >/dev/null 2>&1 ||
        printf '%s conntrackd %s failed\n' "$(date +%s%3N)" "$*" >> "$log"
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
