"""The C parser into Arrow columns (ingest/columns.py) gives exactly read_json's typed read, or declines: on real
Calico records, the simulator's, fuzzed and hostile bodies; and the converter's files and errors are the same
with it as without it, for single batches and group commits."""

from __future__ import annotations

import dataclasses
import gzip
import json
import random
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from margay.bench.data import flow_batches, topology
from margay.bench.peers import high_cardinality
from margay.ingest import columns
from margay.ingest.group import convert_group
from margay.ingest.ips import ip_paths
from margay.ingest.parse import _MAX_OBJECT, Converter, plan_for
from margay.logtypes import REGISTRY
from margay.store.duckdb import connect

from .guard import every_prefix_at_a_guard_page

FIXTURES = Path(__file__).parent.parent / "data" / "calico-linseed"  # (copied from the workspace's fixtures)
PLANS = {name: plan_for(REGISTRY[name]) for name in ("flows", "l7")}
IPS = {name: frozenset(p[0] for p, _ in ip_paths(REGISTRY[name].fields)) for name in PLANS}  # (top-level, all)
FLOWS = PLANS["flows"]
READ = (f"SELECT * FROM read_json(?, columns=?, format='newline_delimited', maximum_object_size={_MAX_OBJECT}) "  # noqa: S608
        "WITH ORDINALITY")


def _reader(name: str = "flows") -> columns.ArrowReader:
    reader = PLANS[name].arrow
    assert reader is not None, "ingest/_columns.c was not built: pip install -e . (needs gcc)"
    return reader


def _duck(body: bytes, name: str, tmp: Path) -> pa.Table | Exception:
    path = tmp / "body.ndjson"
    path.write_bytes(body)
    try:
        return connect().sql(READ, params=[str(path), PLANS[name].columns]).to_arrow_table()
    except duckdb.Error as exc:
        return exc


def _same_as_duckdb(body: bytes, tmp: Path, name: str = "flows", *, accept: bool = False) -> bool:
    """Whether the parser took the body; when it did, its table is read_json's (which must not refuse it)."""
    got = _reader(name).table([body])
    if got is None:
        assert not accept, body[:300]
        return False
    ref = _duck(body, name, tmp)
    assert not isinstance(ref, Exception), (f"accepted what read_json refuses: {ref}", body[:300])
    assert got.schema.equals(ref.schema), (got.schema, ref.schema)
    assert got.equals(ref), body[:300]
    return True


def test_the_parser_is_built_for_flows_and_l7() -> None:
    assert columns.Parser is not None and _reader("flows") and _reader("l7")
    # (DNS and audit, whose plans read each record's text too: tests/ingest/test_columns_raw.py)


@pytest.mark.parametrize("name,fixture", [("flows", "flow_logs_legacy.txt"), ("l7", "l7_logs_legacy.txt"),
                                          ("l7", "l7_logs_gateway_collector.txt")])
def test_real_calico_records(name: str, fixture: str, tmp_path: Path) -> None:
    lines = [line for line in (FIXTURES / fixture).read_bytes().splitlines() if line.strip()]
    taken = sum(_same_as_duckdb(line, tmp_path, name) for line in lines)
    assert _same_as_duckdb(b"\n".join(lines), tmp_path, name) == (taken == len(lines))
    if name == "flows":  # Calico's flow records hold only declared keys of declared types
        assert taken == len(lines)


@pytest.mark.parametrize("variant", ["sim", "highcard"])
def test_simulator_batches(variant: str, tmp_path: Path) -> None:
    batches = flow_batches(topology(), 4000, batch=2000)
    for batch in (high_cardinality(batches) if variant == "highcard" else batches):
        body = gzip.decompress(batch.body) if batch.body[:2] == b"\x1f\x8b" else batch.body
        _same_as_duckdb(body, tmp_path, accept=True)


@pytest.mark.parametrize("body", [
    b"", b"\n\n \r\n\t\n", b"{}", b'{}\n\n{"action":"allow"}\r\n', b'  {"source_port" : -0 , "host":null}  ',
    b'{"source_labels":{"labels":[]},"policies":{"all_policies":["a",null,"b"]}}',
    b'{"source_labels":{},"policies":null,"dest_domains":[],"nat_outgoing_ports":[1,-9223372036854775808,null]}',
    b'{"host":"caf\xc3\xa9 \xf0\x9f\x98\x80","proto":"\\"\\\\\\/\\b\\f\\n\\r\\t\\u00e9\\ud83d\\ude00"}',
    b'{"@timestamp":"2026-01-01T00:00:00Z","event":{"a":[1.5e3,true,false,null,{"b":"\\u0001"}]},"id":-1.0E+2}',
    b'{"bytes_in":9223372036854775807,"bytes_out":-9223372036854775808}',
    b'{"host":1,"source_labels":{"labels":[-12,0,9223372036854775807]}}',  # an integer for text: its digits
])
def test_what_it_reads(body: bytes, tmp_path: Path) -> None:
    _same_as_duckdb(body, tmp_path, accept=True)


