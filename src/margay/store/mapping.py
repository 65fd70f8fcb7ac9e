"""OpenSearch/Elasticsearch mappings and index templates, derived from the log type registry.

Calico's field names and types (spec §1–§8), `dynamic: false`, Calico's query-convenience aliases, and
margay's own fields: `cluster`, `generated_time`, `margay_seq` (the store-wide paging tie-breaker and
forwarder cursor, `_seq` on the embedded store) and `margay_id` (the document id, a total-order tie-break).

Choices where Calico's template and margay's registry differ:
- Single objects (`source_labels`, `dest_labels`, `policies`) map as `object`, not `nested`: for one object a
  nested mapping changes only the query syntax (every query must be wrapped in `nested`), never the answers,
  and margay's selector compiler and aggregations address these keys as plain dotted fields. Lists of
  objects (`rrsets`, `servers`) are `nested`, as the selector compiler expects.
- Maps (labels, annotations) are `flat_object` (OpenSearch 2.7+; Elasticsearch calls it `flattened`):
  term, terms, wildcard, prefix and exists on `<map>.<key>` work; aggregations on them do not (OpenSearch
  2.19 returns wrong buckets), and margay's aggregations do not offer map keys.
- JSON fields (request/response objects, event records) are kept in `_source` but not indexed, except the
  paths the registry makes queryable (`json_keys`), mapped as keyword.
- Text fields get a `keyword` sub-field so that `=`, IN and wildcards compare whole values, as they do on
  the embedded store (see `exact_field`).
- Flows' `@timestamp` is a real date (end_time in ms, written on ingest); elsewhere it is an alias.
"""

from __future__ import annotations

from typing import Any

from ..logtypes import Field, Kind, LogType

SHARDS = 1
REPLICAS = 0
DATE_FORMAT = "strict_date_optional_time||epoch_second"
SEQ_FIELD = "margay_seq"
ID_FIELD = "margay_id"
KEYWORD_SUBFIELD = "keyword"
FLAT_OBJECT = "flat_object"  # Elasticsearch: "flattened"

_SCALAR: dict[Kind, dict[str, Any]] = {
    Kind.KEYWORD: {"type": "keyword"},
    Kind.TEXT: {"type": "text", "fields": {KEYWORD_SUBFIELD: {"type": "keyword", "ignore_above": 8191}}},
    # Calico sets null_value 0.0.0.0; margay keeps null as missing so `!=`/NOT agree with the embedded store.
    # ignore_malformed: ingest refuses a value the `ip` type does not index (ingest/ips.py), on both engines; a
    # document written otherwise (by an older margay, or straight into the index) keeps it, just not indexed.
    Kind.IP: {"type": "ip", "ignore_malformed": True},
    Kind.LONG: {"type": "long"},
    Kind.INTEGER: {"type": "integer"},
    Kind.DOUBLE: {"type": "double"},
    Kind.BOOL: {"type": "boolean"},
    Kind.EPOCH_S: {"type": "date", "format": "epoch_second"},
    Kind.TIMESTAMP: {"type": "date", "format": DATE_FORMAT},
    Kind.KEYWORD_LIST: {"type": "keyword"},
    Kind.IP_LIST: {"type": "ip", "ignore_malformed": True},
    Kind.LONG_LIST: {"type": "long"},
    Kind.MAP: {"type": FLAT_OBJECT},
    Kind.JSON: {"type": "object", "enabled": False},
}


def field_mapping(f: Field) -> dict[str, Any]:
    """One registry field as an ES property."""
    if f.kind is Kind.STRUCT:
        return {"type": "object", "properties": {c.name: field_mapping(c) for c in f.children}}
    if f.kind is Kind.STRUCT_LIST:
        return {"type": "nested", "properties": {c.name: field_mapping(c) for c in f.children}}
    return dict(_SCALAR[f.kind])


