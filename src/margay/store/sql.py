"""Compiles a Query into DuckDB SQL over a set of partition tables: documents, counts, sources."""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ..errors import QueryError
from ..logtypes import Kind, LogType, quote_ident
from ..logtypes.base import EXTRA_COLUMN, SENT_PREFIX, sent_fields
from ..query.model import Query

_TS_FORMAT = "'%Y-%m-%dT%H:%M:%S.%fZ'"


# Past this many clusters a read names them in one list parameter (a semi-join): DuckDB binds and plans each `?`
# of an IN list, ~7 µs each (1,000 names cost a statement 6.5-7.6 ms; as one list, 22.2 against 28.0 ms for the
# fleet's graph statement). A short list stays an IN list: a plain filter on the scan, no join to plan (EXPLAIN
# ANALYZE shows both pushed into read_parquet, the semi-join's as a dynamic filter).
CLUSTER_LIST_AT = 32


def cluster_condition(clusters: list[str]) -> tuple[str, list[Any]]:
    """`"cluster" IN (...)` over the query's clusters (readable, validated names), as SQL and parameters."""
    if len(clusters) > CLUSTER_LIST_AT:
        return '"cluster" IN (SELECT unnest(?::VARCHAR[]))', [list(clusters)]
    return '"cluster" IN (' + ", ".join("?" for _ in clusters) + ")", list(clusters)


@dataclass(frozen=True)
class SearchPlan:
    sql: str
    params: list[Any]
    count_sql: str
    count_params: list[Any]


def time_sql(expr: str, kind: Kind) -> str:
    """An expression that renders a stored time as margay prints it (RFC 3339 UTC)."""
    return f"strftime({expr}, {_TS_FORMAT})" if kind is Kind.TIMESTAMP else expr


def field_parts(lt: LogType, only: Collection[str] | None = None, nulls: Collection[str] = ()) -> list[str]:
    """`name := value` of each declared field but `id` (of those in `only`, if given) for struct_pack: the
    stored column as margay renders it, or the value as sent where it was kept (`_sent_<field>`, see
    logtypes.base.sent_fields). Columns in `nulls` (NULL in every row read) are typed NULL constants, so
    DuckDB does not decode them."""
    sent = set(sent_fields(lt))
    parts = []
    for f in lt.fields:
        col = quote_ident(f.name)
        if f.name == "id" or (only is not None and f.name not in only):
            continue
        value = time_sql(col if f.name not in nulls else f"CAST(NULL AS {f.sql_type()})", f.kind)
        if f.name in sent and SENT_PREFIX + f.name in nulls:
            value = f"to_json({value})"
        elif f.name in sent:
            value = f"coalesce({quote_ident(SENT_PREFIX + f.name)}, to_json({value}))"
        parts.append(f"{col} := {value}")
    return parts


def with_extra(doc: str) -> str:
    """A rendered document (`to_json(...)` SQL) with the record's undeclared keys (`_extra`) after its own;
    their keys never overlap (logtypes.base.own_keys), so the two objects are joined as text. The document
    appears once, bound to a lambda's parameter: written out in each branch, DuckDB bound and planned a wide
    type's document three times (a third of a search page's document fetch)."""
    extra = quote_ident(EXTRA_COLUMN)
    return (f"list_transform([CAST({doc} AS VARCHAR)], lambda d: CASE WHEN {extra} IS NULL THEN d "
            f"ELSE substr(d, 1, length(d) - 1) || ',' || substr(CAST({extra} AS VARCHAR), 2) END)[1]")


def latest_key_sql(lt: LogType) -> str:
    """The identity of a `latest_of` type's record, as Linseed's deterministic document id: the SHA-256 (hex)
    of `<cluster>|<tenant>|<key>|...`, with no tenant and '' for a missing value (Linseed's policy backend,
    genDeterministicID). Registry names only.

    Linseed's string is ambiguous when a value other than the last holds a `|` (kind `K`, namespace `a|b`,
    name `c` and namespace `a`, name `b|c` give one id, so one report would replace the other): such a record's
    id is the SHA-256 of the JSON array of its values instead. A cluster name never holds `|` nor starts with
    `[`, so the two forms never meet and every (cluster, identity) has an id of its own; the last value (the
    rule, `3|ingress|0`) may hold `|`, as Linseed's string still parses one way."""
    keys = lt.query_keys()
    values = ['"cluster"', "''"] + [f"coalesce(CAST({keys[k].sql} AS VARCHAR), '')" for k in lt.latest_of]
    linseed = "sha256(" + " || '|' || ".join(values) + ")"
    risky = " OR ".join(f"contains({v}, '|')" for v in values[2:-1])
    if not risky:
        return linseed
    return f"(CASE WHEN {risky} THEN sha256(to_json([{', '.join(values)}])) ELSE {linseed} END)"