@pytest.mark.parametrize("body", [
    b'{"host":1.5}', b'{"host":-0}', b'{"host":1e3}', b'{"host":9223372036854775808}', b'{"bytes_in":"1"}', b'{"bytes_in":1.0}', b'{"bytes_in":1e3}', b'{"bytes_in":true}',
    b'{"bytes_in":9223372036854775808}', b'{"bytes_in":-9223372036854775809}', b'{"bytes_in":01}',
    b'{"host":"a","host":"b"}', b'{"zz":1}', b'{"h\\u006fst":"a"}', b'{"host":"\\u0000"}', b'{"host":"\\ud800"}',
    b'{"host":"\\udc00x"}', b'{"host":"\xff"}', b'{"host":"\xc3"}', b'{"host":"\xed\xa0\x80"}', b'{"host":"a\tb"}',
    b'{"host":"a"} x', b'{"host":"a"}{"host":"b"}', b"[]", b"1", b'{"host":"a",}', b'{"host" "a"}', b'{"host":nul}',
    b'{"source_labels":{"labels":"x"}}', b'{"source_labels":{"labels":[1.0]}}', b'{"source_labels":{"zz":[]}}',
    b'{"source_labels":{"labels":[],"labels":[]}}', b'{"dest_domains":["a",]}', b'{"nat_outgoing_ports":["1"]}',
    b'{"event":' + b"[" * 70 + b"]" * 70 + b"}", b'{"event":[1,]}', b'{"event":-}', b'{"event":1.}', b"\x0b{}",
    b'\xef\xbb\xbf{"host":"a"}', b'{"host":"a\nb"}', b'{"ho\nst":"a"}', b'{"host":"a"',
])
def test_what_it_declines(body: bytes) -> None:
    assert _reader().table([body]) is None


# -- fuzzing against read_json -----------------------------------------------------------------------------

def _typed(rng: random.Random, sql: str, ip: bool = False) -> Any:
    """A value of the column's type, now and then of another; an IP field's mostly an address (ingest/ips.py)."""
    if rng.random() < 0.002:
        return rng.choice([1.5, True, "7", 2**63, -(2**63) - 1, {"x": 1}, [1], "\x00", 0])
    if rng.random() < 0.1:
        return None
    if sql == "BIGINT":
        return rng.choice([0, -1, 7, 2**63 - 1, -(2**63), rng.randrange(-10**12, 10**12)])
    if sql == "VARCHAR" and ip and rng.random() < 0.99:
        return rng.choice(["10.0.0.1", "255.255.255.255", "::1", "fe80::1%eth0", "::ffff:1.2.3.4", "2001:DB8::1"])
    if sql == "VARCHAR":
        return "".join(rng.choice(["a", "é", "😀", '"', "\\", "/", "\n", "\x01", " ", "z" * 30]) for _ in range(rng.randint(0, 6)))
    if sql.endswith("[]"):
        return [_typed(rng, sql[:-2], ip) for _ in range(rng.randint(0, 4))]
    assert sql.startswith("STRUCT(")
    fields = [part.strip().split(" ", 1) for part in sql[7:-1].split(", ")]
    return {name.strip('"'): _typed(rng, typ) for name, typ in fields if rng.random() < 0.8}


def _fuzz_line(rng: random.Random, plan: Any, ips: frozenset[str] = frozenset()) -> str:
    doc = {k: _typed(rng, t, k in ips) for k, t in plan.columns.items() if rng.random() < 0.6}
    if rng.random() < 0.1:
        doc[rng.choice(["@timestamp", "id", "cluster", "event", "zz"])] = rng.choice([1, "x", [1.5, {"a": None}], None])
    text = json.dumps(doc, ensure_ascii=rng.random() < 0.3, separators=rng.choice([(",", ":"), (", ", ": ")]))
    if rng.random() < 0.03 and len(text) > 4:  # a cut, or a byte changed
        cut = rng.randrange(1, len(text))
        text = text[:cut] + (rng.choice(['"', "}", ",", "\\", "\t", "\u00ff"]) if rng.random() < 0.5 else "")
    return text


