"""The typed read of ingest in C, for log types whose columns are integers, strings, string maps, JSON, lists and
structs of them (flows, L7, DNS, audit, BGP...).

`ArrowReader.table(bodies)` parses NDJSON bodies straight into an Arrow table of the declared columns (plus
`ordinality`, 1-based, as read_json's WITH ORDINALITY gives it, and the text as sent of the fields a plan keeps
as sent), which the conversion's SELECT then reads, FROM `source`, as it reads read_json (ingest/_columns.c says
what it accepts). It answers None when it declines a body -- a value of another type than its column's, an
undeclared or repeated key, anything not plainly JSON -- and the caller converts the old way, which names the
bad lines. The same rows come out either way (tests/ingest/test_columns.py and test_columns_sent.py compare them).

Why: DuckDB's read_json spent ~2.5 us of a 1.5 kB flow's ~6 us COPY on the parse and binding its 63 typed
columns cost every statement 5-7 ms, most of a small group commit's cost
(bench/results/before-after/README.md, "Ingest CPU: flows and L7 parsed in C straight into Arrow columns").
DNS and audit took read_json's way with a second parse of every record as a whole object (for the values kept as
sent) until the parser read their maps and JSON values and gave each kept field's text ("Ingest CPU: DNS and
audit through the C parser").
"""

from __future__ import annotations

import re
import threading
from array import array
from collections.abc import Sequence
from typing import Any

import pyarrow as pa

try:
    from ._columns import Parser
except ImportError:  # built without a C compiler: read_json does it all
    Parser = None

INT, STR, LIST, STRUCT, SKIP, MAP, JSON, TEXT, BOOL, IP = 1, 2, 3, 4, 5, 6, 7, 8, 9, 10
TEXT_PREFIX = "_text_"  # the column of a field's value's text as sent (`texts`): `_text_<field>`
_FIELD = re.compile(r'\s*"((?:[^"]|"")+)"\s+')
Spec = tuple[str, int, tuple[Any, ...]]


def _parse_type(sql: str, pos: int = 0) -> tuple[tuple[int, tuple[Any, ...], pa.DataType], int] | None:
    """One DuckDB type of the supported grammar from sql[pos:]: (kind, children, Arrow type), end; None else."""
    if sql.startswith("BIGINT", pos):
        found: tuple[int, tuple[Any, ...], pa.DataType] = (INT, (), pa.int64())
        pos += 6
    elif sql.startswith("VARCHAR", pos):
        found, pos = (STR, (), pa.string()), pos + 7
    elif sql.startswith("BOOLEAN", pos):
        found, pos = (BOOL, (), pa.bool_()), pos + 7
    elif sql.startswith("MAP(VARCHAR, VARCHAR)", pos):
        found, pos = (MAP, (), pa.map_(pa.string(), pa.string())), pos + 21
    elif sql.startswith("JSON", pos):  # the value's text as sent: `source` normalizes it as read_json does
        found, pos = (JSON, (), pa.string()), pos + 4
    elif sql.startswith("STRUCT(", pos):
        pos += 7
        fields: list[Spec] = []
        arrow: list[pa.Field] = []
        while True:
            m = _FIELD.match(sql, pos)
            if m is None:
                return None
            name = m.group(1).replace('""', '"')
            inner = _parse_type(sql, m.end())
            if inner is None:
                return None
            (kind, children, typ), pos = inner
            fields.append((name, kind, children))
            arrow.append(pa.field(name, typ))
            if sql.startswith(", ", pos):
                pos += 2
                continue
            if sql.startswith(")", pos):
                pos += 1
                break
            return None
        found = (STRUCT, tuple(fields), pa.struct(arrow))
    else:
        return None
    while sql.startswith("[]", pos):
        kind, children, typ = found
        found = (LIST, (("l", kind, children),), pa.list_(pa.field("l", typ)))
        pos += 2
    return found, pos


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _normalized(expr: str, kind: int, children: tuple[Any, ...]) -> str | None:
    """The SQL that gives a column read_json's value when its JSON parts hold their text as sent (None: it needs
    none). read_json writes a JSON value minified (numbers and escapes as yyjson writes them): json() does."""
    if kind == JSON:
        return f"json({expr})"
    if kind == LIST and any(_normalized("x", *c[1:]) is not None for c in children):
        raise ValueError("JSON inside a list is not read")
    if kind != STRUCT:
        return None
    fields = [(name, _normalized(f"{expr}.{_quote(name)}", k, c)) for name, k, c in children]
    if all(e is None for _, e in fields):
        return None
    body = ", ".join("'" + name.replace("'", "''") + "': " + (e or f"{expr}.{_quote(name)}") for name, e in fields)
    return f"CASE WHEN {expr} IS NULL THEN NULL ELSE {{{body}}} END"


