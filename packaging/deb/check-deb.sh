#!/bin/sh
# Installs a vpnlb .deb into a copy of the clean Debian 12 root (scripts/fresh-root-base.sh) and
# checks it there, the way an administrator would use it:
#
#   sudo sh packaging/deb/check-deb.sh dist-deb/vpnlb_0.1.0_amd64.deb
#
#  1. `apt-get install ./vpnlb_*.deb` (its Depends come from the Debian mirror; Node.js is the
#     copy the base carries, standing for NodeSource's nodejs >= 20, which preinst checks).
#  2. In a private network namespace (nothing here touches the host's nftables):
#     `vpnlb check` of the shipped /etc/vpnlb/vpnlb.yaml, `vpnlb demo --duration 5 --json`, the
#     system user, `systemd-analyze verify` and `security` of the installed unit; then the
#     service's own command line as the unit runs it (user vpnlb, its three capabilities, no
#     new privileges: setpriv stands for systemd, which is not booted here) until its nftables
#     table exists, a `kill -9` (the table stays, as after a crash or with VPNLB_KEEP_STATE=1),
#     `apt-get remove` (prerm's `vpnlb stop` must remove the table) and `apt-get purge`.
# Prints `check-deb: KEY=VALUE` result lines (test/integration/deb-package.test.ts reads them)
# and exits non-zero when a step fails. The copy of the root is removed afterwards.
set -eu
[ "$#" -ge 1 ] || { echo "usage: check-deb.sh VPNLB_DEB" >&2; exit 2; }
[ "$(id -u)" = "0" ] || { echo "check-deb: needs root (chroot, namespaces)" >&2; exit 2; }
DEB=$(readlink -f "$1")
REPO=$(cd "$(dirname "$0")/../.." && pwd)
BASE=$(sh "$REPO/scripts/fresh-root-base.sh")
ROOT=/var/tmp/vpnlb-deb-$$
cleanup() { rm -rf "$ROOT"; }
trap cleanup EXIT INT TERM
cp -a "$BASE" "$ROOT"
cp /etc/resolv.conf "$ROOT/etc/resolv.conf"
cp "$DEB" "$ROOT/root/"
NAME=$(basename "$DEB")

# Runs a script inside the root with /proc, /sys, /dev and a private /run and /tmp; "$1" is
# "host" (the host's network, for apt) or "private" (a new, empty network namespace).
in_root() {
  net=$1; shift
  set -- unshare --mount --propagation private $( [ "$net" = private ] && echo --net ) sh -eu -c '
    R="$1"; shift
    mount -t proc proc "$R/proc"
    mount -t sysfs sysfs "$R/sys"
    mount --rbind /dev "$R/dev"
    mount -t tmpfs tmpfs "$R/run"
    mount -t tmpfs tmpfs "$R/tmp"
    exec chroot "$R" /usr/bin/env -i HOME=/root PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive sh -eu -c "$1"
  ' sh "$ROOT" "$*"
  "$@"
}

# The Debian packages downloaded for the Depends are kept beside the base for the next run.
CACHE=$(dirname "$BASE")/apt-archives
mkdir -p "$CACHE"
cp "$CACHE"/*.deb "$ROOT/var/cache/apt/archives/" 2>/dev/null || true
echo "check-deb: installing $NAME into a copy of $BASE"
in_root host "apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends /root/$NAME >/root/apt-install.log 2>&1 || { tail -30 /root/apt-install.log; exit 1; }"
cp "$ROOT"/var/cache/apt/archives/*.deb "$CACHE/" 2>/dev/null || true
echo "check-deb: installed=$(chroot "$ROOT" dpkg-query -W -f='${Version}' vpnlb)"

in_root private '
  ip link set lo up
  ip addr add 198.19.0.1/32 dev lo
  echo "check-deb: vpnlb_path=$(command -v vpnlb)"
  vpnlb check --config /etc/vpnlb/vpnlb.yaml >/tmp/check.out 2>&1 && echo "check-deb: check=ok" || { cat /tmp/check.out; echo "check-deb: check=failed"; }
  vpnlb demo --duration 5 --json >/tmp/demo.json 2>/tmp/demo.err && echo "check-deb: demo=$(tail -n 1 /tmp/demo.json)" || { tail -20 /tmp/demo.err; echo "check-deb: demo=failed"; }
  echo "check-deb: user=$(id -un vpnlb):$(id -gn vpnlb) home=$(getent passwd vpnlb | cut -d: -f6) shell=$(getent passwd vpnlb | cut -d: -f7)"
  echo "check-deb: etc=$(stat -c %U:%G:%a /etc/vpnlb) conffile=$(dpkg-query -W -f="\${Conffiles}" vpnlb | tr -s " \n" " ")"
  systemd-analyze verify /lib/systemd/system/vpnlb.service >/tmp/verify.out 2>&1 && echo "check-deb: verify=ok" || { cat /tmp/verify.out; echo "check-deb: verify=failed"; }
  echo "check-deb: exposure=$(systemd-analyze security --offline=yes /lib/systemd/system/vpnlb.service 2>/dev/null | sed -n "s/.*Overall exposure level for vpnlb.service: \([0-9.]*\).*/\1/p")"

  # The unit'"'"'s command as the unit runs it (User=vpnlb, AmbientCapabilities=, CapabilityBoundingSet=, NoNewPrivileges=).
  CAPS=-all,+net_admin,+net_raw,+net_bind_service
  # What systemd does for StateDirectory=vpnlb and RuntimeDirectory=vpnlb before it starts the
  # unit (the admin token and the admin socket live there).
  install -d -o vpnlb -g vpnlb -m 0750 /var/lib/vpnlb /run/vpnlb
  setpriv --reuid=vpnlb --regid=vpnlb --init-groups --inh-caps=$CAPS --ambient-caps=$CAPS --bounding-set=$CAPS --no-new-privs \
    vpnlb run --config /etc/vpnlb/vpnlb.yaml >/tmp/run.log 2>&1 &
  pid=$!
  i=0
  until nft list table ip vpnlb >/dev/null 2>&1 || [ $i -ge 120 ]; do sleep 0.5; i=$((i+1)); done
  echo "check-deb: run_uid=$(awk "/^Uid:/{print \$2}" /proc/$pid/status 2>/dev/null) run_capeff=$(awk "/^CapEff:/{print \$2}" /proc/$pid/status 2>/dev/null)"
  nft list table ip vpnlb >/dev/null 2>&1 && echo "check-deb: table_programmed=yes" || { tail -20 /tmp/run.log; echo "check-deb: table_programmed=no"; }
  kill -9 $pid 2>/dev/null || true
  wait $pid 2>/dev/null || true
  echo "check-deb: tables_after_kill=$(nft list tables | tr "\n" " " | sed "s/ *$//")"
  apt-get remove -y -q vpnlb >/tmp/remove.log 2>&1 && echo "check-deb: remove=ok" || { tail -20 /tmp/remove.log; echo "check-deb: remove=failed"; }
  echo "check-deb: tables_after_remove=$(nft list tables | tr "\n" " " | sed "s/ *$//")"
  apt-get purge -y -q vpnlb >/tmp/purge.log 2>&1 && echo "check-deb: purge=ok" || { tail -20 /tmp/purge.log; echo "check-deb: purge=failed"; }
  echo "check-deb: user_after_purge=$(getent passwd vpnlb >/dev/null && echo present || echo absent) etc_after_purge=$(test -e /etc/vpnlb && echo present || echo absent)"
'
