"""What a hit shows beside `_source`: `fields` / `docvalue_fields` values and `highlight` fragments, computed
from the stored document and the log type's OpenSearch mapping (store/mapping.py) the way OpenSearch shows
them. Engine-neutral; the embedded engine calls it per hit (OpenSearch computes its own).

- `docvalue_fields` and `fields` name fields or wildcard patterns (aliases included, as OpenSearch lists
  them); dates print in the requested `format` or the mapping's first one, at millisecond precision; doc
  values of keyword fields come sorted and de-duplicated, as Lucene's sorted sets keep them; `fields`
  values come in `_source` order. `fields` wins over `docvalue_fields` for the same name.
- `highlight` marks the values of keyword fields that a term-level part of the query (term, terms, match,
  match_phrase, prefix, wildcard, query_string clauses; not `must_not`) matched, whole (a keyword value is
  one token), with `require_field_match` (default true) as in OpenSearch.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC
from fnmatch import fnmatchcase
from typing import Any

from ...errors import QueryError
from ...logtypes import LogType
from ...store.mapping import mapping_for
from .dates import format_ms, parse_date, to_ms
from .querystring import parse_query_string

_KEYWORDS = ("keyword", "constant_keyword", "wildcard")
_NUMBERS = ("long", "integer", "short", "byte", "double", "float", "half_float", "scaled_float", "unsigned_long")


@dataclass(frozen=True)
class Leaf:
    """One retrievable field of the mapping: its source path (an alias's target), type and date format."""

    path: str
    type: str
    format: str | None


_LEAVES: dict[str, dict[str, Leaf]] = {}


def leaves(lt: LogType) -> dict[str, Leaf]:
    """Every leaf field name of the log type's mapping (aliases and fields under `nested` objects too)."""
    if lt.name in _LEAVES:
        return _LEAVES[lt.name]
    out: dict[str, Leaf] = {}
    aliases: dict[str, str] = {}

    def walk(props: dict[str, Any], prefix: str) -> None:
        for name, spec in props.items():
            path = prefix + name
            kind = spec.get("type", "object")
            if kind == "alias":
                aliases[path] = spec["path"]
            elif "properties" in spec:
                walk(spec["properties"], path + ".")
            else:
                out[path] = Leaf(path, kind, spec.get("format"))
                for sub, sspec in (spec.get("fields") or {}).items():  # multi-fields (text.keyword)
                    out[f"{path}.{sub}"] = Leaf(path, sspec.get("type", kind), sspec.get("format"))

    walk(mapping_for(lt).get("properties", {}), "")
    for name, target in aliases.items():
        if target in out:
            out[name] = out[target]
    _LEAVES[lt.name] = out
    return out


def _values(doc: Any, path: str) -> list[Any]:
    """The values at a dotted path of a source document (lists of objects and of values flattened)."""
    nodes = [doc]
    for part in path.split("."):
        nxt: list[Any] = []
        for n in nodes:
            if isinstance(n, dict) and part in n:
                v = n[part]
                nxt += v if isinstance(v, list) else [v]
            elif isinstance(n, list):
                nxt += [x[part] for x in n if isinstance(x, dict) and part in x]
        nodes = nxt
    out: list[Any] = []
    for n in nodes:
        out += [x for x in n if x is not None] if isinstance(n, list) else ([] if n is None else [n])
    return out


def _java_hash(key: str) -> int:
    """java.lang.String.hashCode, spread as java.util.HashMap spreads it."""
    h = 0
    units = key.encode("utf-16-be")
    for i in range(0, len(units), 2):
        h = (31 * h + int.from_bytes(units[i:i + 2], "big")) & 0xFFFFFFFF
    return h ^ (h >> 16)


def _java_string(v: Any) -> str:
    """A value as Java's toString prints it (a flat_object's map, as OpenSearch's fields API shows it:
    java.util.HashMap's iteration order, by hash bucket, then insertion)."""
    if isinstance(v, dict):
        cap = 16
        while len(v) > cap * 3 // 4:
            cap *= 2
        keys = sorted(enumerate(v), key=lambda kv: (_java_hash(str(kv[1])) & (cap - 1), kv[0]))
        return "{" + ", ".join(f"{k}={_java_string(v[k])}" for _, k in keys) + "}"
    if isinstance(v, list):
        return "[" + ", ".join(_java_string(x) for x in v) + "]"
    if isinstance(v, bool):
        return "true" if v else "false"
    return "null" if v is None else str(v)


def _date_ms(v: Any, fmt: str | None) -> int | None:
    formats = fmt or "strict_date_optional_time||epoch_millis"
    if isinstance(v, bool):
        return None
    if isinstance(v, int | float):
        first_epoch = next((f for f in formats.split("||") if f.startswith("epoch_")), "epoch_millis")
        return int(v * 1000) if first_epoch == "epoch_second" else int(v)
    try:
        return to_ms(parse_date(str(v), formats, UTC)[0])
    except QueryError:
        return None


def _render(leaf: Leaf, values: list[Any], fmt: str | None, docvalues: bool) -> list[Any]:
    if leaf.type == "date":
        ms = [m for m in (_date_ms(v, leaf.format) for v in values) if m is not None]
        if docvalues:
            ms.sort()
        return [format_ms(m, fmt or leaf.format or "strict_date_optional_time") for m in ms]
    if fmt is not None and fmt != "use_field_mapping":
        raise QueryError(f"field [{leaf.path}] of type [{leaf.type}] does not support custom formats")
    if leaf.type in _NUMBERS:
        nums = []
        for v in values:
            try:
                n = float(v) if leaf.type in ("double", "float", "half_float", "scaled_float") else int(v)
            except (TypeError, ValueError):
                continue
            nums.append(n)
        return sorted(nums) if docvalues else nums
    if leaf.type == "boolean":
        bools = [v if isinstance(v, bool) else str(v) == "true" for v in values]
        return sorted(bools) if docvalues else bools
    strs = [v if isinstance(v, str) else _java_string(v) for v in values]
    if leaf.type == "text" and docvalues:
        raise QueryError(f"Can't load fielddata on [{leaf.path}] because fielddata is unsupported on fields of "
                         "type [text]. Use a field of type keyword instead.")
    if leaf.type in _KEYWORDS and docvalues:
        return sorted(set(strs))
    return strs


def _specs(raw: Any, what: str) -> list[tuple[str, str | None]]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise QueryError(f"[{what}] must be a list of field names or {{\"field\": …, \"format\": …}} objects")
    out: list[tuple[str, str | None]] = []
    for item in raw:
        if isinstance(item, str):
            out.append((item, None))
        elif isinstance(item, dict) and isinstance(item.get("field"), str) and \
                not set(item) - {"field", "format", "include_unmapped"}:
            fmt = item.get("format")
            if fmt is not None and not isinstance(fmt, str):
                raise QueryError(f"[{what}] format of [{item['field']}] must be a string")
            out.append((item["field"], fmt))
        else:
            raise QueryError(f"[{what}] cannot read {str(item)[:100]}: expected a field name or "
                             "{\"field\": …, \"format\": …}")
    return out


def wants_fields(body: dict[str, Any]) -> bool:
    return bool(body.get("docvalue_fields") or body.get("fields"))


def hit_fields(lt: LogType, doc: dict[str, Any], body: dict[str, Any]) -> dict[str, list[Any]]:
    """A hit's `fields`: docvalue_fields first, then fields (which win for the same name)."""
    known = leaves(lt)
    docvalues: dict[str, list[Any]] = {}
    fields: dict[str, list[Any]] = {}
    for what, dv, into in (("docvalue_fields", True, docvalues), ("fields", False, fields)):
        for pattern, fmt in _specs(body.get(what), what):
            wild = "*" in pattern or "?" in pattern
            names = [n for n in known if fnmatchcase(n, pattern)] if wild else [pattern] if pattern in known else []
            for name in names:
                leaf = known[name]
                if dv and wild and leaf.type in ("text", "flat_object"):
                    continue
                if dv and leaf.type == "flat_object":
                    raise QueryError(f"field [{name}] of type flat_object has no doc values to show")
                vals = _render(leaf, _values(doc, leaf.path), fmt, dv)
                if not vals:
                    continue
                # docvalue_fields naming a field twice show both; `fields` shows each name once
                into[name] = into.get(name, []) + vals if dv else vals
                if leaf.type == "flat_object" and wild:
                    into[name + "."] = vals  # OpenSearch lists a flat_object's root a second time, as `name.`
    return docvalues | fields


# -- highlight ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Mark:
    field: str
    kind: str  # "eq", "prefix", "wildcard"
    value: str

    def matches(self, v: str) -> bool:
        if self.kind == "eq":
            return v == self.value
        if self.kind == "prefix":
            return v.startswith(self.value)
        return fnmatchcase(v, self.value)


def _leaf_marks(q: dict[str, Any], out: list[Mark]) -> None:
    (kind, spec), = q.items()
    if kind in ("bool",) and isinstance(spec, dict):
        for occur in ("must", "filter", "should"):
            clauses = spec.get(occur) or []
            for c in clauses if isinstance(clauses, list) else [clauses]:
                marks(c, out)
    elif kind == "constant_score" and isinstance(spec, dict):
        marks(spec.get("filter"), out)
    elif kind == "query_string" and isinstance(spec, dict) and isinstance(spec.get("query"), str):
        df = spec.get("default_field")
        marks(parse_query_string(spec["query"], default_field=df if isinstance(df, str) else None,
                                 default_and=str(spec.get("default_operator", "or")).lower() == "and"), out)
    elif kind in ("term", "match", "match_phrase", "prefix", "wildcard") and isinstance(spec, dict) and len(spec) == 1:
        (name, v), = spec.items()
        if isinstance(v, dict):
            v = v.get("value", v.get("query", v.get("wildcard")))
        if isinstance(v, str | int | float) and not isinstance(v, bool):
            mk = {"prefix": "prefix", "wildcard": "wildcard"}.get(kind, "eq")
            out.append(Mark(name, mk, v if isinstance(v, str) else str(v)))
    elif kind == "multi_match" and isinstance(spec, dict) and isinstance(spec.get("query"), str | int | float):
        fields = spec.get("fields") or ["*"]
        for f in [fields] if isinstance(fields, str) else fields:
            if isinstance(f, str):  # a field pattern: matched against names when highlighting
                out.append(Mark(re.sub(r"\^[\d.]+$", "", f), "eq", str(spec["query"])))
    elif kind == "terms" and isinstance(spec, dict):
        for name, vals in spec.items():
            if isinstance(vals, list):
                out += [Mark(name, "eq", str(v)) for v in vals if isinstance(v, str | int | float)]


def marks(q: Any, out: list[Mark] | None = None) -> list[Mark]:
    """The term-level conditions of a query that a highlighter marks."""
    out = [] if out is None else out
    if isinstance(q, dict) and len(q) == 1:
        _leaf_marks(q, out)
    return out


def _tags(spec: dict[str, Any], key: str, default: str) -> str:
    tags = spec.get(key)
    if tags is None:
        return default
    if not isinstance(tags, list) or not tags or not all(isinstance(t, str) for t in tags):
        raise QueryError(f"highlight [{key}] must be a list of strings")
    return str(tags[0])


def check_highlight(raw: Any) -> None:
    if not isinstance(raw, dict) or not isinstance(raw.get("fields", {}), dict | list):
        raise QueryError("[highlight] must be an object with [fields]")
    allowed = {"fields", "pre_tags", "post_tags", "fragment_size", "number_of_fragments", "require_field_match",
               "type", "encoder", "order", "no_match_size", "tags_schema", "highlight_query", "max_analyzed_offset"}
    extra = set(raw) - allowed
    if extra:
        raise QueryError(f"[highlight] option [{sorted(extra)[0]}] is not supported")
    if raw.get("highlight_query") is not None or raw.get("no_match_size") or raw.get("tags_schema"):
        raise QueryError("[highlight] highlight_query, no_match_size and tags_schema are not supported")


def highlight(lt: LogType, doc: dict[str, Any], query: Any, raw: dict[str, Any],
              found: list[Mark] | None = None) -> dict[str, list[str]]:
    """A hit's `highlight`: keyword values the query matched, wrapped in the tags."""
    check_highlight(raw)
    pre, post = _tags(raw, "pre_tags", "<em>"), _tags(raw, "post_tags", "</em>")
    requested = raw.get("fields") or {}
    if isinstance(requested, list):
        requested = {k: v for item in requested if isinstance(item, dict) for k, v in item.items()}
    strict = raw.get("require_field_match", True) is not False
    known = leaves(lt)
    conds = marks(query) if found is None else found
    out: dict[str, list[str]] = {}
    def options(name: str, path: str) -> dict[str, Any]:
        # OpenSearch keys a field's options by the concrete field: an alias takes its target's
        for pat in [p for p in requested if fnmatchcase(path, p)] or [p for p in requested if fnmatchcase(name, p)]:
            return requested[pat] if isinstance(requested[pat], dict) else {}
        return {}

    for pattern in requested:
        for name in [n for n in known if fnmatchcase(n, pattern)]:
            if name in out:
                continue
            leaf = known[name]
            fspec = options(name, leaf.path)
            if leaf.type not in _KEYWORDS and leaf.type != "text":
                continue
            # a condition on a field or on an alias of it marks both (OpenSearch resolves aliases first)
            own = [c for c in conds if not strict or c.field == name or fnmatchcase(name, c.field)
                   or (c.field in known and known[c.field].path == leaf.path)]
            if not own:
                continue
            values = [v for v in _values(doc, leaf.path) if isinstance(v, str)]
            hits = [v for v in values if any(c.matches(v) for c in own)]
            if hits:
                p, q = _tags(fspec, "pre_tags", pre), _tags(fspec, "post_tags", post)
                n = fspec.get("number_of_fragments", raw.get("number_of_fragments", 5))
                hits = hits[: n] if isinstance(n, int) and n > 0 else hits
                out[name] = [f"{p}{v}{q}" for v in hits]
    return out

