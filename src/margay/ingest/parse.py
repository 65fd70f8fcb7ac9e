"""Bulk NDJSON conversion: one DuckDB statement turns a whole batch into Parquet, partitioned by day.

The fast path never touches a record in Python: DuckDB's JSON reader parses, the plan (derived from the
registry) converts and checks every row, and COPY writes good rows to Parquet per UTC day while rows
that fail a check land in a side file holding only their row number and message. Only when the reader
refuses the batch (malformed JSON, a wrong type) does the slow path look at lines one by one, to name
the bad line and field; the good lines then take the fast path again, so one bad line costs no others.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import orjson

from ..logtypes import Field, Kind, LogType, quote_ident

ERR_SEP = "\x1e"  # between errors of one row
FIELD_SEP = "\x1f"  # between a field name and its message
_NUMBER = r"-?[0-9]+(\.[0-9]*)?([eE][-+]?[0-9]+)?"
_READ = "read_json(?, columns=?, format='newline_delimited', maximum_object_size=104857600) WITH ORDINALITY"


@dataclass(frozen=True)
class LineError:
    line: int  # 1-based line number in the request body
    field: str | None
    msg: str

    def as_dict(self) -> dict[str, Any]:
        return {"line": self.line, "field": self.field, "msg": self.msg}


@dataclass
class Converted:
    """A batch as Parquet files, one per UTC day (in a scratch folder), and what was wrong with the rest."""

    logtype: LogType
    total: int
    files: list[tuple[str, Path, int]] = field(default_factory=list)  # (yyyymmdd, file, rows)
    errors: list[LineError] = field(default_factory=list)
    scratch: Path | None = None

    @property
    def succeeded(self) -> int:
        return sum(n for _, _, n in self.files)

    @property
    def failed_lines(self) -> int:
        return len({e.line for e in self.errors})

    def discard(self) -> None:
        if self.scratch is not None:
            shutil.rmtree(self.scratch, ignore_errors=True)


def sql_path(path: Path) -> str:
    """A file path of margay's own (scratch and store folders) as a SQL string literal; COPY takes no parameter."""
    return "'" + str(path).replace("'", "''") + "'"


def time_expr(col: str) -> str:
    """Raw text or number -> TIMESTAMPTZ: RFC 3339 with or without zone (UTC assumed), or epoch seconds."""
    return (f"CASE WHEN {col} IS NULL THEN NULL "
            f"WHEN regexp_full_match({col}, '{_NUMBER}') THEN to_timestamp(CAST({col} AS DOUBLE)) "
            f"ELSE TRY_CAST({col} AS TIMESTAMPTZ) END")


def _day_expr(lt: LogType, exprs: dict[str, str]) -> str:
    t = lt.time
    if t.kind is Kind.EPOCH_S:
        return f"strftime(to_timestamp({exprs[t.name]}), '%Y%m%d')"
    return f"strftime({exprs[t.name]}, '%Y%m%d')"


def _checks(lt: LogType, exprs: dict[str, str]) -> list[str]:
    """SQL snippets, one per rule, each yielding 'field<US>message' for a failing row, else NULL."""
    out: list[str] = []
    for f in lt.fields:
        e = exprs[f.name]
        raw = quote_ident(f.name)
        if f.required:
            out.append(f"CASE WHEN {raw} IS NULL THEN '{f.name}{FIELD_SEP}is required' END")
        if f.kind is Kind.TIMESTAMP:
            out.append(f"CASE WHEN {raw} IS NOT NULL AND {e} IS NULL THEN "
                       f"'{f.name}{FIELD_SEP}is not a valid time (expected {f.expect()})' END")
        if f.allowed:
            allowed = ", ".join("'" + a + "'" for a in f.allowed)
            out.append(f"CASE WHEN {e} IS NOT NULL AND {e} NOT IN ({allowed}) THEN "
                       f"'{f.name}{FIELD_SEP}must be one of: {', '.join(f.allowed)}' END")
    return out


