#!/bin/sh
# fleet_ingest_ab.py, main (BEFORE's src, a `git archive` with its extensions built) and this branch taking turns:
# before 10, before 1,000, after 10, after 1,000, ROUNDS times; one JSON line per run into OUT.
#   sh bench/results/before-after/fleet_ingest_ab_dns.sh BEFORE_SRC AFTER_SRC OUT [ROUNDS] [FLOWS]
set -e
before=$1 after=$2 out=$3 rounds=${4:-2} flows=${5:-1000000}
py=/work/main/.venv/bin/python
here=$(dirname "$0")
for round in $(seq 1 "$rounds"); do
  for side in before after; do
    src=$before; [ "$side" = after ] && src=$after
    for clusters in 10 1000; do
      work=$(mktemp -d /tmp/fleet-ab-XXXXXX)
      line=$(PYTHONPATH=$src $py "$here/fleet_ingest_ab.py" "$work" "$clusters" "$flows" | tail -n 1)
      echo "{\"side\":\"$side\",\"round\":$round,\"clusters\":$clusters,\"result\":$line}" >> "$out"
      rm -rf "$work"
    done
  done
done
