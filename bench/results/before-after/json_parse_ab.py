"""JSON bytes to typed columns: DuckDB's typed `read_json` against Arrow-producing parsers, CPU per record.

    .venv/bin/python bench/results/before-after/json_parse_ab.py OUT.json [--records 50000] [--rounds 4]
        [--variant sim|highcard]

In-process, one thread everywhere (the ingest engine's `SET threads = 1`; pyarrow `use_threads=False`;
polars under POLARS_MAX_THREADS=1, set here before it is imported), on the peers scenario's 10,000-flow
batches (`flow_batches(topology(), n)`, optionally `high_cardinality`). Each round runs every step over
every batch, steps taking turns, and reads `time.process_time()` (user + system, so the scratch file's
write into the page cache counts). CPU microseconds per record:

- `duckdb_copy`: today's lean conversion, `ingest/parse.py`'s COPY (write the scratch NDJSON, typed
  `read_json`, the plan's expressions, Parquet zstd-1) -- the figure to beat;
- `duckdb_read`: the typed read alone, materialised (`CREATE TEMP TABLE AS`: every column built);
- `pyarrow_read_<MiB>`: `pyarrow.json.read_json` with the explicit schema DuckDB's read yields, at a
  block size; `pyarrow_read_threads`: the same with `use_threads=True` (CPU of every thread);
- `polars_read`: `polars.read_ndjson(schema=...)` then `.to_arrow()` (when polars is importable);
- `arrow_copy`: the same lean COPY from an already-parsed Arrow table (`FROM table`, `_seq`'s ordinality
  appended as a column): the conversion and the Parquet write without a parse;
- `pyarrow_copy` / `polars_copy`: parse + `arrow_copy`, the candidates end to end.

It also checks that each candidate's table equals DuckDB's read of the same batch (values and types).
"""

from __future__ import annotations

import argparse
import io
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

os.environ.setdefault("POLARS_MAX_THREADS", "1")

import duckdb
import orjson
import pyarrow as pa
import pyarrow.json as pj

from margay.bench.data import flow_batches, topology
from margay.bench.peers import high_cardinality
from margay.ingest.output import sql_path
from margay.ingest.parse import _READ_TYPED, plan_for
from margay.logtypes import get

try:
    import polars as pl
