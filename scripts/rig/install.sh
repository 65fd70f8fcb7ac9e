#!/usr/bin/env bash
# Installs and builds every real peer the tests and benchmarks start (make rig).
# Each component script is idempotent and caches its build under .rig/, so a second run is quick.
set -euo pipefail
cd "$(dirname "$0")/../.."
mkdir -p .rig
apt_needed=()
# gcc: ingest's C parsers; libtcmalloc-minimal4: the server's allocator (src/margay/allocator.py)
for pkg in rsyslog rsyslog-gnutls rsyslog-elasticsearch chromium openssl gcc python3-dev libtcmalloc-minimal4; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || apt_needed+=("$pkg")
done
if [ ${#apt_needed[@]} -gt 0 ]; then
  echo "rig: apt-get install ${apt_needed[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${apt_needed[@]}" >/dev/null
fi
for component in opensearch hec kube victorialogs; do
  if [ -f "scripts/rig/$component.sh" ]; then
    start=$(date +%s)
    bash "scripts/rig/$component.sh"
    echo "rig: $component ready in $(( $(date +%s) - start ))s"
  fi
done
