"""The Elasticsearch aggregation requests the `/es/` API takes, checked the same way whatever engine answers:
their parts, the parameters each type allows, and the shapes of keys (Java's double printing).

The SQL lives in store/duckdb/ (es_aggs.py and its helpers es_metrics.py, es_buckets.py, over levels.py);
the interval rules are query/aggs.py's, shared with Linseed's API and roll-ups.
"""

from __future__ import annotations

from typing import Any

from ...errors import QueryError
from ..aggs import MAX_BUCKETS, IntervalError, interval

METRICS = ("sum", "avg", "min", "max", "value_count", "cardinality", "extended_stats", "percentiles")
BUCKETS = ("terms", "date_histogram", "histogram", "range", "filters", "filter", "composite", "top_hits")

__all__ = ["BUCKETS", "MAX_BUCKETS", "METRICS", "_check", "_split", "double", "es_interval", "java_double",
           "min_doc_count"]


def _split(spec: Any, name: str) -> tuple[str, Any, dict[str, Any]]:
    if not isinstance(spec, dict):
        raise QueryError(f"aggregation [{name}]: expected an object")
    subs = spec.get("aggs") or spec.get("aggregations") or {}
    kinds = [k for k in spec if k not in ("aggs", "aggregations", "meta")]
    if len(kinds) != 1:
        raise QueryError(f"aggregation [{name}]: expected exactly one aggregation type, got {kinds}")
    kind = kinds[0]
    if kind not in METRICS + BUCKETS:
        raise QueryError(f"aggregation [{name}]: unsupported aggregation type [{kind}]; margay's ES API supports "
                         f"{', '.join(BUCKETS + METRICS)}")
    if (kind in METRICS or kind == "top_hits") and subs:
        raise QueryError(f"aggregation [{name}]: a {kind} aggregation cannot have sub-aggregations")
    return kind, spec[kind], subs


def _check(params: Any, allowed: set[str], name: str, kind: str) -> dict[str, Any]:
    if not isinstance(params, dict):
        raise QueryError(f"aggregation [{name}]: {kind} expects an object")
    extra = set(params) - allowed
    if extra:
        raise QueryError(f"aggregation [{name}]: {kind} parameter [{sorted(extra)[0]}] is not supported")
    return params



def double(v: Any) -> float | None:
    return None if v is None else float(v)


def java_double(v: float) -> str:
    """A double as Java's Double.toString prints it (range keys): shortest digits, E notation from 1e7."""
    if 1e-3 <= abs(v) < 1e7 or v == 0:
        text = repr(float(v))
        return text if "e" not in text else f"{v:.1f}"
    from decimal import Decimal

    sign, digits, exp = Decimal(repr(float(v))).normalize().as_tuple()
    ds = "".join(map(str, digits))
    e10 = len(ds) - 1 + int(exp)
    mant = ds[0] + "." + (ds[1:] or "0")
    return f"{'-' if sign else ''}{mant}E{e10}"



def es_interval(name: str, params: dict[str, Any]) -> tuple[str, int]:
    """A date histogram's ('fixed', ms) or (calendar unit letter, 0), with OpenSearch's error wording."""
    try:
        iv = interval(params)
    except IntervalError as exc:
        if exc.what == "fixed_interval":
            raise QueryError(f"aggregation [{name}]: failed to parse fixed_interval [{exc.value}]") from None
        if exc.what == "calendar_interval":
            raise QueryError(f"aggregation [{name}]: the supplied calendar interval [{exc.value}] is not valid") from None
        raise QueryError(f"aggregation [{name}]: date_histogram needs fixed_interval or calendar_interval") from None
    return (iv.unit, iv.ms) if iv.unit == "fixed" else (iv.unit, 0)


def min_doc_count(params: dict[str, Any], name: str, default: int) -> int:
    """A bucket aggregation's min_doc_count: an integer of at least 0."""
    got = params.get("min_doc_count", default)
    if not isinstance(got, int) or isinstance(got, bool) or got < 0:
        raise QueryError(f"aggregation [{name}]: [min_doc_count] must be greater than or equal to 0")
    return got
