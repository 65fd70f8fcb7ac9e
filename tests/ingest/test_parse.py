"""The bulk converter: every native sample parses; bad lines are named; good lines are kept."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import duckdb
import orjson
import pytest

from margay.ingest.parse import Converted, Converter
from margay.logtypes import REGISTRY, SAMPLES
from margay.store.duckdb import connect

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


@pytest.fixture
def converter(tmp_path: Path) -> Converter:
    con = connect()
    return Converter(con.cursor, tmp_path / "scratch")


def rows(conv: Converted) -> list[dict]:
    con = connect()
    out = []
    for _, path, _ in sorted(conv.files):
        out += con.sql("SELECT * FROM read_parquet(?) ORDER BY _seq", params=[str(path)]).to_arrow_table().to_pylist()
    return out


@pytest.mark.parametrize("name", ["flows", "dns", "audit_ee", "audit_kube", "events", "l7"])
def test_every_sample_converts(converter: Converter, name: str) -> None:
    body = "\n".join(SAMPLES[name]).encode()
    conv = converter.convert(REGISTRY[name], body, cluster="c1", now=NOW, seq_base=100)
    assert conv.errors == []
    assert conv.succeeded == conv.total == len(SAMPLES[name])
    got = rows(conv)
    assert {r["cluster"] for r in got} == {"c1"}
    assert sorted(r["_seq"] for r in got) == list(range(101, 101 + len(SAMPLES[name])))


def test_flow_special_values(converter: Converter) -> None:
    conv = converter.convert(REGISTRY["flows"], "\n".join(SAMPLES["flows"]).encode(), cluster="c", now=NOW,
                             seq_base=0)
    by_seq = {r["_seq"]: r for r in rows(conv)}
    first, denied, hep, pvt = by_seq[1], by_seq[2], by_seq[3], by_seq[4]
    assert first["source_ip"] is None and first["source_name"] == "-" and first["source_port"] is None
    assert first["source_labels"] == {"labels": ["app=web"]}
    assert first["policies"]["enforced_policies"] == ["0|default|shop/default.web-egress|allow|0"]
    assert denied["dest_name_aggr"] == "pub" and denied["dest_domains"] == ["api.stripe.com"]
    assert denied["process_name"] == "*" and denied["process_id"] == "*"
    assert "payments/staged:security.restrict-egress" in denied["policies"]["pending_policies"][0]
    assert hep["source_type"] == "hep" and hep["nat_outgoing_ports"] == [31000, 31001]
    assert pvt["source_name_aggr"] == "pvt" and pvt["proto"] == "6"
    assert pvt["original_source_ips"] == ["203.0.113.9"]


def test_dns_times_case_and_latency(converter: Converter) -> None:
    conv = converter.convert(REGISTRY["dns"], "\n".join(SAMPLES["dns"]).encode(), cluster="c", now=NOW, seq_base=0)
    got = {r["_seq"]: r for r in rows(conv)}
    # Nanosecond RFC 3339 keeps microseconds; LOG and lowercase are one value; qname is lowercased.
    assert got[1]["end_time"] == datetime(2023, 11, 14, 22, 18, 20, 123456, tzinfo=UTC)
    assert got[2]["type"] == "log" and got[2]["qname"] == "nosuch.example.org" and got[2]["qclass"] == "IN"
    assert got[2]["latency_mean"] == 25_000_000  # filled from the latency struct
    assert dict(got[1]["client_labels"]) == {"app": "web", "pod-template-hash": "5d8c9"}
    assert got[3]["type"] == "unlogged" and got[3]["count"] == 153


def test_audit_name_is_derived(converter: Converter) -> None:
    conv = converter.convert(REGISTRY["audit_ee"], "\n".join(SAMPLES["audit_ee"]).encode(), cluster="c", now=NOW,
                             seq_base=0)
    names = sorted(r["name"] for r in rows(conv))
    # responseObject.metadata.name for the patch; responseObject.details.name for the delete's Status.
    assert names == ["default.allow-web", "security.block-egress"]


def test_events_accept_epoch_and_rfc3339_times(converter: Converter) -> None:
    conv = converter.convert(REGISTRY["events"], "\n".join(SAMPLES["events"]).encode(), cluster="c", now=NOW,
                             seq_base=0)
    times = sorted(r["time"] for r in rows(conv))
    assert times == [datetime(2023, 11, 14, 22, 18, 20, tzinfo=UTC), datetime(2023, 11, 14, 22, 20, tzinfo=UTC)]


def test_bad_lines_are_named_and_good_lines_kept(converter: Converter) -> None:
    good = SAMPLES["flows"][0]
    body = "\n".join([
        good,
        '{"start_time": 1, "end_time": 2, "action": "maybe", "reporter": "src"}',  # bad enum
        "{not json",  # malformed
        good,
        '{"start_time": 1, "end_time": "yesterday", "action": "allow", "reporter": "src"}',  # wrong type
        "",
        '{"start_time": 1, "action": "allow", "reporter": "dst"}',  # missing required
        '["an", "array"]',
    ]).encode()
    conv = converter.convert(REGISTRY["flows"], body, cluster="c", now=NOW, seq_base=0)
    assert conv.succeeded == 2
    assert conv.total == 7
    errs = {(e.line, e.field) for e in conv.errors}
    assert (2, "action") in errs
    assert (3, None) in errs
    assert (5, "end_time") in errs
    assert (7, "end_time") in errs
    assert (8, None) in errs
    msgs = {e.line: e.msg for e in conv.errors}
    assert "allow, deny" in msgs[2] and "invalid JSON" in msgs[3] and "integer" in msgs[5]


def test_check_failures_on_fast_path_report_line_numbers(converter: Converter) -> None:
    ok = orjson.loads(SAMPLES["flows"][0])
    bad = dict(ok, reporter="sideways")
    body = b"\n".join(orjson.dumps(x) for x in [ok, ok, bad, ok]) + b"\n"
    conv = converter.convert(REGISTRY["flows"], body, cluster="c", now=NOW, seq_base=0)
    assert [(e.line, e.field) for e in conv.errors] == [(3, "reporter")]
    assert conv.succeeded == 3


def test_bad_time_text_is_refused(converter: Converter) -> None:
    body = b'{"logtime": "not a time", "message": "x", "host": "n", "ip_version": "IPv4"}'
    conv = converter.convert(REGISTRY["bgp"], body, cluster="c", now=NOW, seq_base=0)
    assert [(e.line, e.field) for e in conv.errors] == [(1, "logtime")]
    assert conv.succeeded == 0


@pytest.mark.parametrize("grouped", [False, True])
def test_times_outside_1970_to_9999_are_refused_per_line_and_the_rest_kept(converter: Converter, tmp_path: Path,
                                                                          grouped: bool) -> None:
    """A record past 9999 made a nine-digit index day retention could not read; seconds past DuckDB's range failed
    the whole conversion (and, many of them, refused good lines beside them). Now each is its own line's error."""
    from margay.ingest.group import convert_group

    ok = orjson.loads(SAMPLES["flows"][0])
    bad = [dict(ok, end_time=253402300800), dict(ok, end_time=2**62), dict(ok, start_time=-1), dict(ok, end_time=-5)]
    lines = [ok, *bad, ok]
    body = b"\n".join(orjson.dumps(x) for x in lines) + b"\n"
    if grouped:  # the group commit's C-parsed path
        parts = convert_group(converter, REGISTRY["flows"], [("a", body), ("b", body)], now=NOW, seq_base=0).parts
    else:
        parts = [converter.convert(REGISTRY["flows"], body, cluster="c", now=NOW, seq_base=0)]
    for conv in parts:
        assert [(e.line, e.field) for e in conv.errors] == [(2, "end_time"), (3, "end_time"), (4, "start_time"),
                                                            (5, "end_time")]
        assert all("out of range" in e.msg for e in conv.errors) and conv.succeeded == 2
    for name, value in [("requestReceivedTimestamp", "10000-01-01T00:00:00Z"),
                        ("requestReceivedTimestamp", "1969-12-31T23:59:59Z"),
                        ("requestReceivedTimestamp", "1e20")]:
        rec = dict(orjson.loads(SAMPLES["audit_kube"][0]), **{name: value})
        conv = converter.convert(REGISTRY["audit_kube"], orjson.dumps(rec), cluster="c", now=NOW, seq_base=0)
        assert [(e.line, e.field) for e in conv.errors] == [(1, name)], value
    edge = dict(ok, start_time=253402300799 - 10, end_time=253402300799)  # 9999-12-31T23:59:59Z is kept
    conv = converter.convert(REGISTRY["flows"], orjson.dumps(edge), cluster="c", now=NOW, seq_base=0)
    assert conv.errors == [] and [d for d, _, _ in conv.files] == ["99991231"]


