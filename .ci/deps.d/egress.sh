#!/usr/bin/env bash
# Installs the Debian packages the egress tests (tests/integration/egress-*.spec.ts) need, only when
# missing: iproute2 (ip netns, veth), iptables (iptables + ip6tables, nft backend), dnsmasq (the
# "internet" namespace's DNS server), util-linux (setpriv, to run as UID 1000/1001), openssl (test TLS
# certificates), procps (sysctl inside the namespaces), curl (the agent-side client).
# `apt-get update` runs at most once, and only if something is missing. (bench:egress installs Squid
# itself; it is not needed by the tests.)
set -euo pipefail
need=()
have() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
for pkg in iproute2 iptables dnsmasq-base util-linux procps curl openssl; do
  have "$pkg" || need+=("$pkg")
done
if [ "${#need[@]}" -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "egress deps: missing ${need[*]} and not root; install them with apt-get" >&2
  exit 1
fi
echo "egress deps: installing ${need[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${need[@]}"
