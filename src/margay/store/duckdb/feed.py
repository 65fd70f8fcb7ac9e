"""The forwarders' feed on the embedded engine: records after a `_seq` position, in order."""

from __future__ import annotations

import logging
from functools import partial
from pathlib import Path
from typing import Any

import duckdb
import orjson

from ...logtypes import Kind, LogType, quote_ident
from ...logtypes.base import sent_columns
from ...query.selector import And, Node
from ..catalog import DataFile, PartKey
from .dismissals import not_deleted
from .files import _file_fact, _keeps_sent
from .reader import _query_error
from .state import EngineState

log = logging.getLogger(__name__)


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
            gone = not_deleted(self.deleted, self.deleted.clusters())
            if gone is not None:
                where = gone if where is None else And((where, gone))
        tcol = quote_ident(lt.time_field)
        texpr = f"CAST({tcol} AS DOUBLE)" if lt.time.kind is Kind.EPOCH_S else f"epoch({tcol})"
        cond, cparams = _where_sql(lt, where)
        with self.catalog.snapshot() as view:
            files = self._files_after(view, lt, after_seq, upto)
            if not files:
                return []
            rel = "read_parquet(?, union_by_name = true)"
            if not all(_file_fact(self._kept, Path(p), partial(_keeps_sent, Path(p))) for p in files):
                nulls = ", ".join(f"CAST(NULL AS JSON) AS {quote_ident(c)}" for c in sent_columns(lt))
                rel = f"(SELECT * FROM {rel} UNION ALL BY NAME SELECT {nulls} WHERE false)"  # noqa: S608 - registry names
            cur = self.cursor()
            try:
                rows = cur.execute(
                    # Rendered after the LIMIT: to_json only for the rows returned, not for every row sorted.
                    f"SELECT _seq, {texpr}, {self.compiler.doc(lt)} FROM (SELECT * FROM {rel} "  # noqa: S608
                    f"AS t WHERE _seq > ? AND _seq <= ? AND ({cond}) ORDER BY _seq LIMIT ?) AS t "
                    "ORDER BY _seq",
                    [files, after_seq, upto, *cparams, limit]).fetchall()
            except duckdb.Error as exc:
                raise _query_error(exc) from exc
            finally:
                cur.close()
        out = []
        for seq, t, doc in rows:
            d = orjson.loads(doc)
            d["_seq"], d["_time"] = seq, t
            out.append(d)
        return out

    def backlog(self, lt: LogType, after_seq: int, *, where: Node | None = None) -> tuple[int, float | None]:
        """(records with `_seq` > after_seq, epoch seconds the oldest of them was stored) - a forwarder's lag."""
        cond, cparams = _where_sql(lt, where)
        with self.catalog.snapshot() as view:
            files = self._files_after(view, lt, after_seq, 1 << 62)
            if not files:
                return 0, None
            cur = self.cursor()
            try:
                n, oldest = cur.execute(
                    "SELECT count(*), epoch(min(generated_time)) FROM read_parquet(?, union_by_name = true) AS t "  # noqa: S608
                    f"WHERE _seq > ? AND ({cond})", [files, after_seq, *cparams]).fetchall()[0]
            except duckdb.Error as exc:
                raise _query_error(exc) from exc
            finally:
                cur.close()
        return int(n), (float(oldest) if oldest is not None else None)


def _where_sql(lt: LogType, where: Node | None) -> tuple[str, list[Any]]:
    if where is None:
        return "TRUE", []
    from ...query.sql import compile_selector

    return compile_selector(where, lt)