class ArrowReader:
    """The C parser for one log type's declared columns, and the Arrow table it makes of a batch."""

    def __init__(self, columns: dict[str, str], dropped: Sequence[str] = (), *, texts: Sequence[str] = (),
                 ips: Sequence[tuple[str, ...]] = ()) -> None:
        """`dropped`: keys a record may hold that are not columns (read_json skips them; any other key
        declines). `texts`: columns whose value's text as sent (JSON, `null` included; NULL when the key is
        absent) is also a column, TEXT_PREFIX + name: what a plan keeps as sent, without the whole object.
        `ips`: paths of VARCHAR values (a column, a struct's field; through lists) that must be IP addresses
        (ingest/ips.py): a body holding another value there (or an integer) declines."""
        spec: list[Spec] = []
        types: list[pa.DataType] = []
        fixes: list[str] = []
        for name, sql in columns.items():
            parsed = _parse_type(sql)
            if parsed is None or parsed[1] != len(sql):
                raise ValueError(f"{name}: {sql} is not a type the C parser reads")
            (kind, children, typ), _ = parsed
            for path in ips:
                if path[0] == name:
                    kind, children = _mark_ip(kind, children, path[1:], name)
            spec.append((name, kind, children))
            types.append(typ)
            fix = _normalized(_quote(name), kind, children)
            if fix is not None:
                fixes.append(f"{fix} AS {_quote(name)}")
        if Parser is None:
            raise ValueError("the C parser is not built")
        if any(name not in columns for name in texts):
            raise ValueError("a text column is of a declared column")
        spec += [(name, TEXT, ()) for name in texts]
        types += [pa.string()] * len(texts)
        spec += [(key, SKIP, ()) for key in dropped if key not in columns]
        self._spec = tuple(spec)
        Parser(self._spec)  # (a build older than the spec's kinds refuses it here, ValueError: read_json then)
        self._local = threading.local()  # a parser per thread: the ingest pool's parses do not wait on each other
        self._names = [*columns, *(TEXT_PREFIX + name for name in texts), "ordinality"]
        self._types = types
        self._ordinals = array("q")
        # What the conversion's SELECT reads FROM, `{table}` the table's name: the table itself, or with its JSON
        # values normalized.
        self.source = f"(SELECT * REPLACE ({', '.join(fixes)}) FROM {{table}})" if fixes else "{table}"  # noqa: S608

    @classmethod
    def for_columns(cls, columns: dict[str, str], dropped: Sequence[str] = (), *, texts: Sequence[str] = (),
                    ips: Sequence[tuple[str, ...]] = ()) -> ArrowReader | None:
        try:
            return cls(columns, dropped, texts=texts, ips=ips)
        except ValueError:
            return None

    def table(self, bodies: Sequence[bytes]) -> pa.Table | None:
        parser = getattr(self._local, "parser", None)
        if parser is None:
            parser = self._local.parser = Parser(self._spec)
        out = parser.parse(bodies)
        if out is None:
            return None
        rows, cols = out
        # (the dropped keys' entries, None, come last in `cols`: zip stops before them)
        arrays = [_array(typ, rows, col) for typ, col in zip(self._types, cols, strict=False)]
        # 1, 2, 3, ... kept between batches: a slice of it per batch. Read once: the reader is shared by the
        # ingest pool's threads, and another's smaller one may replace it between a check and a second read.
        ordinals = self._ordinals
        if rows > len(ordinals):
            ordinals = self._ordinals = array("q", range(1, max(rows, 2 * len(ordinals)) + 1))
        arrays.append(pa.Array.from_buffers(pa.int64(), rows, [None, pa.py_buffer(ordinals)]))
        return pa.Table.from_arrays(arrays, names=self._names)


