# session 15 (issue 21): the search page with nested all-NULL columns rendered as constants (new) or decoded (old), in-process on a settled 2 M-flow store; /tmp/s15/files_old.py = main's store/duckdb/files.py with an absolute import. Usage: PYTHONPATH=SRC python nulls_nested_inproc_s15.py DATA_DIR [ROUNDS]
"""In-process A/B: a search page's CPU with the nested all-NULL columns as constants (new) or decoded (old)."""
import importlib.util, statistics, sys, time
from pathlib import Path
from margay.store.duckdb import DuckDBBackend
from margay.store.duckdb import reader as R
from margay.query.model import Query, SortKey
from margay.query.selector import parse_selector
from margay.logtypes import REGISTRY
from margay.bench.peers import DAY, CLUSTER
spec = importlib.util.spec_from_file_location("files_old", "/tmp/s15/files_old.py"); old = importlib.util.module_from_spec(spec); spec.loader.exec_module(old)
new_fn = R._null_columns
b = DuckDBBackend(Path(sys.argv[1]), compact_interval=3600)
FLOWS = REGISTRY["flows"]
sel = 'source_namespace = "shop" AND action = "deny"'
qs = {"denied": Query(FLOWS, [CLUSTER], size=100, selector=parse_selector(sel), selector_text=sel,
                      sort=[SortKey("end_time", True)], start=DAY[0], end=DAY[1], now=DAY[1]),
      "newest": Query(FLOWS, [CLUSTER], size=100, sort=[SortKey("end_time", True)], start=DAY[0], end=DAY[1], now=DAY[1])}
res = {}
for rnd in range(int(sys.argv[2]) if len(sys.argv) > 2 else 6):
    for side, fn in (("old", old._null_columns), ("new", new_fn)):
        R._null_columns = fn; b._nulls.clear()
        for name, q in qs.items():
            a = b.search(q)
            t = time.process_time()
            for _ in range(10):
                r = b.search(q)
            res.setdefault((name, side), []).append((time.process_time() - t) * 100)
            assert r.items == a.items
for (name, side), xs in sorted(res.items()):
    print(name, side, "median", round(statistics.median(xs), 2), [round(x, 1) for x in xs])
b.close()
