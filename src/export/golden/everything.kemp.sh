#!/bin/sh
# Progress Kemp LoadMaster (RESTful API): equivalent of the vpnlb configuration everything.yaml (services: ike6, ike-masq, sstp-reenc, sstp6).
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

# ---- IKEv2 service ike6: UDP 500 + 4500 on 2001:db8::1, port following between them ----
# nat: transparent — Transparent=1: RRAS sees each client's address; its replies must route back through the LoadMaster (default gateway).
# vpnlb monitor ping: every 10 s, timeout 1 s, down after 2 failures, up after 1 successes (global Check Parameters).
vs_ike6_500=$(vs_index "$(kemp addvs "vs=2001%3Adb8%3A%3A1&port=500&prot=udp&nickname=ike6-500&Transparent=1&Schedule=wrr&Persist=src&PersistTimeout=3600&Idletime=180&CheckType=icmp")")
kemp addrs "vs=$vs_ike6_500&rs=2001:db8:1::10&rsport=500&weight=3&limit=100"
kemp addrs "vs=$vs_ike6_500&rs=2001:db8:1::11&rsport=500&weight=1"
kemp modrs "vs=$vs_ike6_500&rs=2001:db8:1::11&rsport=500&enable=N"
vs_ike6_4500=$(vs_index "$(kemp addvs "vs=2001%3Adb8%3A%3A1&port=4500&prot=udp&nickname=ike6-4500&Transparent=1&Schedule=wrr&Persist=src&PersistTimeout=3600&Idletime=180&CheckType=icmp")")
kemp addrs "vs=$vs_ike6_4500&rs=2001:db8:1::10&rsport=4500&weight=3&limit=100"
kemp addrs "vs=$vs_ike6_4500&rs=2001:db8:1::11&rsport=4500&weight=1"
kemp modrs "vs=$vs_ike6_4500&rs=2001:db8:1::11&rsport=4500&enable=N"
kemp modvs "vs=$vs_ike6_500&FollowVSID=$vs_ike6_4500"
kemp modvs "vs=$vs_ike6_4500&FollowVSID=$vs_ike6_500"

# ---- IKEv2 service ike-masq: UDP 500 + 4500 on 198.19.0.2, port following between them ----
# nat: full — Transparent=0: every client reaches RRAS from the LoadMaster's address: raise IkeNumEstablishedForInitialQuery on RRAS (vpnlb rras) or expect error 809 under load.
# no equivalent: IKE-SPI affinity (clients behind one carrier-grade NAT spread by their IKE SPI; the LoadMaster persists on addresses); closest: source IP persistence with port following
# No monitor in vpnlb for ike-masq: CheckType=none.
vs_ike_masq_500=$(vs_index "$(kemp addvs "vs=198.19.0.2&port=500&prot=udp&nickname=ike-masq-500&Transparent=0&Schedule=lc&Persist=src&PersistTimeout=3600&Idletime=180&CheckType=none")")
kemp addrs "vs=$vs_ike_masq_500&rs=198.18.2.10&rsport=500&weight=2"
kemp addrs "vs=$vs_ike_masq_500&rs=198.18.2.11&rsport=500&weight=1&limit=50"
kemp modrs "vs=$vs_ike_masq_500&rs=198.18.2.11&rsport=500&enable=N"
vs_ike_masq_4500=$(vs_index "$(kemp addvs "vs=198.19.0.2&port=4500&prot=udp&nickname=ike-masq-4500&Transparent=0&Schedule=lc&Persist=src&PersistTimeout=3600&Idletime=180&CheckType=none")")
kemp addrs "vs=$vs_ike_masq_4500&rs=198.18.2.10&rsport=4500&weight=2"
kemp addrs "vs=$vs_ike_masq_4500&rs=198.18.2.11&rsport=4500&weight=1&limit=50"
kemp modrs "vs=$vs_ike_masq_4500&rs=198.18.2.11&rsport=4500&enable=N"
kemp modvs "vs=$vs_ike_masq_500&FollowVSID=$vs_ike_masq_4500"
kemp modvs "vs=$vs_ike_masq_4500&FollowVSID=$vs_ike_masq_500"

# ---- SSTP service sstp-reenc: TCP 443 on 198.19.0.2, reencrypt ----
# no equivalent: Maglev (65537-slot consistent hashing shared by every vpnlb node); closest: source IP hash scheduling (sh)
# Upload the front certificate and its key first, as one PEM: kemp addcert "cert=front" with the PEM as the request body (curl --data-binary @FILE).
# Re-encryption: RRAS must present the same certificate as the front (vpnlb refuses a server whose certificate differs; the LoadMaster does not check it).
# no equivalent: maxConnections 1000 for the whole service; closest: per-server limits only
# vpnlb monitor sstp-check: every 5 s, timeout 2 s, down after 3 failures, up after 2 successes (global Check Parameters).
# SSTP check: HEAD /sra_{BA195980-CD49-458b-9E23-C84EE0ADCD75}/ over TLS, up on 401 (RRAS answers 401, not 200).
vs_sstp_reenc_443=$(vs_index "$(kemp addvs "vs=198.19.0.2&port=443&prot=tcp&nickname=sstp-reenc&VSType=gen&Transparent=0&Schedule=sh&Idletime=900&SSLAcceleration=1&CertFile=front&SSLReencrypt=1&CheckType=https&CheckUrl=%2Fsra_%7BBA195980-CD49-458b-9E23-C84EE0ADCD75%7D%2F&CheckCodes=401&CheckUse1.1=1")")
kemp addrs "vs=$vs_sstp_reenc_443&rs=198.18.2.10&rsport=443&weight=2"
kemp addrs "vs=$vs_sstp_reenc_443&rs=198.18.2.11&rsport=443&weight=1&limit=50"
kemp modrs "vs=$vs_sstp_reenc_443&rs=198.18.2.11&rsport=443&enable=N"

# ---- SSTP service sstp6: TCP 443 on 2001:db8::1, passthrough ----
# vpnlb monitor tcp443: every 5 s, timeout 2 s, down after 3 failures, up after 2 successes (global Check Parameters).
vs_sstp6_443=$(vs_index "$(kemp addvs "vs=2001%3Adb8%3A%3A1&port=443&prot=tcp&nickname=sstp6&VSType=gen&Transparent=0&Schedule=wrr&Idletime=900&Persist=src&PersistTimeout=3600&CheckType=tcp&CheckPort=443")")
kemp addrs "vs=$vs_sstp6_443&rs=2001:db8:1::10&rsport=443&weight=3&limit=100"
kemp addrs "vs=$vs_sstp6_443&rs=2001:db8:1::11&rsport=443&weight=1"
kemp modrs "vs=$vs_sstp6_443&rs=2001:db8:1::11&rsport=443&enable=N"
