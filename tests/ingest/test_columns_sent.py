"""The C parser for DNS, audit and the other types with kept-as-sent fields (ingest/columns.py): MAP(VARCHAR,
VARCHAR), JSON and BOOLEAN columns, and the text column of each kept-as-sent field, give exactly what read_json and
the raw objects give, or the parser declines; and the converter's files and errors are the same with it as without
it, for single batches and group commits."""

from __future__ import annotations

import dataclasses
import json
import random
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pytest

from margay.bench.data import other_batches, topology
from margay.ingest import columns
from margay.ingest.group import convert_group
from margay.ingest.ips import ip_paths
from margay.ingest.parse import _READ, Converter, plan_for
from margay.ingest.screen import MAX_DEPTH, nests_deeper
from margay.logtypes import REGISTRY
from margay.logtypes.base import sent_fields
from margay.store.duckdb import connect

from .guard import every_prefix_at_a_guard_page

FIXTURES = Path(__file__).parent.parent / "data" / "calico-linseed"
KINDS = ("dns", "audit_kube", "audit_ee", "bgp")
PLANS = {name: plan_for(lt) for name, lt in REGISTRY.items()}
IPS = {name: frozenset(p for p, _ in ip_paths(lt.fields)) for name, lt in REGISTRY.items()}
OTHERS = sorted(set(REGISTRY) - {"flows", "l7", "dns", "audit_kube"})  # (flows and L7: test_columns.py)


def _reader(name: str) -> columns.ArrowReader:
    reader = PLANS[name].arrow
    assert reader is not None, "ingest/_columns.c was not built: pip install -e . (needs gcc)"
    return reader


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _rows(body: bytes, name: str, tmp: Path) -> tuple[list[Any], list[Any]] | None:
    """(the parser's rows, read_json's) with the kept-as-sent values as each side gets them (the parser: its text
    columns through json(); read_json: the raw objects), and their column types; None: the parser declined."""
    got = _reader(name).table([body])
    if got is None:
        return None
    sent = sent_fields(REGISTRY[name])
    path = tmp / "body.ndjson"
    path.write_bytes(body)
    con = connect()
    sent_ref = "".join(f", (\"_raw\" -> '$.\"{f}\"') AS {_q('s_' + f)}" for f in sent)
    ref_sql = f"SELECT * EXCLUDE (_raw){sent_ref} FROM {_READ}"  # noqa: S608 - the test's own names
    try:
        ref = con.execute(ref_sql, [str(path), PLANS[name].columns, str(path)]).fetchall()
    except duckdb.Error as exc:
        raise AssertionError(f"accepted what read_json refuses: {exc}", body[:300]) from None
    ref_types = [r[1] for r in con.execute("DESCRIBE " + ref_sql, [str(path), PLANS[name].columns, str(path)]).fetchall()]
    con.register("t", got)
    texts = ", ".join(_q(columns.TEXT_PREFIX + f) for f in sent)
    sent_mine = "".join(f", json({_q(columns.TEXT_PREFIX + f)}) AS {_q('s_' + f)}" for f in sent)
    source = _reader(name).source.replace("{table}", "t")
    mine_sql = f"SELECT * {f'EXCLUDE ({texts})' if texts else ''}{sent_mine} FROM {source}"  # noqa: S608
    mine = con.execute(mine_sql).fetchall()
    mine_types = [r[1] for r in con.execute("DESCRIBE " + mine_sql).fetchall()]
    assert mine_types == ref_types
    return mine, ref


def _same_as_duckdb(body: bytes, tmp: Path, name: str = "dns", *, accept: bool = False) -> bool:
    out = _rows(body, name, tmp)
    if out is None:
        assert not accept, body[:300]
        return False
    assert out[0] == out[1], body[:300]
    return True


def test_every_type_is_read_in_c() -> None:
    for name in REGISTRY:
        reader = _reader(name)
        assert [s[0] for s in reader._spec if s[1] == columns.TEXT] == list(sent_fields(REGISTRY[name]))


@pytest.mark.parametrize("name,fixture", [("dns", "dns_logs_legacy.txt"), ("audit_kube", "kube_audit_logs_legacy.txt"),
                                          ("audit_ee", "ee_audit_logs_legacy.txt"), ("bgp", "bgp_logs_legacy.txt")])
