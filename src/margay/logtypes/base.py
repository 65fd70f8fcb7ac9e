"""How a log type is declared: its fields once, and everything else (DDL, parsing, query keys) derived."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

INT64 = (-(2**63), 2**63 - 1)  # what a stored integer holds (BIGINT, OpenSearch's long)


class Kind(Enum):
    """Field kinds; each maps to one DuckDB type, one ES mapping and one JSON shape."""

    KEYWORD = "keyword"
    TEXT = "text"
    IP = "ip"
    LONG = "long"
    INTEGER = "integer"
    DOUBLE = "double"
    BOOL = "boolean"
    EPOCH_S = "epoch_second"  # a date held as Unix seconds (flows' start_time/end_time)
    TIMESTAMP = "timestamp"  # a date given as RFC 3339 text or epoch seconds, stored as TIMESTAMPTZ
    KEYWORD_LIST = "keyword[]"
    IP_LIST = "ip[]"
    LONG_LIST = "long[]"
    STRUCT = "object"
    STRUCT_LIST = "nested"
    MAP = "flattened"  # free keys, string values (labels)
    JSON = "json"  # free-form object, kept verbatim

    @property
    def is_list(self) -> bool:
        return self in (Kind.KEYWORD_LIST, Kind.IP_LIST, Kind.LONG_LIST)

    @property
    def is_time(self) -> bool:
        return self in (Kind.EPOCH_S, Kind.TIMESTAMP)

    @property
    def is_numeric(self) -> bool:
        return self in (Kind.LONG, Kind.INTEGER, Kind.DOUBLE, Kind.EPOCH_S, Kind.LONG_LIST)


_SCALAR_SQL = {
    Kind.KEYWORD: "VARCHAR", Kind.TEXT: "VARCHAR", Kind.IP: "VARCHAR", Kind.LONG: "BIGINT",
    Kind.INTEGER: "INTEGER", Kind.DOUBLE: "DOUBLE", Kind.BOOL: "BOOLEAN", Kind.EPOCH_S: "BIGINT",
    Kind.TIMESTAMP: "TIMESTAMPTZ", Kind.KEYWORD_LIST: "VARCHAR[]", Kind.IP_LIST: "VARCHAR[]",
    Kind.LONG_LIST: "BIGINT[]", Kind.MAP: "MAP(VARCHAR, VARCHAR)", Kind.JSON: "JSON",
}

_IDENT = re.compile(r"^[A-Za-z_@][A-Za-z0-9_@]*$")


def quote_ident(name: str) -> str:
    """Quote a name that comes from margay's own registry (never from a request)."""
    if not _IDENT.match(name):
        raise ValueError(f"not a registry identifier: {name!r}")
    return '"' + name + '"'


