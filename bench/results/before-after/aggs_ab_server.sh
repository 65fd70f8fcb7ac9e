#!/bin/bash
# server-side A/B, alternating codes, each on a fresh copy of its store: OUT ROUNDS
out=$1; rounds=$2
py=/work/wt-aggs/.venv/bin/python
pab=/work/wt-aggs/bench/results/before-after/peers_ab.py
for r in $(seq $rounds); do
  for spec in base:/tmp/aggs-s10/base/src new:/work/wt-aggs/src; do
    label=${spec%%:*}; src=${spec#*:}
    d=/tmp/aggs-s10/run-p-$label; rm -rf $d; cp -a /tmp/aggs-s10/p $d
    echo "{\"round\": $r, \"label\": \"$label\", \"what\": \"peers\", \"load\": \"$(cut -d' ' -f1 /proc/loadavg)\", \"r\": $(PYTHONPATH=$src $py $pab measure $d $src 3 2>/dev/null || echo null)}" >> $out
    echo "{\"round\": $r, \"label\": \"$label\", \"what\": \"graph_req_peers\", \"load\": \"$(cut -d' ' -f1 /proc/loadavg)\", \"r\": $(PYTHONPATH=/work/wt-aggs/src $py /work/wt-aggs/bench/results/before-after/graph_request_ab.py $d $src 2 2>/dev/null || echo null)}" >> $out
    rm -rf $d
  done
  for spec in old:/tmp/old959/src:q959w base:/tmp/aggs-s10/base/src:q new:/work/wt-aggs/src:q; do
    IFS=: read label src w <<< "$spec"
    d=/tmp/aggs-s10/run-q-$label; rm -rf $d; cp -a /tmp/aggs-s10/$w $d
    echo "{\"round\": $r, \"label\": \"$label\", \"what\": \"graph_req_query\", \"load\": \"$(cut -d' ' -f1 /proc/loadavg)\", \"r\": $(PYTHONPATH=/work/wt-aggs/src $py /work/wt-aggs/bench/results/before-after/graph_request_ab.py $d $src 2 2>/dev/null || echo null)}" >> $out
    rm -rf $d
  done
done
