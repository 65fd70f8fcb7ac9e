#!/bin/bash
# Interleaved server CPU per request (cpu_per_query.py measure, 30 runs x 2 sub-rounds): 959394d / main / this
# branch, each `margay serve` over a fresh copy of its store (q959: 959394d's own; qmain: written and settled by main).
# Usage: dnstop_ab_server.sh OUT.jsonl ROUNDS
out=$1; rounds=$2
py=/work/wt-dns/.venv/bin/python
for r in $(seq $rounds); do
  for spec in old:/tmp/old959/src:q959 main:/tmp/dns-w/mainsrc:qmain new:/work/wt-dns/src:qmain; do
    IFS=: read label src w <<< "$spec"
    d=/tmp/dns-w/run-$label; rm -rf $d; mkdir -p $d; cp -a /tmp/dns-w/$w/data $d/data; cp /tmp/dns-w/$w/margay.yaml $d/
    res=$(cd /work/wt-dns/bench/results/before-after && PYTHONPATH=/work/wt-dns/src $py -c "
import json, sys
from pathlib import Path
sys.argv = ['x']
import cpu_per_query as c
print(json.dumps(c.measure(Path('$d'), Path('$src'), runs=30, rounds=2)))" 2>>/tmp/dns-w/ab.err || echo null)
    echo "{\"round\": $r, \"label\": \"$label\", \"src\": \"$src\", \"load\": \"$(cut -d' ' -f1 /proc/loadavg)\", \"r\": $res}" >> $out
    rm -rf $d
  done
done
