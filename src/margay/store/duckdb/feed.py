"""The forwarders' feed on the embedded engine: records after a `_seq` position, in order."""

from __future__ import annotations

import bisect
import functools
import logging
from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import Any

import duckdb
import orjson
import pyarrow as pa

from ...logtypes import Kind, LogType, quote_ident
from ...logtypes.base import sent_columns
from ...query.selector import And, Node
from ..catalog import DataFile, PartKey
from ..ipset import doc_fields, ip_keys, lookup, parse_ipset
from ..sql import doc_expr
from .dismissals import not_deleted
from .files import _file_fact, _keeps_sent
from .reader import _query_error
from .state import EngineState

log = logging.getLogger(__name__)
BATCH_ROWS = 1 << 17  # records_with_ips reads the new records' IPs this many rows at a time


class Feed(EngineState):
    """Records in `_seq` order for the forwarders (Backend.records_after/backlog)."""

    def _files_after(self, view: dict[PartKey, list[DataFile]], lt: LogType, after_seq: int, upto: int) -> list[str]:
        return [str(f.path) for (t, _, _), files in sorted(view.items()) if t == lt.name for f in files
                if f.seq_hi > after_seq and f.seq_lo <= upto]

    def records_after(self, lt: LogType, after_seq: int, limit: int, *, upto: int | None = None,
                      where: Node | None = None) -> list[dict[str, Any]]:
        """Up to `limit` documents with after_seq < `_seq` <= upto (default: the safe watermark), in `_seq` order.

        Each is the document as the API renders it plus `_seq` and `_time` (its time field in epoch
        seconds); `where` is an extra (sql, params) condition, e.g. a compiled selector.
        """
        upto = self.safe_seq() if upto is None else upto
        if upto <= after_seq or limit <= 0:
            return []
        if lt.dismissable:  # events deleted since they were stored are no longer fed
            gone = not_deleted(self.deleted, lt, self.deleted.clusters())
            if gone is not None:
                where = gone if where is None else And((where, gone))
        cond, cparams = _where_sql(lt, where)
        with self.catalog.snapshot() as view:
            files = self._files_after(view, lt, after_seq, upto)
            if not files:
                return []
            cur = self.cursor(None, len(files))
            try:
                rows = cur.execute(
                    # Rendered after the LIMIT: to_json only for the rows returned, not for every row sorted.
                    f"SELECT _seq, {_time_expr(lt)}, {self.compiler.doc(lt)} FROM (SELECT * FROM "  # noqa: S608
                    f"{self._feed_relation(lt, files)} AS t WHERE _seq > ? AND _seq <= ? AND ({cond}) ORDER BY _seq "
                    "LIMIT ?) AS t ORDER BY _seq",
                    [files, after_seq, upto, *cparams, limit]).fetchall()
            except duckdb.Error as exc:
                raise _query_error(exc) from exc
            finally:
                cur.close()
        return _records(rows)

    def _feed_relation(self, lt: LogType, files: list[str]) -> str:
        """`read_parquet` over `files` (one parameter), with the kept-as-sent columns as NULL where files written
        before they existed lack them, so that the type's document expression binds over any mix."""
        rel = "read_parquet(?, union_by_name = true)"
        if all(_file_fact(self._kept, Path(p), partial(_keeps_sent, Path(p))) for p in files):
            return rel
        nulls = ", ".join(f"CAST(NULL AS JSON) AS {quote_ident(c)}" for c in sent_columns(lt))
        return f"(SELECT * FROM {rel} UNION ALL BY NAME SELECT {nulls} WHERE false)"  # noqa: S608 - registry names

    def records_with_ips(self, lt: LogType, after_seq: int, fields: Sequence[str], ips: Sequence[str], limit: int,
                         *, upto: int | None = None, returning: Sequence[str] | None = None) -> list[dict[str, Any]]:
        """The new records' distinct IP values are read once and looked up in the set's sorted number arrays
        (kept with the parsed set, so a run re-hashes nothing of it): exact members and IPv4 CIDRs by number
        (an exact hit also by its canonical text), the few non-IPv4 values against the set's text and IPv6
        CIDRs. Only when something matched are the hits' `_seq`, then their documents, read (with `returning`,
        only those columns: Parquet decodes what the narrower document names, not the type's every column)."""
        keys = ip_keys(lt, fields)
        only = doc_fields(lt, returning)
        ipset = parse_ipset(ips)
        upto = self.safe_seq() if upto is None else upto
        if upto <= after_seq or limit <= 0 or not ipset.entries:
            return []
        with self.catalog.snapshot() as view:
            spans = [(str(f.path), f.seq_lo, f.seq_hi) for (t, _, _), fs in sorted(view.items()) if t == lt.name
                     for f in fs if f.seq_hi > after_seq and f.seq_lo <= upto]
            files = [path for path, _, _ in spans]
            if not files:
                return []
            import pyarrow.compute as pc  # here, not at start-up: ~9 MiB of RSS (ipset.lookup)

            cur = self.cursor(None, len(files))
            try:
                cols = [k.sql for k in keys]
                hits: list[int] = []
                # batch by batch (bounded memory however long the window): distinct values, looked up; then the
                # rows holding a hit value
                for batch in cur.sql(_ips_sql(cols), params=[files, after_seq, upto]).to_arrow_reader(BATCH_ROWS):
                    ipcols = batch.columns[1:]
                    found = lookup(ipset, pc.unique(pa.chunked_array(ipcols, pa.string())))
                    if found:
                        value_set = pa.array(found, pa.string())
                        hit = functools.reduce(pc.or_, [pc.is_in(c, value_set=value_set) for c in ipcols])
                        hits += batch.column(0).filter(hit).to_pylist()
                page = sorted(hits)[:limit]
                if not page:
                    return []
                files = [path for path, lo, hi in spans  # only the files holding a hit are read whole
                         if (i := bisect.bisect_left(page, lo)) < len(page) and page[i] <= hi]
                rows = cur.execute(
                    f"SELECT _seq, {_time_expr(lt)}, {self._doc(lt, only)} FROM "  # noqa: S608
                    f"{self._feed_relation(lt, files)} AS t WHERE _seq >= ? AND _seq <= ? AND list_contains(?, _seq) "
                    "ORDER BY _seq", [files, page[0], page[-1], page]).fetchall()
            except duckdb.Error as exc:
                raise _query_error(exc) from exc
            finally:
                cur.close()
        return _records(rows)

    def _doc(self, lt: LogType, only: tuple[str, ...] | None) -> str:
        return self.compiler.doc(lt) if only is None else _narrow_doc(lt, only)

    def backlog(self, lt: LogType, after_seq: int, *, where: Node | None = None) -> tuple[int, float | None]:
        """(records with `_seq` > after_seq, epoch seconds the oldest of them was stored) - a forwarder's lag."""
        cond, cparams = _where_sql(lt, where)
        with self.catalog.snapshot() as view:
            files = self._files_after(view, lt, after_seq, 1 << 62)
            if not files:
                return 0, None
            cur = self.cursor(None, len(files))
            try:
                n, oldest = cur.execute(
                    "SELECT count(*), epoch(min(generated_time)) FROM read_parquet(?, union_by_name = true) AS t "  # noqa: S608
                    f"WHERE _seq > ? AND ({cond})", [files, after_seq, *cparams]).fetchall()[0]
            except duckdb.Error as exc:
                raise _query_error(exc) from exc
            finally:
                cur.close()
        return int(n), (float(oldest) if oldest is not None else None)


