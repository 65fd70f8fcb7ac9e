"""The core of the aggregation compiler: one GROUP BY per level of bucket aggregation, never one per bucket.

A nested request (`terms` > `terms` > metrics, `date_histogram` > `terms`, ...) runs level by level. Level d
groups by the keys of every enclosing bucket (`_g0` .. `_g{d-1}`, computed once in nested subqueries) plus
its own key, computes its metric sub-aggregations in the same GROUP BY, ranks buckets within each parent
with a window (`row_number() OVER (PARTITION BY parents ...)`) and totals them with another, so a `terms`
of 10,000 buckets with a `terms` inside costs two queries, not 10,001. When a level keeps only some of its
buckets (a `terms` size), the next level reads only their rows: it filters on `hash(_g0, ..)` of the kept
buckets (bound as a list) and drops the rare hash collision by exact key in Python.

A key that unnests a list (a multi-valued field) gets its own subquery layer, so two unnests never zip.
Buckets the request lists (`filters`, `range`, `filter`) add no key: each narrows the scope, and its
sub-aggregations still run once for every enclosing bucket.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

Runner = Callable[[str, list[Any]], list[tuple[Any, ...]]]
Parent = tuple[Any, ...]


@dataclass(frozen=True)
class Scope:
    """Where a level runs: FROM + WHERE SQL and its parameters, the enclosing bucket keys `_g0..` it can group
    by (`depth` of them), and the raw conditions of the enclosing buckets (only for per-bucket work: top_hits)."""

    sql: str
    params: list[Any]
    depth: int = 0
    filters: tuple[tuple[str, tuple[Any, ...]], ...] = field(default=())
    # per enclosing key: a raw condition whose last `?` takes the key value, and its other params
    keys: tuple[tuple[str, tuple[Any, ...]], ...] = field(default=())

    @property
    def groups(self) -> list[str]:
        return [f"_g{i}" for i in range(self.depth)]

    def narrowed(self, cond: str, params: list[Any]) -> Scope:
        """The same buckets, fewer rows (a `filter` bucket, a column condition)."""
        return Scope(f"{self.sql} AND ({cond})", self.params + params, self.depth,
                     self.filters + ((cond, tuple(params)),), self.keys)

    def flat(self, parent: Parent) -> Scope:
        """One enclosing bucket's rows as a scope of its own (for the aggregations that run per bucket)."""
        if not self.depth:
            return self
        same = " AND ".join(f"_g{i} IS NOT DISTINCT FROM ?" for i in range(self.depth))
        conds = tuple((c, (*ps, v)) for (c, ps), v in zip(self.keys, parent, strict=True))
        return Scope(f"FROM (SELECT * {self.sql}) AS _p WHERE {same}", self.params + list(parent),  # noqa: S608
                     0, self.filters + conds)

    def keyed(self, key_sql: str, key_params: list[Any], keep: list[int] | None = None,
              cond: str | None = None) -> Scope:
        """One level down: `key_sql` becomes `_g{depth}`; with `keep`, only the buckets whose key hash is in it.
        `cond` is the raw condition of one bucket (its last `?` the key; default `key_sql = ?`)."""
        g = f"_g{self.depth}"
        where = f"{g} IS NOT NULL"
        params = key_params + self.params
        if keep is not None:
            where += f" AND hash({', '.join([*self.groups, g])}) IN (SELECT unnest(?))"
            params = params + [keep]
        key = (cond or f"({key_sql}) = ?", tuple(key_params))
        return Scope(f"FROM (SELECT {key_sql} AS {g}, * {self.sql}) AS _l{self.depth} WHERE {where}",  # noqa: S608
                     params, self.depth + 1, self.filters, (*self.keys, key))


def by_parent(rows: list[tuple[Any, ...]], depth: int) -> dict[Parent, list[tuple[Any, ...]]]:
    """Rows whose first `depth` columns are the parent key, grouped by it (order kept)."""
    out: dict[Parent, list[tuple[Any, ...]]] = {}
    for r in rows:
        out.setdefault(tuple(r[:depth]), []).append(r[depth:])
    return out


def metrics(run: Runner, scope: Scope, exprs: list[str]) -> dict[Parent, list[Any]]:
    """Metric expressions per parent bucket, in one query (a parent without rows is absent)."""
    g = scope.groups
    sel = ", ".join([*g, *exprs])
    if not g:
        return {(): list(run(f"SELECT {sel} {scope.sql}", scope.params)[0])}  # noqa: S608
    rows = run(f"SELECT {sel} {scope.sql} GROUP BY ALL", scope.params)  # noqa: S608
    return {p: list(v[0]) for p, v in by_parent(rows, scope.depth).items()}


