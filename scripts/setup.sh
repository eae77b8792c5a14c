#!/bin/sh
# Installs what vpnlb needs on a fresh Debian 12 machine, idempotently:
#  - the npm packages (from the lockfile), and the build;
#  - with --peers (as root): the Debian packages the integration tests use as real peers
#    (nftables, conntrack, strongSwan, sstp-client...).
set -eu
cd "$(dirname "$0")/.."

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "setup: installing npm packages (npm ci)"
  npm ci --no-audit --no-fund
fi

if [ "${1:-}" = "--peers" ]; then
  # Every binary and plugin the integration tests and `vpnlb lab` use, by package (with
  # --no-install-recommends nothing arrives unnamed: libstrongswan-standard-plugins carries the
  # openssl plugin the lab's AES-GCM proposals need; lab/strongswan/charon.ts checks each plugin).
  # chromium: the dashboard's browser tests (playwright-core drives it; no browser download).
  # nginx, libnginx-mod-stream and haproxy check what `vpnlb export` writes (export-syntax test).
  # debootstrap, binutils and lintian: the Debian package's test (build, lint, install into a
  # clean root: packaging/deb/); util-linux's setpriv: the least-privilege lab; systemd's
  # systemd-notify and python3: the readiness test (systemd is installed, never booted).
  # bird2: `vpnlb bgp start` and the ECMP lab's upstream router (test/integration/ecmp.test.ts).
  # gcc, make, libc6-dev, linux-libc-dev (linux/bpf.h): the native addons below, which the
  # integration tests use (the XDP shedding test needs native/xdp-shed).
  PACKAGES="gcc make libc6-dev linux-libc-dev nftables conntrack iproute2 iputils-ping openssl procps util-linux
    strongswan-charon strongswan-swanctl strongswan-pki libstrongswan libstrongswan-standard-plugins
    libstrongswan-extra-plugins libcharon-extra-plugins sstp-client ppp
    nginx libnginx-mod-stream haproxy keepalived conntrackd
    debootstrap binutils lintian systemd python3 chromium bird2"
  missing=""
  for p in $PACKAGES; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
  done
  if [ -n "$missing" ]; then
    if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
      echo "setup: installing Debian packages:$missing"
      apt-get update -q
      DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $missing
    else
      echo "setup: not root (or no apt-get): integration tests that need$missing will be skipped"
    fi
  fi
fi

# The userspace relay's optional native fast path (native/udp-fastpath, node-gyp with the local
# Node headers). A failed build is not fatal: the relay then forwards in JavaScript and says so.
if [ "${VPNLB_RELAY_FASTPATH:-1}" != "0" ]; then
  echo "setup: building the relay's native fast path"
  sh native/build.sh udp-fastpath || echo "setup: continuing without it (the relay forwards in JavaScript)"
fi

# The SSTP proxy's optional native splice path (native/tcp-splice, same build). Not fatal either:
# established passthrough tunnels then stay Node pipes, said once in the proxy's status warnings.
if [ "${VPNLB_SSTP_SPLICE:-1}" != "0" ]; then
  echo "setup: building the SSTP proxy's native splice path"
  sh native/build.sh tcp-splice || echo "setup: continuing without it (SSTP tunnels stay Node pipes)"
fi

# The kernel plane's optional native counter reader (native/nft-counters, same build): one netlink
# dump of the counter objects instead of `nft -j list counters`, which fetches every set element
# (about 0.7 s of CPU per 65537-slot map, per table, per poll). Not fatal: nft answers without it.
if [ "${VPNLB_NFT_COUNTERS_NATIVE:-1}" != "0" ]; then
  echo "setup: building the kernel plane's native counter reader"
  sh native/build.sh nft-counters || echo "setup: continuing without it (counters are read with nft)"
fi

# The relay's optional XDP flood shedding (native/xdp-shed, same build; the eBPF program is
# assembled in C, no BPF compiler). Not fatal: `kernelShed: xdp` then sheds with nftables.
if [ "${VPNLB_XDP_SHED:-1}" != "0" ]; then
  echo "setup: building the relay's XDP flood shedding"
  sh native/build.sh xdp-shed || echo "setup: continuing without it (kernelShed: xdp falls back to nftables)"
fi

echo "setup: building"
npm run --silent build
