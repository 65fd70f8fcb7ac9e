"""IP fields on ingest take what OpenSearch's `ip` type indexes (ingest/ips.py): the SQL patterns agree with a
reference written from OpenSearch's parser (InetAddresses.ipStringToBytes), on chosen and generated strings; a
record holding any other value in an IP field (top level, in a list, in an object or a list of objects) is its
line's error naming the field, on the C parser's path and on read_json's, alone and in a group commit."""

from __future__ import annotations

import dataclasses
import ipaddress
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from margay.ingest.columns import ArrowReader
from margay.ingest.group import convert_group
from margay.ingest.ips import IPV4_PATTERN, IPV6_PATTERN, bad_ip_sql
from margay.ingest.parse import Converter, plan_for
from margay.logtypes import REGISTRY, SAMPLES
from margay.store.duckdb import connect

from .guard import every_prefix_at_a_guard_page

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
HEX = set("0123456789abcdefABCDEF")


def _v4(text: str) -> bool:
    parts = text.split(".")
    return len(parts) == 4 and all(p != "" and set(p) <= set("0123456789") and int(p) <= 255
                                   and not (p.startswith("0") and len(p) > 1) for p in parts)


def reference(text: str) -> bool:
    """OpenSearch's ipStringToBytes(text) is not null (ASCII digits only: margay's one difference)."""
    has_colon = has_dot = False
    percent = -1
    for i, c in enumerate(text):
        if c == ".":
            has_dot = True
        elif c == ":":
            if has_dot:
                return False
            has_colon = True
        elif c == "%":
            percent = i
            break
        elif c not in HEX:
            return False
    if not has_colon:
        return has_dot and _v4(text)
    if has_dot:  # the dotted quad after the last colon (with any scope id: then it is no quad)
        head, quad = text[:text.rfind(":") + 1], text[text.rfind(":") + 1:]
        if not _v4(quad):
            return False
        o = [int(p) for p in quad.split(".")]
        text = f"{head}{o[0] << 8 | o[1]:x}:{o[2] << 8 | o[3]:x}"
    elif percent != -1:
        if percent == len(text) - 1:
            return False
        text = text[:percent]
    parts = text.split(":")
    if not 3 <= len(parts) <= 9:
        return False
    skips = [i for i in range(1, len(parts) - 1) if parts[i] == ""]
    if len(skips) > 1:
        return False
    if skips:
        hi, lo = skips[0], len(parts) - skips[0] - 1
        if parts[0] == "":
            hi -= 1
            if hi:
                return False
        if parts[-1] == "":
            lo -= 1
            if lo:
                return False
        if 8 - (hi + lo) < 1:
            return False
        hextets = parts[:hi] + (parts[len(parts) - lo:] if lo else [])
    else:
        if len(parts) != 8:
            return False
        hextets = parts
    return all(h != "" and set(h) <= HEX and int(h, 16) <= 0xFFFF for h in hextets)


# Each answered by OpenSearch 2.19's `ip` type (no ignore_malformed): indexed, or "... is not an IP string literal".
CHOSEN = {
    "10.0.0.1": True, "0.0.0.0": True, "255.255.255.255": True, "::ffff:1.2.3.4": True, "fe80::1%eth0": True,
    "fe80::1%1": True, "::": True, "::1": True, "0:0:0:0:0:0:0:1": True, "FE80::1": True, "::1.2.3.4": True,
    "::ffff:0102:0304": True, "1:2:3:4:5:6:7::": True, "1:2:3:4:5:6:1.2.3.4": True, "0000:0000::1": True,
    "00000::1": True, "2001:db8::17": True,
    "999.1.1.1": False, "": False, "-": False, "01.2.3.4": False, "010.0.0.1": False, "1.2.3": False,
    "10.0.0.0/8": False, " 1.2.3.4": False, "1.2.3.4 ": False, "1.2.3.4.5": False, "[::1]": False, "5": False,
    "16909060": False, "true": False, "1.2.3.04": False, "::ffff:1.2.3.04": False, "0x1.2.3.4": False,
    "1.2.3.4%1": False, "fe80::1%": False, "1:2:3:4:5:6:7:8:9": False, "1..2.3": False, "1.2.3.4\n": False,
    "1::2::3": False, ":1::2": False, "1:2:3:4:5:6:7:8::": False, "::1.2.3.4%eth0": False, "1:2:3:4:5:6::1.2.3.4": False,
    "12345::1": False,
}