_NARROW: dict[tuple[str, tuple[str, ...]], str] = {}


def _narrow_doc(lt: LogType, only: tuple[str, ...]) -> str:
    """A document of just these (validated) fields, built once per log type and field list."""
    key = (lt.name, only)
    if key not in _NARROW:
        if len(_NARROW) >= 64:
            _NARROW.clear()
        _NARROW[key] = doc_expr(lt, only)
    return _NARROW[key]


def _ips_sql(cols: list[str]) -> str:
    """The new records' `_seq` and IP columns (registry names only; the files and positions are bound)."""
    columns = ", ".join(f"CAST({c} AS VARCHAR) AS ip{i}" for i, c in enumerate(cols))
    return f"SELECT _seq, {columns} FROM read_parquet(?, union_by_name = true) AS t WHERE _seq > ? AND _seq <= ?"  # noqa: S608


def _where_sql(lt: LogType, where: Node | None) -> tuple[str, list[Any]]:
    if where is None:
        return "TRUE", []
    from ...query.sql import compile_selector

    return compile_selector(where, lt)


def _time_expr(lt: LogType) -> str:
    """A record's time field in epoch seconds (the feed's `_time`)."""
    tcol = quote_ident(lt.time_field)
    return f"CAST({tcol} AS DOUBLE)" if lt.time.kind is Kind.EPOCH_S else f"epoch({tcol})"


def _records(rows: list[Any]) -> list[dict[str, Any]]:
    """(seq, time, document) rows as the feed's records: the document plus `_seq` and `_time`."""
    out = []
    for seq, t, doc in rows:
        d = orjson.loads(doc)
        d["_seq"], d["_time"] = seq, t
        out.append(d)
    return out
