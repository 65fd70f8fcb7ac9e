"""Elasticsearch field names of a log type resolved to registry SQL, with the kind and date format ES uses.

Only names from the registry (`LogType.query_keys()`) become SQL; a map key (`client_labels.app`) travels
as a bound parameter. Fields under a list of objects (`rrsets.name`, ES `nested`) resolve to the element
(`x."name"`) only inside a `nested` query, as in Elasticsearch, where they are invisible outside one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ...logtypes import Kind, LogType, quote_ident
from ...store.mapping import DATE_FORMAT, ID_FIELD, SEQ_FIELD

_LIST_OF = {Kind.KEYWORD: Kind.KEYWORD_LIST, Kind.IP: Kind.IP_LIST, Kind.TEXT: Kind.KEYWORD_LIST,
            Kind.LONG: Kind.LONG_LIST, Kind.INTEGER: Kind.LONG_LIST}


@dataclass(frozen=True)
class FieldRef:
    """A resolved field: SQL (registry names only) with bound params, its kind, and its ES date format."""

    name: str
    kind: Kind
    sql: str
    params: tuple[Any, ...] = ()
    date_format: str | None = None
    nested: str | None = None  # the nested path a field lives under (needs a `nested` query)
    children: tuple[str, ...] = ()  # for an object field: its leaf field names (exists on objects)

    @property
    def is_date(self) -> bool:
        return self.kind in (Kind.EPOCH_S, Kind.TIMESTAMP)

    def ms_sql(self) -> str:
        """The field as epoch milliseconds (dates) — the unit ES compares, sorts and buckets dates in."""
        if self.kind is Kind.EPOCH_S:
            return f"({self.sql} * 1000)"
        if self.kind is Kind.TIMESTAMP:
            return f"epoch_ms({self.sql})"
        return self.sql

    def ts_sql(self) -> str:
        """The field as a TIMESTAMPTZ."""
        if self.kind is Kind.EPOCH_S:
            return f"to_timestamp({self.sql})"
        return self.sql


def id_sql(lt: LogType) -> str:
    return 'coalesce("id", CAST("_seq" AS VARCHAR))' if "id" in lt.field_map else 'CAST("_seq" AS VARCHAR)'


class Fields:
    """Every ES field name of one log type (plus `_id`, `id`, `margay_seq`), within an optional nested scope."""

    def __init__(self, lt: LogType, nested: str | None = None) -> None:
        self.lt = lt
        self.keys = lt.query_keys()
        self.nested = nested

    def within(self, path: str) -> Fields:
        return Fields(self.lt, path)

    def nested_path(self, name: str) -> str | None:
        head = name.split(".", 1)[0]
        f = self.lt.field_map.get(head)
        return head if f is not None and f.kind is Kind.STRUCT_LIST else None

    def resolve(self, name: str) -> FieldRef | None:
        """The field, or None when the index has no such field (ES then matches nothing)."""
        lt = self.lt
        if name in ("_id", "id", ID_FIELD):
            return FieldRef(name, Kind.KEYWORD, id_sql(lt))
        if name == SEQ_FIELD:
            return FieldRef(name, Kind.LONG, '"_seq"')
        if name.endswith(".keyword"):  # text fields' keyword sub-field
            base = self.resolve(name[: -len(".keyword")])
            if base is not None and base.kind is Kind.TEXT:
                return FieldRef(name, Kind.KEYWORD, base.sql, base.params, None, base.nested)
        path = self.nested_path(name)
        if path is not None:
            parent = lt.field_map[path]
            child = {c.name: c for c in parent.children}.get(name[len(path) + 1:])
            if child is None or child.kind in (Kind.STRUCT, Kind.STRUCT_LIST, Kind.JSON):
                return None
            if self.nested == path:  # inside `nested`: the element of the list being tested
                if child.kind is Kind.MAP:
                    return None
                return FieldRef(name, child.kind, f"x.{quote_ident(child.name)}", (), _fmt(child.kind))
            return FieldRef(name, _LIST_OF.get(child.kind, child.kind), "", (), _fmt(child.kind), nested=path)
        if name == "@timestamp" and lt.epoch_timestamp:
            qk = self.keys[lt.time_field]
            return FieldRef(name, Kind.EPOCH_S, qk.sql, (), "epoch_millis")
        found = self.keys.get(name)
        if found is not None and found.kind not in (Kind.MAP, Kind.JSON):
            return FieldRef(name, found.kind, found.sql, (), _fmt(found.kind))
        mk = lt.map_key(name)
        if mk is not None and mk.map_column is not None:
            column = self.keys[mk.map_column].sql
            return FieldRef(name, Kind.KEYWORD, f"map_extract_value({column}, ?)", (name[len(mk.map_column) + 1:],))
        f = lt.field_map.get(name)
        if f is not None and f.kind is Kind.STRUCT:
            kids = tuple(f"{name}.{c.name}" for c in f.children if f"{name}.{c.name}" in self.keys)
            return FieldRef(name, Kind.STRUCT, "", children=kids)
        return None


def _fmt(kind: Kind) -> str | None:
    if kind is Kind.EPOCH_S:
        return "epoch_second"
    if kind is Kind.TIMESTAMP:
        return DATE_FORMAT
    return None
