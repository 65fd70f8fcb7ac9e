#!/usr/bin/env bash
# Builds the rig's Splunk HEC receiver: an OpenTelemetry Collector made by the OpenTelemetry
# Collector Builder (ocb) from scripts/rig/hec/builder-config.yaml (splunkhecreceiver + fileexporter).
# Idempotent: installs the builder at a pinned version if absent, and rebuilds .rig/hec/otelcol-hec
# only when the manifest or the builder version changed (hash stamp in .rig/hec/otelcol-hec.stamp).
# Go's module and build caches stay at their defaults (GOPATH ~/go, ~/.cache/go-build).
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILDER_VERSION=v0.157.0
MANIFEST=scripts/rig/hec/builder-config.yaml
RIG=${MARGAY_RIG_DIR:-.rig}
OUT="$RIG/hec"
BIN="$OUT/otelcol-hec"
BUILDER="$OUT/bin/builder-$BUILDER_VERSION"
mkdir -p "$OUT/bin"
# One build at a time (make rig and a test's HecReceiver.start() may both call this script).
exec 9>"$OUT/.lock"
flock 9
# The generated module lives inside this git work tree; no VCS stamping (needs no git, never fails on it).
export GOFLAGS="${GOFLAGS:+$GOFLAGS }-buildvcs=false"

if ! command -v go >/dev/null 2>&1; then
  echo "hec: go is not on PATH; the HEC receiver is built with Go" >&2
  exit 1
fi

if [ -x "$BUILDER" ]; then
  echo "hec: builder $BUILDER_VERSION already installed ($BUILDER)"
else
  echo "hec: installing builder $BUILDER_VERSION (go install go.opentelemetry.io/collector/cmd/builder)"
  t0=$(date +%s)
  tmpbin=$(mktemp -d)
  GOBIN="$(cd "$tmpbin" && pwd)" go install "go.opentelemetry.io/collector/cmd/builder@$BUILDER_VERSION"
  mv "$tmpbin/builder" "$BUILDER"
  rmdir "$tmpbin"
  echo "hec: builder installed in $(( $(date +%s) - t0 ))s"
fi

stamp=$( { cat "$MANIFEST"; echo "builder=$BUILDER_VERSION"; go env GOVERSION; } | sha256sum | cut -d' ' -f1)
if [ -x "$BIN" ] && [ -f "$BIN.stamp" ] && [ "$(cat "$BIN.stamp")" = "$stamp" ]; then
  echo "hec: $BIN is up to date (manifest hash ${stamp:0:12})"
  exit 0
fi

echo "hec: building $BIN from $MANIFEST (this takes minutes on a cold Go cache)"
t0=$(date +%s)
rm -f "$BIN.stamp"
build_dir="$OUT/build"
sed "s#^\(  output_path:\).*#\1 $build_dir#" "$MANIFEST" > "$OUT/builder-config.yaml"
"$BUILDER" --config "$OUT/builder-config.yaml" > "$OUT/build.log" 2>&1 || {
  echo "hec: build failed; last lines of $OUT/build.log:" >&2
  tail -n 40 "$OUT/build.log" >&2
  exit 1
}
mv "$build_dir/otelcol-hec" "$BIN.tmp"
mv "$BIN.tmp" "$BIN"
echo "$stamp" > "$BIN.stamp"
echo "hec: built $BIN in $(( $(date +%s) - t0 ))s ($("$BIN" --version))"
