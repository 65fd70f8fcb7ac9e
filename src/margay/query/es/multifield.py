"""Queries over several fields: `multi_match`, and `query_string` terms without a field (Elasticsearch's
`index.query.default_field` `*`: every field, leniently). On keyword fields a value is one token, so every
`multi_match` type but the prefix ones means "the value equals the query in one of the fields"; fields
whose type cannot hold the value (a word in a number field) match nothing when lenient, and are a 400
otherwise, as in Elasticsearch. Analyzed text fields are refused (margay does not analyze text)."""

from __future__ import annotations

import re
from fnmatch import fnmatchcase
from typing import TYPE_CHECKING, Any

from ...errors import QueryError
from ...logtypes import Kind
from .hitfields import leaves

if TYPE_CHECKING:
    from .dsl import QueryCompiler, Sql

_TYPES = {"best_fields", "most_fields", "cross_fields", "phrase"}
_PARAMS = {"query", "fields", "type", "operator", "lenient", "tie_breaker", "minimum_should_match", "analyzer",
           "zero_terms_query", "auto_generate_synonyms_phrase_query", "fuzzy_transpositions", "boost", "_name",
           "slop"}


def expand(compiler: QueryCompiler, patterns: list[str]) -> list[str]:
    """The searchable field names the patterns (`name`, `name*`, `*`, `name^2`) cover, in mapping order."""
    known = leaves(compiler.fields.lt)
    out: list[str] = []
    for raw in patterns:
        if not isinstance(raw, str):
            raise QueryError("[multi_match] [fields] must be a list of field names")
        pattern = re.sub(r"\^[\d.]+$", "", raw)  # boosts change scores only
        names = [n for n in known if fnmatchcase(n, pattern)] if ("*" in pattern or "?" in pattern) else [pattern]
        out += [n for n in names if n not in out]
    return out


def match_any(compiler: QueryCompiler, text: Any, patterns: list[str], lenient: bool) -> Sql:
    """`text` equal to the value of any of the fields."""
    known = leaves(compiler.fields.lt)
    parts: list[Sql] = []
    for name in expand(compiler, patterns):
        leaf = known.get(name)
        if leaf is not None and leaf.type == "flat_object":  # a label map: any of its values
            key = compiler.fields.keys.get(name)
            if key is not None and key.kind is Kind.MAP and compiler.fields.nested_path(name) is None:
                parts.append((f"coalesce(list_contains(map_values({key.sql}), ?), FALSE)", [str(text)]))
            continue  # (a map under a nested list is not searched outside a nested query, as in Elasticsearch)
        if leaf is not None and leaf.type in ("object", "nested"):
            continue
        if leaf is not None and leaf.type in ("text", "match_only_text"):
            raise QueryError(f"[{name}] is an analyzed text field: full-text search is not supported; name the "
                             "fields to search (their .keyword sub-fields for whole values)")
        try:
            parts.append(compiler.compile({"match": {name: {"query": text}}}))
        except QueryError:
            if not lenient:
                raise
    if not parts:
        return "FALSE", []
    return "(" + " OR ".join(f"({s})" for s, _ in parts) + ")", [p for _, ps in parts for p in ps]


def multi_match(compiler: QueryCompiler, body: Any) -> Sql:
    if not isinstance(body, dict) or "query" not in body:
        raise QueryError("[multi_match] requires a [query]")
    extra = set(body) - _PARAMS
    if extra:
        raise QueryError(f"[multi_match] parameter {sorted(extra)[0]!r} is not supported by margay's ES API")
    kind = body.get("type", "best_fields")
    if kind not in _TYPES:
        raise QueryError(f"[multi_match] type [{kind}] is not supported (phrase_prefix and bool_prefix are not)")
    if body.get("fuzziness") is not None:
        raise QueryError("[multi_match] fuzziness is not supported")
    fields = body.get("fields") or ["*"]
    if isinstance(fields, str):
        fields = [fields]
    lenient = body.get("lenient") is True or fields == ["*"]
    text = body["query"]
    if not isinstance(text, str | int | float) or isinstance(text, bool):
        raise QueryError("[multi_match] [query] must be a string or a number")
    return match_any(compiler, text, list(fields), lenient)
