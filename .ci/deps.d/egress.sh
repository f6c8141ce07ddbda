#!/usr/bin/env bash
# Installs the Debian packages the egress tests (tests/integration/egress-*.spec.ts) need, only when
# missing: iproute2 (ip netns, veth), iptables (iptables + ip6tables, nft backend), dnsmasq (the
# "internet" namespace's DNS server), util-linux (setpriv, to run as UID 1000/1001), openssl (test TLS
# certificates), procps (sysctl inside the namespaces), curl (the agent-side client).
# (bench:egress installs Squid itself; it is not needed by the tests.)
set -euo pipefail
exec bash "$(dirname "$0")/../apt-install-missing.sh" "egress deps" iproute2 iptables dnsmasq-base util-linux procps curl openssl