@dataclass(frozen=True)
class Field:
    name: str
    kind: Kind
    doc: str = ""
    children: tuple[Field, ...] = ()
    allowed: tuple[str, ...] | None = None  # the only values accepted on ingest (checked in bulk)
    required: bool = False

    def sql_type(self, *, raw: bool = False) -> str:
        """The DuckDB type; `raw` is the type read from JSON before conversion (dates as text)."""
        if self.kind is Kind.STRUCT:
            return "STRUCT(" + ", ".join(f"{quote_ident(c.name)} {c.sql_type(raw=raw)}" for c in self.children) + ")"
        if self.kind is Kind.STRUCT_LIST:
            return "STRUCT(" + ", ".join(f"{quote_ident(c.name)} {c.sql_type(raw=raw)}" for c in self.children) + ")[]"
        if raw and self.kind is Kind.TIMESTAMP:
            return "VARCHAR"
        return _SCALAR_SQL[self.kind]

    def py_ok(self, value: Any) -> bool:
        """Whether a decoded JSON value fits this field (the slow path's per-line check)."""
        if value is None:
            return not self.required
        k = self.kind
        if k in (Kind.KEYWORD, Kind.TEXT, Kind.IP):
            return isinstance(value, str | int | float) and not isinstance(value, bool)
        if k in (Kind.LONG, Kind.INTEGER, Kind.EPOCH_S):
            return (isinstance(value, int) and not isinstance(value, bool)) or (
                isinstance(value, float) and value.is_integer()
            ) or (isinstance(value, str) and re.fullmatch(r"-?\d+", value) is not None)
        if k is Kind.DOUBLE:
            return isinstance(value, int | float) and not isinstance(value, bool)
        if k is Kind.BOOL:
            return isinstance(value, bool)
        if k is Kind.TIMESTAMP:
            return isinstance(value, str | int | float) and not isinstance(value, bool)
        if k in (Kind.KEYWORD_LIST, Kind.IP_LIST):
            return isinstance(value, list) and all(isinstance(v, str | int | float) or v is None for v in value)
        if k is Kind.LONG_LIST:
            return isinstance(value, list) and all(
                (isinstance(v, int) and not isinstance(v, bool)) or v is None for v in value)
        if k is Kind.MAP:
            return isinstance(value, dict) and all(
                isinstance(v, str | int | float | bool) or v is None for v in value.values())
        if k is Kind.JSON:
            return True
        if k is Kind.STRUCT:
            return isinstance(value, dict) and _children_ok(self.children, value)
        if k is Kind.STRUCT_LIST:
            return isinstance(value, list) and all(isinstance(v, dict) and _children_ok(self.children, v)
                                                   for v in value)
        return False

    def expect(self) -> str:
        """What the field takes, in words, for error messages."""
        words = {
            Kind.KEYWORD: "a string", Kind.TEXT: "a string", Kind.IP: "an IP address string",
            Kind.LONG: "an integer", Kind.INTEGER: "an integer", Kind.DOUBLE: "a number",
            Kind.BOOL: "true or false", Kind.EPOCH_S: "Unix seconds (an integer)",
            Kind.TIMESTAMP: "an RFC 3339 time or Unix seconds", Kind.KEYWORD_LIST: "a list of strings",
            Kind.IP_LIST: "a list of IP strings", Kind.LONG_LIST: "a list of integers",
            Kind.STRUCT: "an object", Kind.STRUCT_LIST: "a list of objects",
            Kind.MAP: "an object of string values", Kind.JSON: "any JSON value",
        }
        return words[self.kind]


def _children_ok(children: tuple[Field, ...], value: dict[str, Any]) -> bool:
    by_name = {c.name: c for c in children}
    return all(by_name[k].py_ok(v) for k, v in value.items() if k in by_name)


@dataclass(frozen=True)
class QueryKey:
    """A key of the selector language: a name users type and the SQL expression it reads.

    `sql` is built only from registry names; map keys supplied by users go in as parameters.
    """

    name: str
    kind: Kind
    sql: str
    es_field: str
    map_column: str | None = None  # for `labels.<k>` keys: the MAP column, the key is bound as a parameter


@dataclass(frozen=True)
class Rollup:
    """A log type's roll-up: the rows of a data file summed per hour of the time field and `dims`.

    Compaction writes one next to each data file it produces (store/rollup.py); aggregations that only
    group and filter by `dims` and sum, count, min or max `measures` read it instead of the raw rows.
    """

    dims: tuple[str, ...]  # scalar fields grouped by value (low cardinality)
    measures: tuple[str, ...]  # integer fields: their sum, min, max and non-null count are kept
    derived: tuple[tuple[str, str], ...] = ()  # extra group columns (name, SQL over a row), not query keys
    bucket_s: int = 3600


@dataclass(frozen=True)
class Side:
    """One endpoint of a record as a namespace-scoped read sees it (access/, query/restriction.py).

    A reader granted only namespaces N of a cluster sees a record when one of its sides' `namespace` is in N;
    the fields in `identity` of a side outside N are withheld. `nested` names a list of objects whose items
    are endpoints of their own (DNS servers): `namespace` and `identity` are then keys inside each item.
    """

    name: str  # as listed under "withheld": source, dest, client, object, server
    namespace: str  # the query key (or item key, when nested) holding the endpoint's namespace
    identity: tuple[str, ...] = ()  # fields that name the endpoint
    nested: str | None = None
    selects: bool = True  # whether this side being in scope makes a record visible


