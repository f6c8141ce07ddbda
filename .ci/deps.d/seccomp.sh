#!/usr/bin/env bash
# Installs runc, only when missing: tests/integration/seccomp-profile.spec.ts runs real programs in
# runc containers under manifests/seccomp/kars-strict.json (runc is the OCI runtime containerd and
# CRI-O start pods with, and it loads a Localhost seccomp profile the way a node does).
set -euo pipefail
exec bash "$(dirname "$0")/../apt-install-missing.sh" "seccomp deps" runc
