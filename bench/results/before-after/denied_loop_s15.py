# session 15: the denied page searched N times in-process on a settled store (the C allocator A/B: run with and without LD_PRELOAD). Usage: PYTHONPATH=SRC python denied_loop_s15.py DATA_DIR N
import sys, time
from pathlib import Path
from margay.store.duckdb import DuckDBBackend
from margay.query.model import Query, SortKey
from margay.query.selector import parse_selector
from margay.logtypes import REGISTRY
from margay.bench.peers import DAY, CLUSTER
b = DuckDBBackend(Path(sys.argv[1]), compact_interval=3600)
sel = 'source_namespace = "shop" AND action = "deny"'
q = Query(REGISTRY["flows"], [CLUSTER], size=100, selector=parse_selector(sel), selector_text=sel,
          sort=[SortKey("end_time", True)], start=DAY[0], end=DAY[1], now=DAY[1])
b.search(q)
t = time.process_time()
for _ in range(int(sys.argv[2])):
    b.search(q)
print("ms/search", (time.process_time() - t) * 1000 / int(sys.argv[2]))
b.close()
