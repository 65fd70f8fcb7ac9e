#!/usr/bin/env bash
# Builds the rig's Kubernetes peer: kube-apiserver (k8s.io/kubernetes v1.36.3) and etcd (v3.6.8), from the Go
# module proxy, using the wrapper module in tests/rig/kube (its go.mod says why it exists).
#
# Output, read by src/margay/rig/kube.py:
#   $RIG_DIR/kube/bin/kube-apiserver, $RIG_DIR/kube/bin/etcd
#   $RIG_DIR/kube/build.sha256   hash of the module files and the Go version; the build is skipped while it matches
# RIG_DIR is $MARGAY_RIG_DIR or <repo>/.rig. Cold: ~7 min and ~2 GiB of Go build cache; cached: well under 1 s.
# Idempotent and safe to run concurrently (flock).
set -euo pipefail
cd "$(dirname "$0")/../.."
repo=$(pwd)
module="$repo/tests/rig/kube"
out="${MARGAY_RIG_DIR:-$repo/.rig}/kube"
mkdir -p "$out/bin"

go=$(command -v go || true)
[ -n "$go" ] || { [ -x /usr/local/go/bin/go ] && go=/usr/local/go/bin/go; }
if [ -z "$go" ]; then
  echo "rig: kube: go is not on PATH; kube-apiserver is built with Go >= 1.26 (https://go.dev/dl)" >&2
  exit 1
fi

exec 9>"$out/.lock"
flock 9

hash=$( (cd "$module" && sha256sum go.mod go.sum tools.go; sha256sum "$repo/scripts/rig/kube.sh"; "$go" version) \
        | sha256sum | cut -d' ' -f1)
# /version answers what the wrapper requires (a module build is not stamped like a release build).
version=$(awk '$1 == "k8s.io/kubernetes" {print $2}' "$module/go.mod")
minor=$(echo "$version" | cut -d. -f2)
stamp="-X k8s.io/component-base/version.gitVersion=$version -X k8s.io/component-base/version.gitMajor=1"
stamp="$stamp -X k8s.io/component-base/version.gitMinor=$minor -X k8s.io/component-base/version.gitTreeState=clean"
if [ -f "$out/build.sha256" ] && [ "$(cat "$out/build.sha256")" = "$hash" ] \
   && [ -x "$out/bin/kube-apiserver" ] && [ -x "$out/bin/etcd" ]; then
  echo "rig: kube: kube-apiserver and etcd up to date ($out/bin)"
  exit 0
fi

echo "rig: kube: building kube-apiserver and etcd with $("$go" version | cut -d' ' -f3) (first time: ~7 min)"
rm -f "$out/build.sha256"
if ! (cd "$module" && GOFLAGS=-mod=readonly CGO_ENABLED=0 \
        "$go" build -trimpath -ldflags="-s -w $stamp" -o "$out/bin/kube-apiserver.tmp" k8s.io/kubernetes/cmd/kube-apiserver \
     && GOFLAGS=-mod=readonly CGO_ENABLED=0 \
        "$go" build -trimpath -ldflags='-s -w' -o "$out/bin/etcd.tmp" go.etcd.io/etcd/server/v3) \
     > "$out/build.log" 2>&1; then
  cat "$out/build.log" >&2
  echo "rig: kube: Go build failed (log: $out/build.log)" >&2
  exit 1
fi
mv "$out/bin/kube-apiserver.tmp" "$out/bin/kube-apiserver"
mv "$out/bin/etcd.tmp" "$out/bin/etcd"
echo "$hash" > "$out/build.sha256"
echo "rig: kube: built ($out/bin)"