class IpVouch:
    """The C parser's look at a batch's IP fields alone (ingest/ips.py), for a batch it declined otherwise (an
    undeclared key, a value of another type elsewhere): True when every value of them is null or an address, so
    read_json's conversion may leave out their checks (each regular expression costs a statement ~0.3 ms to
    compile). Keys it does not know are skipped (a lenient Parser); anything it cannot tell answers False."""

    def __init__(self, columns: dict[str, str], ips: Sequence[tuple[str, ...]], dropped: Sequence[str] = ()) -> None:
        """`ips`: the IP fields' paths (ArrowReader's); the other columns and `dropped` keys are skipped by name
        (the parse's guess of the next key spares them a hash), any other key as unknown."""
        if Parser is None:
            raise ValueError("the C parser is not built")
        spec: list[Spec] = []
        for name in dict.fromkeys(path[0] for path in ips):
            parsed = _parse_type(columns[name])
            if parsed is None:
                raise ValueError(f"{name}: {columns[name]} is not a type the C parser reads")
            (kind, children, _), _ = parsed
            paths = [path[1:] for path in ips if path[0] == name]
            for path in paths:
                kind, children = _mark_ip(kind, children, path, name)
            spec.append((name, *_only(kind, children, paths)))
        spec += [(key, SKIP, ()) for key in dict.fromkeys([*columns, *dropped]) if key not in {s[0] for s in spec}]
        self._spec = tuple(spec)
        try:
            Parser(self._spec, lenient=True)
        except TypeError:  # a build from before the lenient parse
            raise ValueError("the C parser has no lenient parse: rebuild it (make native)") from None
        self._local = threading.local()

    @classmethod
    def for_columns(cls, columns: dict[str, str], ips: Sequence[tuple[str, ...]], dropped: Sequence[str] = ()
                    ) -> IpVouch | None:
        try:
            return cls(columns, ips, dropped)
        except ValueError:
            return None

    def vouches(self, bodies: Sequence[bytes]) -> bool:
        parser = getattr(self._local, "parser", None)
        if parser is None:
            parser = self._local.parser = Parser(self._spec, lenient=True)
        return parser.parse(bodies) is not None


def _only(kind: int, children: tuple[Any, ...], paths: list[tuple[str, ...]]) -> tuple[int, tuple[Any, ...]]:
    """A spec entry with only the struct fields on `paths` (a lenient parse skips the others)."""
    if kind == LIST:
        (_, k, c), = children
        return LIST, (("l", *_only(k, c, paths)),)
    if kind == STRUCT:
        return STRUCT, tuple((n, *_only(k, c, [p[1:] for p in paths if p and p[0] == n])) for n, k, c in children
                             if any(p and p[0] == n for p in paths))
    return kind, children


def _mark_ip(kind: int, children: tuple[Any, ...], path: tuple[str, ...], name: str) -> tuple[int, tuple[Any, ...]]:
    """A spec entry's (kind, children) with the VARCHAR at `path` below it (lists passed through) an IP column."""
    if kind == LIST:
        (_, k, c), = children
        return LIST, (("l", *_mark_ip(k, c, path, name)),)
    if kind == STR and not path:
        return IP, ()
    if kind == STRUCT and path:
        fields = tuple((n, *_mark_ip(k, c, path[1:], name)) if n == path[0] else (n, k, c) for n, k, c in children)
        if any(n == path[0] for n, _, _ in children):
            return STRUCT, fields
    raise LookupError(f"{name}: no VARCHAR at {'.'.join(path) or 'the column'} to check as an IP")


def _array(typ: pa.DataType, rows: int, col: tuple[Any, ...]) -> pa.Array:
    valid = None if col[0] is None else pa.py_buffer(col[0])
    nulls = col[1]
    if pa.types.is_int64(typ) or pa.types.is_boolean(typ):
        return pa.Array.from_buffers(typ, rows, [valid, pa.py_buffer(col[2])], null_count=nulls)
    if pa.types.is_map(typ):
        keys, values = (_array(pa.string(), _last_offset(col[2]), c) for c in col[3])
        entries = pa.StructArray.from_arrays([keys, values], fields=[typ.key_field, typ.item_field])
        return pa.Array.from_buffers(typ, rows, [valid, pa.py_buffer(col[2])], null_count=nulls,
                                     children=[entries])
    if pa.types.is_string(typ):
        return pa.Array.from_buffers(typ, rows, [valid, pa.py_buffer(col[2]), pa.py_buffer(col[3])],
                                     null_count=nulls)
    if pa.types.is_list(typ):
        child = _array(typ.value_type, _last_offset(col[2]), col[3])
        return pa.Array.from_buffers(typ, rows, [valid, pa.py_buffer(col[2])], null_count=nulls, children=[child])
    children = [_array(typ.field(i).type, rows, f) for i, f in enumerate(col[2])]
    return pa.Array.from_buffers(typ, rows, [valid], null_count=nulls, children=children)


def _last_offset(offsets: bytes) -> int:
    """A list's (or map's) element count: its last int32 offset (the first is 0)."""
    return int.from_bytes(offsets[-4:], "little", signed=True)