@dataclass(frozen=True)
class LogType:
    name: str  # margay's name, e.g. "flows"
    rbac: tuple[str, ...]  # RBAC resource names that grant it; first is canonical
    index_prefix: str  # e.g. tigera_secure_ee_flows
    time_field: str
    fields: tuple[Field, ...]
    retention_days: int
    retention_setting: str | None  # LogStorage spec.retention key, None when fixed
    native_formats: tuple[str, ...] = ("ndjson",)
    aliases: dict[str, str] = field(default_factory=dict)  # query-key alias -> key
    map_keys: tuple[str, ...] = ()  # MAP columns whose `<col>.<k>` keys are queryable
    json_keys: dict[str, tuple[str, str]] = field(default_factory=dict)  # key -> (JSON column, $.path)
    derived: dict[str, str] = field(default_factory=dict)  # field filled at ingest when missing -> SQL
    bulk_path: str = ""
    query_path: str = ""
    rollup: Rollup | None = None  # pre-aggregated sidecars written by compaction; None: none
    # Namespace scoping (beyond Calico): the record's endpoints, and the fields withheld whenever any
    # endpoint of a visible record is (text that may name it: process names, event descriptions).
    sides: tuple[Side, ...] = ()
    shared: tuple[str, ...] = ()
    default_window_s: int | None = None  # searches without a time range read the last N seconds
    dismissable: bool = False  # records carry `id` and `dismissed`, and Backend.dismiss sets the latter
    epoch_timestamp: bool = False  # documents carry `@timestamp` (the time field in epoch ms), as Calico's flows
    aggregation: str | None = None  # the key of its LogCollector aggregation levels (aggregate/ingest.py)
    envelope: str | None = None  # Linseed wraps each document as {"id": ..., <envelope>: {...}} on the wire
    range_field: str | None = None  # the field a Linseed time_range without `field` bounds, when not time_field
    range_from_only: bool = False  # Linseed bounds that field by time_range.from alone (at or after); `to` is ignored
    # One record per (cluster, these query keys): the one with the newest time field (ties: the first stored)
    # answers every read; the others are superseded (Linseed's upserted policy activity). See store/latest.py.
    latest_of: tuple[str, ...] = ()

    @property
    def scopable(self) -> bool:
        return any(s.selects for s in self.sides)

    @property
    def field_map(self) -> dict[str, Field]:
        return {f.name: f for f in self.fields}

    @property
    def time(self) -> Field:
        return self.field_map[self.time_field]

    def storage_columns(self) -> list[tuple[str, str]]:
        """(name, DuckDB type) of a partition table: the declared fields then the server's columns."""
        cols = [(f.name, f.sql_type()) for f in self.fields]
        cols += [("cluster", "VARCHAR"), ("generated_time", "TIMESTAMPTZ"), ("_seq", "BIGINT")]
        return cols

    def query_keys(self) -> dict[str, QueryKey]:
        """Every key the selector language accepts for this type, derived from the fields (built once;
        callers must not change the dict)."""
        cached: dict[str, QueryKey] | None = self.__dict__.get("_query_keys")
        if cached is None:
            cached = self.__dict__["_query_keys"] = self._build_query_keys()
        return cached

    def _build_query_keys(self) -> dict[str, QueryKey]:
        keys: dict[str, QueryKey] = {}
        for f in self.fields:
            col = quote_ident(f.name)
            if f.kind is Kind.STRUCT:
                for c in f.children:
                    if c.kind is Kind.STRUCT:  # an object in an object (runtime reports' process_start.hashes)
                        for g in c.children:
                            if g.kind not in (Kind.STRUCT, Kind.STRUCT_LIST, Kind.JSON):
                                name = f"{f.name}.{c.name}.{g.name}"
                                keys[name] = QueryKey(name, g.kind, f"{col}.{quote_ident(c.name)}.{quote_ident(g.name)}",
                                                      name)
                        continue
                    if c.kind in (Kind.STRUCT_LIST, Kind.JSON):
                        continue
                    keys[f"{f.name}.{c.name}"] = QueryKey(f"{f.name}.{c.name}", c.kind,
                                                          f"{col}.{quote_ident(c.name)}", f"{f.name}.{c.name}")
            elif f.kind is Kind.STRUCT_LIST:
                for c in f.children:
                    if c.kind in (Kind.STRUCT, Kind.STRUCT_LIST, Kind.JSON, Kind.MAP):
                        continue
                    if c.kind not in _LIST_OF and not c.kind.is_list:
                        continue  # no list kind to compare it as (WAF rules' `disruptive`): in /es/ nested only
                    listed = _LIST_OF.get(c.kind, c.kind)
                    expr = f"list_transform({col}, lambda x: x.{quote_ident(c.name)})"
                    if c.kind.is_list:
                        expr = f"flatten({expr})"
                    keys[f"{f.name}.{c.name}"] = QueryKey(f"{f.name}.{c.name}", listed, expr, f"{f.name}.{c.name}")
            elif f.kind is Kind.JSON:
                continue
            else:
                keys[f.name] = QueryKey(f.name, f.kind, col, f.name)
        keys["cluster"] = QueryKey("cluster", Kind.KEYWORD, '"cluster"', "cluster")
        keys["generated_time"] = QueryKey("generated_time", Kind.TIMESTAMP, '"generated_time"', "generated_time")
        for key, (column, path) in self.json_keys.items():
            keys[key] = QueryKey(key, Kind.KEYWORD, f"json_extract_string({quote_ident(column)}, '{path}')", key)
        for alias, target in self.aliases.items():
            if target in keys:
                keys[alias] = keys[target]
        return keys

    def map_key(self, key: str) -> QueryKey | None:
        """`client_labels.app` style keys: a MAP column and a user-given map key (bound as a parameter)."""
        for column in self.map_keys:
            if key.startswith(column + ".") and len(key) > len(column) + 1:
                return QueryKey(key, Kind.KEYWORD, "", key, map_column=column)
        return None


