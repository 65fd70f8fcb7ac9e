#!/bin/bash
# Interleaved A/B: base (4216e3d at /tmp/fleet-main) against s12-fleet d1e50bb (/tmp/fleet-after), both detached worktrees with the same-source scanner build, fleet_ingest_ab.py at FLOWS flows.
cd /work/wt-fleet
FLOWS=500000
OUT=/tmp/fleet-s12/ab.jsonl
run() { side=$1; rep=$2; n=$3
  if [ $side = before ]; then P=/tmp/fleet-main/src; else P=/tmp/fleet-after/src; fi
  W=/tmp/fleet-s12/ab/$side-$rep; rm -rf $W; mkdir -p $W
  start=$(date -u +%H:%M:%S); load=$(cut -d' ' -f1 /proc/loadavg)
  line=$(PYTHONPATH=$P .venv/bin/python bench/results/before-after/fleet_ingest_ab.py $W $n $FLOWS 2>>/tmp/fleet-s12/ab.err | tail -1)
  echo "{\"side\": \"$side\", \"rep\": $rep, \"started\": \"$start\", \"load_at_start\": $load, \"load_at_end\": $(cut -d' ' -f1 /proc/loadavg), \"run\": $line}" >> $OUT
  rm -rf $W
}
run before 0 10; run after 0 10; run before 0 1000; run after 0 1000
run after 1 10; run before 1 10; run after 1 1000; run before 1 1000
echo done >> /tmp/fleet-s12/ab.done
# s12-fleet then ran two more 1,000-cluster pairs the same way (the same run() above):
#   run before 2 1000; run after 2 1000      (21:35)
#   run after 3 1000; run before 3 1000      (21:40)
#   run after 3 10                            (21:46, the 10-cluster denominator at the quietest load)