def test_real_calico_records(name: str, fixture: str, tmp_path: Path) -> None:
    lines = [line for line in (FIXTURES / fixture).read_bytes().splitlines() if line.strip()]
    assert all(_same_as_duckdb(line, tmp_path, name) for line in lines)  # every Calico record is read in C
    assert _same_as_duckdb(b"\n".join(lines), tmp_path, name)


def test_simulator_batches(tmp_path: Path) -> None:
    seen = set()
    for batch in other_batches(topology(), 3):
        _same_as_duckdb(batch.body, tmp_path, batch.log_type, accept=True)
        seen.add(batch.log_type)
    assert seen == {"dns", "audit_kube"}


_DNS = {"start_time": "2026-01-01T00:00:00.123456789Z", "end_time": "2026-01-01T00:05:00Z", "qname": "a.example"}


def _dns(**over: Any) -> bytes:
    return json.dumps({**_DNS, **over}).encode()


@pytest.mark.parametrize("body", [
    _dns(client_labels={"b": "1", "a": "2", "c": None}),  # keys in the object's order; a null value
    _dns(client_labels={}, servers=[{"ip": "10.0.0.1", "labels": {}}, {"labels": None}, None]),
    _dns(client_labels={"k\u00e9\\\"\n": "v\ud83d\ude00", "": ""}),  # escapes and empty keys
    b'{"client_labels":{"a":1,"b":-12,"c":"x"},"end_time":"2026-01-01T00:00:00Z"}',  # integers for text: digits
    b'{"client_labels" : { "a" : "1" , "b" : null } ,"start_time":null}',
    b'{"start_time":1767225600,"end_time":"2026-01-01T01:00:00+02:00"}',  # kept as sent: Unix seconds, a zone
    _dns(rrsets=[{"rdata": ["1.2.3.4"], "name": "x", "class": "IN", "type": "A"}]),  # items' keys in another order
    _dns(rrsets=[{"name": "x", "class": 1232, "type": "OPT", "rdata": [""]}], servers=[]),
    _dns(rrsets=None, servers=None, client_labels=None, latency={"count": 1, "mean": None}),
])
def test_what_it_reads_dns(body: bytes, tmp_path: Path) -> None:
    _same_as_duckdb(body, tmp_path, accept=True)


_AUDIT = {"requestReceivedTimestamp": "2026-01-01T00:00:00.000001Z", "stageTimestamp": "2026-01-01T00:00:01Z",
          "level": "Request", "verb": "get"}


def _audit(**over: Any) -> bytes:
    return json.dumps({**_AUDIT, **over}).encode()


@pytest.mark.parametrize("body", [
    _audit(requestObject={"kind": "Pod", "spec": {"x": [1, 2.50, 1e3, -0, None, True, "\u00e9\\u"]}}),
    b'{"requestObject" : { "a" : [ ] , "b" : { } , "n" : 1.0E+2, "s":"\\u0041\\/\\ud83d\\ude00" } ,'
    b'"responseObject":null,"requestReceivedTimestamp":"2026-01-01T00:00:00Z"}',
    b'{"requestObject":{"a":1,"a":2},"responseObject":"text","requestReceivedTimestamp":"2026-01-01T00:00:00Z"}',
    b'{"requestObject":123456789012345678901234567890,"responseObject":[1e400,0.1e-400,12345678901234567.0],'
    b'"requestReceivedTimestamp":"2026-01-01T00:00:00Z"}',
    _audit(user={"username": "u", "groups": ["a", None], "extra": {"k": ["v"]}}, impersonatedUser=None,
           responseStatus={"code": 200, "metadata": {}, "details": None}, annotations={"a/b": "c", "d": None}),
    _audit(user={"extra": None}, responseStatus={"details": [{"x": {"y": "z"}}]}, annotations={}),
    _audit(objectRef={"name": "n"}, responseObject={"metadata": {"name": "from-response"}}),
    _audit(stageTimestamp=None, requestReceivedTimestamp="2026-01-01 00:00:00"),
])
def test_what_it_reads_audit(body: bytes, tmp_path: Path) -> None:
    _same_as_duckdb(body, tmp_path, "audit_kube", accept=True)


