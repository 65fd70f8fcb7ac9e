"""Bulk NDJSON conversion: one DuckDB statement turns a whole batch into Parquet, partitioned by day.

The fast path never touches a record in Python: DuckDB's JSON reader parses, the plan (derived from the
registry) converts and checks every row, and COPY writes good rows to Parquet per UTC day while rows
that fail a check land in a side file holding only their row number and message. Only when the reader
refuses the batch (malformed JSON, a wrong type) does the slow path look at lines one by one, to name
the bad line and field; the good lines then take the fast path again, so one bad line costs no others.
"""

from __future__ import annotations

import json
import re
import shutil
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from ..errors import InsufficientStorage
from ..logtypes import Field, Kind, LogType, quote_ident
from ..logtypes.base import EXTRA_COLUMN, INT64, SENT_PREFIX, own_keys, sent_fields
from ..store.sql import time_sql
from .columns import TEXT_PREFIX, ArrowReader, IpVouch
from .ips import ip_checks, ip_paths
from .keyscan import KeyScanner, Verdict, count_newlines
from .output import ERR_SEP, FIELD_SEP, ArrowCursors, copy_arrow, file_facts, split_file, sql_path
from .screen import MAX_DEPTH, MAX_DOCUMENT_BYTES, prescreen

_NUMBER = r"-?[0-9]+(\.[0-9]*)?([eE][-+]?[0-9]+)?"
# Times a record may hold: 1970-01-01 to 9999-12-31 UTC. A later one made an index day of nine digits
# (`100000101`) that retention could not read, and seconds past DuckDB's range failed the batch's conversion.
MAX_EPOCH_S = 253_402_300_799  # 9999-12-31T23:59:59Z
_TIME_START, _TIME_END = "1970-01-01 00:00:00+00", "10000-01-01 00:00:00+00"
# The same lines are read twice, row for row: typed columns, and whole objects for what those cannot hold
# (logtypes.base.sent_fields and `_extra`).
_MAX_OBJECT = MAX_DOCUMENT_BYTES + 1
_READ = ("read_json(?, columns=?, format='newline_delimited', "  # noqa: S608 - constants only
         f"maximum_object_size={_MAX_OBJECT}) WITH ORDINALITY "
         f'POSITIONAL JOIN (SELECT json AS "_raw" FROM read_ndjson_objects(?, maximum_object_size={_MAX_OBJECT}))')
# The typed read alone, for a plan that reads nothing of the raw objects (DuckDB does not prune the unused
# positional join: reading the objects costs ~1.5-2 us of a 1.5 kB record's ~10).
_READ_TYPED = ("read_json(?, columns=?, format='newline_delimited', "  # noqa: S608 - constants only
               f"maximum_object_size={_MAX_OBJECT}) WITH ORDINALITY")
_UNKNOWN_KEYS = ("SELECT count(*) FROM (SELECT unnest(json_keys(json)) AS k FROM read_ndjson_objects(?, "  # noqa: S608
                 f"maximum_object_size={_MAX_OBJECT})) WHERE k NOT IN (SELECT unnest(?::VARCHAR[]))")
# The slow path names bad lines itself; past this many bulk COPY attempts the rest are reported, not retried.
MAX_COPY_ATTEMPTS = 48
# Below this many lines a batch is "small": its cost is the fixed cost of statements and files, not records.
SMALL_BATCH = 1000
# (Data pages V2 wrote a 32-batch group 20-35 % fewer bytes, the same rows, schema and statistics, but no less
# CPU: bench/results/before-after/group_codec_ab.py.)
SMALL_CODEC = "snappy"
GROUP_CLUSTER = "_group_cluster"  # a group's cluster column in the C parser's table (no declared field starts with _)
_FILE_IN_MESSAGE = re.compile(r' in file "[^"]*"|(?:/[^\s"\':]+)+')


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
    stored: int | None = None  # records stored, when the files are shared with other batches (ingest/group.py)

    @property
    def succeeded(self) -> int:
        return self.stored if self.stored is not None else sum(n for _, _, n in self.files)

    @property
    def failed_lines(self) -> int:
        return len({e.line for e in self.errors})

    def discard(self) -> None:
        if self.scratch is not None:
            shutil.rmtree(self.scratch, ignore_errors=True)


