#!/usr/bin/env bash
# apt-install-missing.sh WHO PACKAGE...: installs the Debian packages not installed yet, with one
# `apt-get update` only when something is missing; WHO names the caller in messages. Needs root then.
set -euo pipefail
who=$1
shift
need=()
for pkg in "$@"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || need+=("$pkg")
done
[ "${#need[@]}" -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "$who: missing ${need[*]} and not root; install them with apt-get" >&2
  exit 1
fi
echo "$who: installing ${need[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${need[@]}"
