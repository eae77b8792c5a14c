#!/bin/sh
# Progress Kemp LoadMaster (RESTful API): equivalent of the vpnlb configuration ha-pair.yaml (services: aovpn, aovpn6).
# Written by `vpnlb export`; review it before use (names, certificates, the balancer's own addresses).
# Syntax from:
#   docs.progress.com: LoadMaster RESTful API Programmer Guide (addvs, modvs, listvs, addrs, modrs),
#     Web User Interface guide (Real Servers; HTTP or HTTPS Protocol Health Checking)
#   directaccess.richardhicks.com: Always On VPN IKEv2 Load Balancing with KEMP LoadMaster (port following)
#
# Run: LM=https://<LoadMaster management address> KEMP_AUTH=<API user>:<password> sh <this file>
# Health check interval, timeout and retries are global on a LoadMaster (Rules & Checking >
# Check Parameters), not per virtual service: set them there from the monitors noted below.
set -eu
: "${LM:?set LM to the LoadMaster management URL}"
: "${KEMP_AUTH:?set KEMP_AUTH to user:password of a LoadMaster API user}"

# kemp COMMAND QUERY: one API call; stops the script unless the LoadMaster answers code="ok".
# -k: the management certificate is self-signed by default (use --cacert FILE for a trusted one);
# -g: the SSTP check URL contains braces, which curl would otherwise read as a URL pattern.
kemp() {
  response=$(curl -fsS -g -k -u "$KEMP_AUTH" "$LM/access/$1?$2")
  case "$response" in
    *'code="ok"'*) printf '%s\n' "$response" ;;
    *) printf 'LoadMaster refused %s: %s\n' "$1" "$response" >&2; exit 1 ;;
  esac
}
# vs_index: the <Index> of the virtual service an addvs call answered with.
vs_index() { printf '%s' "$1" | sed -n 's:.*<Index>\([0-9]*\)</Index>.*:\1:p' | head -n 1; }

# ---- IKEv2 service aovpn: UDP 500 + 4500 on 198.19.0.1, port following between them ----
# nat: transparent — Transparent=1: RRAS sees each client's address; its replies must route back through the LoadMaster (default gateway).
# no equivalent: IKE-SPI affinity (clients behind one carrier-grade NAT spread by their IKE SPI; the LoadMaster persists on addresses); closest: source IP persistence with port following
# vpnlb monitor ike: every 5 s, timeout 2 s, down after 3 failures, up after 2 successes (global Check Parameters).
# no equivalent: the stateless IKEv2 probe (an IKE_SA_INIT the server answers, leaving no SA); closest: ICMP, as the Always On VPN guides use: it proves the host, not IKEEXT
# no equivalent: Maglev (65537-slot consistent hashing shared by every vpnlb node); closest: source IP hash scheduling (sh)
vs_aovpn_500=$(vs_index "$(kemp addvs "vs=198.19.0.1&port=500&prot=udp&nickname=aovpn-500&Transparent=1&Schedule=sh&Persist=src&PersistTimeout=3600&Idletime=180&CheckType=icmp")")
kemp addrs "vs=$vs_aovpn_500&rs=198.18.1.10&rsport=500&weight=1"
kemp addrs "vs=$vs_aovpn_500&rs=198.18.1.11&rsport=500&weight=1"
vs_aovpn_4500=$(vs_index "$(kemp addvs "vs=198.19.0.1&port=4500&prot=udp&nickname=aovpn-4500&Transparent=1&Schedule=sh&Persist=src&PersistTimeout=3600&Idletime=180&CheckType=icmp")")
kemp addrs "vs=$vs_aovpn_4500&rs=198.18.1.10&rsport=4500&weight=1"
kemp addrs "vs=$vs_aovpn_4500&rs=198.18.1.11&rsport=4500&weight=1"
kemp modvs "vs=$vs_aovpn_500&FollowVSID=$vs_aovpn_4500"
kemp modvs "vs=$vs_aovpn_4500&FollowVSID=$vs_aovpn_500"

# ---- IKEv2 service aovpn6: UDP 500 + 4500 on 2001:db8:ffff::1, port following between them ----
# nat: transparent — Transparent=1: RRAS sees each client's address; its replies must route back through the LoadMaster (default gateway).
# no equivalent: IKE-SPI affinity (clients behind one carrier-grade NAT spread by their IKE SPI; the LoadMaster persists on addresses); closest: source IP persistence with port following
# vpnlb monitor ike: every 5 s, timeout 2 s, down after 3 failures, up after 2 successes (global Check Parameters).
# no equivalent: the stateless IKEv2 probe (an IKE_SA_INIT the server answers, leaving no SA); closest: ICMP, as the Always On VPN guides use: it proves the host, not IKEEXT
# no equivalent: Maglev (65537-slot consistent hashing shared by every vpnlb node); closest: source IP hash scheduling (sh)
vs_aovpn6_500=$(vs_index "$(kemp addvs "vs=2001%3Adb8%3Affff%3A%3A1&port=500&prot=udp&nickname=aovpn6-500&Transparent=1&Schedule=sh&Persist=src&PersistTimeout=3600&Idletime=180&CheckType=icmp")")
kemp addrs "vs=$vs_aovpn6_500&rs=2001:db8:b::10&rsport=500&weight=1"
kemp addrs "vs=$vs_aovpn6_500&rs=2001:db8:b::11&rsport=500&weight=1"
vs_aovpn6_4500=$(vs_index "$(kemp addvs "vs=2001%3Adb8%3Affff%3A%3A1&port=4500&prot=udp&nickname=aovpn6-4500&Transparent=1&Schedule=sh&Persist=src&PersistTimeout=3600&Idletime=180&CheckType=icmp")")
kemp addrs "vs=$vs_aovpn6_4500&rs=2001:db8:b::10&rsport=4500&weight=1"
kemp addrs "vs=$vs_aovpn6_4500&rs=2001:db8:b::11&rsport=4500&weight=1"
kemp modvs "vs=$vs_aovpn6_500&FollowVSID=$vs_aovpn6_4500"
kemp modvs "vs=$vs_aovpn6_4500&FollowVSID=$vs_aovpn6_500"
