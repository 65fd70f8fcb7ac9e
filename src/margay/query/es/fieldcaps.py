"""`_field_caps`: the capabilities of each field over a set of indices, computed from the OpenSearch mapping
margay gives each log type (store/mapping.py), in OpenSearch's shape (Kibana and OpenSearch Dashboards ask
this to build an index pattern). Engine-neutral: both engines hold the same fields."""

from __future__ import annotations

from fnmatch import fnmatchcase
from typing import Any

from ...errors import QueryError
from ...logtypes import LogType
from ...store.mapping import mapping_for

# OpenSearch 2.19's metadata fields: (type, searchable, aggregatable)
_META = {"_data_stream_timestamp": ("_data_stream_timestamp", False, False), "_doc_count": ("long", False, False),
         "_feature": ("_feature", False, False), "_field_names": ("_field_names", True, False),
         "_id": ("_id", True, True), "_ignored": ("_ignored", True, False), "_index": ("_index", True, True),
         "_nested_path": ("_nested_path", True, False), "_routing": ("_routing", True, False),
         "_seq_no": ("_seq_no", True, True), "_source": ("_source", False, False),
         "_version": ("_version", False, False)}
_NOT_AGGREGATABLE = {"text", "flat_object", "object", "nested", "match_only_text"}

Caps = tuple[str, bool, bool]
_CACHE: dict[str, dict[str, Caps]] = {}


def field_caps_of(lt: LogType) -> dict[str, Caps]:
    """Every field of the log type's mapping with (type, searchable, aggregatable), as OpenSearch lists them."""
    if lt.name in _CACHE:
        return _CACHE[lt.name]
    out: dict[str, Caps] = dict(_META)
    aliases: dict[str, str] = {}

    def leaf(path: str, spec: dict[str, Any]) -> Caps:
        kind = str(spec.get("type", "object"))
        searchable = spec.get("index", True) is not False and kind not in ("object", "nested")
        aggregatable = kind not in _NOT_AGGREGATABLE and spec.get("doc_values", True) is not False
        return kind, searchable, aggregatable

    objects: dict[str, Caps] = {}

    def walk(props: dict[str, Any], prefix: str) -> None:
        for name, spec in props.items():
            path = prefix + name
            kind = spec.get("type", "object")
            if kind == "alias":
                aliases[path] = spec["path"]
                continue
            if kind in ("object", "nested"):
                # an object is listed only as the parent of a concrete field (not of aliases alone, and not
                # when disabled), as OpenSearch lists them
                objects[path] = leaf(path, spec)
                if spec.get("enabled", True) is not False:
                    walk(spec.get("properties") or {}, path + ".")
                continue
            out[path] = leaf(path, spec)
            if kind == "flat_object":
                out[path + "."] = out[path]  # OpenSearch lists a flat_object's root twice
            for sub, sspec in (spec.get("fields") or {}).items():
                out[f"{path}.{sub}"] = leaf(f"{path}.{sub}", sspec)
            parts = path.split(".")
            for i in range(1, len(parts)):
                parent = ".".join(parts[:i])
                if parent in objects:
                    out[parent] = objects[parent]

    walk(mapping_for(lt).get("properties", {}), "")
    for name, target in aliases.items():
        if target in out:
            out[name] = out[target]
    _CACHE[lt.name] = out
    return out


def field_caps(indices: list[tuple[str, LogType]], fields: list[str], include_unmapped: bool) -> dict[str, Any]:
    """`_field_caps` over (index name, log type) pairs for the field names/patterns asked."""
    if not fields:
        raise QueryError("_field_caps: specify the fields to describe (fields=* for all)")
    per_field: dict[str, dict[str, list[tuple[str, bool, bool]]]] = {}  # field -> type -> [(index, s, a)]
    for index, lt in indices:
        caps_of = field_caps_of(lt)
        wanted = {n for n in caps_of if any(fnmatchcase(n, p) for p in fields)}
        for name in list(wanted):  # a field's parent objects come with it, as OpenSearch lists them
            parts = name.rstrip(".").split(".")
            wanted |= {p for p in (".".join(parts[:i]) for i in range(1, len(parts))) if p in caps_of}
        for name, (kind, s, a) in caps_of.items():
            if name in wanted:
                per_field.setdefault(name, {}).setdefault(kind, []).append((index, s, a))
    all_indices = sorted(i for i, _ in indices)
    out: dict[str, Any] = {}
    for name, by_type in per_field.items():
        covered = {i for rows in by_type.values() for i, _, _ in rows}
        if include_unmapped and len(covered) < len(all_indices):
            by_type["unmapped"] = [(i, False, False) for i in all_indices if i not in covered]
        entry: dict[str, Any] = {}
        for kind, rows in by_type.items():
            caps: dict[str, Any] = {"type": kind, "searchable": all(s for _, s, _ in rows),
                                    "aggregatable": all(a for _, _, a in rows)}
            if len(by_type) > 1:
                caps["indices"] = sorted(i for i, _, _ in rows)
            if not caps["searchable"] and any(s for _, s, _ in rows):
                caps["non_searchable_indices"] = sorted(i for i, s, _ in rows if not s)
            if not caps["aggregatable"] and any(a for _, _, a in rows):
                caps["non_aggregatable_indices"] = sorted(i for i, _, a in rows if not a)
            entry[kind] = caps
        out[name] = entry
    return {"indices": all_indices, "fields": out}
