#!/usr/bin/env bash
# Installs runc, only when missing: tests/integration/seccomp-profile.spec.ts runs real programs in
# runc containers under manifests/seccomp/kars-strict.json (runc is the OCI runtime containerd and
# CRI-O start pods with, and it loads a Localhost seccomp profile the way a node does).
set -euo pipefail
if command -v runc >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "seccomp deps: runc missing and not root; install it with apt-get" >&2
  exit 1
fi
echo "seccomp deps: installing runc"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends runc
