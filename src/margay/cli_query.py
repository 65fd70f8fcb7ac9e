"""`margay query`: where it reads (a server, or a stopped server's data directory) and the table it prints.

Without --cluster it reads every cluster the caller may read, newest first; times print in UTC and the
flow table's `verdict` column names the policy that decided each flow.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from rich.table import Table

from .client import QUERY_PATHS, Client, local_client, server_url
from .logtypes import REGISTRY
from .logtypes.policy import verdict

QUERY_TYPES = tuple(QUERY_PATHS)

# The CLI's columns: the time first (UTC), then what tells records apart; flows carry their verdict.
COLUMNS: dict[str, list[str]] = {
    "flows": ["end_time", "cluster", "action", "verdict", "source_namespace", "source_name_aggr",
              "dest_namespace", "dest_name_aggr", "dest_port", "proto", "bytes_in", "bytes_out"],
    "dns": ["end_time", "cluster", "client_namespace", "client_name_aggr", "qname", "qtype", "rcode", "count"],
    "audit": ["requestReceivedTimestamp", "cluster", "verb", "user.username", "objectRef.resource",
              "objectRef.namespace", "objectRef.name", "responseStatus.code"],
    "bgp": ["logtime", "cluster", "host", "ip_version", "message"],
    "events": ["time", "cluster", "type", "severity", "origin", "source_namespace", "dest_ip", "description"],
    "l7": ["end_time", "cluster", "src_namespace", "dest_service_name", "method", "url", "response_code",
           "count", "duration_mean"],
    "waf": ["@timestamp", "cluster", "source.ip", "destination.namespace", "destination.name", "method", "path",
            "msg"],
    "policy_activity": ["last_evaluated", "cluster", "policy.kind", "policy.namespace", "policy.name", "rule"],
    "runtime": ["start_time", "cluster", "type", "pod.namespace", "pod.name", "file.path", "process_start.invocation",
                "count"],
}
COLUMNS["audit_ee"] = COLUMNS["audit_kube"] = COLUMNS["audit"]
TIME_FIELDS = {t: REGISTRY["audit_ee" if t.startswith("audit") else t].time_field for t in QUERY_TYPES}


class QueryUsageError(ValueError):
    """A mistake in how `margay query` was called; the message is one line that says what to do."""


def check_type(name: str) -> str:
    if name in QUERY_TYPES:
        return name
    close = difflib.get_close_matches(name, QUERY_TYPES, n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    raise QueryUsageError(f"unknown log type {name!r}: {hint}use one of {', '.join(QUERY_TYPES)}")


@contextmanager
def open_target(server: str | None, token: str | None, data_dir: Path) -> Iterator[Client]:
    """A client of --server, or of an in-process server over a stopped server's data directory."""
    if server:
        with Client(server_url(server), token) as client:
            yield client
        return
    if not (data_dir / "store").is_dir():
        shown = str(data_dir) if data_dir.is_absolute() or str(data_dir).startswith(".") else f"./{data_dir}"
        raise QueryUsageError(f"no --server given and {shown} holds no margay store: pass --server "
                              "http://HOST:PORT (or set MARGAY_SERVER), or --data-dir DIR of a stopped server")
    with local_client(data_dir) as client:  # a stopped server's: two processes on one store are not safe
        yield client


def request_body(log_type: str, selector: str, since: str, until: str, limit: int) -> dict[str, Any]:
    start = since if not since[:1].isdigit() or "T" in since else f"now-{since}"
    return {"time_range": {"from": start, "to": until}, "selector": selector, "max_page_size": limit,
            "sort": [{"field": TIME_FIELDS[log_type], "descending": True}]}


def readable_clusters(client: Client, log_type: str) -> list[str]:
    """The clusters holding logs of this type that the caller may read (from GET /api/v1/whoami)."""
    me = client.get("/api/v1/whoami")
    name = "audit" if log_type.startswith("audit") else log_type
    return sorted(me.get("readable", {}).get(name, {}))


def human_time(value: Any) -> str:
    """An epoch (s or ms) or RFC 3339 time as `YYYY-MM-DD HH:MM:SS` in UTC."""
    when: datetime | None = None
    if isinstance(value, int | float) and not isinstance(value, bool):
        when = datetime.fromtimestamp(value / 1000 if value > 1e11 else value, UTC)
    elif isinstance(value, str):
        try:
            when = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return value
        when = when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
    return when.strftime("%Y-%m-%d %H:%M:%S") if when else ""


def cell(item: dict[str, Any], path: str, time_field: str) -> str:
    if path == "verdict":
        return verdict((item.get("policies") or {}).get("enforced_policies") or [])
    value: Any = item.get(path) if path in item else item
    if path not in item:
        for part in path.split("."):
            value = value.get(part) if isinstance(value, dict) else None
    if value is None:
        return ""
    if path == time_field:
        return human_time(value)
    if isinstance(value, list | dict):
        return orjson.dumps(value).decode()
    return str(value)


def table(log_type: str, result: dict[str, Any], clusters: list[str]) -> Table:
    time_field = TIME_FIELDS[log_type]
    cols = COLUMNS[log_type]
    where = f"cluster {clusters[0]}" if len(clusters) == 1 else f"{len(clusters)} clusters ({', '.join(clusters)})"
    out = Table(title=f"{log_type}: {len(result['items'])} of {result.get('total_hits')} records in {where}, "
                      "newest first")
    for c in cols:
        out.add_column(f"{c} (UTC)" if c == time_field else c, overflow="fold")
    for item in result["items"]:
        out.add_row(*[cell(item, c, time_field) for c in cols])
    return out