@dataclass(frozen=True)
class Level:
    """A level's buckets per parent: (key, count, *metric values, key hash) rows, and each parent's total."""

    rows: dict[Parent, list[tuple[Any, ...]]]
    totals: dict[Parent, int]
    truncated: bool

    def keep(self) -> list[int] | None:
        """The key hashes of the kept buckets, when the level dropped some (the next level reads only those)."""
        if not self.truncated:
            return None
        return [r[-1] for rs in self.rows.values() for r in rs]


def grouped(run: Runner, scope: Scope, key_sql: str, key_params: list[Any], *, count: str = "count(*)",
            exprs: list[str] | None = None, order: str = "k", limit: int | None = None, min_count: int = 1,
            total_all: bool = True, hashed: bool = True) -> Level:
    """Group the scope's rows by parent and key (`key_sql`, unnest allowed); `order` ranks a parent's buckets
    over the columns k, c and m0.. (the metric `exprs`); `limit` keeps that many per parent; `min_count` drops
    smaller buckets. Totals count every bucket (`total_all`) or only those of at least `min_count`.
    `hashed=False`: the caller reads no level below (`Level.keep` is not asked), so no key hash is computed."""
    inner = scope.keyed(key_sql, key_params)
    g = scope.groups
    d = scope.depth
    ms = "".join(f", {e} AS m{i}" for i, e in enumerate(exprs or []))
    part = f"PARTITION BY {', '.join(g)} " if g else ""
    total = "sum(c)" if total_all else "sum(CASE WHEN c >= ? THEN c ELSE 0 END)"
    groups = f"(SELECT {''.join(x + ', ' for x in g)}_g{d} AS k, {count} AS c{ms} {inner.sql} GROUP BY ALL)"
    cols = ", ".join([*g, "k", "c"] + [f"m{i}" for i in range(len(exprs or []))])
    params = [] if total_all else [min_count]  # in the order of their `?`
    h = "hash(k)" if hashed else "NULL"
    if not g and min_count <= 1 and not hashed and "unnest(" not in key_sql.lower():
        # A top level of a one-valued key with no bucket level below, in one flat GROUP BY: the key layer's
        # `SELECT key, *` subquery and the outer ranking cost a small request's statement ~0.6 of ~2.6 ms in
        # binding alone (top 10 DNS domains over a roll-up). ORDER BY names the select list's aliases.
        sql = (f"SELECT ({key_sql}) AS k, {count} AS c{ms}, NULL AS _h, sum({count}) OVER () AS _total, "  # noqa: S608
               f"NULL AS _rn {scope.sql} AND ({key_sql}) IS NOT NULL GROUP BY ALL "
               f"ORDER BY {order}{' LIMIT ?' if limit is not None else ''}")
        rows = run(sql, key_params + scope.params + key_params + ([limit] if limit is not None else []))
    elif not g and min_count <= 1:  # every bucket counts at least one row: no bucket to drop, all in the total
        sql = (f"SELECT {cols}, {h} AS _h, sum(c) OVER () AS _total, NULL AS _rn "  # noqa: S608
               f"FROM {groups} ORDER BY {order}{' LIMIT ?' if limit is not None else ''}")
        rows = run(sql, inner.params + ([limit] if limit is not None else []))
    elif not g:  # the top level: one ranking, so a top-N sort instead of a window's full sort (~2 ms a request)
        sql = (f"SELECT {cols}, {h} AS _h, {total} OVER () AS _total, NULL AS _rn "  # noqa: S608
               f"FROM {groups} QUALIFY c >= ? ORDER BY {order}{' LIMIT ?' if limit is not None else ''}")
        rows = run(sql, params + inner.params + [min_count] + ([limit] if limit is not None else []))
    else:
        # Buckets under min_count rank last, so the first `limit` ranks are the buckets shown.
        sql = (f"SELECT {cols}, hash({', '.join([*g, 'k'])}) AS _h, {total} OVER ({part}) AS _total, "  # noqa: S608
               f"row_number() OVER ({part}ORDER BY c < ?, {order}) AS _rn FROM {groups}")
        params += [min_count, *inner.params, min_count]
        where = "c >= ?"
        if limit is not None:
            where += " AND _rn <= ?"
            params.append(limit)
        rows = run(f"SELECT * FROM ({sql}) WHERE {where} ORDER BY {', '.join([*g, '_rn'])}", params)  # noqa: S608
    out: dict[Parent, list[tuple[Any, ...]]] = {}
    totals: dict[Parent, int] = {}
    for r in rows:
        p = tuple(r[:d])
        out.setdefault(p, []).append((*r[d:-3], r[-3]))
        totals[p] = int(r[-2] or 0)
    truncated = min_count > 1 or any(
        (limit is not None and len(rs) >= limit) or (total_all and totals[p] != sum(int(x[1]) for x in rs))
        for p, rs in out.items())
    return Level(out, totals, truncated)