@pytest.mark.parametrize("name,body", [
    ("dns", _dns(client_labels={"a": 1.5})), ("dns", _dns(client_labels={"a": True})),
    ("dns", _dns(client_labels={"a": {"b": "c"}})), ("dns", _dns(client_labels={"a": ["b"]})),
    ("dns", b'{"client_labels":{"a":-0}}'), ("dns", b'{"client_labels":{"a":"1","a":"2"}}'),
    ("dns", b'{"client_labels":{"a":"1","\\u0061":"2"}}'),  # the same key once decoded
    ("dns", _dns(client_labels={f"k{i}": "v" for i in range(65)})), ("dns", _dns(client_labels="a=b")),
    ("dns", _dns(client_labels=["a"])), ("dns", b'{"client_labels":{"a":"1",}}'), ("dns", b'{"client_labels":{"a"}}'),
    ("dns", b'{"client_labels":{a:"1"}}'), ("dns", _dns(servers=[{"labels": {"a": 2.0}}])),
    ("dns", _dns(start_time=1767225600.5)), ("dns", _dns(start_time=True)), ("dns", _dns(start_time={"a": 1})),
    ("dns", b'{"start_time":-0}'), ("audit_kube", b'{"requestObject":{"a":"\\u0000"}}'),
    ("audit_kube", b'{"requestObject":"\\ud800"}'), ("audit_kube", b'{"requestObject":[1,]}'),
    ("audit_kube", b'{"requestObject":{"a" 1}}'), ("audit_kube", b'{"requestObject":01}'),
    ("audit_kube", b'{"requestObject":NaN}'), ("audit_kube", b'{"requestObject":"\xff"}'),
    ("audit_kube", b'{"requestObject":' + b"[" * 65 + b"]" * 65 + b"}"), ("audit_kube", b'{"annotations":{"a":1e3}}'),
    ("audit_kube", b'{"user":{"extra":tru}}'), ("audit_kube", b'{"requestObject":{"a":1}'),
])
def test_what_it_declines(name: str, body: bytes) -> None:
    assert _reader(name).table([body]) is None


def test_a_text_column_needs_its_field() -> None:
    assert columns.ArrowReader.for_columns({"a": "VARCHAR"}, texts=["b"]) is None
    with pytest.raises(ValueError, match="text column"):
        columns.Parser((("a", columns.TEXT, ()),))
    with pytest.raises(ValueError, match="text column"):
        columns.Parser((("a", columns.STR, ()), ("a", columns.TEXT, ()), ("a", columns.TEXT, ())))


# -- fuzzing against read_json -----------------------------------------------------------------------------

_ANY = [None, True, 1.5, -7, 2**63, "x", "\u00e9\\", [], {}, [1, {"a": None}], {"a": {"b": [1.0E+2]}}]


def _typed(rng: random.Random, sql: str, depth: int = 0, ips: frozenset[tuple[str, ...]] = frozenset()) -> Any:
    """A value of the column's type, now and then of another; at an IP path (`()` in `ips`), mostly an address."""
    if rng.random() < 0.01:
        return rng.choice(_ANY)
    if rng.random() < 0.1:
        return None
    if sql == "BIGINT":
        return rng.choice([0, -1, 7, 2**63 - 1, -(2**63), rng.randrange(-10**12, 10**12)])
    if sql == "BOOLEAN":
        return rng.random() < 0.5
    if sql == "VARCHAR" and () in ips and rng.random() < 0.97:
        return rng.choice(["10.0.0.1", "::1", "fe80::1%eth0", "::ffff:1.2.3.4", "2001:DB8::1", "0.0.0.0"])
    if sql == "VARCHAR":
        if rng.random() < 0.05:
            return rng.choice([0, 12, -3, 1767225600])
        return "".join(rng.choice(["a", "é", "😀", '"', "\\", "/", "\n", " ", "2026-01-01T00:00:00Z"])
                       for _ in range(rng.randint(0, 4)))
    if sql == "JSON":
        return rng.choice(_ANY[1:]) if depth or rng.random() < 0.5 else {"k": _typed(rng, "JSON", 1), "n": rng.random()}
    if sql == "MAP(VARCHAR, VARCHAR)":
        return {rng.choice(["a", "b", "c", "é", "a/b", ""]): rng.choice(["v", None, "", "\u00e9", 3])
                for _ in range(rng.randint(0, 4))}
    if sql.endswith("[]"):
        return [_typed(rng, sql[:-2], ips=ips) for _ in range(rng.randint(0, 3))]
    assert sql.startswith("STRUCT(")
    fields: list[tuple[str, str]] = []
    depth, start, inner = 0, 0, sql[7:-1]
    for i, ch in enumerate(inner + ","):  # the fields: split at the commas outside parentheses
        depth += (ch == "(") - (ch == ")")
        if ch == "," and depth == 0:
            name, typ = inner[start:i].strip().split(" ", 1)
            fields.append((name.strip('"'), typ))
            start = i + 1
    return {name: _typed(rng, typ, ips=_below(ips, name)) for name, typ in fields if rng.random() < 0.8}