def time_expr(col: str) -> str:
    """Raw text or number -> TIMESTAMPTZ: RFC 3339 with or without zone (UTC assumed), or epoch seconds (NULL,
    never a conversion error, for seconds outside 1970-9999: the row is then refused by its check)."""
    return (f"CASE WHEN {col} IS NULL THEN NULL "
            f"WHEN regexp_full_match({col}, '{_NUMBER}') THEN "
            f"CASE WHEN TRY_CAST({col} AS DOUBLE) BETWEEN 0 AND {MAX_EPOCH_S} THEN to_timestamp(CAST({col} AS DOUBLE)) END "
            f"ELSE TRY_CAST({col} AS TIMESTAMPTZ) END")


def _day_expr(lt: LogType, exprs: dict[str, str]) -> str:
    """The record's day (`yyyymmdd`, its index's); NULL for a time out of range (a refused row)."""
    t = lt.time
    e = exprs[t.name]
    if t.kind is Kind.EPOCH_S:
        return f"strftime(to_timestamp(CASE WHEN {e} BETWEEN 0 AND {MAX_EPOCH_S} THEN {e} END), '%Y%m%d')"
    return f"strftime(CASE WHEN {e} < TIMESTAMPTZ '{_TIME_END}' THEN {e} END, '%Y%m%d')"


def _checks(lt: LogType, exprs: dict[str, str], *, ips: bool = True) -> list[str]:
    """SQL snippets, one per rule, each yielding 'field<US>message' for a failing row, else NULL. `ips`: with the
    IP fields' (ips.py; the C parser checks them itself, and declines a batch they refuse)."""
    out: list[str] = []
    for f in lt.fields:
        e = exprs[f.name]
        raw = quote_ident(f.name)
        if f.required:
            out.append(f"CASE WHEN {raw} IS NULL THEN '{f.name}{FIELD_SEP}is required' END")
        if f.kind is Kind.TIMESTAMP:
            out.append(f"CASE WHEN {raw} IS NOT NULL AND {e} IS NULL THEN "
                       f"'{f.name}{FIELD_SEP}is not a valid time (expected {f.expect()}, 1970 to 9999)' END")
            out.append(f"CASE WHEN {e} < TIMESTAMPTZ '{_TIME_START}' OR {e} >= TIMESTAMPTZ '{_TIME_END}' THEN "
                       f"'{f.name}{FIELD_SEP}is out of range (1970 to 9999)' END")
        if f.kind is Kind.EPOCH_S:  # a day folder and every reader's to_timestamp need a time they can hold
            out.append(f"CASE WHEN {e} < 0 OR {e} > {MAX_EPOCH_S} THEN "
                       f"'{f.name}{FIELD_SEP}is out of range (Unix seconds from 0 to {MAX_EPOCH_S}: 1970 to 9999)' END")
        if f.allowed:
            allowed = ", ".join("'" + a + "'" for a in f.allowed)
            out.append(f"CASE WHEN {e} IS NOT NULL AND {e} NOT IN ({allowed}) THEN "
                       f"'{f.name}{FIELD_SEP}must be one of: {', '.join(f.allowed)}' END")
    if ips:
        out += ip_checks(lt.fields)  # what OpenSearch's `ip` type indexes (ips.py)
    return out


def _err(checks: list[str]) -> str:
    return ("NULLIF(concat_ws('" + ERR_SEP + "', " + ", ".join(checks) + "), '')") if checks else "NULL::VARCHAR"


