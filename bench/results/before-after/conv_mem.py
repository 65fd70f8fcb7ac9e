import json
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import duckdb

import margay.ingest.parse as P
from margay.bench.data import flow_batches, topology
from margay.logtypes import REGISTRY

variant = sys.argv[1]
b = next(iter(flow_batches(topology(), 10_000)))
def hwm():
    for l in open("/proc/self/status"):
        if l.startswith("VmHWM"): return int(l.split()[1]) / 1024
def rss():
    for l in open("/proc/self/status"):
        if l.startswith("VmRSS"): return int(l.split()[1]) / 1024
con = duckdb.connect(":memory:"); con.execute("SET threads = 1"); con.execute("SET TimeZone='UTC'")
lt = REGISTRY["flows"]
with tempfile.TemporaryDirectory(dir="/tmp/mab") as tmp:
    conv = P.Converter(con.cursor, Path(tmp), "zstd")
    if variant == "nolook":  # as if the batch held an undeclared key: the full plan, no look
        P._UNKNOWN_KEYS = "SELECT 1 WHERE ? IS NOT NULL AND ? IS NOT NULL"
    if variant == "lookonly":
        src = Path(tmp) / "x.ndjson"; src.write_bytes(b.body)
        r0 = rss(); h0 = hwm()
        con.cursor().execute(P._UNKNOWN_KEYS, [str(src), conv.plan(lt).own]).fetchall()
        print(json.dumps({"variant": variant, "rss0": round(r0,1), "hwm_delta": round(hwm()-r0,1)})); sys.exit()
    # warm the plan and DuckDB, then measure one conversion
    r0 = rss()
    res = conv.convert(lt, b.body, cluster="c", now=datetime.now(UTC), seq_base=0)
    print(json.dumps({"variant": variant, "lines": b.records, "bytes": len(b.body), "rss0": round(r0,1), "hwm_delta": round(hwm()-r0,1), "plan_lean_raw": getattr(conv.plan(lt), "lean_raw", None)}))
