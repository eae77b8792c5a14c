#!/bin/sh
# The fresh-machine check: runs the README's two commands in a clean Debian 12 root, the way a
# new user (and CI on a new machine) would, so that an install step that only works because this
# machine already has a package cannot hide (DESIGN §4 lists the peers; scripts/setup.sh must
# install every one of them).
#
#   sudo sh scripts/fresh-machine-check.sh            # check the committed HEAD
#   sudo sh scripts/fresh-machine-check.sh --keep     # keep the root afterwards for a look
#
# What it does (besides the machine's network set-up: its certificate authorities and npm's
# global settings, copied in as every machine of this kind has them):
#  1. Once, into $VPNLB_FRESH_DIR/base (default /var/tmp/vpnlb-fresh), by scripts/fresh-root-base.sh
#     (which packaging/deb/check-deb.sh shares): `debootstrap bookworm`
#     from the machine's Debian mirror, then what a machine of this kind ships before any
#     project runs: Node.js 20 with npm and its headers (copied from this machine, as the
#     image carries them), python3, make and g++ (node-gyp's toolchain), ca-certificates.
#     Nothing of vpnlb's own peers (strongSwan, nftables, sstp-client, ...) is put there.
#  2. Each run: a copy of that base, a fresh `git clone` of this checkout's HEAD into it, and
#     inside it (chroot, private mount namespace with /proc, /sys, /dev, /run):
#       npm run --silent demo -- --duration 10 --json     (the README's first command, bounded)
#       VPNLB_REQUIRE_INTEGRATION=1 npm test              (the README's second, as CI runs it)
#  3. Prints both results, removes the copy (unless --keep) and exits non-zero on a failure.
# It reaches only the Debian mirror and the npm registry.
set -eu
REPO=$(cd "$(dirname "$0")/.." && pwd)
WORK=${VPNLB_FRESH_DIR:-/var/tmp/vpnlb-fresh}
BASE=$WORK/base
KEEP=0
[ "${1:-}" = "--keep" ] && KEEP=1

if [ "$(id -u)" != "0" ]; then echo "fresh-machine-check: needs root (debootstrap, chroot, namespaces)" >&2; exit 2; fi
VPNLB_FRESH_DIR=$WORK sh "$REPO/scripts/fresh-root-base.sh" >/dev/null

ROOT=$WORK/root-$(date +%s)-$$
echo "fresh-machine-check: copying the base to $ROOT"
cp -a "$BASE" "$ROOT"
cp /etc/resolv.conf "$ROOT/etc/resolv.conf"
# The machine's own network set-up, which every machine of this kind has before any project runs:
# the certificate authorities its registries are reached through, and npm's global settings.
if ls /usr/local/share/ca-certificates/*.crt >/dev/null 2>&1; then
  mkdir -p "$ROOT/usr/local/share/ca-certificates"
  cp /usr/local/share/ca-certificates/*.crt "$ROOT/usr/local/share/ca-certificates/"
  chroot "$ROOT" update-ca-certificates >/dev/null 2>&1 || true
fi
for f in /etc/npmrc /usr/etc/npmrc; do [ -f "$f" ] && mkdir -p "$ROOT$(dirname "$f")" && cp "$f" "$ROOT$f"; done
mkdir -p "$ROOT/work"
git clone -q "$REPO" "$ROOT/work/vpnlb"
git -C "$ROOT/work/vpnlb" log --oneline -1

cleanup() {
  if [ "$KEEP" = "1" ]; then echo "fresh-machine-check: kept $ROOT"; else rm -rf "$ROOT"; fi
}
trap cleanup EXIT

# A private mount namespace: every mount below (and those the tests make) ends with it.
set +e
unshare --mount --propagation private sh -eu -c '
  R="$1"
  # The root must be a mount point: `ip netns exec` makes / a slave mount (mount --make-rslave /).
  mount --bind "$R" "$R"
  mount -t proc proc "$R/proc"
  mount -t sysfs sysfs "$R/sys"
  mount --rbind /dev "$R/dev"
  mount -t tmpfs tmpfs "$R/run"
  mount -t tmpfs tmpfs "$R/tmp"
  chroot "$R" /usr/bin/env -i HOME=/root PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 CI=true NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt sh -c "
    cd /work/vpnlb
    echo \"fresh-machine-check: npm run demo\"
    npm run --silent demo -- --duration 10 --json >/tmp/demo.json 2>/tmp/demo.err; echo \$? >/tmp/demo.rc
    tail -c 2000 /tmp/demo.json; echo; echo \"demo exit: \$(cat /tmp/demo.rc)\"
    echo \"fresh-machine-check: npm test (VPNLB_REQUIRE_INTEGRATION=1)\"
    VPNLB_REQUIRE_INTEGRATION=1 npm test >/tmp/test.log 2>&1; echo \$? >/tmp/test.rc
    grep -E \"^# (tests|suites|pass|fail|cancelled|skipped|todo|duration_ms)\" /tmp/test.log
    grep -E \"^not ok|^# skipping\" /tmp/test.log | head -40
    echo \"test exit: \$(cat /tmp/test.rc)\"
    cp /tmp/test.log /tmp/demo.json /tmp/demo.err /work/ 2>/dev/null || true
    [ \$(cat /tmp/demo.rc) = 0 ] && [ \$(cat /tmp/test.rc) = 0 ]
  "
' sh "$ROOT"
rc=$?
set -e
if [ "$rc" = 0 ]; then echo "fresh-machine-check: PASSED (both README commands on a clean Debian 12 root)"; else echo "fresh-machine-check: FAILED (logs: $ROOT/work/test.log, demo.json, demo.err; rerun with --keep to inspect)"; fi
exit "$rc"