@dataclass(frozen=True)
class Plan:
    """How to read one log type: raw JSON column types, and the SELECT that converts and checks rows."""

    columns: dict[str, str]
    select: str  # parameters: cluster, generated_time, seq base; then read_json's path and columns
    lean: str  # the same for a batch without undeclared keys: `_extra` is NULL without looking
    grouped: str  # `select` with a list of clusters, one per record (several batches as one: ingest/group.py)
    grouped_lean: str  # `lean` with that list
    lean_raw: bool  # whether `lean` reads the raw objects (kept-as-sent fields); if not, it reads _READ_TYPED
    own: list[str]  # the keys a record may have without going to `_extra`
    keys: KeyScanner  # the batch-wide look for other keys (in C; DuckDB's `_UNKNOWN_KEYS` when it is unsure)
    # The typed read in C (ingest/columns.py), for a type whose columns it reads (with the text as sent of each
    # kept-as-sent field, columns.TEXT_PREFIX); None: read_json always. It declines a batch with other keys, so
    # it also answers the look above.
    arrow: ArrowReader | None = None
    # `lean` over that table: each kept-as-sent field's value from its text column (columns.TEXT_PREFIX), not
    # from the whole object parsed again per field.
    lean_arrow: str = ""
    # `lean_arrow` with each record's cluster in its column GROUP_CLUSTER (parameters: generated time, seq base):
    # no list of clusters to bind per statement.
    grouped_arrow: str = ""
    # `select`, `lean`, `grouped` and `grouped_lean` without the IP fields' checks (ips.py), for bodies whose IP
    # fields the C parser vouches for (`ip_vouch`); None: a type without IP fields, or no C parser.
    unchecked: tuple[str, str, str, str] | None = None
    ip_vouch: IpVouch | None = None

    def read_json_sql(self, bodies: list[bytes]) -> tuple[str, str, str, str]:
        """(select, lean, grouped, grouped_lean) for read_json's way with these bodies: without the IP checks
        when the C parser vouches for every IP value of theirs (it declined them for something else)."""
        if self.unchecked is not None and self.ip_vouch is not None and self.ip_vouch.vouches(bodies):
            return self.unchecked
        return self.select, self.lean, self.grouped, self.grouped_lean


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
    # A column read as is goes unaliased (its name is its own): ~0.3-0.5 ms less to parse a group's statement.
    fields = ", ".join(e if e == quote_ident(n) else f"{e} AS {quote_ident(n)}" for n, e in exprs.items())
    times = ', ?::TIMESTAMPTZ AS "generated_time", ?::BIGINT + ordinality AS "_seq"'
    rest = f'{times}, {_day_expr(lt, exprs)} AS "_day", {_err(_checks(lt, exprs))} AS "_err"'
    # The C parser's table holds only IP addresses in IP fields (it declines others): no regular expressions per
    # row (~0.1 us a value, ~1.3 us a list; 36 % more CPU for a flow) nor per statement (~0.3 ms each).
    rest_unchecked = f'{times}, {_day_expr(lt, exprs)} AS "_day", {_err(_checks(lt, exprs, ips=False))} AS "_err"'
    sent = _sent_exprs(lt, exprs)
    kept = "".join(f", {e} AS {quote_ident(n)}" for n, e in sent.items())
    sent[EXTRA_COLUMN] = "NULL::JSON"
    lean_kept = "".join(f", {e} AS {quote_ident(n)}" for n, e in sent.items())
    one, many = ', ?::VARCHAR AS "cluster"', ', (?::VARCHAR[])[ordinality] AS "cluster"'

    def statements(r: str) -> tuple[str, str, str, str]:  # (select, lean, grouped, grouped_lean) with these checks
        return fields + one + r + kept, fields + one + r + lean_kept, fields + many + r + kept, fields + many + r + lean_kept

    full, lean, grouped, grouped_lean = statements(rest)
    own = own_keys(lt)
    columns = {f.name: f.sql_type(raw=True) for f in lt.fields}
    lean_raw = bool(sent_fields(lt))
    texts = _sent_exprs(lt, exprs, lambda name: quote_ident(TEXT_PREFIX + name))
    texts[EXTRA_COLUMN] = "NULL::JSON"  # (the parser declines a record with undeclared keys)
    arrow_kept = "".join(f", {e} AS {quote_ident(n)}" for n, e in texts.items())
    lean_arrow = fields + one + rest_unchecked + arrow_kept
    grouped_arrow = fields + f', {quote_ident(GROUP_CLUSTER)}::VARCHAR AS "cluster"' + rest_unchecked + arrow_kept
    ips = [p for p, _ in ip_paths(lt.fields)]
    reader = ArrowReader.for_columns(columns, own, texts=sent_fields(lt), ips=ips)
    vouch = IpVouch.for_columns(columns, ips, own) if ips and reader is not None else None
    return Plan(columns, full, lean, grouped, grouped_lean, lean_raw, list(own), KeyScanner(own),
                reader, lean_arrow, grouped_arrow, statements(rest_unchecked) if vouch else None, vouch)


