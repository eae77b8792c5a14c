#!/bin/sh
# Builds one of vpnlb's optional native addons with the node-gyp that ships with npm, against
# the Node headers already on this machine — never a download:
#   sh native/build.sh udp-fastpath   the userspace relay's fast path (udp_fastpath.node)
#   sh native/build.sh tcp-splice     the SSTP proxy's splice path (tcp_splice.node)
#   sh native/build.sh nft-counters   the kernel plane's counter reader (nft_counters.node)
#   sh native/build.sh xdp-shed       the relay's XDP flood shedding (xdp_shed.node)
# Exit status 0: built or up to date; otherwise the reason is printed, and the data plane works
# without it (the relay forwards in JavaScript, SSTP tunnels stay Node pipes, counters are read
# with `nft -j list counters`, `kernelShed: xdp` sheds with nftables).
# Called by scripts/setup.sh; `--force` rebuilds after changing the C sources.
set -eu
ADDON=${1:?usage: native/build.sh udp-fastpath|tcp-splice|nft-counters|xdp-shed [--force]}
FORCE=${2:-}
case "$ADDON" in
  udp-fastpath) MODULE=udp_fastpath ;;
  tcp-splice) MODULE=tcp_splice ;;
  nft-counters) MODULE=nft_counters ;;
  xdp-shed) MODULE=xdp_shed ;;
  *) echo "native/build.sh: unknown addon $ADDON" >&2; exit 2 ;;
esac
cd "$(dirname "$0")/$ADDON"

fail() {
  echo "native $ADDON: not built: $*" >&2
  exit 1
}

[ "$(uname -s)" = "Linux" ] || fail "needs Linux (epoll, recvmmsg/sendmmsg, splice, netlink)"

# Up to date (built after the last change of its sources, by this Node): nothing to do.
OUT=build/Release/$MODULE.node
if [ "$FORCE" != "--force" ] && [ -f "$OUT" ] && [ -f build/node-version ] && \
   [ "$(cat build/node-version)" = "$(node -v)" ] && \
   [ -z "$(find . ../common -maxdepth 1 \( -name '*.c' -o -name '*.h' -o -name binding.gyp \) -newer "$OUT")" ]; then
  echo "native $ADDON: up to date ($OUT)"
  exit 0
fi
command -v node >/dev/null 2>&1 || fail "node not found"

# node-gyp: a local devDependency if there is one, else the copy inside npm itself.
NODE_GYP=""
NPM_BIN=$(command -v npm 2>/dev/null || true)
for candidate in \
  ../../node_modules/node-gyp/bin/node-gyp.js \
  "${NPM_BIN:+$(dirname "$(readlink -f "$NPM_BIN")")/../node_modules/node-gyp/bin/node-gyp.js}" \
  "$(npm root -g 2>/dev/null || true)/npm/node_modules/node-gyp/bin/node-gyp.js"; do
  if [ -n "$candidate" ] && [ -f "$candidate" ]; then NODE_GYP=$candidate; break; fi
done
[ -n "$NODE_GYP" ] || fail "node-gyp not found (neither in node_modules nor inside npm)"

# Headers: npm's nodedir if configured, else the prefix of the running node (include/node/).
NODEDIR=$(npm config get nodedir 2>/dev/null || true)
case "$NODEDIR" in "" | undefined | null) NODEDIR=$(node -p "require('path').resolve(process.execPath, '..', '..')") ;; esac
[ -f "$NODEDIR/include/node/node_api.h" ] || fail "no Node headers under $NODEDIR/include/node (install the nodejs headers, or set npm's nodedir)"

command -v python3 >/dev/null 2>&1 || fail "python3 not found (node-gyp needs it)"
command -v make >/dev/null 2>&1 || fail "make not found"
command -v cc >/dev/null 2>&1 || command -v gcc >/dev/null 2>&1 || fail "no C compiler"

if ! out=$(node "$NODE_GYP" rebuild --nodedir="$NODEDIR" --loglevel=warn 2>&1); then
  echo "$out" | tail -20 >&2
  fail "node-gyp failed (output above)"
fi
[ -f "$OUT" ] || fail "node-gyp produced no $OUT"
# Load it once: a module that builds but cannot load is as good as none.
node -e "require('./$OUT')" || fail "the module does not load"
node -v > build/node-version
echo "native $ADDON: built native/$ADDON/$OUT"
