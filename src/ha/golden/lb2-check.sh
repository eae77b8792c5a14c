#!/bin/sh
# vpnlb lb2: keepalived's health check, rendered from /etc/vpnlb/vpnlb.yaml by `vpnlb ha render`.
# $1 alive|backends: succeeds when `vpnlb ha start` wrote "$1 ok" less than 10 s ago.
f='/run/vpnlb-ha/check'
age=$(( $(date +%s) - $(stat -c %Y "$f" 2>/dev/null || echo 0) ))
[ "$age" -lt 10 ] || exit 1
grep -q "^$1 ok" "$f"