except ImportError:  # not a margay dependency: measured when present
    pl = None


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--records", type=int, default=50_000)
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--variant", choices=("sim", "highcard"), default="sim")
    args = ap.parse_args()
    batches = flow_batches(topology(), args.records)
    if args.variant == "highcard":
        batches = high_cardinality(batches)
    bodies = [b.body for b in batches]
    records = sum(b.count(b"\n") + 1 for b in bodies)
    plan = plan_for(get("flows"))
    con = duckdb.connect()
    con.execute("SET threads = 1")
    work = Path(tempfile.mkdtemp(prefix="parse-json-ab-"))
    now = datetime.now(UTC)
    codec = "zstd, COMPRESSION_LEVEL 1"
    src = work / "in.ndjson"
    src.write_bytes(bodies[0])
    schema = con.sql("SELECT * FROM read_json(?, columns=?, format='newline_delimited') LIMIT 0",
                     params=[str(src), plan.columns]).to_arrow_table().schema
    lean_from = f"COPY (SELECT {plan.lean} FROM {{}}) TO {{}} (FORMAT parquet, COMPRESSION {codec})"  # noqa: S608

    def duck_read(body: bytes) -> pa.Table:
        src.write_bytes(body)
        return con.sql("SELECT * FROM read_json(?, columns=?, format='newline_delimited')",
                       params=[str(src), plan.columns]).to_arrow_table()

    def duckdb_copy(body: bytes) -> None:
        src.write_bytes(body)
        con.execute(lean_from.format(_READ_TYPED, sql_path(work / "d.parquet")),
                    ["c", now, 0, str(src), plan.columns]).fetchall()

    def duckdb_read(body: bytes) -> None:
        src.write_bytes(body)
        con.execute("CREATE OR REPLACE TEMP TABLE m AS SELECT * FROM read_json(?, columns=?, "
                    "format='newline_delimited')", [str(src), plan.columns])

    def pyarrow_read(block: int, threads: bool = False) -> Callable[[bytes], pa.Table]:
        def read(body: bytes) -> pa.Table:
            return pj.read_json(io.BytesIO(body), read_options=pj.ReadOptions(use_threads=threads, block_size=block),
                                parse_options=pj.ParseOptions(explicit_schema=schema,
                                                              unexpected_field_behavior="ignore"))
        return read

    def polars_read(body: bytes) -> pa.Table:
        assert pl is not None
        return pl.read_ndjson(io.BytesIO(body), schema=pl.from_arrow(schema.empty_table()).schema).to_arrow()

    def arrow_copy(table: pa.Table) -> None:
        t = table.append_column("ordinality", pa.array(range(1, table.num_rows + 1), pa.int64()))  # noqa: F841
        con.execute(lean_from.format("t", sql_path(work / "a.parquet")), ["c", now, 0]).fetchall()

    parsed = [duck_read(b) for b in bodies]
    readers: dict[str, Callable[[bytes], pa.Table]] = {
        f"pyarrow_read_{mib}": pyarrow_read(mib << 20) for mib in (1, 4, 16)}
    readers["pyarrow_read_threads"] = pyarrow_read(1 << 20, threads=True)
    if pl is not None:
        readers["polars_read"] = polars_read
    equal = {}
    for name, read in readers.items():
        equal[name] = all(_same(read(b), want) for b, want in zip(bodies, parsed, strict=True))

    steps: dict[str, Callable[[int], object]] = {
        "duckdb_copy": lambda i: duckdb_copy(bodies[i]),
        "duckdb_read": lambda i: duckdb_read(bodies[i]),
        "arrow_copy": lambda i: arrow_copy(parsed[i]),
        "pyarrow_copy": lambda i: arrow_copy(readers["pyarrow_read_1"](bodies[i])),
    }
    steps.update({name: (lambda i, r=read: r(bodies[i])) for name, read in readers.items()})
    if pl is not None:
        steps["polars_copy"] = lambda i: arrow_copy(polars_read(bodies[i]))
    runs: dict[str, list[float]] = {name: [] for name in steps}
    for r in range(args.rounds):
        for name, step in steps.items():
            c0 = time.process_time()
            for i in range(len(bodies)):
                step(i)
            runs[name].append(round((time.process_time() - c0) / records * 1e6, 3))
        print(f"round {r + 1}: " + ", ".join(f"{k} {v[-1]:.2f}" for k, v in runs.items()), file=sys.stderr)
    result: dict[str, Any] = {
        "what": "CPU us per record, one thread, in-process; steps take turns within each round",
        "variant": args.variant, "records": records, "batches": len(bodies),
        "bytes_per_record": round(sum(len(b) for b in bodies) / records, 1),
        "versions": {"duckdb": duckdb.__version__, "pyarrow": pa.__version__,
                     "polars": pl.__version__ if pl is not None else None, "python": platform.python_version()},
        "load_average": os.getloadavg(), "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "same_table_as_duckdb": equal,
        "median": {k: statistics.median(v) for k, v in runs.items()},
        "rounds": runs,
    }
    Path(args.out).write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2))
    for k, v in result["median"].items():
        print(f"{k:22s} {v:6.2f}  ({min(runs[k]):.2f}-{max(runs[k]):.2f})")
    print("same table as DuckDB's read:", equal)


def _same(got: pa.Table, want: pa.Table) -> bool:
    """Equal values under DuckDB's types (polars hands strings over as large or view strings)."""
    try:
        return got.select(want.column_names).cast(want.schema).equals(want)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, KeyError):
        return False


if __name__ == "__main__":
    main()
