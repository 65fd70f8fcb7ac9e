#!/bin/bash
# Interleaved A/B over HTTP (branch s14-stmt): main 9704b68 (`git archive` at /tmp/before-stmt, its extensions built
# there) against this worktree, fleet_ingest_ab.py at FLOWS flows, 10 and 1,000 clusters, sides taking turns.
# Usage: bench/results/before-after/stmt_ingest_ab.sh OUT.jsonl [FLOWS [FIRST_REP]]
cd /work/wt-stmt
OUT=$1; FLOWS=${2:-1000000}
run() { side=$1; rep=$2; n=$3
  if [ $side = before ]; then P=/tmp/before-stmt/src; else P=/work/wt-stmt/src; fi
  W=/tmp/s14/ab/$side-$rep-$n; rm -rf $W; mkdir -p $W
  start=$(date -u +%H:%M:%S); load=$(cut -d' ' -f1 /proc/loadavg)
  line=$(PYTHONPATH=$P /work/main/.venv/bin/python bench/results/before-after/fleet_ingest_ab.py $W $n $FLOWS 2>>/tmp/s14/ab.err | tail -1)
  echo "{\"side\": \"$side\", \"rep\": $rep, \"started\": \"$start\", \"load_at_start\": $load, \"load_at_end\": $(cut -d' ' -f1 /proc/loadavg), \"run\": $line}" >> $OUT
  rm -rf $W
}
REP0=${3:-0}; REP1=$((REP0 + 1))
run before $REP0 10; run after $REP0 10; run before $REP0 1000; run after $REP0 1000
run after $REP1 10; run before $REP1 10; run after $REP1 1000; run before $REP1 1000
