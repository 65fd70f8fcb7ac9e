"""The Backend protocol every storage engine implements, and the value types it speaks."""

from __future__ import annotations

from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, Protocol

import pyarrow as pa

from ..logtypes import LogType


def index_name(lt: LogType, cluster: str, day: str) -> str:
    """Calico's index name for a (log type, cluster, day) partition."""
    return f"{lt.index_prefix}.{cluster}.{day}"


@dataclass(frozen=True)
class Partition:
    log_type: str
    cluster: str
    day: str  # yyyymmdd, UTC
    docs: int = 0
    bytes: int = 0

    @property
    def index(self) -> str:
        from ..logtypes import get

        return index_name(get(self.log_type), self.cluster, self.day)


@dataclass
class WriteResult:
    """What a batch write did; `duplicate` means the idempotency key was seen before."""

    stored: int
    duplicate: bool = False
    response: dict[str, Any] | None = None


@dataclass
class SearchResult:
    items: list[dict[str, Any]]
    total: int | None
    after_key: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class Backend(Protocol):
    """A store of partitioned log records. Writes are whole batches; reads compile a Query."""

    def write(self, lt: LogType, cluster: str, table: pa.Table, *, key: str | None,
              response: dict[str, Any]) -> Future[WriteResult]: ...

    def seen(self, lt: LogType, cluster: str, key: str) -> dict[str, Any] | None: ...

    def search(self, query: Any) -> SearchResult: ...

    def aggregate(self, query: Any, aggs: dict[str, Any]) -> dict[str, Any]: ...

    def partitions(self, lt: LogType | None = None, clusters: list[str] | None = None) -> list[Partition]: ...

    def drop(self, partition: Partition) -> int: ...

    def stats(self) -> dict[str, Any]: ...

    def close(self) -> None: ...