def _sent_exprs(lt: LogType, exprs: dict[str, str], text: Callable[[str], str] | None = None) -> dict[str, str]:
    """The kept-as-sent columns (see `logtypes.base.sent_columns`) from the raw object `_raw` (or, by `text`,
    from the JSON text of a field's value as sent: the C parser's text column, ingest/columns.py).

    `_sent_<field>`: the JSON value sent when the stored column renders differently (a time's own text,
    precision and zone, or Unix seconds; an explicit null the column stores as its default), else NULL.
    `_extra`: the record's top-level keys that are no declared field (NULL when there are none).
    """
    out: dict[str, str] = {}
    for name in sent_fields(lt):
        f = lt.field_map[name]
        raw = f"json({text(name)})" if text is not None else f"(\"_raw\" -> '$.\"{name}\"')"
        rendered = f"CAST(to_json({time_sql(exprs[name], f.kind)}) AS VARCHAR)"
        sent = f"CAST({raw} AS VARCHAR)"
        if f.kind is Kind.STRUCT_LIST:  # the items' values as sent, in the declared keys' order
            shape = json.dumps([{c.name: "JSON" for c in f.children}]).replace("'", "''")
            sent = f"CAST(to_json(json_transform({raw}, '{shape}')) AS VARCHAR)"
        kept = f"CASE WHEN {raw} IS NOT NULL AND {sent} IS DISTINCT FROM {rendered} THEN {raw} END"
        out[SENT_PREFIX + name] = kept
    own = own_keys(lt)
    drop = json.dumps(dict.fromkeys(own)).replace("'", "''")
    known = "[" + ", ".join("'" + k.replace("'", "''") + "'" for k in own) + "]"
    # The keys are listed first (cheaper than building the patched object): most records have no others.
    out[EXTRA_COLUMN] = (f"CASE WHEN len(list_filter(json_keys(\"_raw\"), lambda k: NOT list_contains({known}, k))) > 0 "
                         f"THEN CAST(json_merge_patch(\"_raw\", '{drop}') AS JSON) END")
    return out