def latest_relation(lt: LogType, rel: str) -> str:
    """`rel` with only the record that answers for each identity of a `latest_of` type: the newest by its time
    field, the first stored among equals (Linseed overwrites only with a strictly newer one)."""
    keys = lt.query_keys()
    # Partitioned by the identity's columns, not by its hash: hashing every row cost ~10x the read.
    parts = ", ".join(['"cluster"'] + [f"coalesce(CAST({keys[k].sql} AS VARCHAR), '')" for k in lt.latest_of])
    order = f'{quote_ident(lt.time_field)} DESC NULLS LAST, "_seq"'
    return (f"(SELECT * FROM {rel} QUALIFY row_number() OVER (PARTITION BY {parts} "  # noqa: S608
            f"ORDER BY {order}) = 1)")


def doc_expr(lt: LogType, only: Collection[str] | None = None, nulls: Collection[str] = ()) -> str:
    """SQL that renders one stored row as the JSON document clients see (to_json of a struct); with `only`,
    just those of its fields (validated names: see store.ipset.doc_fields), undeclared keys left out. `nulls`:
    declared and kept-as-sent columns NULL in every row read (see field_parts; `_extra` there: no undeclared
    keys to join)."""
    parts = field_parts(lt, only, nulls)
    ident = 'coalesce("id", CAST("_seq" AS VARCHAR))' if "id" in lt.field_map else 'CAST("_seq" AS VARCHAR)'
    if lt.latest_of:  # one document per identity: its id is the identity, as Linseed's
        ident = latest_key_sql(lt)
    own = {"id": ident, "cluster": '"cluster"',
           "generated_time": time_sql(chr(34) + "generated_time" + chr(34), Kind.TIMESTAMP)}
    if lt.epoch_timestamp:
        own["@timestamp"] = f"{quote_ident(lt.time_field)} * 1000"
    parts += [f"{quote_ident(name)} := {value}" for name, value in own.items() if only is None or name in only]
    doc = "to_json(struct_pack(" + ", ".join(parts) + "))"
    return with_extra(doc) if only is None and EXTRA_COLUMN not in nulls else doc


def empty_relation(lt: LogType) -> str:
    cols = ", ".join(f"CAST(NULL AS {typ}) AS {quote_ident(n)}" for n, typ in lt.storage_columns())
    return f"(SELECT {cols})"  # noqa: S608 - registry names only


def sort_expr(lt: LogType, key: str) -> str:
    keys = lt.query_keys()
    if key not in keys:
        raise QueryError(f"sort: unknown field {key!r} for {lt.name}")
    qk = keys[key]
    if qk.kind.is_list or qk.kind in (Kind.MAP, Kind.JSON, Kind.STRUCT, Kind.STRUCT_LIST):
        raise QueryError(f"sort: cannot sort by {key!r}: it holds a list or an object")
    return f"epoch_us({qk.sql})" if qk.kind is Kind.TIMESTAMP else qk.sql


