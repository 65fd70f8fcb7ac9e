"""What acknowledging before conversion would still cost (session 18): the C parse alone, a statement of the type's
checks only (the `_err` rules), and the whole group conversion, per group shape; median thread CPU-ms.
Usage: PYTHONPATH=src chk_s18.py TYPE"""
import pickle, sys, time, shutil, statistics, warnings
warnings.simplefilter("ignore")
from datetime import datetime, UTC
from pathlib import Path
from margay.logtypes import REGISTRY, quote_ident
from margay.ingest.parse import Converter, _checks, time_expr, ERR_SEP
from margay.ingest import group as G
from margay.logtypes.base import Kind
from margay.store.duckdb.engine import connect
kind = sys.argv[1]
src = [b for b in pickle.load(open("/tmp/fleet-fixed-ab/batches-1000.pkl", "rb")) if b.log_type == kind]
con = connect(); con.execute("SET threads = 1")
scr = Path("/tmp/s18/parts"); shutil.rmtree(scr, ignore_errors=True); scr.mkdir(parents=True)
conv = Converter(con.cursor, scr); lt = REGISTRY[kind]; plan = conv.plan(lt); now = datetime.now(UTC)
exprs = {}
for f in lt.fields:
    col = quote_ident(f.name)
    exprs[f.name] = lt.derived[f.name] if f.name in lt.derived else (time_expr(col) if f.kind is Kind.TIMESTAMP else col)
checks = _checks(lt, exprs)
print("checks", len(checks))
err = "NULLIF(concat_ws('" + ERR_SEP + "', " + ", ".join(checks) + "), '')"
allines = [l for b in src for l in b.body.rstrip(b"\n").split(b"\n")]
for nb, per in [(1,200),(15,200),(1,3000)]:
    bodies = [b"\n".join(allines[j*per:(j+1)*per]) for j in range(nb)]
    batches = [(src[j].cluster, bodies[j]) for j in range(nb)]
    res = {}
    for name in ["parse", "check", "sel", "full"]:
        xs = []
        for i in range(10):
            t = time.thread_time()
            if name == "full":
                G.convert_group(conv, lt, batches, now=now, seq_base=i).discard()
            else:
                tb = plan.arrow.table(bodies)
                if name != "parse":
                    ac = conv.arrow_cursors.take()
                    try:
                        view = plan.arrow.source.replace('{table}', ac.view(tb))
                        if name == "check":
                            r = ac.cur.execute(f"SELECT ordinality, e FROM (SELECT {err} AS e, ordinality FROM {view}) WHERE e IS NOT NULL").fetchall()
                        else:
                            tb2 = tb.append_column(G.GROUP_CLUSTER, G._cluster_column(batches, [per*(k+1) for k in range(nb)]))
                            ac.done(); view = plan.arrow.source.replace('{table}', ac.view(tb2))
                            ac.cur.execute(f"SELECT {plan.grouped_arrow} FROM {view}", [now, 1]).fetchall()
                    finally:
                        ac.done(); conv.arrow_cursors.give(ac)
            dt = time.thread_time() - t
            if i >= 3: xs.append(dt * 1000)
        res[name] = round(statistics.median(xs), 2)
    print(f"{nb}x{per}", res)