@pytest.mark.parametrize("name", ["flows", "l7"])
def test_fuzz_agrees_with_read_json(name: str, tmp_path: Path) -> None:
    rng = random.Random(20261207)
    plan = PLANS[name]
    taken = tried = 0
    for _ in range(400):
        lines = [_fuzz_line(rng, plan, IPS[name]) for _ in range(rng.randint(1, 8))]
        body = (rng.choice(["\n", "\r\n", "\n\n"]).join(lines)).encode()
        tried += 1
        taken += _same_as_duckdb(body, tmp_path, name)
    assert taken > tried // 10, (taken, tried)  # the test reaches the parser's answers, not only its refusals


@settings(max_examples=150, deadline=None)
@given(doc=st.dictionaries(st.sampled_from(sorted(FLOWS.columns)),
                       st.none() | st.integers(-2**63, 2**63 - 1) | st.text(max_size=12)
                       | st.lists(st.none() | st.text(max_size=6), max_size=3), max_size=12))
def test_any_object_python_writes(doc: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> None:
    _same_as_duckdb(json.dumps(doc).encode(), tmp_path_factory.mktemp("h"))


# -- hostile bodies: memory safety -------------------------------------------------------------------------

_PARSE = """
from margay.ingest.parse import plan_for
from margay.logtypes import REGISTRY
reader = plan_for(REGISTRY["flows"]).arrow
def check(view):
    return int(reader.table([view]) is not None)
"""


def test_no_read_past_the_end_of_the_body() -> None:
    flow = json.dumps({k: v for k, v in json.loads((FIXTURES / "flow_logs_legacy.txt").read_bytes().splitlines()[0])
                       .items()}, separators=(",", ":")).encode()
    assert len(flow) < 4000
    bodies = [flow, b'{"host":"\\u00e9\\ud83d\\ude00","source_port":-12}', b'{"host":"\xf0\x9f\x98\x80\xc3\xa9"}',
              b'{"event":{"a":[1.5e-3,true,null,"\\""]},"dest_domains":["a","b"]}', b"\n\n\r\n{}\n",
              b'{"policies":{"all_policies":["' + b"x" * 40 + b'"],"enforced_policies":null}}']
    assert every_prefix_at_a_guard_page(_PARSE, bodies) >= len(bodies)  # (each whole body is taken)


def test_memory_is_bounded_by_the_body() -> None:
    # `{}` is a whole flow row of nulls: ~400 bytes of columns for 3 bytes of body, so a 100 MB body of them
    # would take ~14 GB. Past 64 MiB + 4 bytes a byte of the bodies the parser declines (the reader streams it).
    reader = _reader()
    assert reader.table([b"{}\n" * 400_000]) is None
    assert reader.table([b"{}\n"] * 400_000) is None  # the room is the bodies' bytes in all
    assert reader.table([b"{}\n" * 100_000]).num_rows == 100_000  # within it
    assert reader.table([(FIXTURES / "flow_logs_legacy.txt").read_bytes().strip() + b"\n"] * 400) is not None  # 24 MB
    assert reader.table([b"{}"]).num_rows == 1  # and the parser is whole after a decline


def test_threads_take_turns_on_one_parser() -> None:
    # The column tree is a parse's scratch: a lock keeps two threads' parses of one Parser apart (the GIL is
    # released while parsing). The converter gives each thread a parser of its own; this shares one on purpose.
    reader = _reader()
    parser = columns.Parser(reader._spec)
    bodies = [b"\n".join([b'{"host":"h%d","bytes_in":%d}' % (i, j) for j in range(3000)]) for i in range(4)]
    want = [parser.parse([b]) for b in bodies]
    errors: list[BaseException] = []

    def work(i: int) -> None:
        try:
            for _ in range(15):
                assert parser.parse([bodies[i]]) == want[i]
                assert reader.table([bodies[i]]) is not None
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[:1]


def test_threads_share_the_ordinals(monkeypatch: pytest.MonkeyPatch) -> None:
    # One reader serves the ingest pool's threads. A thread that saw the old (short) 1, 2, 3, ... before another
    # grew it may store its own shorter one after: a reader must use the one it checked, not read it again.
    reader = columns.ArrowReader(FLOWS.columns, [s[0] for s in _reader()._spec if s[1] == columns.SKIP])
    assert reader.table([b"{}\n" * 10]) is not None
    small_built, big_read = threading.Event(), threading.Event()
    real_array, real_int64 = columns.array, pa.int64
    small = threading.current_thread()

    def slow_array(code: str, values: range) -> Any:
        if threading.current_thread() is small and not big.is_alive():
            big.start()
            small_built.wait(10)  # checked before the big one grew it; stored after
        return real_array(code, values)

    def int64() -> pa.DataType:
        if threading.current_thread() is not small:
            small_built.set()
            big_read.wait(10)  # the big one has stored its own; the small one stores now
        else:
            big_read.set()
        return real_int64()

    class Pa:
        def __getattr__(self, name: str) -> Any:
            return int64 if name == "int64" else getattr(pa, name)

    monkeypatch.setattr(columns, "array", slow_array)
    monkeypatch.setattr(columns, "pa", Pa())
    got: list[Any] = []

    def work() -> None:
        try:
            got.append(reader.table([b"{}\n" * 1000]))
        except BaseException as exc:  # noqa: BLE001 - asserted below
            got.append(exc)

    big = threading.Thread(target=work)
    assert reader.table([b"{}\n" * 15]) is not None
    big.join()
    assert isinstance(got[0], pa.Table), got
    assert got[0]["ordinality"].to_pylist() == list(range(1, 1001))


def test_a_bad_spec_is_refused() -> None:
    assert columns.ArrowReader.for_columns({"a": "DOUBLE"}) is None
    assert columns.ArrowReader.for_columns({"a": "MAP(VARCHAR, BIGINT)"}) is None
    assert columns.ArrowReader.for_columns({"a": "JSON[]"}) is None  # (its SELECT could not normalize it)
    with pytest.raises(ValueError, match="repeats"):
        columns.Parser((("a", 1, ()), ("a", 2, ())))
    with pytest.raises(ValueError, match="kind"):
        columns.Parser((("a", 99, ()),))
    p = columns.Parser.__new__(columns.Parser)
    with pytest.raises(RuntimeError, match="not initialised"):
        p.parse([b"{}"])


# -- the converter: the same files and errors with the parser as without --------------------------------------

def _rows(con: duckdb.DuckDBPyConnection, paths: list[Path]) -> list[tuple[Any, ...]]:
    if not paths:
        return []
    return con.execute("SELECT * EXCLUDE (generated_time) FROM read_parquet(?, union_by_name=true) ORDER BY _seq",
                       [[str(p) for p in paths]]).fetchall()


def _bodies(rng: random.Random) -> list[bytes]:
    lines = [json.loads(x) for x in (FIXTURES / "flow_logs_legacy.txt").read_bytes().splitlines() if x.strip()]
    out = []
    for _ in range(6):
        chosen = [dict(rng.choice(lines)) for _ in range(rng.randint(1, 30))]
        for doc in chosen:
            doc["end_time"] += rng.choice([0, 0, 0, 86400])  # now and then the next day: a split by day
            if rng.random() < 0.05:
                doc["action"] = "maybe"  # a rejected row, named by its line
            if rng.random() < 0.02:
                doc["zz"] = 1  # an undeclared key: kept in _extra (the parser declines the batch)
        out.append("\n".join(json.dumps(d) for d in chosen).encode())
    return out


def test_converter_files_and_errors_match(tmp_path: Path) -> None:
    con = connect()
    conv = Converter(con.cursor, tmp_path / "scratch")
    lt = REGISTRY["flows"]
    plan = conv.plan(lt)
    plans = {"arrow": plan, "read_json": dataclasses.replace(plan, arrow=None)}
    now = datetime(2026, 12, 6, tzinfo=UTC)
    rng = random.Random(7)
    for body in _bodies(rng):
        got = {}
        for side, p in plans.items():
            conv._plans[lt.name] = p
            out = conv.convert(lt, body, cluster="c1", now=now, seq_base=100)
            got[side] = (out.total, out.succeeded, out.errors, _rows(con, [f for _, f, _ in out.files]))
            out.discard()
        assert got["arrow"] == got["read_json"]
    # and group commits of several clusters
    for _ in range(4):
        batches = [(f"c{i}", body) for i, body in enumerate(_bodies(rng))]
        got = {}
        for side, p in plans.items():
            conv._plans[lt.name] = p
            g = convert_group(conv, lt, batches, now=now, seq_base=1000)
            got[side] = ([(part.total, part.stored, part.errors) for part in g.parts],
                         _rows(con, [path for _, path, _, _ in g.files]), [clusters for *_, clusters in g.files])
            g.discard()
        assert got["arrow"] == got["read_json"]
