"""Two sides' files from group_files_same.py compared: the same names, rows (DuckDB and pyarrow), Arrow schema, row
groups and each column's statistics (pyarrow's min, max and null count; DuckDB's parquet_metadata).

Usage: python bench/results/before-after/group_files_compare.py BEFORE_DIR AFTER_DIR"""
import sys
from pathlib import Path
import duckdb
import pyarrow.parquet as pq

a, b = Path(sys.argv[1]), Path(sys.argv[2])
names = sorted(p.name for p in a.glob("*.parquet"))
assert names == sorted(p.name for p in b.glob("*.parquet")), "different files"
con = duckdb.connect()


def stats(path):
    meta = pq.read_metadata(path)
    out = []
    for g in range(meta.num_row_groups):
        rg = meta.row_group(g)
        for i in range(rg.num_columns):
            c = rg.column(i)
            s = c.statistics
            out.append((g, c.path_in_schema, rg.num_rows,
                        None if s is None else (s.has_min_max and s.min, s.has_min_max and s.max, s.null_count)))
    duck = con.execute("SELECT row_group_id, path_in_schema, row_group_num_rows, stats_min_value, stats_max_value, "
                       "stats_null_count FROM parquet_metadata(?) ORDER BY ALL", [str(path)]).fetchall()
    return out, duck, meta.schema.to_arrow_schema()


for n in names:
    pa_, pb = a / n, b / n
    assert pq.read_table(pa_).equals(pq.read_table(pb)), n
    q = "SELECT * FROM read_parquet(?) ORDER BY _seq"
    assert con.execute(q, [str(pa_)]).fetchall() == con.execute(q, [str(pb)]).fetchall(), n
    sa, sb = stats(pa_), stats(pb)
    assert sa[0] == sb[0] and sa[1] == sb[1] and sa[2].equals(sb[2]), n
    print(n, pq.read_metadata(pa_).num_rows, "rows: same rows, schema and statistics; bytes", pa_.stat().st_size, pb.stat().st_size)
