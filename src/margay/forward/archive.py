"""Bringing archives back: re-ingest the S3 store's objects for a time range (beyond Calico).

Objects are found by their keys (`<prefix>/<type>/<cluster>/<YYYYMMDD>/...`), so only the days of the
range are listed and read; records of the first and last day are filtered by their time field. Each
object is posted as one batch with the idempotency key `archive-<key>`, so re-running an import (within
the server's key memory) does not store it twice. Fields margay adds when it stores a record (`cluster`,
`generated_time`, `@timestamp`, and an `id` derived from `_seq`) are removed: the cluster comes from the
key, and the re-ingested records get a new `generated_time` and `_seq`.
"""

from __future__ import annotations

import gzip
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from ..logtypes import REGISTRY, Kind, LogType

_KEY = re.compile(r"(?:^|/)(?P<type>[a-z0-9_]+)/(?P<cluster>[^/]+)/(?P<day>\d{8})/(?P<time>\d{6})_(?P<seq>\d+)\.ndjson\.gz$")
ADDED = ("cluster", "generated_time", "@timestamp")


@dataclass(frozen=True)
class ArchivedObject:
    key: str
    log_type: str
    cluster: str
    day: str
    size: int


def _days(start: datetime, end: datetime) -> Iterator[str]:
    d = start.astimezone(UTC).date()
    while d <= end.astimezone(UTC).date():
        yield d.strftime("%Y%m%d")
        d += timedelta(days=1)


def list_archive(client: Any, bucket: str, prefix: str, start: datetime, end: datetime, *,
                 types: list[str] | None = None, clusters: list[str] | None = None) -> list[ArchivedObject]:
    """Archived objects whose day overlaps [start, end], in key order."""
    prefix = prefix.strip("/")
    base = prefix + "/" if prefix else ""
    days = set(_days(start, end))
    out: list[ArchivedObject] = []
    for lt in types or list(REGISTRY):
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=f"{base}{lt}/"):
            for obj in page.get("Contents", []):
                m = _KEY.search(obj["Key"][len(base):] if base else obj["Key"])
                if m is None or m["type"] != lt or m["day"] not in days:
                    continue
                if clusters and m["cluster"] not in clusters:
                    continue
                out.append(ArchivedObject(obj["Key"], lt, m["cluster"], m["day"], obj["Size"]))
    return sorted(out, key=lambda o: o.key)


def _record_time(lt: LogType, rec: dict[str, Any]) -> float | None:
    v = rec.get(lt.time_field)
    if v is None:
        return None
    if lt.time.kind is Kind.EPOCH_S:
        return float(v)
    try:
        return datetime.fromisoformat(str(v).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def restore_body(lt: LogType, data: bytes, start: datetime, end: datetime, *, whole_day: bool) -> tuple[bytes, int]:
    """An object's NDJSON ready to ingest again: margay's stored-time fields removed, clipped to the range."""
    lo, hi = start.timestamp(), end.timestamp()
    lines = []
    drop_id = "id" not in lt.field_map
    for line in gzip.decompress(data).splitlines():
        if not line.strip():
            continue
        rec = orjson.loads(line)
        if not whole_day:
            t = _record_time(lt, rec)
            if t is None or t < lo or t > hi:
                continue
        for k in ADDED:
            rec.pop(k, None)
        if drop_id:
            rec.pop("id", None)
        lines.append(orjson.dumps(rec))
    return b"\n".join(lines) + (b"\n" if lines else b""), len(lines)


Post = Callable[[str, str, bytes, str], dict[str, Any]]  # (log type, cluster, body, idempotency key) -> response


def import_archive(client: Any, bucket: str, prefix: str, start: datetime, end: datetime, post: Post, *,
                   types: list[str] | None = None, clusters: list[str] | None = None,
                   progress: Callable[[ArchivedObject, int], None] | None = None) -> dict[str, Any]:
    """Re-ingest archived records with time in [start, end]; returns counts per type and errors."""
    objects = list_archive(client, bucket, prefix, start, end, types=types, clusters=clusters)
    first, last = start.astimezone(UTC).strftime("%Y%m%d"), end.astimezone(UTC).strftime("%Y%m%d")
    day_start = start.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0) == start.astimezone(UTC)
    counts: dict[str, int] = {}
    failed = 0
    for obj in objects:
        lt = REGISTRY[obj.log_type]
        whole = (obj.day != first or day_start) and obj.day != last
        data = client.get_object(Bucket=bucket, Key=obj.key)["Body"].read()
        body, n = restore_body(lt, data, start, end, whole_day=whole)
        if n:
            resp = post(obj.log_type, obj.cluster, body, "archive-" + obj.key)
            counts[obj.log_type] = counts.get(obj.log_type, 0) + int(resp.get("succeeded", n))
            failed += int(resp.get("failed", 0))
        if progress is not None:
            progress(obj, n)
    return {"objects": len(objects), "records": counts, "failed": failed}
