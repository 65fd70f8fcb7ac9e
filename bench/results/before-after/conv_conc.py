"""N conversions at once on cursors of one single-threaded DuckDB engine (as the ingest engine runs them)."""
import sys, os, json, tempfile, threading, duckdb
from datetime import UTC, datetime
from pathlib import Path
from margay.bench.data import flow_batches, topology
from margay.logtypes import REGISTRY
import margay.ingest.parse as P
n = int(sys.argv[1])
v = sys.argv[2] if len(sys.argv) > 2 else "default"
if v == "nolook":  # the look skipped, the batch taken as holding an undeclared key: the full plan (typed + raw read)
    P._UNKNOWN_KEYS = "SELECT 1 WHERE ? IS NOT NULL AND ? IS NOT NULL"
if v == "skiplook":  # the look skipped, the batch taken as clean: the lean plan (typed read only)
    P._UNKNOWN_KEYS = "SELECT 0 WHERE ? IS NOT NULL AND ? IS NOT NULL UNION ALL SELECT 0"
batches = list(flow_batches(topology(), 40_000))[:n]
def hwm():
    for l in open("/proc/self/status"):
        if l.startswith("VmHWM"): return int(l.split()[1]) / 1024
def rss():
    for l in open("/proc/self/status"):
        if l.startswith("VmRSS"): return int(l.split()[1]) / 1024
con = duckdb.connect(":memory:"); con.execute("SET threads = 1"); con.execute("SET TimeZone='UTC'")
lt = REGISTRY["flows"]
tmp = Path(tempfile.mkdtemp(dir="/tmp/mab"))
convs = []
for i in range(n):
    (tmp / str(i)).mkdir()
    convs.append(P.Converter(con.cursor, tmp / str(i), "zstd"))
convs[0].plan(lt) if hasattr(convs[0], "plan") else None
r0 = rss()
bar = threading.Barrier(n)
def go(i):
    bar.wait()
    convs[i].convert(lt, batches[i].body, cluster="c", now=datetime.now(UTC), seq_base=i * 100000)
ts = [threading.Thread(target=go, args=(i,)) for i in range(n)]
[t.start() for t in ts]; [t.join() for t in ts]
print(json.dumps({"src": os.environ["PYTHONPATH"], "v": v, "n": n, "rss0": round(r0, 1), "hwm_delta": round(hwm() - r0, 1)}))
