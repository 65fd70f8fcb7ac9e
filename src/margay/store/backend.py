"""The Backend protocol every storage engine implements, and the value types it speaks."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

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
class SearchResult:
    items: list[dict[str, Any]]
    total: int | None
    after_key: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class Backend(Protocol):
    """A store of partitioned log records. Writes are whole NDJSON batches; reads compile a Query.

    Implementations: `store.duckdb.DuckDBBackend` (embedded, Parquet partitions) and
    `store.opensearch.OpenSearchBackend`; `tests/store/test_contract.py` runs the same tests on both.
    """

    name: str

    def ingest(self, lt: LogType, cluster: str, body: bytes, *, key: str | None, now: Any,
               respond: Any) -> tuple[dict[str, Any], bool]:
        """Convert, validate and store a batch durably; (response, replayed). `respond(converted)` builds
        the response stored with the idempotency key."""
        ...

    def seen(self, lt: LogType, cluster: str, key: str) -> dict[str, Any] | None: ...

    def search(self, query: Any) -> SearchResult: ...

    def partitions(self, lt: LogType | None = None, clusters: list[str] | None = None) -> list[Partition]: ...

    def clusters(self, lt: LogType | None = None) -> list[str]: ...

    def drop(self, partition: Partition) -> int: ...

    def stats(self) -> dict[str, Any]: ...

    def close(self) -> None: ...

    # Aggregations, L3 flows and filter hints: the embedded engine offers `run_over(query, build)` (the
    # API compiles them to SQL); OpenSearch offers `aggregate`, `l3_flows` and `field_values` natively.
