"""GlobalAlert evaluation (spec §13.2) in the engine: terms aggregations for `aggregateBy`, one metric over
the window otherwise, or one event per matching document; events carry deterministic ids."""

from __future__ import annotations

import hashlib
import operator
import re
from collections.abc import Callable
from datetime import datetime
from typing import Any

import orjson

from ..query.model import Query
from ..store.backend import Backend
from .resources import Alert

MAX_BUCKETS = 10_000
MAX_DOCS = 9_999  # the OpenSearch engine asks for size + 1, and its result window is 10 000
COMPARE: dict[str, Callable[[float, float], bool]] = {
    "eq": operator.eq, "not_eq": operator.ne, "lt": operator.lt, "lte": operator.le, "gt": operator.gt,
    "gte": operator.ge}
_VAR = re.compile(r"\$\{([^}]+)\}")


def _lookup(record: dict[str, Any], path: str) -> Any:
    if path in record:
        return record[path]
    value: Any = record
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def render(template: str, record: dict[str, Any]) -> str:
    """`${field}` replaced by the record's value (floats with one decimal); unknown fields stay as written."""
    def repl(m: re.Match[str]) -> str:
        v = _lookup(record, m.group(1))
        if v is None:
            return m.group(0)
        if isinstance(v, float):
            return f"{v:.1f}"
        return v if isinstance(v, str) else orjson.dumps(v).decode()
    return _VAR.sub(repl, template)


def _sides(alert: Alert, record: dict[str, Any]) -> dict[str, Any]:
    """Top-level source/dest fields copied from the record when present."""
    out: dict[str, Any] = {}
    for side in ("source", "dest"):
        for f in ("ip", "port", "namespace", "name", "name_aggr"):
            v = record.get(f"{side}_{f}")
            if v is not None and not isinstance(v, dict | list):
                out[f"{side}_{f}"] = v
    for f in ("ip", "namespace", "name", "name_aggr"):
        v = record.get(f"client_{f}")
        if v is not None and f"source_{f}" not in out:
            out[f"source_{f}"] = v
    if alert.data_set == "audit":
        raw = record.get("objectRef")
        ref: dict[str, Any] = raw if isinstance(raw, dict) else {}
        for f in ("name", "namespace"):
            v = record.get(f"objectRef.{f}", ref.get(f))
            if v is not None:
                out[f"source_{f}"] = v
        ips = record.get("sourceIPs")
        if isinstance(ips, list) and ips:
            out["source_ip"] = ips[0]
    if "source_port" in out and not isinstance(out["source_port"], int):
        out.pop("source_port")
    if "dest_port" in out and not isinstance(out["dest_port"], int):
        out.pop("dest_port")
    return out


def make_event(alert: Alert, record: dict[str, Any], now: datetime) -> dict[str, Any]:
    digest = hashlib.sha256(orjson.dumps(record, option=orjson.OPT_SORT_KEYS, default=str)).hexdigest()[:16]
    text = render(alert.summary or alert.description, record)
    return {"id": f"{alert.name}_{int(now.timestamp())}_{digest}", "time": int(now.timestamp()),
            "type": "global_alert", "description": text, "severity": alert.severity, "origin": alert.name,
            "name": alert.name, **_sides(alert, record), "record": record}


def _metric_agg(alert: Alert) -> dict[str, Any]:
    assert alert.metric is not None and alert.metric != "count"
    return {"m": {alert.metric: {"field": alert.field}}}


def _fires(alert: Alert, value: float | None) -> bool:
    if alert.metric is None:
        return True
    if value is None or alert.condition is None or alert.threshold is None:
        return False
    return COMPARE[alert.condition](float(value), alert.threshold)


def _buckets(agg: dict[str, Any], names: tuple[str, ...], depth: int, keys: dict[str, Any],
             out: list[tuple[dict[str, Any], dict[str, Any]]]) -> None:
    for b in agg.get(f"b{depth}", {}).get("buckets", []):
        k = {**keys, names[depth]: b.get("key_as_string", b.get("key"))}
        if depth + 1 < len(names):
            _buckets(b, names, depth + 1, k, out)
        else:
            out.append((k, b))
        if len(out) >= MAX_BUCKETS:
            return


def evaluate(backend: Backend, alert: Alert, now: datetime, *, start: datetime | None = None,
             clusters: list[str] | None = None) -> dict[str, list[dict[str, Any]]]:
    """The events an alert raises over [now - lookback, now] (or [start, now]), by cluster."""
    lts = alert.logtypes
    found = clusters if clusters is not None else sorted({c for lt in lts for c in backend.clusters(lt)})
    out: dict[str, list[dict[str, Any]]] = {}
    for cluster in found:
        q = Query(lts[0], [cluster], also=lts[1:], start=start or now - alert.lookback, end=now,
                  selector=alert.selector, selector_text=alert.query or None, now=now, size=MAX_DOCS,
                  total_hits=False)
        records: list[dict[str, Any]] = []
        if alert.aggregate_by:
            aggs: dict[str, Any] = {} if alert.metric in (None, "count") else _metric_agg(alert)
            for depth in reversed(range(len(alert.aggregate_by))):
                aggs = {f"b{depth}": {"terms": {"field": alert.aggregate_by[depth], "size": MAX_BUCKETS},
                                      **({"aggs": aggs} if aggs else {})}}
            result = backend.aggregate(q, aggs).result
            buckets: list[tuple[dict[str, Any], dict[str, Any]]] = []
            _buckets(result, alert.aggregate_by, 0, {}, buckets)
            for keys, b in buckets:
                value = b.get("doc_count") if alert.metric in (None, "count") else (b.get("m") or {}).get("value")
                if _fires(alert, value):
                    records.append({**keys, alert.metric or "count": value})
        elif alert.metric == "count":
            n = backend.count(q)
            if _fires(alert, n):
                records.append({"count": n})
        elif alert.metric is not None:
            value = (backend.aggregate(q, _metric_agg(alert)).result.get("m") or {}).get("value")
            if _fires(alert, value):
                records.append({alert.metric: value})
        else:
            records = [{k: v for k, v in doc.items() if not k.startswith("_")} for doc in backend.search(q).items]
        if records:
            out[cluster] = [make_event(alert, r, now) for r in records]
    return out
