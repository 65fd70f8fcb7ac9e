"""Linseed's event statistics (`POST /api/v1/events/statistics`, EventStatisticsParams → EventStatistics).

The body is an events read (time_range, selector, id, ...) plus what to compute:

- `field_values`: per field (`type`, `name`, `severity`, `source_namespace`, `dest_namespace`, `source_name`,
  `dest_name`, `attack_vector`, `mitre_tactic`, `mitre_ids`) `{"count": true}` for its distinct values and how
  many events hold each (`[{value, count}]`, most common first), with `"group_by_severity": true` also per
  severity (`by_severity: [{value, count}]`);
- `severity_histograms`: `[{name, selector}]`, events per day among those that also match the selector,
  answered as `{name: [{time: <epoch ms>, value: <count>}]}`.

Everything is aggregations in the engine (Backend.aggregate), so both engines answer alike.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.routing import Route

from ..errors import QueryError
from ..logtypes import REGISTRY
from ..query.linseed import combine
from ..query.selector import parse_selector
from .common import JSONResponse, json_body
from .logs import _timed, build_query

FIELDS = ("type", "name", "severity", "source_namespace", "dest_namespace", "source_name", "dest_name",
          "attack_vector", "mitre_tactic", "mitre_ids")
MAX_VALUES = 10_000
MAX_HISTOGRAMS = 20


def _field_params(body: dict[str, Any]) -> dict[str, dict[str, bool]]:
    raw = body.get("field_values")
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise QueryError("field_values: expected an object of field -> {count, group_by_severity}")
    out: dict[str, dict[str, bool]] = {}
    for name, p in raw.items():
        if name not in FIELDS:
            raise QueryError(f"field_values.{name}: not a field with statistics; use {', '.join(FIELDS)}")
        if p is None:
            continue
        if not isinstance(p, dict) or set(p) - {"count", "group_by_severity"} or not all(
                isinstance(v, bool) for v in p.values()):
            raise QueryError(f"field_values.{name}: expected {{\"count\": BOOL, \"group_by_severity\": BOOL}}")
        if p.get("count") or p.get("group_by_severity"):
            out[name] = {"count": bool(p.get("count")), "group_by_severity": bool(p.get("group_by_severity"))}
    return out


def _histogram_params(body: dict[str, Any]) -> list[tuple[str, str]]:
    raw = body.get("severity_histograms") or []
    if not isinstance(raw, list) or len(raw) > MAX_HISTOGRAMS:
        raise QueryError(f"severity_histograms: expected a list of at most {MAX_HISTOGRAMS} {{name, selector}}")
    out = []
    for i, h in enumerate(raw):
        if not isinstance(h, dict) or not isinstance(h.get("name"), str) or not h["name"]:
            raise QueryError(f"severity_histograms[{i}]: expected {{\"name\": NAME, \"selector\": SELECTOR}}")
        selector = h.get("selector") or ""
        if not isinstance(selector, str):
            raise QueryError(f"severity_histograms[{i}].selector: expected a string")
        out.append((h["name"], selector))
    return out


def _severity(value: Any) -> int:
    return int(float(value))


async def event_statistics(request: Request) -> JSONResponse:
    m = request.app.state.margay
    body = await json_body(request)
    if body.get("sort"):
        raise QueryError("sort: event statistics are not sorted (Linseed refuses sort here too)")
    fields = _field_params(body)
    histograms = _histogram_params(body)
    lt = REGISTRY["events"]
    query = build_query(request, body, lt)
    out: dict[str, Any] = {}
    if fields:
        aggs: dict[str, Any] = {}
        for name, p in fields.items():
            agg: dict[str, Any] = {"terms": {"field": name, "size": MAX_VALUES}}
            if p["group_by_severity"] and name != "severity":
                agg["aggs"] = {"sev": {"terms": {"field": "severity", "size": MAX_VALUES}}}
            aggs[name] = agg
        result = (await _timed(request, "statistics", m.backend.aggregate, query, aggs)).result
        values: dict[str, Any] = {}
        for name in fields:
            rows = []
            for b in result.get(name, {}).get("buckets", []):
                row: dict[str, Any] = {"value": _severity(b["key"]) if name == "severity" else str(b["key"]),
                                       "count": int(b["doc_count"])}
                if "sev" in b:
                    row["by_severity"] = [{"value": _severity(s["key"]), "count": int(s["doc_count"])}
                                          for s in b["sev"]["buckets"]]
                rows.append(row)
            values[name] = rows
        out["field_values"] = values
    if histograms:
        out["severity_histograms"] = {}
        base = query.selector
        for name, text in histograms:
            query.selector = combine(base, parse_selector(text) if text.strip() else None)
            query.selector_text = text or None
            aggs = {"h": {"date_histogram": {"field": "time", "fixed_interval": "1d"}}}
            result = (await _timed(request, "statistics", m.backend.aggregate, query, aggs)).result
            out["severity_histograms"][name] = [{"time": float(b["key"]), "value": int(b["doc_count"])}
                                                for b in result.get("h", {}).get("buckets", []) if b["doc_count"]]
        query.selector = base
    m.access_log(request, lt, query, None)
    return JSONResponse(out)


def routes() -> list[Route]:
    return [Route("/api/v1/events/statistics", event_statistics, methods=["POST"])]
