#!/bin/sh
# The clean Debian 12 root that the fresh-machine check (scripts/fresh-machine-check.sh) and the
# Debian package check (packaging/deb/check-deb.sh) copy and work in: `debootstrap --variant=
# minbase bookworm` from the machine's Debian mirror, plus what a machine of this kind ships
# before any project runs: Node.js 20 with npm and its headers (copied from this machine, as the
# image carries them), python3, make and g++ (node-gyp's toolchain), ca-certificates, git.
# Built once into $VPNLB_FRESH_DIR/base (default /var/tmp/vpnlb-fresh/base); callers copy it
# and never change it. Prints the base's path. Needs root; reaches only the Debian mirror.
set -eu
WORK=${VPNLB_FRESH_DIR:-/var/tmp/vpnlb-fresh}
BASE=$WORK/base
if [ "$(id -u)" != "0" ]; then echo "fresh-root-base: needs root (debootstrap, chroot)" >&2; exit 2; fi
command -v debootstrap >/dev/null 2>&1 || { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends debootstrap; }
MIRROR=$(sed -n 's/^URIs: *\(http[^ ]*\/debian\)$/\1/p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -1)
MIRROR=${MIRROR:-http://deb.debian.org/debian}

mkdir -p "$WORK"
if [ ! -f "$BASE/.vpnlb-base-complete" ]; then
  echo "fresh-root-base: building the base root in $BASE (debootstrap bookworm from $MIRROR)" >&2
  rm -rf "$BASE"
  debootstrap --variant=minbase bookworm "$BASE" "$MIRROR" >"$WORK/debootstrap.log" 2>&1 || { tail -20 "$WORK/debootstrap.log" >&2; exit 1; }
  printf 'deb %s bookworm main\ndeb %s bookworm-updates main\ndeb %s-security bookworm-security main\n' "$MIRROR" "$MIRROR" "$MIRROR" >"$BASE/etc/apt/sources.list"
  cp /etc/resolv.conf "$BASE/etc/resolv.conf"
  chroot "$BASE" sh -c 'apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends ca-certificates python3 make g++ git procps' >>"$WORK/debootstrap.log" 2>&1 || { tail -20 "$WORK/debootstrap.log" >&2; exit 1; }
  # Node.js 20 as the machine image carries it (binary, npm, headers for node-gyp).
  cp "$(command -v node)" "$BASE/usr/bin/node"
  mkdir -p "$BASE/usr/lib/node_modules" "$BASE/usr/include"
  cp -a /usr/lib/node_modules/npm "$BASE/usr/lib/node_modules/npm"
  [ -d /usr/include/node ] && cp -a /usr/include/node "$BASE/usr/include/node"
  ln -sf ../lib/node_modules/npm/bin/npm-cli.js "$BASE/usr/bin/npm"
  ln -sf ../lib/node_modules/npm/bin/npx-cli.js "$BASE/usr/bin/npx"
  chroot "$BASE" apt-get clean
  touch "$BASE/.vpnlb-base-complete"
fi
echo "$BASE"