@dataclass(frozen=True)
class Plan:
    """How to read one log type: raw JSON column types, and the SELECT that converts and checks rows."""

    columns: dict[str, str]
    select: str  # parameters: cluster, generated_time, seq base; then read_json's path and columns


def plan_for(lt: LogType) -> Plan:
    exprs: dict[str, str] = {}
    for f in lt.fields:
        col = quote_ident(f.name)
        if f.name in lt.derived:
            exprs[f.name] = lt.derived[f.name]
        elif f.kind is Kind.TIMESTAMP:
            exprs[f.name] = time_expr(col)
        else:
            exprs[f.name] = col
    checks = _checks(lt, exprs)
    err = ("NULLIF(concat_ws('" + ERR_SEP + "', " + ", ".join(checks) + "), '')") if checks else "NULL::VARCHAR"
    select = ", ".join(f"{e} AS {quote_ident(n)}" for n, e in exprs.items())
    select += (', ?::VARCHAR AS "cluster", ?::TIMESTAMPTZ AS "generated_time", ?::BIGINT + ordinality AS "_seq"'
               f', {_day_expr(lt, exprs)} AS "_day", {err} AS "_err"')
    return Plan({f.name: f.sql_type(raw=True) for f in lt.fields}, select)


class Converter:
    """Converts NDJSON batches to day-partitioned Parquet with DuckDB; safe to call from many threads."""

    def __init__(self, cursor: Callable[[], duckdb.DuckDBPyConnection], scratch_dir: Path,
                 compression: str = "zstd") -> None:
        self._cursor = cursor
        self.scratch_dir = scratch_dir
        scratch_dir.mkdir(parents=True, exist_ok=True)
        self.compression = compression
        self._plans: dict[str, Plan] = {}

    def plan(self, lt: LogType) -> Plan:
        if lt.name not in self._plans:
            self._plans[lt.name] = plan_for(lt)
        return self._plans[lt.name]

    def convert(self, lt: LogType, body: bytes, *, cluster: str, now: datetime, seq_base: int) -> Converted:
        """All good records of `body` as Parquet; `_seq` of the n-th record is seq_base + n."""
        scratch = self.scratch_dir / uuid.uuid4().hex
        scratch.mkdir()
        result = Converted(lt, 0, scratch=scratch)
        if not body.strip():
            return result
        try:
            self._copy(lt, body, scratch, cluster, now, seq_base, result, numbers=None)
        except duckdb.Error:
            shutil.rmtree(scratch / "out", ignore_errors=True)
            self._slow(lt, body, scratch, cluster, now, seq_base, result)
        result.errors.sort(key=lambda e: e.line)
        return result

    def _copy(self, lt: LogType, body: bytes, scratch: Path, cluster: str, now: datetime, seq_base: int,
              result: Converted, numbers: list[int] | None) -> None:
        """One pass: parse, convert, check and write Parquet; split by day and validity only when needed."""
        plan = self.plan(lt)
        src = scratch / "in.ndjson"
        src.write_bytes(body)
        whole = scratch / "batch.parquet"
        cur = self._cursor()
        try:
            stats = _stats(cur.execute(
                f"COPY (SELECT {plan.select} FROM {_READ}) TO {sql_path(whole)} "  # noqa: S608
                f"(FORMAT parquet, COMPRESSION {self.compression}, COMPRESSION_LEVEL 1, RETURN_STATS true)",
                [cluster, now, seq_base, str(src), plan.columns]))
            src.unlink()
            count = stats["count"]
            result.total += count
            day = stats["cols"].get("_day", {})
            errors_null = stats["cols"].get("_err", {}).get("null_count", count)
            if count and errors_null == count and day.get("min") is not None and day["min"] == day.get("max"):
                result.files.append((day["min"], whole, count))
                return
            if count:
                self._split(cur, whole, scratch, seq_base, result, numbers or _nonblank_line_numbers(body))
        finally:
            cur.close()
            src.unlink(missing_ok=True)

    def _split(self, cur: duckdb.DuckDBPyConnection, whole: Path, scratch: Path, seq_base: int,
               result: Converted, lines: list[int]) -> None:
        """A batch spanning several days or holding rejected rows: one file per day, errors reported."""
        out = scratch / "split"
        rows = cur.execute(
            f"COPY (SELECT *, _err IS NULL AS _ok FROM read_parquet(?)) TO {sql_path(out)} "  # noqa: S608
            f"(FORMAT parquet, COMPRESSION {self.compression}, COMPRESSION_LEVEL 1, PARTITION_BY (_ok, _day), "
            "WRITE_PARTITION_COLUMNS false, RETURN_STATS true)", [str(whole)]).fetchall()
        for filename, count, *_ in rows:
            path = Path(filename)
            parts = dict(p.split("=", 1) for p in path.relative_to(out).parent.parts)
            if parts.get("_ok") == "true":
                result.files.append((parts["_day"], path, int(count)))
        bad = sorted((out / "_ok=false").glob("**/*.parquet"))
        if bad:
            for seq, msg in cur.execute("SELECT _seq, _err FROM read_parquet(?) ORDER BY _seq",
                                        [[str(p) for p in bad]]).fetchall():
                for part in msg.split(ERR_SEP):
                    fname, _, text = part.partition(FIELD_SEP)
                    result.errors.append(LineError(lines[seq - seq_base - 1], fname, text))
        whole.unlink()

    def _slow(self, lt: LogType, body: bytes, scratch: Path, cluster: str, now: datetime, seq_base: int,
              result: Converted) -> None:
        """Name the bad lines one by one, then convert the good ones in bulk."""
        good_lines: list[bytes] = []
        good_numbers: list[int] = []
        fields = lt.field_map
        for number, line in enumerate(body.split(b"\n"), start=1):
            if not line.strip():
                continue
            problem = _check_line(line, fields)
            if problem is not None:
                result.total += 1
                result.errors.append(LineError(number, problem[0], problem[1]))
                continue
            good_lines.append(line)
            good_numbers.append(number)
        if not good_lines:
            return
        try:
            self._copy(lt, b"\n".join(good_lines), scratch, cluster, now, seq_base, result, good_numbers)
        except duckdb.Error:
            # The per-line check missed something the reader refuses: convert line by line to be exact.
            shutil.rmtree(scratch / "out", ignore_errors=True)
            for i, (line, number) in enumerate(zip(good_lines, good_numbers, strict=True)):
                part = scratch / f"line{i}"
                part.mkdir()
                try:
                    self._copy(lt, line, part, cluster, now, seq_base + i, result, [number])
                except duckdb.Error as exc:
                    result.total += 1
                    result.errors.append(LineError(number, None, _reader_message(exc)))