def _sql_ok(con: duckdb.DuckDBPyConnection, values: list[str]) -> list[bool]:
    rows = con.execute(f"SELECT NOT coalesce({bad_ip_sql('v')}, false) FROM unnest(?::VARCHAR[]) "  # noqa: S608 - constants
                       "WITH ORDINALITY AS t(v, n) ORDER BY n", [values]).fetchall()
    return [r[0] for r in rows]


def test_chosen_values_as_opensearch_answers_them() -> None:
    con = connect()
    values = list(CHOSEN)
    assert [reference(v) for v in values] == [CHOSEN[v] for v in values]
    assert _sql_ok(con, values) == [CHOSEN[v] for v in values]
    assert "'" not in IPV4_PATTERN + IPV6_PATTERN


_alphabet = st.sampled_from(list("0123456789abcdefABCDEF:.%/ x") + ["::", "255", "ffff", "00000", "1.2.3.4"])
_v6 = st.ip_addresses(v=6).map(str)
_v4s = st.ip_addresses(v=4).map(str)


@settings(max_examples=300, deadline=None)
@given(values=st.lists(st.one_of(st.lists(_alphabet, max_size=14).map("".join), _v6, _v4s,
                                 _v6.map(lambda s: s.upper()), _v6.map(lambda s: s + "%eth0"),
                                 st.ip_addresses(v=6).map(lambda a: a.exploded)), min_size=1, max_size=40))
def test_the_patterns_agree_with_the_reference(values: list[str]) -> None:
    assert _sql_ok(connect(), values) == [reference(v) for v in values]
    for v in values:  # what Python's ipaddress takes (no scope id, IPv4 without leading zeros) is taken
        try:
            ipaddress.ip_address(v)
        except ValueError:
            continue
        assert reference(v), v


@pytest.fixture
def converter(tmp_path: Path) -> Converter:
    return Converter(connect().cursor, tmp_path / "scratch")


def _sample(name: str) -> dict:
    return dict(orjson.loads(SAMPLES[name][0]))


def _bad_ip_lines() -> dict[str, list[tuple[dict, str]]]:
    """Per type: (record with one bad IP, the field named)."""
    flow, dns, waf, audit = _sample("flows"), _sample("dns"), _sample("waf"), _sample("audit_ee")
    server = dict(dns["servers"][0])
    return {
        "flows": [(flow | {"source_ip": "999.1.1.1"}, "source_ip"), (flow | {"dest_ip": ""}, "dest_ip"),
                  (flow | {"dest_ip": "-"}, "dest_ip"), (flow | {"source_ip": 5}, "source_ip"),
                  (flow | {"original_source_ips": ["1.2.3.4", None, "10.0.0.0/8"]}, "original_source_ips")],
        "dns": [(dns | {"client_ip": "010.0.0.1"}, "client_ip"),
                (dns | {"servers": [server, server | {"ip": "kube-dns"}]}, "servers.ip")],
        "waf": [(waf | {"source": dict(waf["source"], ip="[::1]")}, "source.ip"),
                (waf | {"destination": dict(waf["destination"], ip="1.2.3.4 ")}, "destination.ip")],
        "audit_ee": [(audit | {"sourceIPs": ["10.0.0.1", "not-an-ip"]}, "sourceIPs")],
    }


def _good(name: str) -> list[dict]:
    """The type's samples, and one holding each unusual form OpenSearch takes."""
    goods = [orjson.loads(s) for s in SAMPLES[name]]
    first = goods[0]
    odd = {"flows": {"source_ip": "::ffff:10.0.0.1", "dest_ip": "fe80::1%eth0", "original_source_ips": ["::", None]},
           "dns": {"client_ip": "2001:DB8::0001"}, "waf": {"source": dict(first.get("source") or {}, ip="::1")},
           "audit_ee": {"sourceIPs": ["0000:0000::1", "1:2:3:4:5:6:1.2.3.4"]}}[name]
    return [*goods, first | odd]


