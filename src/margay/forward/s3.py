"""The S3 store: gzipped NDJSON objects at `<bucketPath>/<type>/<cluster>/<YYYYMMDD>/<HHMMSS>_<seq>.ndjson.gz`.

`YYYYMMDD` and `HHMMSS` are the UTC day and time of the object's first record (its time field, as the
partition day), `<seq>` its `_seq`: names are deterministic, so resending a batch after a crash writes
the same keys again (an overwrite, not a duplicate object). An object is rolled over by size
(`maxObjectBytes` of NDJSON before compression) and by age (`flushInterval`: how long a record may wait
for a fuller batch).
"""

from __future__ import annotations

import gzip
from datetime import UTC, datetime
from typing import Any

import orjson

from ..logtypes import LogType
from .config import StoreConfig


def s3_client(opts: dict[str, Any], timeout: float) -> Any:
    import boto3
    from botocore.config import Config

    kwargs: dict[str, Any] = {"region_name": opts["region"], "config": Config(
        s3={"addressing_style": "path" if opts.get("path_style") else "auto"}, signature_version="s3v4",
        retries={"max_attempts": 1}, connect_timeout=timeout, read_timeout=timeout)}
    if opts.get("endpoint"):
        kwargs["endpoint_url"] = opts["endpoint"]
    if opts.get("key_id"):
        kwargs["aws_access_key_id"], kwargs["aws_secret_access_key"] = opts["key_id"], opts["key_secret"]
    return boto3.session.Session().client("s3", **kwargs)


def object_key(prefix: str, lt: str, cluster: str, first: dict[str, Any]) -> str:
    t = datetime.fromtimestamp(first["_time"] or 0, UTC)
    name = f"{lt}/{cluster}/{t:%Y%m%d}/{t:%H%M%S}_{first['_seq']:016d}.ndjson.gz"
    return f"{prefix}/{name}" if prefix else name


class S3Sink:
    """Uploads each batch as one object per (cluster, day), split by size; acknowledged by PutObject."""

    def __init__(self, config: StoreConfig, client: Any = None) -> None:
        self.opts = config.options
        self.client = client or s3_client(self.opts, config.timeout)
        self.objects = 0

    def deliver(self, lt: LogType, records: list[dict[str, Any]]) -> int:
        groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for r in records:
            day = datetime.fromtimestamp(r["_time"] or 0, UTC).strftime("%Y%m%d")
            groups.setdefault((r.get("cluster") or "cluster", day), []).append(r)
        limit = self.opts["max_object_bytes"]
        for (cluster, _), group in groups.items():
            chunk: list[dict[str, Any]] = []
            lines: list[bytes] = []
            size = 0
            for r in group:
                line = orjson.dumps({k: v for k, v in r.items() if k not in ("_seq", "_time")}) + b"\n"
                if chunk and size + len(line) > limit:
                    self._put(lt, cluster, chunk, lines)
                    chunk, lines, size = [], [], 0
                chunk.append(r)
                lines.append(line)
                size += len(line)
            if chunk:
                self._put(lt, cluster, chunk, lines)
        return 0

    def _put(self, lt: LogType, cluster: str, chunk: list[dict[str, Any]], lines: list[bytes]) -> None:
        body = gzip.compress(b"".join(lines), compresslevel=6, mtime=0)
        self.client.put_object(Bucket=self.opts["bucket"], Key=object_key(self.opts["path"], lt.name, cluster, chunk[0]),
                               Body=body, ContentType="application/x-ndjson",
                               Metadata={"records": str(len(chunk)), "first-seq": str(chunk[0]["_seq"]),
                                         "last-seq": str(chunk[-1]["_seq"])})
        self.objects += 1

    def close(self) -> None:
        self.client.close()
