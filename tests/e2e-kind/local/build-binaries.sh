#!/usr/bin/env bash
# Builds the local control plane's binaries (DESIGN §7) from their own Go modules at pinned versions
# into a versioned cache outside the repository. Idempotent: a binary already in the cache is kept.
#
#   KARS_CACHE   cache root (default ~/.cache/kars)
#
# Kubernetes' components only build from the k8s.io/kubernetes module through a wrapper module that
# replaces every staging module (k8s.io/api => ./staging/...) with its published v0.<minor>.<patch>
# (see PITFALLS.md "A real control plane without Docker"). CGO is off; the version is set through
# ldflags so that clients see v1.x.y, not v0.0.0.
set -euo pipefail

K8S_VERSION="${KARS_K8S_VERSION:-v1.36.3}"
ETCD_VERSION="${KARS_ETCD_VERSION:-v3.6.16}"
KWOK_VERSION="${KARS_KWOK_VERSION:-v0.8.0}"
CACHE="${KARS_CACHE:-$HOME/.cache/kars}"
K8S_BIN="$CACHE/bin/kubernetes-$K8S_VERSION"
ETCD_BIN="$CACHE/bin/etcd-$ETCD_VERSION"
KWOK_BIN="$CACHE/bin/kwok-$KWOK_VERSION"
export CGO_ENABLED=0 GOFLAGS=-buildvcs=false

log() { printf '[build-binaries] %s\n' "$*" >&2; }

build_etcd() {
  if [ -x "$ETCD_BIN/etcd" ]; then log "etcd $ETCD_VERSION cached"; return; fi
  local work; work=$(mktemp -d)
  log "building etcd $ETCD_VERSION"
  ( cd "$work" && go mod init kars.local/etcd-build >/dev/null 2>&1 &&
    go get "go.etcd.io/etcd/server/v3@$ETCD_VERSION" >/dev/null &&
    cat > main.go <<'GO'
package main

import "go.etcd.io/etcd/server/v3/etcdmain"
import "os"

func main() { etcdmain.Main(os.Args) }
GO
    go mod tidy >/dev/null &&
    mkdir -p "$ETCD_BIN.tmp" && go build -trimpath -o "$ETCD_BIN.tmp/etcd" . )
  mv "$ETCD_BIN.tmp" "$ETCD_BIN"
  rm -rf "$work"
}

build_kubernetes() {
  local want=(kube-apiserver kube-controller-manager kube-scheduler kubectl) missing=()
  for b in "${want[@]}"; do [ -x "$K8S_BIN/$b" ] || missing+=("$b"); done
  if [ ${#missing[@]} -eq 0 ]; then log "kubernetes $K8S_VERSION cached"; return; fi
  local minor patch stage work gomod
  minor=$(echo "$K8S_VERSION" | cut -d. -f2); patch=$(echo "$K8S_VERSION" | cut -d. -f3)
  stage="v0.$minor.$patch"
  work=$(mktemp -d)
  log "building ${missing[*]} $K8S_VERSION (staging modules at $stage)"
  go mod download "k8s.io/kubernetes@$K8S_VERSION"
  gomod=$(go mod download -json "k8s.io/kubernetes@$K8S_VERSION" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
  {
    echo "module kars.local/kubernetes-build"
    echo
    grep -E '^go [0-9]' "$gomod"
    echo
    echo "require k8s.io/kubernetes $K8S_VERSION"
    echo
    echo "replace ("
    sed -n 's#^\s*\(k8s.io/[a-z0-9-]*\) => ./staging/src/.*#\t\1 => \1 '"$stage"'#p' "$gomod"
    echo ")"
  } > "$work/go.mod"
  cat > "$work/tools.go" <<'GO'
//go:build tools

package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
GO
  ( cd "$work" && go mod tidy -e >/dev/null 2>"$work/tidy.log" || { cat "$work/tidy.log" >&2; exit 1; } )
  local ld="-s -w"
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ld="$ld -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
  done
  mkdir -p "$K8S_BIN"
  for b in "${missing[@]}"; do
    log "go build $b"
    ( cd "$work" && go build -trimpath -tags tools -ldflags "$ld" -o "$K8S_BIN/$b.tmp" "k8s.io/kubernetes/cmd/$b" )
    mv "$K8S_BIN/$b.tmp" "$K8S_BIN/$b"
  done
  rm -rf "$work"
}

# kwok (sigs.k8s.io/kwok) fakes a kubelet: a Node that turns Ready and pods that turn Running, so
# Deployments become available without a container runtime. Its stage definitions (the "fast" node
# and pod lifecycles) come from the same module and are copied beside the binary.
build_kwok() {
  if [ -x "$KWOK_BIN/kwok" ] && [ -d "$KWOK_BIN/stages" ]; then log "kwok $KWOK_VERSION cached"; return; fi
  local work; work=$(mktemp -d)
  log "building kwok $KWOK_VERSION"
  ( cd "$work" && go mod init kars.local/kwok-build >/dev/null 2>&1 &&
    go get "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION" >/dev/null 2>&1 &&
    mkdir -p "$KWOK_BIN.tmp/stages" &&
    go build -trimpath -ldflags "-s -w" -o "$KWOK_BIN.tmp/kwok" sigs.k8s.io/kwok/cmd/kwok )
  local mod; mod=$(cd "$work" && go list -m -f '{{.Dir}}' sigs.k8s.io/kwok)
  local st="$mod/kustomize/stage"
  cp "$st/node/fast/node-initialize.yaml" "$st/node/heartbeat-with-lease/node-heartbeat-with-lease.yaml" \
     "$st/pod/fast/pod-ready.yaml" "$st/pod/fast/pod-complete.yaml" "$st/pod/fast/pod-delete.yaml" "$KWOK_BIN.tmp/stages/"
  rm -rf "$KWOK_BIN"; mv "$KWOK_BIN.tmp" "$KWOK_BIN"
  rm -rf "$work"
}

build_etcd
build_kubernetes
build_kwok
log "done: $ETCD_BIN $K8S_BIN $KWOK_BIN"
