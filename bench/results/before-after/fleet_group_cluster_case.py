"""The group statement's cluster column (issue 25 item 2, branch s12-fleet): a list of one cluster per record
(`(?::VARCHAR[])[ordinality]`, as ingest/parse.py's grouped plans do) against a CASE over each batch's last
ordinal (two placeholders per batch), thread CPU of the whole COPY (Python list included), 12 turns each, and
whether both write the same rows. The fleet's quick-sized flow batches at 1,000 clusters (fleet_fixed_ab.py's
cache in /tmp/fleet-fixed-ab/).

Usage: .venv/bin/python bench/results/before-after/fleet_group_cluster_case.py"""
import time, shutil, pickle
from datetime import datetime, UTC
from pathlib import Path
from margay.logtypes import REGISTRY
from margay.ingest.parse import _READ, _READ_TYPED, plan_for
from margay.ingest.output import sql_path
from margay.store.duckdb.engine import connect
lt = REGISTRY["flows"]; plan = plan_for(lt)
batches = [b for b in pickle.load(open("/tmp/fleet-fixed-ab/batches-1000.pkl", "rb")) if b.log_type == "flows"]
d = Path("/tmp/fleet-group-cluster-case"); shutil.rmtree(d, ignore_errors=True); d.mkdir()
con = connect(); con.execute("SET threads = 1"); cur = con.cursor()
now = datetime.now(UTC)
read = _READ if plan.lean_raw else _READ_TYPED
def inp(k):
    bs = batches[:k]
    counts = [sum(1 for l in b.body.split(b"\n") if l.strip()) for b in bs]
    src = d / f"in{k}.ndjson"; src.write_bytes(b"\n".join(b.body for b in bs))
    return bs, counts, src
def listed(bs, counts, src, out):
    t = time.thread_time()
    clusters = []
    for b, n in zip(bs, counts): clusters.extend([b.cluster] * n)
    params = [clusters, now, 0, str(src), plan.columns] + ([str(src)] if read is _READ else [])
    cur.execute(f"COPY (SELECT {plan.grouped_lean} FROM {read}) TO {sql_path(out)} (FORMAT parquet, COMPRESSION snappy)", params).fetchall()
    return time.thread_time() - t
def cased(bs, counts, src, out):
    t = time.thread_time()
    whens, ps, end = [], [], 0
    for b, n in zip(bs, counts):
        end += n; whens.append("WHEN ordinality <= ? THEN ?"); ps += [end, b.cluster]
    expr = "CASE " + " ".join(whens) + " END"
    sel = plan.grouped_lean.replace("(?::VARCHAR[])[ordinality]", "(" + expr + ")::VARCHAR")
    params = ps + [now, 0, str(src), plan.columns] + ([str(src)] if read is _READ else [])
    cur.execute(f"COPY (SELECT {sel} FROM {read}) TO {sql_path(out)} (FORMAT parquet, COMPRESSION snappy)", params).fetchall()
    return time.thread_time() - t
for k in (23, 31, 64):
    g = inp(k)
    for f in (listed, cased) * 1: f(*g, d / f"{f.__name__}.parquet")
    res = {"listed": [], "cased": []}
    for _ in range(12):
        for f in (listed, cased):
            res[f.__name__].append(f(*g, d / f"{f.__name__}.parquet"))
    n = sum(g[1])
    for name, xs in res.items():
        xs.sort(); print(k, n, name, f"median {xs[len(xs)//2]*1000:.2f} ms = {xs[len(xs)//2]/n*1e6:.2f} us/rec, min {xs[0]*1000:.2f}")
    a = con.execute(f"SELECT * FROM read_parquet({sql_path(d / 'listed.parquet')}) ORDER BY _seq").fetchall()
    b = con.execute(f"SELECT * FROM read_parquet({sql_path(d / 'cased.parquet')}) ORDER BY _seq").fetchall()
    print("same rows", a == b)
    print(con.execute(f"SELECT name, type FROM parquet_schema({sql_path(d / 'cased.parquet')}) WHERE name='cluster'").fetchall(), con.execute(f"SELECT name, type FROM parquet_schema({sql_path(d / 'listed.parquet')}) WHERE name='cluster'").fetchall())
