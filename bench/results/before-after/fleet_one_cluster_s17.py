"""In-process server CPU-ms of one-cluster flow pages (100 hits) in a settled 1,000-cluster `fleet` store:

    python fleet_one_cluster_s17.py STORE/data RUNS
"""

import sys
import time
from pathlib import Path

from margay.bench.peers import DAY
from margay.logtypes import REGISTRY
from margay.query.model import Query, SortKey
from margay.query.selector import parse_selector
from margay.store.duckdb import DuckDBBackend

b = DuckDBBackend(Path(sys.argv[1]), compact_interval=3600)
out = []
for cluster, sel in (("fleet-0061", 'source_namespace = "monitoring" AND action = "allow"'), ("fleet-0398", None), ("fleet-0500", 'action = "deny"')):
    q = Query(REGISTRY["flows"], [cluster], size=100, selector=parse_selector(sel) if sel else None, selector_text=sel or "",
              sort=[SortKey("end_time", True)], start=DAY[0], end=DAY[1], now=DAY[1])
    r = b.search(q)
    t = time.process_time()
    for _ in range(int(sys.argv[2])):
        b.search(q)
    out.append((cluster, len(r.items), round((time.process_time() - t) * 1000 / int(sys.argv[2]), 2)))
print(out)
b.close()