def _below(ips: frozenset[tuple[str, ...]], name: str) -> frozenset[tuple[str, ...]]:
    return frozenset(p[1:] for p in ips if p and p[0] == name)


def _fuzz_line(rng: random.Random, plan: Any, ips: frozenset[tuple[str, ...]] = frozenset()) -> str:
    """A record of the plan's columns; at the IP fields' paths (`ips`), mostly addresses (ingest/ips.py)."""
    doc = {k: _typed(rng, t, ips=_below(ips, k)) for k, t in plan.columns.items() if rng.random() < 0.6}
    if rng.random() < 0.05:
        doc[rng.choice(["@timestamp", "id", "zz"])] = rng.choice(_ANY)
    text = json.dumps(doc, ensure_ascii=rng.random() < 0.3, separators=rng.choice([(",", ":"), (", ", " : ")]))
    if rng.random() < 0.03 and len(text) > 4:  # a cut, or a byte changed
        cut = rng.randrange(1, len(text))
        text = text[:cut] + (rng.choice(['"', "}", ",", "\\", "\t", "\u00ff"]) if rng.random() < 0.5 else "")
    return text


@pytest.mark.parametrize("name", ["dns", "audit_kube", *OTHERS])
def test_fuzz_agrees_with_read_json(name: str, tmp_path: Path) -> None:
    rng = random.Random(20261207)
    plan = PLANS[name]
    taken = tried = 0
    for _ in range(300 if name in ("dns", "audit_kube") else 80):
        lines = [_fuzz_line(rng, plan, IPS[name]) for _ in range(rng.randint(1, 6))]
        body = (rng.choice(["\n", "\r\n", "\n\n"]).join(lines)).encode()
        tried += 1
        taken += _same_as_duckdb(body, tmp_path, name)
    assert taken > tried // 10, (taken, tried)


# -- hostile bodies: memory safety and the memory bound ------------------------------------------------------

_PARSE = """
from margay.ingest.parse import plan_for
from margay.logtypes import REGISTRY
readers = [plan_for(REGISTRY[n]).arrow for n in ("dns", "audit_kube", "waf")]
def check(view):
    return sum(int(r.table([view]) is not None) for r in readers)
"""


def test_no_read_past_the_end_of_the_body() -> None:
    dns = (FIXTURES / "dns_logs_legacy.txt").read_bytes().splitlines()[0]
    audit = min((line for line in (FIXTURES / "kube_audit_logs_legacy.txt").read_bytes().splitlines() if line.strip()),
                key=len)
    bodies = [dns, audit, b'{"client_labels":{"k\\u00e9":"\\ud83d\\ude00","b":null,"c":12},"start_time":-3}',
              b'{"requestObject":{"a":[1.5e-3,true,null,"\\"",{}]},"annotations":{"x":"y"},"stageTimestamp":null}',
              b'{"servers":[{"labels":{"a":"b"},"ip":"1"},null],"rrsets":[]}\r\n\n{}',
              b'{"user":{"extra":{"a":["b"]}},"responseStatus":{"metadata":-1e-9,"details":"x"}}',
              b'{"rules":[{"id":"1","disruptive":true},{"disruptive":false},{"disruptive":null}],"host":"h"}']
    assert len(dns) < 4000 and len(audit) < 4000
    assert every_prefix_at_a_guard_page(_PARSE, bodies) >= len(bodies)  # (each whole body is taken)


def test_memory_is_bounded_by_the_body() -> None:
    reader = _reader("dns")
    assert reader.table([b"{}\n" * 400_000]) is None  # (a null DNS row is ~200 bytes of columns)
    assert reader.table([b"{}\n" * 100_000]).num_rows == 100_000
    # a map's entries and a JSON value's text take about their bytes: within the bound
    wide = json.dumps({"client_labels": {f"k{i}": "v" for i in range(60)}}).encode()
    assert reader.table([wide + b"\n"] * 20_000) is not None
    assert _reader("audit_kube").table([b'{"requestObject":[' + b"1," * 1_000_000 + b'1]}']).num_rows == 1


