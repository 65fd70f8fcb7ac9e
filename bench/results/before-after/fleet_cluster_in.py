"""The flow graph's statement (store/duckdb/graph.py, over roll-ups) in-process, with and without the cluster
condition every all-cluster read carries, over the flows roll-ups a fleet run left at 1,000 clusters.

Usage: .venv/bin/python bench/results/before-after/fleet_cluster_in.py /tmp/f2fullw/fleet-1000 1000"""
import glob, resource, sys, time

import duckdb

from margay.store.duckdb.graph import graph_sql


def cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


files = glob.glob(f"{sys.argv[1]}/data/store/flows/**/*.rollup-*.parquet", recursive=True)
n = int(sys.argv[2])
names = [f"fleet-{i:04d}" for i in range(1, n + 1)]
con = duckdb.connect()
for label, where, wp in (("no cluster condition", "TRUE", []),
                         (f"IN ({n} parameters)", '"cluster" IN (' + ",".join("?" * n) + ")", names),
                         ("list_contains(?, cluster)", 'list_contains(?::VARCHAR[], "cluster")', [names]),
                         ("cluster IN (SELECT unnest(?))", '"cluster" IN (SELECT unnest(?::VARCHAR[]))', [names])):
    sql = graph_sql(f"FROM read_parquet(?) AS t WHERE {where}", False, rolled=True)
    params = [files] + wp + [[], [], [], 200, 200, 200]
    rows = con.execute(sql, params).fetchall()
    c0, w0 = cpu(), time.perf_counter()
    for _ in range(10):
        con.execute(sql, params).fetchall()
    print(f"{label}: {len(rows)} edges, {(cpu() - c0) * 100:.1f} CPU-ms, {(time.perf_counter() - w0) * 100:.1f} ms")