def _put_path(props: dict[str, Any], dotted: str, value: dict[str, Any]) -> bool:
    """Place `value` at a dotted path of object properties; False when the path collides with a field."""
    *parents, leaf = dotted.split(".")
    here = props
    for p in parents:
        node = here.setdefault(p, {"type": "object", "properties": {}})
        if node.get("type") != "object" or "properties" not in node:
            return False
        here = node["properties"]
    if leaf in here:
        return False
    here[leaf] = value
    return True


def mapping_for(lt: LogType) -> dict[str, Any]:
    """The `mappings` body of a log type's indices."""
    props: dict[str, Any] = {f.name: field_mapping(f) for f in lt.fields}
    # Free-form JSON stays unindexed, except the keys the selector language offers (audit responseObject.kind).
    for column, path in lt.json_keys.values():
        if props.get(column, {}).get("enabled") is False:
            props[column] = {"type": "object", "dynamic": False, "properties": {}}
        if props.get(column, {}).get("type") == "object":
            _put_path(props[column]["properties"], path.removeprefix("$."), {"type": "keyword", "ignore_above": 1024})
    # A field stored as its default when sent null (events' `dismissed`) keeps null in `_source`, as sent;
    # null_value indexes it as the default, so filters agree with the embedded store's column.
    for f in lt.fields:
        if f.kind is Kind.BOOL and f.name in lt.derived:
            props[f.name]["null_value"] = False
    props["cluster"] = {"type": "keyword"}
    props["generated_time"] = {"type": "date", "format": DATE_FORMAT}
    props[SEQ_FIELD] = {"type": "long"}
    props[ID_FIELD] = {"type": "keyword"}
    if "id" not in props:
        props["id"] = {"type": "keyword"}
    if lt.epoch_timestamp:
        props["@timestamp"] = {"type": "date", "format": "epoch_millis"}  # written on ingest = end_time * 1000
    for alias, target in sorted(lt.aliases.items()):
        if target not in props or alias in props:
            continue
        _put_path(props, alias, {"type": "alias", "path": target})
    return {"dynamic": False, "properties": props}


def template_name(lt: LogType, prefix: str = "") -> str:
    return f"{prefix}{lt.index_prefix}"


def index_pattern(lt: LogType, prefix: str = "") -> str:
    """Every daily index of a log type: `tigera_secure_ee_<type>.*` (after an optional test prefix)."""
    return f"{prefix}{lt.index_prefix}.*"


def template_for(lt: LogType, prefix: str = "", *, shards: int = SHARDS, replicas: int = REPLICAS
                 ) -> dict[str, Any]:
    """A composable index template (`PUT _index_template/<name>`) for the log type's daily indices."""
    return {
        "index_patterns": [index_pattern(lt, prefix)],
        "priority": 100,
        "template": {
            "settings": {"index": {"number_of_shards": shards, "number_of_replicas": replicas,
                                   "refresh_interval": "1s"}},
            "mappings": mapping_for(lt),
        },
        "_meta": {"managed_by": "margay", "log_type": lt.name},
    }


def exact_field(lt: LogType, es_field: str) -> str:
    """The field that holds whole values of `es_field`: `<text>.keyword` for text fields, else itself."""
    f = _field_at(lt, es_field)
    if f is not None and f.kind is Kind.TEXT:
        return f"{es_field}.{KEYWORD_SUBFIELD}"
    return es_field


def nested_path(lt: LogType, es_field: str) -> str | None:
    """The nested path (a list of objects) that `es_field` lives under, if any."""
    head = es_field.split(".", 1)[0]
    f = lt.field_map.get(head)
    return head if f is not None and f.kind is Kind.STRUCT_LIST and "." in es_field else None


def _field_at(lt: LogType, es_field: str) -> Field | None:
    target = lt.aliases.get(es_field, es_field)
    head, _, rest = target.partition(".")
    f = lt.field_map.get(head)
    while f is not None and rest:
        name, _, rest = rest.partition(".")
        f = {c.name: c for c in f.children}.get(name)
    return f


__all__ = ["mapping_for", "template_for", "template_name", "index_pattern", "exact_field", "nested_path",
           "field_mapping", "SEQ_FIELD", "ID_FIELD", "DATE_FORMAT"]