# -- the converter: the same files and errors with the parser as without --------------------------------------

def _files(con: duckdb.DuckDBPyConnection, paths: list[Path]) -> list[tuple[Any, ...]]:
    if not paths:
        return []
    return con.execute("SELECT * EXCLUDE (generated_time) FROM read_parquet(?, union_by_name=true) ORDER BY _seq",
                       [[str(p) for p in paths]]).fetchall()


def _mutated(rng: random.Random, name: str, doc: dict[str, Any]) -> dict[str, Any]:
    doc = dict(doc)
    times = [f for f in sent_fields(REGISTRY[name]) if "time" in f.lower() or "Timestamp" in f]
    for f in times:
        if f in doc and rng.random() < 0.15:  # kept as sent: other precision, a zone, Unix seconds
            doc[f] = rng.choice(["2026-12-06T10:00:00.5+01:00", "2026-12-06T23:59:59", 1796000000, None])
        elif f in doc and rng.random() < 0.05:
            doc[f] = "2026-12-07T00:00:01Z"  # the next day: a split by day
    if rng.random() < 0.04:
        doc[times[0]] = "not a time"  # a rejected row, named by its line
    if name == "dns" and rng.random() < 0.1:
        doc["servers"] = [{"name": "s", "ip": "10.0.0.1", "labels": {"b": "1", "a": None}}]  # items in another order
    if name.startswith("audit") and rng.random() < 0.05:
        doc["level"] = "Everything"  # a value not allowed
    if rng.random() < 0.02:
        doc["zz"] = 1  # an undeclared key: kept in _extra (the parser declines the batch)
    return doc


def _bodies(rng: random.Random, name: str) -> list[bytes]:
    if name == "dns":
        pool = [json.loads(x) for x in (FIXTURES / "dns_logs_legacy.txt").read_bytes().splitlines() if x.strip()]
        pool += [json.loads(x) for b in other_batches(topology(), 1) if b.log_type == "dns"
                 for x in b.body.splitlines()[:40]]
    else:
        pool = [json.loads(x) for x in (FIXTURES / "kube_audit_logs_legacy.txt").read_bytes().splitlines() if x.strip()]
    return ["\n".join(json.dumps(_mutated(rng, name, rng.choice(pool))) for _ in range(rng.randint(1, 25))).encode()
            for _ in range(6)]


@pytest.mark.parametrize("name", ["dns", "audit_kube"])
def test_converter_files_and_errors_match(name: str, tmp_path: Path) -> None:
    con = connect()
    conv = Converter(con.cursor, tmp_path / "scratch")
    lt = REGISTRY[name]
    plan = conv.plan(lt)
    plans = {"arrow": plan, "read_json": dataclasses.replace(plan, arrow=None)}
    now = datetime(2026, 12, 6, tzinfo=UTC)
    rng = random.Random(11)
    taken = 0
    for body in _bodies(rng, name):
        got = {}
        for side, p in plans.items():
            conv._plans[lt.name] = p
            out = conv.convert(lt, body, cluster="c1", now=now, seq_base=100)
            got[side] = (out.total, out.succeeded, out.errors, _files(con, [f for _, f, _ in out.files]))
            out.discard()
        assert got["arrow"] == got["read_json"]
        taken += plan.arrow is not None and plan.arrow.table([body]) is not None
    assert taken >= 2
    taken = 0
    for _ in range(4):  # and group commits of several clusters
        batches = [(f"c{i}", body) for i, body in enumerate(_bodies(rng, name))]
        taken += plan.arrow is not None and plan.arrow.table([b for _, b in batches]) is not None
        got = {}
        for side, p in plans.items():
            conv._plans[lt.name] = p
            g = convert_group(conv, lt, batches, now=now, seq_base=1000)
            got[side] = ([(part.total, part.stored, part.errors) for part in g.parts],
                         _files(con, [path for _, path, _, _ in g.files]), [clusters for *_, clusters in g.files])
            g.discard()
        assert got["arrow"] == got["read_json"]
    assert taken >= 1