def _convert(conv: Converter, name: str, body: bytes, *, arrow: bool) -> tuple[Any, ...]:
    """(total, stored, errors, the stored rows) of `body` through the C parser's path or read_json's."""
    lt = REGISTRY[name]
    plan = conv.plan(lt)
    conv._plans[lt.name] = plan if arrow else dataclasses.replace(plan, arrow=None)
    try:
        out = conv.convert(lt, body, cluster="c1", now=NOW, seq_base=0)
    finally:
        conv._plans[lt.name] = plan
    con = connect()
    rows = sorted(str(r) for _, path, _ in out.files
                  for r in con.sql("SELECT * FROM read_parquet(?)", params=[str(path)]).fetchall())
    out.discard()
    return out.total, out.succeeded, out.errors, rows


@pytest.mark.parametrize("name", ["flows", "dns", "waf", "audit_ee"])
def test_a_bad_ip_is_its_lines_error_and_the_rest_are_kept(converter: Converter, name: str) -> None:
    good = _good(name)
    bad = _bad_ip_lines()[name]
    lines = [orjson.dumps(r) for r in good]
    want = []
    for record, fname in bad:  # each bad line between two good ones
        lines.append(orjson.dumps(record))
        want.append((len(lines), fname))
        lines.append(orjson.dumps(good[0]))
    body = b"\n".join(lines)
    reader = converter.plan(REGISTRY[name]).arrow
    assert reader is not None
    clean = b"\n".join(orjson.dumps(r) for r in good)
    assert reader.table([clean]) is not None  # the C parser takes every form OpenSearch takes...
    for record, _ in bad:  # ...and declines the others, which read_json's way then names
        assert reader.table([clean + b"\n" + orjson.dumps(record)]) is None
    total, stored, errors, rows = _convert(converter, name, body, arrow=True)
    assert [(e.line, e.field) for e in errors] == want, errors
    assert all(e.msg.startswith("is not an IP address") for e in errors)
    assert total == len(lines) and stored == len(lines) - len(bad)
    assert _convert(converter, name, body, arrow=False) == (total, stored, errors, rows)
    fast = _convert(converter, name, clean, arrow=True)
    assert fast[:3] == (len(good), len(good), []) and fast == _convert(converter, name, clean, arrow=False)


@settings(max_examples=200, deadline=None)
@given(values=st.lists(st.one_of(st.lists(_alphabet, max_size=14).map("".join), _v6, _v4s,
                                 _v6.map(lambda s: s + "%x"), st.ip_addresses(v=6).map(lambda a: a.exploded)),
                       min_size=1, max_size=8))
def test_the_c_parser_takes_what_the_reference_takes(values: list[str]) -> None:
    reader = ArrowReader({"ip": "VARCHAR", "ips": "VARCHAR[]"}, ips=[("ip",), ("ips",)])
    for v in values:
        assert (reader.table([orjson.dumps({"ip": v})]) is not None) == reference(v), v
    assert (reader.table([orjson.dumps({"ips": values})]) is not None) == all(map(reference, values))


def test_a_group_commit_names_the_bad_ip_in_its_batch(converter: Converter) -> None:
    flows = REGISTRY["flows"]
    good = b"\n".join(orjson.dumps(r) for r in _good("flows"))
    bad = good + b"\n" + orjson.dumps(_sample("flows") | {"dest_ip": "1.2.3"})
    group = convert_group(converter, flows, [("a", good), ("b", bad), ("c", good)], now=NOW, seq_base=0)
    try:
        assert [p.errors for p in group.parts][0] == [] and group.parts[2].errors == []
        assert [(e.line, e.field) for e in group.parts[1].errors] == [(len(_good("flows")) + 1, "dest_ip")]
        n = len(_good("flows"))
        assert [p.stored for p in group.parts] == [n, n, n]
    finally:
        group.discard()


