"""The Backend protocol every storage engine implements, and the value types it speaks."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import TYPE_CHECKING, Any, Protocol

from ..logtypes import LogType
from ..query.model import Query
from ..query.restriction import NONE, Restriction

if TYPE_CHECKING:
    from ..ingest.parse import Converted
    from ..logtypes.base import QueryKey
    from ..query.graph import GraphRows, GraphSpec
    from ..query.selector import Node


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

    @cached_property  # named once: the embedded store keeps its Partitions between commits
    def index(self) -> str:
        from ..logtypes import get

        return index_name(get(self.log_type), self.cluster, self.day)


@dataclass
class SearchResult:
    items: list[dict[str, Any]]
    total: int | None
    after_key: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Aggregated:
    """Elasticsearch-shaped aggregation results, and which rows answered: "rollup" (pre-summed hours),
    "raw" (the records) or "native" (the engine's own aggregations)."""

    result: dict[str, Any]
    path: str


@dataclass(frozen=True)
class EsPlan:
    """One log type's part of an /es/ request as the caller may read it: clusters, per cluster the days
    (None: every day), and the reader's restriction (namespace scope). Engines answer for a list of them."""

    lt: LogType
    days: Mapping[str, frozenset[str] | None]
    restriction: Restriction = NONE

    @property
    def clusters(self) -> list[str]:
        return sorted(self.days)

    def query(self, now: datetime) -> Query:
        return Query(self.lt, self.clusters, size=0, now=now, restriction=self.restriction)


@dataclass(frozen=True)
class EsAnswer:
    """An Elasticsearch API answer: its HTTP status and JSON body (errors in Elasticsearch's envelope)."""

    status: int
    body: dict[str, Any]


@dataclass(frozen=True)
class GroupKey:
    """One key of a grouping: `name` in the answer, `field` a query key; records without the field are
    skipped unless `missing` (then they form a bucket of their own, keyed None)."""

    name: str
    field: str
    descending: bool = False
    missing: bool = False


@dataclass(frozen=True)
class GroupSpec:
    """A composite grouping with per-group metrics (Linseed's DNS and L7 flows, processes): buckets in key
    order, paged by the last bucket's key. Metrics are (name, field); means may weigh each value by a field;
    `distincts` count the different values of a single-valued field (Linseed's process instances)."""

    keys: tuple[GroupKey, ...]
    sums: tuple[tuple[str, str], ...] = ()
    mins: tuple[tuple[str, str], ...] = ()
    maxs: tuple[tuple[str, str], ...] = ()
    means: tuple[tuple[str, str, str | None], ...] = ()  # (name, field, weight field or None)
    distincts: tuple[tuple[str, str], ...] = ()

    @property
    def metric_names(self) -> list[str]:
        """The metrics' names in the order engines compute them."""
        return [n for n, _ in self.sums] + [n for n, _ in self.mins] + [n for n, _ in self.maxs] + \
            [n for n, _, _ in self.means] + [n for n, _ in self.distincts]

    @property
    def fields(self) -> list[str]:
        """Every field the grouping reads (its keys, its metrics and their weights)."""
        weights = [w for _, _, w in self.means if w is not None]
        return [k.field for k in self.keys] + [f for _, f in (*self.sums, *self.mins, *self.maxs, *self.distincts)] + \
            [f for _, f, _ in self.means] + weights


@dataclass(frozen=True)
class FieldValue:
    """A filter hint: one value of a field and how many records hold it."""

    value: str
    count: int

    def as_dict(self) -> dict[str, Any]:
        return {"value": self.value, "count": self.count}


Respond = Callable[["Converted"], dict[str, Any]]


class Backend(Protocol):
    """Everything margay asks of a store. Implementations: `store.duckdb.DuckDBBackend` (embedded, Parquet
    partitions) and `store.opensearch.OpenSearchBackend`; `tests/store/test_contract.py` runs the same
    tests on both. Every read takes a Query, whose `restriction` (the reader's grant) the engine applies:
    it filters the rows and withholds fields in what it returns, on every operation alike.
    """

    name: str

    # -- writes ------------------------------------------------------------------------------------------
    def ingest(self, lt: LogType, cluster: str, body: bytes, *, key: str | None, now: datetime,
               respond: Respond) -> tuple[dict[str, Any], bool]:
        """Convert, validate and store a batch durably; (response, replayed). `respond(converted)` builds
        the response stored with the idempotency key; a retried key returns it without storing again."""
        ...

    def seen(self, lt: LogType, cluster: str, key: str) -> dict[str, Any] | None: ...

    # -- reads -------------------------------------------------------------------------------------------
    def search(self, query: Query) -> SearchResult: ...

    def count(self, query: Query) -> int: ...

    def aggregate(self, query: Query, aggs: dict[str, Any]) -> Aggregated:
        """Elasticsearch-shaped aggregations; the engine picks roll-ups or raw rows itself."""
        ...

    def l3_flows(self, query: Query, offset: int) -> list[dict[str, Any]]:
        """Linseed L3Flow items (query/l3.py), bytes descending, `query.size + 1` from `offset`."""
        ...

    def flow_graph(self, query: Query, spec: GraphSpec) -> GraphRows: ...

    def distinct(self, query: Query, fields: list[str]) -> list[tuple[Any, ...]]:
        """Every distinct combination of top-level keyword `fields` over the query's rows, sorted (a GROUP BY /
        composite aggregation, never rows). For the server's own reads: a namespace-scoped restriction is
        refused (the values could name withheld endpoints)."""
        ...

    def field_values(self, query: Query, field: str, prefix: str, size: int) -> list[FieldValue]: ...

    def groups(self, query: Query, spec: GroupSpec, after: dict[str, Any] | None) -> list[dict[str, Any]]:
        """Up to `query.size + 1` groups of the query's records after the group keyed `after`, in key order
        (ascending keys: a missing value first; descending: last), as Elasticsearch's composite aggregation
        orders them: each `{"key": {name: value}, "doc_count": n, "metrics": {name: value}}`. Sums of no
        value are 0; a min, max or mean of no value is None."""
        ...

    # -- the Elasticsearch-compatible API (/es/): plans carry each index's readable clusters, days and
    # restriction; the embedded engine translates the DSL, OpenSearch answers a narrowed pass-through.
    def es_search(self, plans: list[EsPlan], body: dict[str, Any], *, now: datetime,
                  total_as_int: bool = False) -> EsAnswer: ...

    def es_count(self, plans: list[EsPlan], body: dict[str, Any], *, now: datetime) -> EsAnswer: ...

    # -- events ------------------------------------------------------------------------------------------
    def dismiss(self, query: Query, ids: list[str]) -> list[str]:
        """Mark the records of a query (one dismissable type, one cluster, as the reader sees them) with
        these ids dismissed, durably; returns the ids found."""
        ...

    def delete(self, query: Query, ids: list[str]) -> list[str]:
        """Delete the records of a query (one dismissable type, one cluster, as the reader sees them) with
        these ids, durably: no later read on any path returns them. Returns the ids found and deleted."""
        ...

    # -- the forwarders' feed: records in store order after a position -----------------------------------
    def head_seq(self) -> int: ...

    def safe_seq(self) -> int:
        """A position below which no write is still in flight: a feed read up to it never skips one."""
        ...

    def records_after(self, lt: LogType, after_seq: int, limit: int, *, upto: int | None = None,
                      where: Node | None = None) -> list[dict[str, Any]]:
        """Up to `limit` documents with after_seq < position <= upto, in order; each with `_seq` (its
        position) and `_time` (its time field, epoch seconds). `where`: a selector they must match."""
        ...

    def backlog(self, lt: LogType, after_seq: int, *, where: Node | None = None) -> tuple[int, float | None]:
        """(records after the position, epoch seconds the oldest of them was stored)."""
        ...

    def records_with_ips(self, lt: LogType, after_seq: int, fields: Sequence[str], ips: Sequence[str], limit: int,
                         *, upto: int | None = None, returning: Sequence[str] | None = None) -> list[dict[str, Any]]:
        """Like records_after, but only the documents whose value in one of `fields` (IP keys of `lt`) is in
        `ips` (addresses and CIDRs, IPv4 or IPv6; a bad member is a QueryError). The engine matches the whole
        set (the new records' distinct IPs looked up in the set's sorted numbers on the embedded store, `terms` on
        OpenSearch): only the hits come back, so a big threat feed costs one pass over the new records' IP
        columns, not a document per record. `returning`: only these fields of each document (declared fields,
        id, cluster, generated_time, @timestamp; anything else is a QueryError), as the whole document has
        them - what a matcher's event needs, without rendering the rest."""
        ...

    # -- partitions --------------------------------------------------------------------------------------
    def partitions(self, lt: LogType | None = None, clusters: list[str] | None = None) -> list[Partition]: ...

    def clusters(self, lt: LogType | None = None) -> list[str]: ...

    def drop(self, partition: Partition) -> int: ...

    def drop_many(self, partitions: Sequence[Partition]) -> dict[str, int]:
        """Drop several Calico indices at once (retention expires a type's day for every cluster together);
        returns the records removed per index name (0 for one already gone). The embedded engine rewrites each
        shared file once without all of them; OpenSearch deletes whole indices a few dozen per request and the
        given clusters' documents of an index it shares with others by id (`_bulk`)."""
        ...

    def stats(self) -> dict[str, Any]: ...

    def close(self) -> None: ...


def check_distinct(query: Query, fields: list[str]) -> None:
    """Backend.distinct's preconditions, the same on every engine."""
    from ..errors import Forbidden, QueryError

    if query.restriction.scoped:
        raise Forbidden("distinct values are not available to namespace-scoped readers")
    known = query.logtype.field_map
    bad = [f for f in fields if f not in known or "." in f]
    if not fields or bad:
        raise QueryError(f"distinct: {', '.join(bad) or 'no fields'}: give top-level fields of {query.logtype.name}")


def group_field(lt: LogType, field: str, *, numeric: bool = False) -> QueryKey:
    """Backend.groups' check of one key or metric field, the same on every engine: a known, single-valued field
    (numeric for a metric)."""
    from ..errors import QueryError
    from ..logtypes import Kind

    keys = lt.query_keys()
    if field not in keys:
        raise QueryError(f"unknown field {field!r} for {lt.name}")
    qk = keys[field]
    if qk.kind.is_list or qk.kind in (Kind.MAP, Kind.JSON, Kind.STRUCT, Kind.STRUCT_LIST):
        raise QueryError(f"cannot group by {field!r}: it holds a list or an object")
    if numeric and not qk.kind.is_numeric:
        raise QueryError(f"{field!r} is not numeric")
    return qk