def test_the_parser_takes_no_line_nested_deeper_than_the_bound(tmp_path: Path) -> None:
    # The converter looks for too-deep lines (screen.py) only in a batch the parser declines: the parser's bound is
    # the same, counted from the record's own brackets, in a JSON value and in a dropped key's value alike.
    reader = _reader("audit_kube")
    for key, around in (("requestObject", 1), ("timestamp", 1), ("user", 2)):
        for inner in (MAX_DEPTH - around, MAX_DEPTH - around + 1):
            value = b"[" * inner + b"]" * inner
            line = b'{"%s":%s}' % (key.encode(), b'{"extra":' + value + b"}" if key == "user" else value)
            assert (reader.table([line]) is None) == nests_deeper(line, MAX_DEPTH), (key, inner)
    con = connect()
    conv = Converter(con.cursor, tmp_path / "scratch")
    lt = REGISTRY["audit_kube"]
    deep = _audit(requestObject=json.loads("[" * 70 + "]" * 70)).decode()
    body = "\n".join([_audit().decode(), deep, _audit(verb="list").decode()]).encode()
    plan = conv.plan(lt)
    got = {}
    for side, p in {"arrow": plan, "read_json": dataclasses.replace(plan, arrow=None)}.items():
        conv._plans[lt.name] = p
        out = conv.convert(lt, body, cluster="c1", now=datetime(2026, 12, 6, tzinfo=UTC), seq_base=0)
        got[side] = (out.total, out.succeeded, out.errors, _files(con, [f for _, f, _ in out.files]))
        out.discard()
        g = convert_group(conv, lt, [("a", body), ("b", _audit())], now=datetime(2026, 12, 6, tzinfo=UTC),
                          seq_base=0)
        got[side + " group"] = ([(part.total, part.stored, part.errors) for part in g.parts],
                                _files(con, [path for _, path, _, _ in g.files]))
        g.discard()
    assert got["arrow"] == got["read_json"] and got["arrow group"] == got["read_json group"]
    assert [e.line for e in got["arrow"][2]] == [2] and "nests deeper" in got["arrow"][2][0].msg


@pytest.mark.parametrize("name,fixture", [("events", "anomaly_detection_event.json"), ("waf", "waf_logs_legacy.txt")])
def test_other_calico_records(name: str, fixture: str, tmp_path: Path) -> None:
    lines = [line for line in (FIXTURES / fixture).read_bytes().splitlines() if line.strip()]
    assert all(_same_as_duckdb(line, tmp_path, name) for line in lines)


@pytest.mark.parametrize("name", OTHERS)
def test_converter_of_the_other_types(name: str, tmp_path: Path) -> None:
    # Fuzzed records (most lack a required field or break a rule somewhere: rejected rows, named by line).
    con = connect()
    conv = Converter(con.cursor, tmp_path / "scratch")
    lt = REGISTRY[name]
    plan = conv.plan(lt)
    rng = random.Random(5)
    bodies = ["\n".join(_fuzz_line(rng, plan, IPS[name]) for _ in range(rng.randint(1, 8))).encode()
              for _ in range(12)]
    got: dict[str, list[Any]] = {}
    for side, p in {"arrow": plan, "read_json": dataclasses.replace(plan, arrow=None)}.items():
        conv._plans[lt.name] = p
        for body in bodies:
            out = conv.convert(lt, body, cluster="c1", now=datetime(2026, 12, 6, tzinfo=UTC), seq_base=0)
            got.setdefault(side, []).append((out.total, out.succeeded, out.errors,
                                             _files(con, [f for _, f, _ in out.files])))
            out.discard()
        for i in range(0, 12, 4):
            try:
                g = convert_group(conv, lt, [(f"c{j}", b) for j, b in enumerate(bodies[i:i + 4])],
                                  now=datetime(2026, 12, 6, tzinfo=UTC), seq_base=0)
            except duckdb.Error:  # the reader refused a line: the caller converts the batches one by one
                got[side].append("refused")
                continue
            got[side].append(([(part.total, part.stored, part.errors) for part in g.parts],
                              _files(con, [path for _, path, _, _ in g.files])))
            g.discard()
    assert got["arrow"] == got["read_json"]
    assert sum(plan.arrow is not None and plan.arrow.table([b]) is not None for b in bodies) >= 3