def _stats(cursor: duckdb.DuckDBPyConnection) -> dict[str, Any]:
    """COPY ... RETURN_STATS of one file: its row count and each column's statistics."""
    names = [d[0] for d in cursor.description or []]
    row = dict(zip(names, cursor.fetchall()[0], strict=True))
    cols = {col.strip('"'): {k: (int(v) if k in ("null_count", "num_values") else v) for k, v in st.items()}
            for col, st in (row["column_statistics"] or {}).items()}
    return {"count": int(row["count"]), "cols": cols}


def _nonblank_line_numbers(body: bytes) -> list[int]:
    return [i for i, line in enumerate(body.split(b"\n"), start=1) if line.strip()]


def _check_line(line: bytes, fields: dict[str, Field]) -> tuple[str | None, str] | None:
    """(field, message) for a line that cannot be stored, else None."""
    try:
        doc = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        return None, f"invalid JSON: {exc}"
    if not isinstance(doc, dict):
        return None, f"expected a JSON object, got {type(doc).__name__}"
    for name, f in fields.items():
        value = doc.get(name)
        if value is None:
            if f.required:
                return name, "is required"
            continue
        if not f.py_ok(value):
            return name, f"expected {f.expect()}, got {orjson.dumps(value).decode()[:80]}"
    return None


def _reader_message(exc: Exception) -> str:
    return str(exc).split("\n", 1)[0].replace("Invalid Input Error: ", "")


