#!/bin/bash
# interleaved in-process A/B: OUT ROUNDS; codes: 959394d (its own store), base 4f0e45b and s10-aggs (one store written by c952543)
out=$1; rounds=$2
py=/work/wt-aggs/.venv/bin/python
ab=/work/wt-aggs/bench/results/before-after/read_cpu_ab2.py
for r in $(seq $rounds); do
  for spec in old:/tmp/old959/src:/tmp/aggs-s10/q959: base:/tmp/aggs-s10/base/src:/tmp/aggs-s10/q/data:/tmp/aggs-s10/p/data new:/work/wt-aggs/src:/tmp/aggs-s10/q/data:/tmp/aggs-s10/p/data; do
    IFS=: read label src q p <<< "$spec"
    l0=$(cut -d' ' -f1 /proc/loadavg)
    res=$(PYTHONPATH=$src $py $ab $q $p 2>/dev/null)
    g=$(PYTHONPATH=$src $py /work/wt-aggs/bench/results/before-after/graph_by_cluster_cpu.py $q $p 2>/dev/null)
    echo "{\"round\": $r, \"label\": \"$label\", \"load\": \"$l0\", \"r\": ${res:-null}, \"graph_by_cluster\": ${g:-null}}" >> $out
  done
done