def test_records_split_by_utc_day(converter: Converter) -> None:
    rec = orjson.loads(SAMPLES["flows"][0])
    late = dict(rec, start_time=1700006100, end_time=1700006399)  # 2023-11-14T23:59:59Z
    early = dict(rec, start_time=1700006400, end_time=1700006401)  # 2023-11-15T00:00:01Z
    conv = converter.convert(REGISTRY["flows"], orjson.dumps(late) + b"\n" + orjson.dumps(early), cluster="c",
                             now=NOW, seq_base=0)
    assert sorted((d, n) for d, _, n in conv.files) == [("20231114", 1), ("20231115", 1)]


def test_duckdb_is_offline() -> None:
    con = connect()
    with pytest.raises(duckdb.Error):
        con.execute("SELECT * FROM read_parquet('https://example.invalid/x.parquet')").fetchall()


# -- hostile records: bounded, named, and no good line lost -----------------------------------------------------
def test_duplicate_keys_and_64_bit_overflow_are_named_per_line(converter: Converter) -> None:
    good = SAMPLES["flows"][0].encode()
    dup = good[:-1] + b',"action":"allow"}'  # the sample already has an action
    big = orjson.dumps(dict(orjson.loads(good), bytes_in=0)).replace(b'"bytes_in":0', b'"bytes_in":9223372036854775808')
    conv = converter.convert(REGISTRY["flows"], b"\n".join([good, dup, good, big, good]), cluster="c", now=NOW,
                             seq_base=0)
    assert conv.succeeded == 3 and conv.total == 5
    assert [(e.line, e.msg) for e in conv.errors] == [(2, "duplicate key 'action'"),
                                                      (4, "integer 9223372036854775808 does not fit in 64 bits")]