class Converter:
    """Converts NDJSON batches to day-partitioned Parquet with DuckDB; safe to call from many threads."""

    def __init__(self, cursor: Callable[[], duckdb.DuckDBPyConnection], scratch_dir: Path,
                 compression: str = "zstd") -> None:
        self._cursor = cursor
        self.scratch_dir = scratch_dir
        scratch_dir.mkdir(parents=True, exist_ok=True)
        self.compression = compression
        self._plans: dict[str, Plan] = {}
        self.arrow_cursors = ArrowCursors(cursor)

    def cursor(self) -> duckdb.DuckDBPyConnection:
        return self._cursor()

    def close(self) -> None:
        """Close the cursors kept between statements (before their engine)."""
        self.arrow_cursors.close()

    def plan(self, lt: LogType) -> Plan:
        if lt.name not in self._plans:
            self._plans[lt.name] = plan_for(lt)
        return self._plans[lt.name]

    def convert(self, lt: LogType, body: bytes, *, cluster: str, now: datetime, seq_base: int,
                newlines: int | None = None) -> Converted:
        """All good records of `body` as Parquet; `_seq` of the n-th record is seq_base + n. `newlines`, when
        the caller has counted them, spares counting them again (~0.8 ms a 10,000-record batch)."""
        scratch = self.scratch_dir / uuid.uuid4().hex
        scratch.mkdir()
        result = Converted(lt, 0, scratch=scratch)
        plan = self.plan(lt)
        # The C parser takes no line nested deeper than the bound: only a batch it declines is looked at for them.
        screened = _prescreen(lt, body, result, depth=plan.arrow is None)
        table = plan.arrow.table([screened]) if plan.arrow is not None else None
        if table is None and plan.arrow is not None:
            screened = _prescreen(lt, screened, result, size=False)
        if screened is not body:
            body, newlines = screened, None
        if not body or body.isspace():  # stops at the first other byte; strip() would copy the whole body
            return result
        try:
            self._copy(lt, body, scratch, cluster, now, seq_base, result, numbers=None, newlines=newlines,
                       table=table)
        except duckdb.Error as exc:
            _raise_if_disk_full(exc)
            shutil.rmtree(scratch / "out", ignore_errors=True)
            self._slow(lt, body, scratch, cluster, now, seq_base, result)
        result.errors.sort(key=lambda e: e.line)
        return result

    def _copy(self, lt: LogType, body: bytes, scratch: Path, cluster: str, now: datetime, seq_base: int,
              result: Converted, numbers: list[int] | None, newlines: int | None = None,
              table: pa.Table | None = None) -> None:
        """One pass: parse, convert, check and write Parquet; split by day and validity only when needed.
        `table`: the body as the C parser read it, if it did."""
        plan = self.plan(lt)
        src = scratch / "in.ndjson"
        whole = scratch / "batch.parquet"
        ac = self.arrow_cursors.take()
        cur = ac.cur
        try:
            small = (count_newlines(body) if newlines is None else newlines) < SMALL_BATCH
            # A small file is written with a light codec: zstd's set-up per column costs a 10-record batch
            # about 4 ms, and the compactor rewrites small files with zstd anyway.
            codec = SMALL_CODEC if small else f"{self.compression}, COMPRESSION_LEVEL 1"
            if table is not None and plan.arrow is not None:  # parsed in C: no undeclared keys, values of their types
                copy_arrow(ac, table, plan.lean_arrow, whole, codec, [cluster, now, seq_base], plan.arrow.source)
            else:
                src.write_bytes(body)
                full, lean, _, _ = plan.read_json_sql([body])
                select, read = full, _READ
                # Undeclared keys are rare: one batch-wide look spares every record of a clean batch the
                # per-record key check; unreferenced, the raw read is pruned. The C scanner answers it in one
                # pass over the bytes (ingest/keyscan.py); DuckDB's anti-join over the records' keys (a second
                # parse) only when the scanner is unsure or absent, and not for a small batch: there its fixed
                # cost (a statement) is more than the check it spares.
                verdict = plan.keys.scan(body)
                if verdict is Verdict.CLEAN or (verdict is Verdict.UNSURE and not small and not cur.execute(
                        _UNKNOWN_KEYS, [str(src), plan.own]).fetchall()[0][0]):
                    select, read = lean, _READ if plan.lean_raw else _READ_TYPED
                params = [cluster, now, seq_base, str(src), plan.columns] + ([str(src)] if read is _READ else [])
                cur.execute(f"COPY (SELECT {select} FROM {read}) TO {sql_path(whole)} "  # noqa: S608
                            f"(FORMAT parquet, COMPRESSION {codec})", params).fetchall()
            src.unlink(missing_ok=True)
            count, valid, (first, last) = file_facts(whole)
            result.total += count
            if count and valid == count and first is not None and first == last:
                result.files.append((first, whole, count))
                return
            if count:
                lines = numbers or _nonblank_line_numbers(body)
                files, bad = split_file(cur, whole, scratch / "split", f"{self.compression}, COMPRESSION_LEVEL 1")
                result.files.extend((day, path, rows) for _, day, path, rows in files if rows)
                for seq, fname, text in bad:
                    result.errors.append(LineError(lines[seq - seq_base - 1], fname, text))
        finally:
            self.arrow_cursors.give(ac)
            src.unlink(missing_ok=True)

    def _slow(self, lt: LogType, body: bytes, scratch: Path, cluster: str, now: datetime, seq_base: int,
              result: Converted) -> None:
        """Name the bad lines one by one, then convert the good ones in bulk.

        The per-line check refuses all the reader refuses (duplicate keys, integers past 64 bits, wrong
        types), so the good lines normally take one more COPY; should the reader still refuse them, halving
        finds the culprits within MAX_COPY_ATTEMPTS COPYs, so a hostile batch costs about what a good one does.
        """
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
        budget = [MAX_COPY_ATTEMPTS]
        pending = [(good_lines, good_numbers, seq_base)] if good_lines else []
        while pending:
            lines, numbers, base = pending.pop()
            part = scratch / f"part{budget[0]}"
            part.mkdir()
            budget[0] -= 1
            try:
                self._copy(lt, b"\n".join(lines), part, cluster, now, base, result, numbers)
                continue
            except duckdb.Error as exc:
                _raise_if_disk_full(exc)
                message = _reader_message(exc)
            if len(lines) == 1 or budget[0] <= 0:
                result.total += len(lines)
                note = "" if len(lines) == 1 else " (with other lines of this batch; send them again on their own)"
                result.errors.extend(LineError(n, None, message + note) for n in numbers)
                continue
            half = len(lines) // 2
            pending.append((lines[half:], numbers[half:], base + half))
            pending.append((lines[:half], numbers[:half], base))


