#!/usr/bin/env bash
# Builds VictoriaLogs (the bench's log-store peer) from the Go module proxy into <rig>/victorialogs/.
# Idempotent: rebuilds only when the pinned version or the Go version changed (hash stamp beside the binary).
# About 2 minutes on a cold Go cache on this machine; Go's caches stay at their defaults.
set -euo pipefail
cd "$(dirname "$0")/../.."
VERSION=v1.52.1
RIG=${MARGAY_RIG_DIR:-.rig}
OUT="$RIG/victorialogs"
BIN="$OUT/victoria-logs"
mkdir -p "$OUT"
exec 9>"$OUT/.lock"
flock 9
if ! command -v go >/dev/null 2>&1; then
  echo "victorialogs: go is not on PATH; VictoriaLogs is built with Go" >&2
  exit 1
fi
stamp=$( { echo "$VERSION"; go env GOVERSION; } | sha256sum | cut -d' ' -f1)
if [ -x "$BIN" ] && [ -f "$BIN.stamp" ] && [ "$(cat "$BIN.stamp")" = "$stamp" ]; then
  echo "victorialogs: $BIN is up to date ($VERSION)"
  exit 0
fi
echo "victorialogs: building $VERSION (go install; minutes on a cold Go cache)"
t0=$(date +%s)
tmpbin=$(mktemp -d)
GOBIN="$(cd "$tmpbin" && pwd)" GOFLAGS="-buildvcs=false" \
  go install "github.com/VictoriaMetrics/VictoriaLogs/app/victoria-logs@$VERSION" > "$OUT/build.log" 2>&1 || {
  echo "victorialogs: build failed; last lines of $OUT/build.log:" >&2
  tail -n 40 "$OUT/build.log" >&2
  exit 1
}
mv "$tmpbin/victoria-logs" "$BIN.tmp"
rmdir "$tmpbin"
mv "$BIN.tmp" "$BIN"
echo "$stamp" > "$BIN.stamp"
echo "victorialogs: built $BIN in $(( $(date +%s) - t0 ))s"