@pytest.mark.parametrize("name", ["flows", "dns", "waf", "audit_ee"])
def test_a_batch_declined_for_something_else_has_its_ips_vouched_for(converter: Converter, name: str) -> None:
    """A batch with an undeclared key goes read_json's way; the C parser's lenient look at its IP fields lets it
    leave out their checks (regular expressions cost each statement ~0.3 ms), unless one of them is bad."""
    plan = converter.plan(REGISTRY[name])
    assert plan.ip_vouch is not None and plan.unchecked is not None
    assert IPV4_PATTERN not in plan.lean_arrow + plan.grouped_arrow + "".join(plan.unchecked)
    assert all(IPV4_PATTERN in sql for sql in (plan.select, plan.lean, plan.grouped, plan.grouped_lean))
    good = [r | {"zz_undeclared": {"a": [1, "x"]}} for r in _good(name)]
    body = b"\n".join(orjson.dumps(r) for r in good)
    assert plan.arrow is not None and plan.arrow.table([body]) is None  # declined: the undeclared key
    assert plan.read_json_sql([body]) == plan.unchecked
    out = _convert(converter, name, body, arrow=True)
    assert out[:3] == (len(good), len(good), [])
    for record, fname in _bad_ip_lines()[name]:
        bad = body + b"\n" + orjson.dumps(record | {"zz_undeclared": 1})
        assert plan.read_json_sql([bad]) == (plan.select, plan.lean, plan.grouped, plan.grouped_lean)
        total, stored, errors, _ = _convert(converter, name, bad, arrow=True)
        assert (total, stored, [(e.line, e.field) for e in errors]) == (len(good) + 1, len(good),
                                                                         [(len(good) + 1, fname)])


def test_the_lenient_look_skips_other_keys_and_declines_what_it_cannot_tell() -> None:
    vouch = plan_for(REGISTRY["dns"]).ip_vouch
    assert vouch is not None
    ok = [b'{"client_ip":"10.0.0.1","servers":[{"ip":"::1","name":{"deep":[[1]]}},{"x":1}],"other":[1,{"a":null}]}',
          b'{}', b'  ', b'{"client_ip":null,"servers":null}']
    assert vouch.vouches([b"\n".join(ok)])
    for bad in (b'{"client_ip":"10.0.0.1 "}', b'{"servers":[{"ip":"x"}]}', b'{"client_ip":5}', b'{"servers":{"ip":"::"}}',
                b'{"client_ip":"10.0.0.1","client_ip":"10.0.0.1"}', b'{"other":[1,}', b'not json',
                b'{"other":' + b"[" * 70 + b"]" * 70 + b"}", b'{"client_ip":"\\u0031.2.3.4\\u0000"}'):
        assert not vouch.vouches([bad]), bad
    assert vouch.vouches([b'{"client_ip":"\\u0031.2.3.4"}'])  # an escape: the decoded text is checked


_VOUCH = """
from margay.ingest.parse import plan_for
from margay.logtypes import REGISTRY
vouches = [plan_for(REGISTRY[n]).ip_vouch for n in ("flows", "dns", "waf")]
def check(view):
    return sum(int(v.vouches([view])) for v in vouches)
"""


def test_the_lenient_look_reads_nothing_past_the_body() -> None:
    """Every prefix of bodies with skipped strings, escapes, nested values and numbers ends at a guard page."""
    bodies = [b"\n".join(orjson.dumps(r | {"zz": {"a": ["x\\\"y", 1.5e3, None, True, {"b": "\u00e9"}]}, "n": -0.5})
                         for r in (_sample("flows"), _sample("dns"))) + b"\n",
              orjson.dumps(_sample("waf")), b'{"source_ip":"10.0.0.1","x":"\\\\","y":[[[]]],"z":tru',
              b'{"servers":[{"ip":"::1%e","q":"\\u0041"}],"client_ip":null}']
    assert every_prefix_at_a_guard_page(_VOUCH, bodies) >= len(bodies)  # (each whole body vouched for by one)
