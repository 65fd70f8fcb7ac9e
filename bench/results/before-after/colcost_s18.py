"""A search page's fetch on a 50 M store by column (session 18): CPU-ms each column adds to `SELECT _seq` under the
fetch's own WHERE. Usage: PYTHONPATH=src colcost_s18.py DATA_DIR (runs fetchprof_s18.py's set-up)"""
import sys, time, warnings, re
warnings.simplefilter("ignore")
exec(open('bench/results/before-after/fetchprof_s18.py').read().split("import duckdb")[0])
con = oc(); con.execute("PRAGMA disable_profiling")
where = sql[sql.index(" FROM read_parquet"):]
cols = [c for c in re.findall(r'"(\w+)" := "(\w+)"', sql)]
def t(q, n=8):
    con.execute(q, params).fetchall()
    xs=[]
    for _ in range(n):
        a=time.process_time(); con.execute(q, params).fetchall(); xs.append((time.process_time()-a)*1000)
    xs.sort(); return xs[n//2]
base = t('SELECT "_seq"' + where)
print("base", round(base,2), "full", round(t(sql),2), "all cols no json", round(t('SELECT ' + ", ".join(f'"{c}"' for _,c in cols) + where),2))
res=[]
for _, c in cols:
    res.append((round(t(f'SELECT "_seq", "{c}"' + where) - base, 2), c))
for r in sorted(res, reverse=True): print(r)
