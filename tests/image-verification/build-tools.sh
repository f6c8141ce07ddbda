#!/usr/bin/env bash
# Builds the image-verification test tools from their own Go modules at pinned versions into the
# versioned cache outside the repository (DESIGN §7), idempotently:
#   cosign (github.com/sigstore/cosign/v3): signs test images, and verifies what we sign (interop);
#   crane  (github.com/google/go-containerregistry): pushes test images to a loopback registry without
#          Docker, and `crane registry serve` is that registry (OCI 1.1, with the referrers API).
#   KARS_CACHE   cache root (default ~/.cache/kars)
set -euo pipefail

COSIGN_VERSION="${KARS_COSIGN_VERSION:-v3.1.3}"
CRANE_VERSION="${KARS_CRANE_VERSION:-v0.22.1}"
CACHE="${KARS_CACHE:-$HOME/.cache/kars}"
COSIGN_BIN="$CACHE/bin/cosign-$COSIGN_VERSION"
CRANE_BIN="$CACHE/bin/crane-$CRANE_VERSION"
export CGO_ENABLED=0 GOFLAGS=-buildvcs=false

log() { printf '[image-verification tools] %s\n' "$*" >&2; }

# build NAME MODULE_PATH PACKAGE VERSION OUT_DIR (the module path names what is pinned; the package is fetched at that version)
build() {
  local name=$1 module=$2 pkg=$3 version=$4 out=$5
  if [ -x "$out/$name" ]; then log "$name $version cached"; return; fi
  local work; work=$(mktemp -d)
  log "building $name $version (several minutes on 2 cores, once)"
  ( cd "$work" && go mod init "kars.local/$name-build" >/dev/null 2>&1 &&
    go get "$pkg@$version" >/dev/null 2>&1 &&
    mkdir -p "$out.tmp" &&
    go build -trimpath -ldflags "-s -w" -o "$out.tmp/$name" "$pkg" )
  rm -rf "$out"; mv "$out.tmp" "$out"
  rm -rf "$work"
}

build crane github.com/google/go-containerregistry "github.com/google/go-containerregistry/cmd/crane" "$CRANE_VERSION" "$CRANE_BIN"
build cosign github.com/sigstore/cosign/v3 "github.com/sigstore/cosign/v3/cmd/cosign" "$COSIGN_VERSION" "$COSIGN_BIN"
log "done: $CRANE_BIN $COSIGN_BIN"
