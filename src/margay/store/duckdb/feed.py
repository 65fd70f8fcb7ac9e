"""The forwarders' feed on the embedded engine: records after a `_seq` position, in order."""

from __future__ import annotations

import bisect
import ipaddress
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
from ..ipset import IPSet, ip_keys, parse_ipset
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
        cond, cparams = _where_sql(lt, where)
        with self.catalog.snapshot() as view:
            files = self._files_after(view, lt, after_seq, upto)
            if not files:
                return []
            cur = self.cursor()
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
                         *, upto: int | None = None) -> list[dict[str, Any]]:
        """The set as Arrow tables semi-joined against the new records' IP columns: exact members by text,
        IPv4 CIDRs by the address number shifted to each prefix length present; IPv6 CIDRs (no inet extension
        here) test the few IPv6 values in Python. Only the hits' `_seq` come back, then their documents."""
        keys = ip_keys(lt, fields)
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
            cur = self.cursor()
            try:
                exact, net4 = _arrow(ipset)
                cur.register("feed_exact", exact)
                cur.register("feed_net4", net4)
                new, ips_of, sql = _hit_sql([k.sql for k in keys], sorted(ipset.net4))
                hits = {int(r[0]) for r in cur.execute(sql, [files, after_seq, upto]).fetchall()}
                if ipset.net6:
                    rows = cur.execute(f"WITH new AS {new} SELECT _seq, ip FROM ({ips_of}) AS x "  # noqa: S608
                                       "WHERE contains(ip, ':')", [files, after_seq, upto]).fetchall()
                    hits.update(int(seq) for seq, ip in rows if _in_v6(ip, ipset.net6))
                if not hits:
                    return []
                page = sorted(hits)[:limit]
                files = [path for path, lo, hi in spans  # only the files holding a hit are read whole
                         if (i := bisect.bisect_left(page, lo)) < len(page) and page[i] <= hi]
                rows = cur.execute(
                    f"SELECT _seq, {_time_expr(lt)}, {self.compiler.doc(lt)} FROM "  # noqa: S608
                    f"{self._feed_relation(lt, files)} AS t WHERE _seq >= ? AND _seq <= ? AND list_contains(?, _seq) "
                    "ORDER BY _seq", [files, page[0], page[-1], page]).fetchall()
            except duckdb.Error as exc:
                raise _query_error(exc) from exc
            finally:
                cur.close()
        return _records(rows)

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


# A dotted IPv4 text as a number, NULL for anything else (an octet over 255 fails the cast): measured at half
# the cost of the selector compiler's regexp-guarded form over 100,000 records.
_V4_NUMBER = ("(CASE WHEN ip LIKE '%.%.%.%' AND ip NOT LIKE '%.%.%.%.%' THEN list_reduce(list_transform("
              "string_split(ip, '.'), lambda o: TRY_CAST(o AS UTINYINT)::BIGINT), lambda a, b: a * 256 + b) END)")


def _hit_sql(cols: list[str], net4: list[int]) -> tuple[str, str, str]:
    """(the new records' IP columns, those columns as one (_seq, ip) relation, the hits' _seq query).

    Built from registry names only; the set and the positions are bound or registered."""
    columns = ", ".join(f"{c} AS ip{i}" for i, c in enumerate(cols))
    new = f"(SELECT _seq, {columns} FROM read_parquet(?, union_by_name = true) AS t WHERE _seq > ? AND _seq <= ?)"  # noqa: S608
    ips_of = " UNION ALL ".join(f"SELECT _seq, ip{i} AS ip FROM new" for i in range(len(cols)))  # noqa: S608
    parts = [f"SELECT _seq FROM ({ips_of}) AS x WHERE ip IN (SELECT ip FROM feed_exact)"]  # noqa: S608
    if net4:  # the v4 number once per value, then one hash semi-join per prefix length present
        parts += [f"SELECT _seq FROM v4 WHERE n >> {32 - int(p)} IN (SELECT net FROM feed_net4 WHERE plen = {int(p)})"  # noqa: S608
                  for p in net4]
    v4 = (f", v4 AS MATERIALIZED (SELECT _seq, {_V4_NUMBER} AS n FROM ({ips_of}) AS x)"  # noqa: S608
          if net4 else "")
    hits = f"WITH new AS MATERIALIZED {new}{v4} SELECT DISTINCT _seq FROM ({' UNION ALL '.join(parts)}) AS h"  # noqa: S608
    return new, ips_of, hits


def _arrow(ipset: IPSet) -> tuple[pa.Table, pa.Table]:
    """The set as the two Arrow tables the semi-join reads (built once per set)."""
    if "duckdb" not in ipset.cache:
        ipset.cache["duckdb"] = (
            pa.table({"ip": pa.array(ipset.exact, pa.string())}),
            pa.table({"plen": pa.array([p for p, nets in ipset.net4.items() for _ in nets], pa.int8()),
                      "net": pa.array([n for nets in ipset.net4.values() for n in nets], pa.int64())}))
    tables: tuple[pa.Table, pa.Table] = ipset.cache["duckdb"]
    return tables


def _in_v6(ip: Any, nets: list[ipaddress.IPv6Network]) -> bool:
    try:
        addr = ipaddress.ip_address(str(ip))
    except ValueError:
        return False
    return isinstance(addr, ipaddress.IPv6Address) and any(addr in n for n in nets)


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
