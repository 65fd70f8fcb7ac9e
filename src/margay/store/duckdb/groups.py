"""Composite groupings on the embedded engine (Backend.groups): one GROUP BY over the query's rows, keyset-paged
in Elasticsearch's composite order (ascending keys with a missing value first, descending with it last)."""

from __future__ import annotations

from typing import Any

from ...errors import QueryError
from ...logtypes import LogType
from ...query.model import Query
from ..backend import GroupSpec, group_field
from .reads import RunOver


def _expr(lt: LogType, field: str, *, numeric: bool = False) -> str:
    qk = group_field(lt, field, numeric=numeric)
    return qk.sql


def groups(run_over: RunOver, query: Query, spec: GroupSpec, after: dict[str, Any] | None) -> list[dict[str, Any]]:
    lt: LogType = query.logtype
    if not spec.keys:
        raise QueryError("a grouping needs at least one key")
    exprs = [_expr(lt, k.field) for k in spec.keys]
    conds = [f"{e} IS NOT NULL" for e, k in zip(exprs, spec.keys, strict=True) if not k.missing]
    cond_params: list[Any] = []
    if after is not None:
        if not isinstance(after, dict) or set(after) != {k.name for k in spec.keys}:
            raise QueryError("after_key: expected the keys of a previous answer's after_key")
        cond, cond_params = _after(exprs, [k.descending for k in spec.keys], [after[k.name] for k in spec.keys])
        conds.append(cond)
    metrics: list[str] = []
    for _, field in spec.sums:
        metrics.append(f"coalesce(sum({_expr(lt, field, numeric=True)}), 0)")
    for _, field in spec.mins:
        metrics.append(f"min({_expr(lt, field, numeric=True)})")
    for _, field in spec.maxs:
        metrics.append(f"max({_expr(lt, field, numeric=True)})")
    for _, field, weight in spec.means:
        v = _expr(lt, field, numeric=True)
        if weight is None:
            metrics.append(f"avg({v})")
        else:
            w = f"coalesce({_expr(lt, weight, numeric=True)}, 0)"
            metrics.append(f"sum({v} * {w}) FILTER (WHERE {v} IS NOT NULL) / "
                           f"NULLIF(sum({w}) FILTER (WHERE {v} IS NOT NULL), 0)")
    for _, field in spec.distincts:
        metrics.append(f"count(DISTINCT {_expr(lt, field)})")
    names = spec.metric_names
    keys_sql = ", ".join(f"{e} AS _k{i}" for i, e in enumerate(exprs))
    order = ", ".join(f"_k{i} {'DESC NULLS LAST' if k.descending else 'ASC NULLS FIRST'}"
                      for i, k in enumerate(spec.keys))
    group = ", ".join(f"_k{i}" for i in range(len(exprs)))
    extra = "".join(f" AND ({c})" for c in conds)

    def build(run: Any, src: str, params: list[Any]) -> Any:
        sql = (f"SELECT {keys_sql}, count(*), {', '.join(metrics) or 'NULL'} {src}{extra} "  # noqa: S608
               f"GROUP BY {group} ORDER BY {order} LIMIT ?")
        return run(sql, params + cond_params + [query.size + 1])

    rows = run_over(query, build)
    n = len(spec.keys)
    out = []
    for row in rows:
        values = row[n + 1:]
        out.append({"key": {k.name: row[i] for i, k in enumerate(spec.keys)}, "doc_count": int(row[n]),
                    "metrics": {name: (float(v) if v is not None else None) for name, v in zip(names, values[:len(names)], strict=True)}})
    return out


def _after(exprs: list[str], desc: list[bool], values: list[Any]) -> tuple[str, list[Any]]:
    """Groups strictly after `values` in the composite order: ascending with NULL first, descending with NULL
    last; an OR over the keys of prefix-equal branches."""
    branches: list[str] = []
    params: list[Any] = []
    for i, (expr, d) in enumerate(zip(exprs, desc, strict=True)):
        conds = [f"{exprs[j]} IS NOT DISTINCT FROM ?" for j in range(i)]
        bparams = list(values[:i])
        v = values[i]
        if v is None:
            if d:
                continue  # NULL is last: nothing follows it in this key
            conds.append(f"{expr} IS NOT NULL")
        else:
            conds.append(f"({expr} < ? OR {expr} IS NULL)" if d else f"{expr} > ?")
            bparams.append(v)
        branches.append("(" + " AND ".join(conds) + ")")
        params.extend(bparams)
    return (" OR ".join(branches) or "FALSE"), params