class SearchCompiler:
    """Builds parameterised SQL for the Query model; user values only ever travel as parameters."""

    def __init__(self, selector_of: Callable[[Any], Any] | None = None) -> None:
        self._docs: dict[tuple[str, frozenset[str]], str] = {}
        # The engine's view of a query's selector (the embedded engine's dismissal overlay), if any.
        self.selector_of = selector_of or (lambda query: query.selector)

    def doc(self, lt: LogType, nulls: frozenset[str] = frozenset()) -> str:
        """The type's document SQL (doc_expr), with the columns in `nulls` as constants; made once per set."""
        key = (lt.name, nulls)
        if key not in self._docs:
            if len(self._docs) >= 256:  # sets of all-NULL columns follow the files: few, but bounded
                self._docs.pop(next(iter(self._docs)))
            self._docs[key] = doc_expr(lt, nulls=nulls)
        return self._docs[key]

    def where(self, query: Query, *, covered: bool = False) -> tuple[str, list[Any]]:
        """The query's conditions. `covered`: every row of the relation read belongs to one of the query's
        clusters (the engine knows its files' clusters), so no cluster condition is needed."""
        lt: LogType = query.logtype
        conds: list[str] = []
        params: list[Any] = []
        if not covered:
            cond, cparams = cluster_condition(query.clusters)
            conds.append(cond)
            params.extend(cparams)
        tkey = query.time_key
        keys = lt.query_keys()
        if tkey not in keys:
            raise QueryError(f"time_range.field: {tkey!r} is not a time field of {lt.name}")
        tk = keys[tkey]
        lower = ">" if tkey == "generated_time" and not lt.range_from_only else ">="
        for bound, op in ((query.start, lower), (query.end, "<=")):
            if bound is None:
                continue
            conds.append(f"{tk.sql} {op} ?")
            params.append(int(bound.timestamp()) if tk.kind is Kind.EPOCH_S else bound)
        selector = self.selector_of(query)
        if selector is not None:
            from ..query.sql import compile_selector

            sel_sql, sel_params = compile_selector(selector, lt, now=query.now, text=query.selector_text)
            conds.append(f"({sel_sql})")
            params.extend(sel_params)
        restricted = query.restriction.selector(lt, query.clusters)
        if restricted is not None:
            from ..query.sql import compile_selector

            sel_sql, sel_params = compile_selector(restricted, lt, now=query.now)
            conds.append(f"({sel_sql})")
            params.extend(sel_params)
        return " AND ".join(conds) or "TRUE", params

    def source(self, query: Query, rel: str | None, rel_params: list[Any], *, covered: bool = False
               ) -> tuple[str, list[Any]]:
        """FROM + WHERE over a relation (None: an empty relation with the type's columns); `covered` as `where`."""
        where, params = self.where(query, covered=covered or rel is None)
        if rel is None:
            return f"FROM {empty_relation(query.logtype)} AS t WHERE FALSE AND {where}", params  # noqa: S608
        return f"FROM {rel} AS t WHERE {where}", rel_params + params  # noqa: S608

    @staticmethod
    def sort_of(query: Query) -> list[Any]:
        from ..query.model import SortKey

        return query.sort or [SortKey(query.logtype.time_field, False)]

    def windows(self, query: Query, rows: int | None = None) -> list[tuple[str, list[Any]] | None]:
        """Narrower time windows to try first when a search is sorted by its ranged time field.

        Data arrives in time order, so each stored row group covers a short span of time and its min/max
        statistics let the engine skip the rest: the newest (or oldest) 1/32 of the range often holds a
        whole page. A window is a condition on the time field next to the page's end; when it yields a full
        page (LIMIT rows) those rows are the answer, because every row outside it sorts after them. The
        last entry, None, is the whole range. `rows`, the rows stored in the range's files: when they fill
        fewer than 32 pages, a window of 1/32 cannot be expected to hold one, and is not tried.
        """
        sort = self.sort_of(query)
        if sort[0].key != query.time_key or query.start is None or query.end is None:
            return [None]
        if rows is not None and rows < 32 * (query.size + 1):
            return [None]
        keys = query.logtype.query_keys()
        tk = keys[query.time_key]
        if tk.kind not in (Kind.EPOCH_S, Kind.TIMESTAMP):
            return [None]
        lo, hi = query.start.timestamp(), query.end.timestamp()
        after = (query.after_key or {}).get("searchFrom")
        if isinstance(after, list) and after and isinstance(after[0], int | float) and not isinstance(after[0], bool):
            edge = after[0] / 1e6 if tk.kind is Kind.TIMESTAMP else after[0]  # sort values: epoch_us / seconds
            lo, hi = (lo, min(hi, edge)) if sort[0].descending else (max(lo, edge), hi)
        span = hi - lo
        if span <= 0:
            return [None]
        out: list[tuple[str, list[Any]] | None] = []
        for frac in (1 / 32,):  # one try: a miss costs 1/32 of a whole-range search more
            bound = hi - span * frac if sort[0].descending else lo + span * frac
            value: Any = int(bound) if tk.kind is Kind.EPOCH_S else datetime.fromtimestamp(bound, UTC)
            out.append((f"{tk.sql} {'>=' if sort[0].descending else '<='} ?", [value]))
        out.append(None)
        return out

    def search(self, query: Query, rel: str, rel_params: list[Any],
               window: tuple[str, list[Any]] | None = None, *, total: bool = False,
               docs: bool = False, covered: bool = False, nulls: frozenset[str] = frozenset()) -> SearchPlan:
        """Phase one of a search: the page's sort values, then `_seq` (a tiebreak). With `total`, a
        first page over the whole range also counts every hit (a last column, `count(*) OVER ()`): one pass
        instead of two, for inputs small enough to hold their matches' sort values. With `docs`, each row
        also carries its rendered document after `_seq` (before the count): the search in one statement,
        for inputs so small that rendering every match costs less than a second statement (`fetch`); `nulls`
        as `fetch`'s."""
        lt: LogType = query.logtype
        if total and (window is not None or query.after_key):
            raise ValueError("a total is counted with the first page of the whole range only")
        src, params = self.source(query, rel, rel_params, covered=covered)
        count_src, count_params = src, list(params)
        if window is not None:
            src, params = f"{src} AND {window[0]}", params + window[1]
        sort = self.sort_of(query)
        exprs = [sort_expr(lt, s.key) for s in sort] + ['"_seq"']
        desc = [s.descending for s in sort] + [bool(sort[0].descending)]
        order = ", ".join(f"{e} {'DESC' if d else 'ASC'} NULLS LAST" for e, d in zip(exprs, desc, strict=True))
        page_params: list[Any] = []
        page_sql = ""
        offset = 0
        after = query.after_key or {}
        if "searchFrom" in after:
            values = after["searchFrom"]
            if not isinstance(values, list) or len(values) != len(exprs):
                raise QueryError("after_key.searchFrom does not match this query's sort; start again without it")
            cond, page_params = _keyset(exprs, desc, values)
            page_sql = f" AND ({cond})"
        elif "startFrom" in after:
            offset = after["startFrom"]
            if not isinstance(offset, int) or offset < 0:
                raise QueryError("after_key.startFrom: expected a non-negative integer")
        # Phase one sorts only the sort keys (narrow rows); `fetch` renders the page's documents afterwards.
        sel = ", ".join(exprs) + (f", {self.doc(lt, nulls)}" if docs else "") + (", count(*) OVER ()" if total else "")
        sql = (f"SELECT {sel} {src}{page_sql} ORDER BY {order} LIMIT ? OFFSET ?")  # noqa: S608
        return SearchPlan(sql, params + page_params + [query.size + 1, offset],
                          f"SELECT count(*) {count_src}", count_params)  # noqa: S608

    def fetch(self, lt: LogType, rel: str, where: str = "TRUE", nulls: frozenset[str] = frozenset()) -> str:
        """Documents of the given `_seq`s (params: relation's, lowest, highest, list of seqs, then `where`'s).
        `where` is the search's own condition (`where(query)`): it selects no other row of those `_seq`s, and
        its columns' row-group statistics let DuckDB skip the row groups between the page's rows, each of
        which it would otherwise decode in every column (~0.15 ms per column per 32 Ki-row group). `nulls`:
        columns NULL in every row of `rel`'s files, rendered as constants (see doc_expr)."""
        return (f'SELECT "_seq", {self.doc(lt, nulls)} FROM {rel} AS t '  # noqa: S608 - registry names only
                'WHERE "_seq" BETWEEN ? AND ? AND "_seq" IN (SELECT unnest(?::BIGINT[]))'  # a semi-join: ~25 % less CPU
                f" AND {where}")


def _keyset(exprs: list[str], desc: list[bool], values: list[Any]) -> tuple[str, list[Any]]:
    """Rows strictly after `values` in ORDER BY exprs (NULLS LAST), as an OR of prefix-equal branches."""
    branches: list[str] = []
    params: list[Any] = []
    for i, (expr, d) in enumerate(zip(exprs, desc, strict=True)):
        conds: list[str] = []
        bparams: list[Any] = []
        for j in range(i):
            conds.append(f"{exprs[j]} IS NOT DISTINCT FROM ?")
            bparams.append(values[j])
        v = values[i]
        if v is None:
            continue  # nothing sorts after NULL in this column (NULLS LAST)
        conds.append(f"({expr} {'<' if d else '>'} ? OR {expr} IS NULL)")
        bparams.append(v)
        branches.append("(" + " AND ".join(conds) + ")")
        params.extend(bparams)
    return (" OR ".join(branches) or "FALSE"), params
