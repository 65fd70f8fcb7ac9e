"""A group's file written with PARQUET_VERSION V2 against V1 (the default): the same rows, and the same statistics
(rows per row group, each column's min, max and null count, read by pyarrow and by DuckDB's parquet_metadata), for
groups of 32 batches of flows, L7, DNS and kube audit from the fleet's quick set (32 x 20 and 32 x 150 records).

Usage: PYTHONPATH=SRC python bench/results/before-after/group_v2_same.py"""
import pickle, shutil
from datetime import datetime, UTC
from pathlib import Path
import pyarrow.parquet as pq
from margay.logtypes import REGISTRY
from margay.ingest.parse import Converter
from margay.ingest import group as G, output as O
from margay.store.duckdb.engine import connect

allb = pickle.load(open("/tmp/fleet-fixed-ab/batches-1000.pkl", "rb"))
con = connect(); con.execute("SET threads = 1")
scr = Path("/tmp/s14/v2same"); shutil.rmtree(scr, ignore_errors=True); scr.mkdir(parents=True)
now = datetime.now(UTC)


def stats(path):
    meta = pq.read_metadata(path)
    out = []
    for g in range(meta.num_row_groups):
        rg = meta.row_group(g)
        for i in range(rg.num_columns):
            c = rg.column(i)
            s = c.statistics
            out.append((g, c.path_in_schema, rg.num_rows, None if s is None else (s.has_min_max and s.min, s.has_min_max and s.max, s.null_count)))
    duck = con.execute("SELECT row_group_id, path_in_schema, row_group_num_rows, stats_min_value, stats_max_value, stats_null_count "
                       "FROM parquet_metadata(?) ORDER BY ALL", [str(path)]).fetchall()
    return out, duck, meta.schema.to_arrow_schema()


for kind in ("flows", "l7", "dns", "audit_kube"):  # (the quick set has no L7)
    src = [b for b in allb if b.log_type == kind]
    if not src:
        print(kind, "no batches in the quick set")
        continue
    for per in (20, 150):
        batches = [(b.cluster, b"\n".join(b.body.rstrip(b"\n").split(b"\n")[:per])) for b in src[:32]]
        files = {}
        for version in ("V1", "V2"):
            conv = Converter(con.cursor, scr / version)
            G.GROUP_CODEC = "snappy" if version == "V1" else "snappy, PARQUET_VERSION V2"
            g = G.convert_group(conv, REGISTRY[kind], batches, now=now, seq_base=0)
            assert len(g.files) == 1, g.files
            files[version] = g.files[0][1]
            conv.close()
        a, b = files["V1"], files["V2"]
        ta, tb = pq.read_table(a), pq.read_table(b)
        assert ta.equals(tb), kind
        da = con.execute("SELECT * FROM read_parquet(?) ORDER BY _seq", [str(a)]).fetchall()
        db = con.execute("SELECT * FROM read_parquet(?) ORDER BY _seq", [str(b)]).fetchall()
        assert da == db, kind
        sa, sb = stats(a), stats(b)
        assert sa[0] == sb[0], [x for x in zip(sa[0], sb[0]) if x[0] != x[1]][:3]
        assert sa[1] == sb[1], [x for x in zip(sa[1], sb[1]) if x[0] != x[1]][:3]
        assert sa[2].equals(sb[2]), (sa[2], sb[2])
        print(kind, ta.num_rows, "rows, columns", ta.num_columns, "same rows, schema and statistics; bytes V1", a.stat().st_size, "V2", b.stat().st_size)
