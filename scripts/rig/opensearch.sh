#!/usr/bin/env bash
# Builds the rig's OpenSearch 2.19 launcher (tests/rig/opensearch) from Maven Central jars.
#
# Output, read by src/margay/rig/opensearch.py:
#   $RIG_DIR/opensearch/classpath.txt  the whole java -cp (module classes first, then the jars in ~/.m2)
#   $RIG_DIR/opensearch/build.sha256   hash of the module's sources; the build is skipped while it matches
# RIG_DIR is $MARGAY_RIG_DIR or <repo>/.rig. Maven writes its classes under tests/rig/opensearch/target/.
# Idempotent and safe to run concurrently (flock); a cached run takes well under a second.
set -euo pipefail
cd "$(dirname "$0")/../.."
repo=$(pwd)
module="$repo/tests/rig/opensearch"
out="${MARGAY_RIG_DIR:-$repo/.rig}/opensearch"
mkdir -p "$out"

if ! command -v java >/dev/null || ! command -v mvn >/dev/null; then
  echo "rig: opensearch: apt-get install openjdk-17-jdk-headless maven"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends openjdk-17-jdk-headless maven >/dev/null
fi

exec 9>"$out/.lock"
flock 9

# Everything that changes the build: the pom, the Java source, the log4j config, and the JDK.
hash=$( (cd "$module" && find pom.xml src -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum
         java -version 2>&1) | sha256sum | cut -d' ' -f1)

cached() {
  [ -f "$out/build.sha256" ] && [ "$(cat "$out/build.sha256")" = "$hash" ] && [ -s "$out/classpath.txt" ] || return 1
  local entry
  IFS=: read -r -a entries < "$out/classpath.txt"
  for entry in "${entries[@]}"; do [ -e "$entry" ] || return 1; done  # e.g. ~/.m2 or target/ wiped
}

if cached; then
  echo "rig: opensearch: launcher up to date ($out/classpath.txt)"
  exit 0
fi

echo "rig: opensearch: building the launcher with Maven (first time: downloads ~90 MB into ~/.m2)"
rm -f "$out/build.sha256"
if ! mvn -B -q -Dstyle.color=never -f "$module/pom.xml" clean package dependency:build-classpath \
     -Dmdep.outputFile="$module/target/dependency-classpath.txt" > "$out/build.log" 2>&1; then
  cat "$out/build.log" >&2
  echo "rig: opensearch: Maven build failed (log: $out/build.log)" >&2
  exit 1
fi
printf '%s:%s\n' "$module/target/classes" "$(cat "$module/target/dependency-classpath.txt")" > "$out/classpath.txt.tmp"
mv "$out/classpath.txt.tmp" "$out/classpath.txt"
echo "$hash" > "$out/build.sha256"
echo "rig: opensearch: launcher built ($out/classpath.txt)"
