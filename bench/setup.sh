#!/bin/sh
# Installs what `npm run bench` needs when it is missing (Debian 12): nginx with the stream
# module, HAProxy, iperf3 (cross-check of the TCP generator), gcc (builds bench/c), openssl
# (s_time handshake client, certificates), nftables. Runs `apt-get update` at most once.
set -eu
need=""
command -v nginx >/dev/null 2>&1 || need="$need nginx"
[ -e /usr/lib/nginx/modules/ngx_stream_module.so ] || [ -e /usr/share/nginx/modules-available/mod-stream.conf ] || need="$need libnginx-mod-stream"
command -v haproxy >/dev/null 2>&1 || need="$need haproxy"
command -v iperf3 >/dev/null 2>&1 || need="$need iperf3"
command -v gcc >/dev/null 2>&1 || need="$need gcc libc6-dev"
command -v openssl >/dev/null 2>&1 || need="$need openssl"
command -v nft >/dev/null 2>&1 || need="$need nftables"
command -v taskset >/dev/null 2>&1 || need="$need util-linux"
if [ -n "$need" ]; then
  echo "bench/setup.sh: installing:$need" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  # shellcheck disable=SC2086
  apt-get install -y -qq --no-install-recommends $need >&2
fi
# The Debian nginx package starts a system nginx on :80; the bench runs its own instances in
# namespaces and never needs that one, but leaves it as the package left it.
echo "bench/setup.sh: ok" >&2
