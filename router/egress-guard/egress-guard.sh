#!/bin/sh
# kars egress-guard: the sandbox pod's first init container (DESIGN §2). Installs iptables and ip6tables
# rules in the pod's network namespace so that the agent (UID 1000) can talk only to loopback and to
# the cluster DNS service; its TCP 80/443 is redirected into the router's egress proxy (127.0.0.1:8444
# / [::1]:8444), which decides per host. The router (UID 1001) is not restricted here.
#
# Runs as root with NET_ADMIN + NET_RAW only. Idempotent: our rules live in dedicated chains
# (KARS-EGRESS in filter, KARS-EGRESS-NAT in nat) that are flushed and refilled, and the jump from
# OUTPUT is added once. Fails loudly: any command that fails stops the script with a message naming
# the rule, and the pod does not start (an init container that exits non-zero blocks the pod).
#
# Environment:
#   KARS_DNS_SERVERS   space-separated cluster DNS service addresses (IPv4 and/or IPv6) that UID 1000
#                      may reach on udp/tcp 53. Required: without it, no DNS is allowed (fail closed)
#                      unless KARS_DNS_SERVERS=none is given explicitly.
#   KARS_AGENT_UID     default 1000
#   KARS_PROXY_PORT    default 8444
#   KARS_IPV6          auto (default: IPv6 rules if the kernel has IPv6), required, off
set -eu

AGENT_UID="${KARS_AGENT_UID:-1000}"
PROXY_PORT="${KARS_PROXY_PORT:-8444}"
DNS_SERVERS="${KARS_DNS_SERVERS:-}"
IPV6_MODE="${KARS_IPV6:-auto}"
CHAIN=KARS-EGRESS
NAT_CHAIN=KARS-EGRESS-NAT

log() { echo "egress-guard: $*" >&2; }
die() { log "FATAL: $*"; exit 1; }

case "$AGENT_UID" in ''|*[!0-9]*) die "KARS_AGENT_UID must be a number, got '$AGENT_UID'";; esac
case "$PROXY_PORT" in ''|*[!0-9]*) die "KARS_PROXY_PORT must be a number, got '$PROXY_PORT'";; esac
[ -n "$DNS_SERVERS" ] || die "KARS_DNS_SERVERS is empty: set the cluster DNS service address(es), or 'none' to allow no DNS"
[ "$DNS_SERVERS" = "none" ] && DNS_SERVERS=""

# run TOOL ARGS...: runs one iptables command, dying with the command line if it fails.
run() {
  if ! out=$("$@" 2>&1); then
    die "rule failed: $* -> $out"
  fi
}

v4_dns=""
v6_dns=""
for addr in $DNS_SERVERS; do
  # Literal addresses only: iptables would resolve a name through DNS, which must never happen here.
  case "$addr" in
    *[!0-9a-fA-F:.]*) die "KARS_DNS_SERVERS entry '$addr' is not an IPv4 or IPv6 address" ;;
    *:*) v6_dns="$v6_dns $addr" ;;
    *[!0-9.]*) die "KARS_DNS_SERVERS entry '$addr' is not an IPv4 or IPv6 address" ;;
    *.*.*.*) v4_dns="$v4_dns $addr" ;;
    *) die "KARS_DNS_SERVERS entry '$addr' is not an IPv4 or IPv6 address" ;;
  esac
done

# install TOOL LOOPBACK DNS...: the same rule set for one address family.
install_family() {
  tool=$1
  loopback=$2
  shift 2
  command -v "$tool" >/dev/null 2>&1 || die "$tool not found"
  # filter: our chain, jumped to from OUTPUT for the agent's packets only.
  "$tool" -w -t filter -N "$CHAIN" >/dev/null 2>&1 || true
  run "$tool" -w -t filter -F "$CHAIN"
  run "$tool" -w -t filter -A "$CHAIN" -o lo -j ACCEPT
  # A connection redirected by the nat rules below is re-routed to loopback, but the filter hook still
  # sees the original output interface (the pod's eth0), so "-o lo" does not match it. Accept exactly
  # those: destination the proxy on loopback, and conntrack confirms our DNAT made it so.
  run "$tool" -w -t filter -A "$CHAIN" -d "$loopback" -p tcp --dport "$PROXY_PORT" -m conntrack --ctstate DNAT -j ACCEPT
  for dns in "$@"; do
    run "$tool" -w -t filter -A "$CHAIN" -d "$dns" -p udp --dport 53 -j ACCEPT
    run "$tool" -w -t filter -A "$CHAIN" -d "$dns" -p tcp --dport 53 -j ACCEPT
  done
  run "$tool" -w -t filter -A "$CHAIN" -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT
  run "$tool" -w -t filter -A "$CHAIN" -j DROP
  if ! "$tool" -w -t filter -C OUTPUT -m owner --uid-owner "$AGENT_UID" -j "$CHAIN" >/dev/null 2>&1; then
    run "$tool" -w -t filter -I OUTPUT 1 -m owner --uid-owner "$AGENT_UID" -j "$CHAIN"
  fi
  # nat: the agent's TCP 80/443 leaving the pod goes to the egress proxy instead.
  "$tool" -w -t nat -N "$NAT_CHAIN" >/dev/null 2>&1 || true
  run "$tool" -w -t nat -F "$NAT_CHAIN"
  run "$tool" -w -t nat -A "$NAT_CHAIN" -p tcp --dport 80 -j REDIRECT --to-ports "$PROXY_PORT"
  run "$tool" -w -t nat -A "$NAT_CHAIN" -p tcp --dport 443 -j REDIRECT --to-ports "$PROXY_PORT"
  if ! "$tool" -w -t nat -C OUTPUT -m owner --uid-owner "$AGENT_UID" ! -o lo -j "$NAT_CHAIN" >/dev/null 2>&1; then
    run "$tool" -w -t nat -I OUTPUT 1 -m owner --uid-owner "$AGENT_UID" ! -o lo -j "$NAT_CHAIN"
  fi
  log "$tool: installed (agent uid $AGENT_UID, proxy port $PROXY_PORT, dns:${*:- none}, loopback $loopback)"
}

# shellcheck disable=SC2086 # word splitting of the address lists is intended
install_family iptables 127.0.0.1 $v4_dns

ipv6_present=no
[ -e /proc/net/if_inet6 ] && ipv6_present=yes
case "$IPV6_MODE" in
  off)
    [ -z "$v6_dns" ] || die "KARS_IPV6=off but IPv6 DNS servers were given:$v6_dns"
    if [ "$ipv6_present" = yes ]; then
      die "KARS_IPV6=off but the kernel has IPv6: refusing to leave IPv6 unfiltered"
    fi
    ;;
  auto|required)
    if [ "$ipv6_present" = yes ]; then
      # shellcheck disable=SC2086
      install_family ip6tables ::1 $v6_dns
    elif [ "$IPV6_MODE" = required ]; then
      die "KARS_IPV6=required but the kernel has no IPv6"
    else
      log "no IPv6 in this kernel; ip6tables rules not needed"
    fi
    ;;
  *) die "KARS_IPV6 must be auto, required or off, got '$IPV6_MODE'" ;;
esac
log "done"
