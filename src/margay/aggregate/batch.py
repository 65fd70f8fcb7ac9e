"""Runs one aggregation as DuckDB SQL over an NDJSON batch: parse once, group in the engine, write NDJSON.

No record is touched in Python: DuckDB's JSON reader loads the batch into a table, the level's GROUP BY
runs in the engine, and COPY writes the result back as NDJSON.
"""

# ruff: noqa: S608 - SQL is built from registry names and validated integers, never from input data.
from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import duckdb

from ..errors import ParseError
from ..ingest.parse import sql_path, time_expr
from ..logtypes import Kind, LogType, quote_ident

_READ = "read_json(?, columns=?, format='newline_delimited', maximum_object_size=104857600) WITH ORDINALITY"


@dataclass
class Result:
    """An aggregated batch: NDJSON out, how many records went in and came out, whether all were valid."""

    body: bytes
    records_in: int
    records_out: int
    invalid: int = 0


def _connect() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(":memory:", config={"autoinstall_known_extensions": False,
                                             "autoload_known_extensions": False})
    con.execute("SET TimeZone='UTC'")
    con.execute("SET enable_progress_bar = false")
    return con


def source_columns(lt: LogType, extra: dict[str, str]) -> dict[str, str]:
    cols = {f.name: f.sql_type(raw=True) for f in lt.fields}
    cols.update(extra)
    return cols


def source_select(lt: LogType, extra: dict[str, str]) -> tuple[str, str]:
    """(SELECT list normalising every field as ingest does, predicate that holds for a storable row)."""
    parts, valid = [], []
    for f in lt.fields:
        col = quote_ident(f.name)
        expr = lt.derived.get(f.name) or (time_expr(col) if f.kind is Kind.TIMESTAMP else col)
        parts.append(f"{expr} AS {col}")
        if f.required:
            valid.append(f"{col} IS NOT NULL")
        if f.kind is Kind.TIMESTAMP:
            valid.append(f"({col} IS NULL OR {time_expr(col)} IS NOT NULL)")
        if f.allowed:
            valid.append(f"({expr} IS NULL OR {expr} IN ({', '.join(repr(a) for a in f.allowed)}))")
    parts += [quote_ident(name) for name in extra]
    parts.append("ordinality AS _row")
    return ", ".join(parts), " AND ".join(valid) or "true"


def run(lt: LogType, body: bytes, extra: dict[str, str], build: object) -> Result:
    """Load `body` into table `src`, then run `build(con, present)` -> final SELECT, written as NDJSON.

    `present` names the `extra` columns that some record carries (cluster, @timestamp), so output only
    has them when the input had them. Malformed input raises ParseError.
    """
    scratch = Path(tempfile.mkdtemp(prefix="margay-aggregate-"))
    con = _connect()
    try:
        src = scratch / "in.ndjson"
        src.write_bytes(body)
        select, valid = source_select(lt, extra)
        try:
            con.execute(f"CREATE TABLE src AS SELECT {select}, ({valid}) AS _valid FROM {_READ}",  # noqa: S608
                        [str(src), source_columns(lt, extra)])
        except duckdb.Error as exc:
            raise ParseError(f"cannot aggregate: {str(exc).splitlines()[0]}") from None
        counts = con.execute(
            "SELECT count(*), " + ", ".join(f"count({quote_ident(n)})" for n in extra) +  # noqa: S608
            ", count(*) FILTER (WHERE NOT coalesce(_valid, false)) FROM src").fetchall()[0]
        n_in, invalid = int(counts[0]), int(counts[-1])
        present = {n for n, c in zip(extra, counts[1:-1], strict=True) if c}
        final = build(con, present)  # type: ignore[operator]
        con.execute(f"CREATE TABLE result AS {final}")
        n_out = int(con.execute("SELECT count(*) FROM result").fetchall()[0][0])
        if not n_out:
            return Result(b"", n_in, 0, invalid)
        out = scratch / "out.ndjson"
        con.execute(f"COPY result TO {sql_path(out)} (FORMAT json)")  # noqa: S608 - our scratch path
        data = out.read_bytes()
        return Result(data if data.endswith(b"\n") else data + b"\n", n_in, n_out, invalid)
    finally:
        con.close()
        shutil.rmtree(scratch, ignore_errors=True)