def test_deep_records_are_refused_naming_line_and_field(converter: Converter) -> None:
    base = orjson.loads(SAMPLES["events"][0])
    ok = dict(base, record={"a": {"b": [1, {"c": 2}]}})
    deep = orjson.dumps({k: v for k, v in base.items() if k != "record"})[:-1] + \
        b',"record":' + b'{"a":' * 65 + b"1" + b"}" * 65 + b"}"
    just_fits = orjson.dumps({k: v for k, v in base.items() if k != "record"})[:-1] + \
        b',"record":' + b"[" * 62 + b'"[[[[[[[[ not brackets ]]"' + b"]" * 62 + b"}"
    body = b"\n".join([orjson.dumps(ok), deep, just_fits, b"[" * 5000 + b"]" * 5000])
    conv = converter.convert(REGISTRY["events"], body, cluster="c", now=NOW, seq_base=0)
    assert conv.succeeded == 2, conv.errors
    assert [(e.line, e.field) for e in conv.errors] == [(2, "record"), (4, None)]
    assert all("deeper than 64 levels" in e.msg for e in conv.errors)


def test_oversized_records_are_refused_and_the_rest_kept(converter: Converter) -> None:
    from margay.ingest.parse import MAX_DOCUMENT_BYTES

    good = SAMPLES["flows"][0].encode()
    huge = good[:-1] + b',"padding":"' + b"x" * MAX_DOCUMENT_BYTES + b'"}'
    conv = converter.convert(REGISTRY["flows"], b"\n".join([good, huge, good]), cluster="c", now=NOW, seq_base=0)
    assert conv.succeeded == 2 and [e.line for e in conv.errors] == [2]
    assert "over the limit" in conv.errors[0].msg


def test_reader_messages_carry_no_server_paths(converter: Converter, tmp_path: Path) -> None:
    from margay.ingest.parse import _reader_message

    exc = duckdb.InvalidInputException(f'Invalid Input Error: JSON transform error in file "{tmp_path}/x/in.ndjson", '
                                       'in line 1: Object {"a":1} has duplicate key "a"')
    assert str(tmp_path) not in _reader_message(exc) and "duplicate key" in _reader_message(exc)


@pytest.mark.parametrize("offset", [0, 1, 1000, 2 * 1024 * 1024 - 1, 2 * 1024 * 1024 + 7])
def test_line_length_bound_is_exact_wherever_the_line_sits(converter: Converter, offset: int) -> None:
    """The size bound finds an oversized line by windows without splitting the body: a line of exactly the
    limit passes, one byte more is refused, wherever it starts among short lines."""
    from margay.ingest.parse import MAX_DOCUMENT_BYTES

    good = SAMPLES["flows"][0].encode()
    head = good[:-1] + b',"padding":"'
    lead = (good + b"\n") * (offset // (len(good) + 1))
    fits = head + b"x" * (MAX_DOCUMENT_BYTES - len(head) - 2) + b'"}'
    over = head + b"x" * (MAX_DOCUMENT_BYTES - len(head) - 1) + b'"}'
    assert len(fits) == MAX_DOCUMENT_BYTES and len(over) == MAX_DOCUMENT_BYTES + 1
    n_lead = lead.count(b"\n")
    for line, refused in ((fits, False), (over, True)):
        body = lead + line + b"\n" + good
        conv = converter.convert(REGISTRY["flows"], body, cluster="c", now=NOW, seq_base=0)
        assert [e.line for e in conv.errors] == ([n_lead + 1] if refused else [])
        assert conv.succeeded == n_lead + 1 + (0 if refused else 1)