# Values kept as sent (Linseed returns what was stored): each data file carries, next to the typed columns,
# `_sent_<field>` (the JSON value sent, where the typed column renders it differently: a time's own text and
# precision, Unix seconds, an explicit null stored as the column's default) and `_extra` (the record's
# top-level keys that are no declared field, as a JSON object). Documents are rendered from both (store/sql.py).
SENT_PREFIX = "_sent_"
EXTRA_COLUMN = "_extra"


def sent_fields(lt: LogType) -> tuple[str, ...]:
    """The fields whose sent value is kept when their column renders it differently: times, defaulted
    booleans, and lists of objects (whose items' values may come as numbers where margay keeps text, as
    DNS `rrsets[].class` 1232 of an OPT record)."""
    return tuple(f.name for f in lt.fields
                 if f.kind in (Kind.TIMESTAMP, Kind.STRUCT_LIST) or (f.kind is Kind.BOOL and f.name in lt.derived))


def sent_columns(lt: LogType) -> tuple[str, ...]:
    """The storage columns of values kept as sent: `_sent_<field>` of each sent field, and `_extra`."""
    return (*(SENT_PREFIX + n for n in sent_fields(lt)), EXTRA_COLUMN)


def own_keys(lt: LogType) -> tuple[str, ...]:
    """Top-level keys a rendered document holds of its own (never kept in `_extra`): the declared fields,
    margay's fields, and the roots of query aliases (an index refuses a value at an alias path)."""
    keys = [f.name for f in lt.fields] + ["id", "cluster", "generated_time", "@timestamp", "margay_seq",
                                           "margay_id"]
    keys += [a.split(".", 1)[0] for a in lt.aliases]
    return tuple(dict.fromkeys(keys))


_LIST_OF = {Kind.KEYWORD: Kind.KEYWORD_LIST, Kind.IP: Kind.IP_LIST, Kind.TEXT: Kind.KEYWORD_LIST,
            Kind.LONG: Kind.LONG_LIST, Kind.INTEGER: Kind.LONG_LIST}


def f(name: str, kind: Kind, doc: str = "", **kw: Any) -> Field:
    return Field(name, kind, doc, **kw)
