#!/usr/bin/env bash
# Builds the sandbox binaries from Go modules into a cache outside the repo, keyed by
# versions and go.sum content, so that a second run is a no-op.
#   sandbox/build.sh [all|kustomize|sops]    prints the bin directory on its last line.
#   sandbox/build.sh kustomize VERSION  builds that kustomize release (v5.x, as the Go module
#                                       proxy has it) into <cache>/kustomize/VERSION/, for a
#                                       stack that pins it (stack.yaml `kustomize:`); prints
#                                       the binary's path on its last line.
# `sops` (for SOPS files whose keys are not age, and for the tests that encrypt with the
# real program) is cached apart, under tools/sops/, so that it never changes the sandbox key.
#   sandbox/build.sh actionlint         the GitHub Actions linter the pipeline tests use, an
#                                       optional tool cached apart (tests skip without it);
#                                       prints its path on its last line.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=versions.env
. "$here/versions.env"
what="${1:-all}"
pinned="${2:-}"

if ! command -v go >/dev/null 2>&1; then
  echo "error: the Go toolchain (1.26 or newer) is needed to build the sandbox binaries;" \
       "install it (Debian: apt-get install golang, or from your distribution) and run 'make sandbox' again." >&2
  exit 2
fi

cache_root="${STACKCTL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/stackctl}"

if [ "$what" = kustomize ] && [ -n "$pinned" ]; then
  if ! [[ "$pinned" =~ ^v5\.[0-9]+\.[0-9]+$ ]]; then
    echo "error: '$pinned' is not a kustomize v5 release (vMAJOR.MINOR.PATCH, e.g. v5.5.0);" \
         "list them with 'go list -m -versions sigs.k8s.io/kustomize/kustomize/v5'." >&2
    exit 2
  fi
  dest="$cache_root/kustomize/$pinned"
  if [ -x "$dest/kustomize" ]; then
    echo "cached: kustomize $pinned" >&2
  else
    echo "building: kustomize $pinned (go install from the module proxy)" >&2
    mkdir -p "$dest"
    tmp="$(mktemp -d "$dest/.build.XXXXXX")"
    (cd "$tmp" && GOFLAGS=-trimpath GOTOOLCHAIN=local CGO_ENABLED=0 GOBIN="$tmp" \
      go install -ldflags "-s -w -X sigs.k8s.io/kustomize/api/provenance.version=kustomize/$pinned" \
      "sigs.k8s.io/kustomize/kustomize/v5@$pinned")
    mv "$tmp/kustomize" "$dest/kustomize" && rm -rf "$tmp"
  fi
  echo "$dest/kustomize"
  exit 0
fi
export GOFLAGS="-mod=mod -trimpath" GOTOOLCHAIN=local CGO_ENABLED=0

if [ "$what" = sops ]; then
  sdigest="$(cat "$here"/sops/go.sum "$here"/sops/go.mod | sha256sum | cut -c1-12)"
  skey="sops-${SOPS_VERSION}_${sdigest}"
  sbin="$cache_root/tools/sops/$skey/bin"
  if [ -x "$sbin/sops" ]; then
    echo "cached: sops" >&2
  else
    echo "building: sops (github.com/getsops/sops/v3/cmd/sops)" >&2
    start=$SECONDS
    mkdir -p "$sbin"
    tmp="$(mktemp -d "$sbin/.build.XXXXXX")"
    (cd "$here/sops" && go build -ldflags "-s -w" -o "$tmp/" github.com/getsops/sops/v3/cmd/sops)
    mv "$tmp/sops" "$sbin/" && rmdir "$tmp"
    echo "built: sops in $((SECONDS - start)) s" >&2
  fi
  ln -sfn "$skey" "$cache_root/tools/sops/current"
  echo "$sbin"
  exit 0
fi

if [ "$what" = actionlint ]; then
  # Keyed by its own go.sum: a new actionlint never rebuilds the control plane.
  tool_dir="$cache_root/tools/actionlint-$(cat "$here"/actionlint/go.sum "$here"/actionlint/go.mod | sha256sum | cut -c1-12)"
  if [ -x "$tool_dir/actionlint" ]; then
    echo "cached: actionlint" >&2
  else
    echo "building: actionlint" >&2
    mkdir -p "$tool_dir"
    tmp="$(mktemp -d "$tool_dir/.build.XXXXXX")"
    (cd "$here/actionlint" && go build -ldflags "-s -w" -o "$tmp/" github.com/rhysd/actionlint/cmd/actionlint)
    mv "$tmp/actionlint" "$tool_dir/" && rmdir "$tmp"
  fi
  ln -sfn "$(basename "$tool_dir")" "$cache_root/tools/actionlint-current"
  echo "$tool_dir/actionlint"
  exit 0
fi
digest="$(cat "$here"/kube/go.sum "$here"/kube/go.mod "$here"/kube/cmd/etcd/main.go \
  "$here"/kwok/go.sum "$here"/kustomize/go.sum | sha256sum | cut -c1-12)"
key="k8s-${K8S_VERSION}_etcd-${ETCD_VERSION}_kwok-${KWOK_VERSION}_kustomize-${KUSTOMIZE_VERSION}_${digest}"
bin="$cache_root/sandbox/$key/bin"
mkdir -p "$bin"

binname() { # the file go build writes for a package: its last element, skipping a /vN suffix
  local b; b="$(basename "$1")"
  if [[ "$b" =~ ^v[0-9]+$ ]]; then b="$(basename "$(dirname "$1")")"; fi
  echo "$b"
}

build() { # build NAME DIR LDFLAGS PKG...
  local name="$1" dir="$2" ldflags="$3"; shift 3
  local missing=0
  for p in "$@"; do [ -x "$bin/$(binname "$p")" ] || missing=1; done
  [ "$missing" = 0 ] && { echo "cached: $name" >&2; return; }
  echo "building: $name ($*)" >&2
  local start=$SECONDS tmp
  tmp="$(mktemp -d "$bin/.build.XXXXXX")"
  (cd "$here/$dir" && go build -ldflags "-s -w $ldflags" -o "$tmp/" "$@")
  mv "$tmp"/* "$bin/" && rmdir "$tmp"
  echo "built: $name in $((SECONDS - start)) s" >&2
}

kver() { # ldflags that make the components report their real version, as hack/lib/version.sh does
  local v="$K8S_VERSION" major minor
  major="${v#v}"; major="${major%%.*}"; minor="${v#v*.}"; minor="${minor%%.*}"
  local f=""
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    f+=" -X $pkg.gitVersion=$v -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean"
  done
  echo "$f"
}

build kustomize kustomize "-X sigs.k8s.io/kustomize/api/provenance.version=kustomize/$KUSTOMIZE_VERSION" \
  sigs.k8s.io/kustomize/kustomize/v5
if [ "$what" = all ]; then
  build kwok kwok "-X sigs.k8s.io/kwok/pkg/consts.Version=$KWOK_VERSION" sigs.k8s.io/kwok/cmd/kwok
  build etcd kube "" ./cmd/etcd
  build kubernetes kube "$(kver)" k8s.io/kubernetes/cmd/kube-apiserver \
    k8s.io/kubernetes/cmd/kube-controller-manager k8s.io/kubernetes/cmd/kube-scheduler
fi
# The pointer stackctl reads to find the build (STACKCTL_SANDBOX_BIN overrides it).
ln -sfn "$key" "$cache_root/sandbox/current"
echo "$bin"