def _nonblank_line_numbers(body: bytes) -> list[int]:
    return [i for i, line in enumerate(body.split(b"\n"), start=1) if line.strip()]


def _prescreen(lt: LogType, body: bytes, result: Converted, *, size: bool = True, depth: bool = True) -> bytes:
    """`screen.prescreen`'s refusals counted in `result`: the body without them (blanked: line numbers hold)."""
    body, bad = prescreen(lt, body, size=size, depth=depth)
    for number, name, msg in bad:
        result.total += 1
        result.errors.append(LineError(number, name, msg))
    return body


class _Refused(ValueError):
    pass


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    doc = dict(pairs)
    if len(doc) != len(pairs):
        seen: set[str] = set()
        for k, _ in pairs:
            if k in seen:
                raise _Refused(f"duplicate key {k[:80]!r}")
            seen.add(k)
    return doc


def _int64(text: str) -> int:
    if len(text) > 20:
        raise _Refused(f"integer {text[:24]}… does not fit in 64 bits")
    value = int(text)
    if not INT64[0] <= value <= INT64[1]:
        raise _Refused(f"integer {text} does not fit in 64 bits")
    return value


def _check_line(line: bytes, fields: dict[str, Field]) -> tuple[str | None, str] | None:
    """(field, message) for a line that cannot be stored, else None.

    Stricter than orjson: like the reader (and Elasticsearch) it refuses duplicate keys, and integers that
    do not fit in 64 bits; the decoder's cost is linear in the line, whatever the line holds.
    """
    try:
        doc = json.loads(line, object_pairs_hook=_no_duplicates, parse_int=_int64)
    except _Refused as exc:
        return None, str(exc)
    except RecursionError:
        return None, f"nests deeper than {MAX_DEPTH} levels of objects and arrays"
    except ValueError as exc:  # JSONDecodeError and invalid UTF-8
        return None, f"invalid JSON: {str(exc)[:200]}"
    if not isinstance(doc, dict):
        return None, f"expected a JSON object, got {type(doc).__name__}"
    for name, f in fields.items():
        value = doc.get(name)
        if value is None:
            if f.required:
                return name, "is required"
            continue
        if not f.py_ok(value):
            return name, f"expected {f.expect()}, got {json.dumps(value)[:80]}"
    return None


def _raise_if_disk_full(exc: Exception) -> None:
    """A full disk is no fault of the batch: 507, never a per-line error."""
    text = str(exc)
    if "No space left on device" in text or "Disk quota exceeded" in text:
        raise InsufficientStorage("the server's disk is full: the batch was not stored; retry later") from None


def _reader_message(exc: Exception) -> str:
    """The reader's complaint about a line, without the server's scratch paths."""
    text = str(exc).split("\n", 1)[0].replace("Invalid Input Error: ", "")
    return _FILE_IN_MESSAGE.sub("", text)[:300]


