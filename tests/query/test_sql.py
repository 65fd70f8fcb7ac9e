"""Selectors compiled to DuckDB SQL, run against real tables built from the registry's DDL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from margay.errors import QueryError
from margay.logtypes import REGISTRY, Kind, LogType, quote_ident
from margay.query.selector import And, Compare, InSet, Node, Not, Or, parse_selector, render
from margay.query.sql import compile_selector

NOW = datetime(2023, 11, 14, 22, 30, tzinfo=UTC)  # 1700001000

# Rows as SQL literals (trusted test data); `_seq` is each row's id and unset columns are NULL.
ROWS: dict[str, list[dict[str, str]]] = {
    "flows": [
        {"_seq": "1", "action": "'allow'", "reporter": "'src'", "proto": "'tcp'", "source_namespace": "'shop'",
         "source_name_aggr": "'web-5d8c9-*'", "dest_port": "8080", "dest_ip": "'10.244.1.7'", "bytes_in": "5120",
         "source_labels": "{'labels': ['app=web', 'tier=front']}", "end_time": "1700000300", "process_name": "'-'",
         "policies": "{'all_policies': ['0|default|shop/default.web-egress|allow|0'], 'enforced_policies': [], "
                     "'pending_policies': [], 'transit_policies': []}"},
        {"_seq": "2", "action": "'deny'", "reporter": "'src'", "proto": "'tcp'", "source_namespace": "'payments'",
         "dest_port": "443", "dest_domains": "['api.stripe.com', 'www.example.com']", "source_ip": "'10.244.2.3'",
         "source_labels": "{'labels': ['app=api']}", "bytes_in": "0", "end_time": "1700000600",
         "process_name": "'*'", "nat_outgoing_ports": "[31000, 31001]"},
        {"_seq": "3", "action": "'allow'", "reporter": "'dst'", "proto": "'17'", "source_namespace": "'-'",
         "dest_port": "53", "dest_domains": "[]", "source_ip": "'192.168.7.20'", "dest_ip": "'10.96.0.10'",
         "bytes_in": "840", "end_time": "1700000900", "process_name": "'/usr/bin/coredns'"},
        {"_seq": "4", "action": "'deny'", "reporter": "'dst'", "source_namespace": "''",
         "dest_domains": "['example.com', 'evil_host%.net']", "source_labels": "{'labels': []}",
         "source_ip": "'2001:db8::1'", "end_time": "1700001200", "nat_outgoing_ports": "[]"},
    ],
    "dns": [
        {"_seq": "1", "start_time": "'2023-11-14T22:13:20Z'", "end_time": "'2023-11-14T22:18:20Z'", "qname": "'api.example.com'",
         "qtype": "'A'", "client_labels": "MAP {'app': 'web', 'pod-template-hash': '5d8c9'}",
         "rrsets": "[{'name': 'api.example.com', 'type': 'A', 'class': 'IN', 'rdata': ['93.184.216.34']}]",
         "servers": "[{'ip': '10.96.0.10', 'name': 'coredns-1', 'name_aggr': 'coredns-*', 'namespace': 'kube-system', "
                    "'labels': MAP {'k8s-app': 'kube-dns'}}]", "count": "7"},
        {"_seq": "2", "start_time": "'2023-11-14T22:18:20Z'", "end_time": "'2023-11-14T22:23:20Z'",
         "qname": "'nosuch.example.org'", "qtype": "'AAAA'", "client_labels": "MAP {'app': 'api'}", "rrsets": "[]",
         "servers": "[{'ip': '8.8.8.8', 'name': '-', 'name_aggr': 'pub', 'namespace': '-', 'labels': NULL}]",
         "count": "1"},
        {"_seq": "3", "start_time": "'2023-11-14T22:23:20Z'", "end_time": "'2023-11-14T22:28:20Z'", "count": "153"},
    ],
    "audit_kube": [
        {"_seq": "1", "verb": "'create'", "user": "{'username': 'rs-controller', 'uid': NULL, 'groups': ['system:authenticated'], "
                                             "'extra': NULL}", "responseObject": "'{\"kind\": \"Pod\", \"apiVersion\": \"v1\"}'",
         "responseStatus": "{'code': 201, 'status': NULL, 'message': NULL, 'reason': NULL, 'metadata': NULL, 'details': NULL}",
         "requestReceivedTimestamp": "'2023-11-14T22:13:20.5Z'",
         "annotations": "MAP {'authorization.k8s.io/decision': 'allow'}"},
        {"_seq": "2", "verb": "'update'", "user": "{'username': 'bob', 'uid': NULL, 'groups': ['dev'], 'extra': NULL}",
         "responseStatus": "{'code': 403, 'status': 'Failure', 'message': NULL, 'reason': 'Forbidden', 'metadata': NULL, "
                           "'details': NULL}", "requestReceivedTimestamp": "'2023-11-14T22:14:00Z'"},
    ],
    "events": [
        {"_seq": "1", "time": "'2023-11-14T22:18:20Z'", "severity": "100", "dismissed": "false", "mitre_ids": "['T1041']"},
        {"_seq": "2", "time": "'2023-11-14T22:20:00Z'", "severity": "60", "dismissed": "true", "mitre_ids": "['T1090']"},
    ],
}


def connect() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(config={"autoinstall_known_extensions": False, "autoload_known_extensions": False})
    con.execute("SET TimeZone='UTC'")
    return con


def create(con: duckdb.DuckDBPyConnection, lt: LogType) -> None:
    columns = ", ".join(f"{quote_ident(name)} {sql_type}" for name, sql_type in lt.storage_columns())
    con.execute(f"CREATE TABLE {lt.name} ({columns})")  # noqa: S608 - registry names only


@pytest.fixture(scope="module")
def con() -> Iterator[duckdb.DuckDBPyConnection]:
    con = connect()
    for name in REGISTRY:
        create(con, REGISTRY[name])
    for name, rows in ROWS.items():
        for row in rows:
            names = ", ".join(quote_ident(k) for k in row)
            con.execute(f"INSERT INTO {name} ({names}) VALUES ({', '.join(row.values())})")  # noqa: S608
    yield con
    con.close()


def matching(con: duckdb.DuckDBPyConnection, logtype: str, text: str) -> list[int]:
    where, params = compile_selector(parse_selector(text), REGISTRY[logtype], now=NOW, text=text)
    query = f"SELECT _seq FROM {logtype} WHERE {where} ORDER BY _seq"  # noqa: S608 - values are parameters
    return [r[0] for r in con.execute(query, params).fetchall()]


# DuckDB 2.0 rejects the `x -> …` lambda the registry writes for keys inside lists of objects
# (rrsets.*, servers.*); those tests run once logtypes/base.py uses `lambda x: …`.
ARROW_LAMBDA = "->" in REGISTRY["dns"].query_keys()["rrsets.rdata"].sql
needs_lambda_fix = pytest.mark.xfail(ARROW_LAMBDA, reason="registry uses the arrow lambda DuckDB 2.0 rejects",
                                     raises=duckdb.BinderException, strict=True)


@pytest.mark.parametrize(("text", "rows"), [
    # scalars, every operator; != and NOT also match rows where the field is missing
    ("action = allow", [1, 3]),
    ("action != allow", [2, 4]),
    ("dest_port > 443", [1]),
    ("dest_port >= 443", [1, 2]),
    ("dest_port < 443", [3]),
    ("dest_port <= 443", [2, 3]),
    ("dest_port != 443", [1, 3, 4]),
    ("NOT dest_port = 443", [1, 3, 4]),
    ("NOT dest_port > 100", [3, 4]),
    ('dest_port = "443"', [2]),
    ("dest_port_num = 8080", [1]),
    ("bytes_in <= 0", [2]),
    ("proto = 17", [3]),
    ("source_namespace >= shop", [1]),
    ("source_namespace < a", [3, 4]),
    ('source_namespace = ""', [4]),
    ('source_namespace = "-"', [3]),
    ("process_name = -", [1]),
    ('process_name = "*"', [2]),
    # sets, wildcards and their escaping
    ("action IN {allow, deny}", [1, 2, 3, 4]),
    ("action NOTIN {allow}", [2, 4]),
    ("dest_port IN {53, 443}", [2, 3]),
    ("dest_port NOTIN {53, 443}", [1, 4]),
    ("action IN {}", []),
    ("action NOTIN {}", [1, 2, 3, 4]),
    ("source_name_aggr IN {web-*}", [1]),
    ("process_name IN {*}", [1, 2, 3]),
    (r'process_name IN {"\*"}', [2]),
    ('process_name IN {"/usr/bin/*", "-"}', [1, 3]),
    ("source_namespace IN {sh?p}", [1]),
    ('source_namespace IN {"s%*"}', []),
    # lists match when any element does; != and NOTIN when none does
    ('source_labels.labels = "app=web"', [1]),
    ('source_labels.labels != "app=web"', [2, 3, 4]),
    ('source_labels.labels IN {"app=*"}', [1, 2]),
    ('source_labels.labels NOTIN {"tier=*"}', [2, 3, 4]),
    ('dest_domains IN {"*.example.com"}', [2]),
    ('dest_domains IN {"example.com", "api.*"}', [2, 4]),
    ('dest_domains NOTIN {"*.example.com"}', [1, 3, 4]),
    ('dest_domains = "evil_host%.net"', [4]),
    ('dest_domains IN {"evil_host%*"}', [4]),
    ('dest_domains IN {"evil?host*"}', [4]),
    ('dest_domains IN {"evil_hos_*"}', []),
    ('dest_domains IN {"%"}', []),
    ("dest_domains > x", []),
    ("dest_domains < b", [2]),
    ("nat_outgoing_ports = 31000", [2]),
    ("nat_outgoing_ports > 31000", [2]),
    ("nat_outgoing_ports != 31000", [1, 3, 4]),
    ("nat_outgoing_ports IN {1, 31001}", [2]),
    ('policies.all_policies IN {"*|shop/default.web-egress|*"}', [1]),
    # IPs: addresses, CIDRs, IPv4 order
    ("source_ip = 10.244.2.3", [2]),
    ('source_ip = "10.0.0.0/8"', [2]),
    ("source_ip != 10.0.0.0/8", [1, 3, 4]),
    ("source_ip IN {192.168.0.0/16, 2001:db8::1}", [3, 4]),
    ("source_ip > 10.244.2.0", [2, 3]),
    ("dest_ip != 10.96.0.10", [1, 2, 4]),
    ("source.ip = 192.168.7.20", [3]),
    # times: epoch seconds, RFC 3339 and relative to NOW (1700001000)
    ("end_time > 1700000600", [3, 4]),
    ('end_time >= "2023-11-14T22:23:20Z"', [2, 3, 4]),
    ("end_time = 2023-11-14T22:23:20+00:00", [2]),
    ("end_time > now-10m", [2, 3, 4]),
    ("end_time <= now-10m", [1]),
    ("end_time < now", [1, 2, 3]),
    ("@timestamp < 1700000600", [1]),
    ("end_time IN {1700000300, 2023-11-14T22:23:20Z}", [1, 2]),
    # combinations
    ("action = allow OR action = deny AND dest_port = 443", [1, 2, 3]),
    ("(action = allow OR action = deny) AND dest_port = 443", [2]),
    ("NOT (action = allow AND reporter = src)", [2, 3, 4]),
    ("NOT NOT action = allow", [1, 3]),
    ("action = deny AND NOT dest_domains IN {*.example.com}", [4]),
    # nothing typed goes into the SQL text
    ("action = \"x' OR 1=1 --\"", []),
    ("action IN {\"x') OR TRUE --\", \"deny' --\"}", []),
    ('source_labels.labels IN {"%"}', []),
])
def test_flows(con: duckdb.DuckDBPyConnection, text: str, rows: list[int]) -> None:
    assert matching(con, "flows", text) == rows


@pytest.mark.parametrize(("text", "rows"), [
    ("client_labels.app = web", [1]),
    ("client_labels.app != web", [2, 3]),
    ("client_labels.app IN {web, api}", [1, 2]),
    ("client_labels.app IN {a*}", [2]),
    ("client_labels.app NOTIN {a*, w?b}", [3]),
    ("client_labels.pod-template-hash = 5d8c9", [1]),
    ("client_labels.nope = web", []),
    ('"client_labels.app\') OR 1=1 --" = web', []),
    ("qname = API.Example.COM", [1]),  # stored lowercased, so selected lowercased
    ("qname IN {*.EXAMPLE.org}", [2]),
    ("dns.question.name = api.example.com", [1]),
    ("qtype = aaaa", [2]),
    ("end_time > '2023-11-14T22:20:00Z'", [2, 3]),
    ("start_time < now-10m", [1, 2]),
    ("end_time >= 1700000600", [2, 3]),
    ("@timestamp <= 2023-11-14T22:18:20Z", [1]),
    ("count >= 7", [1, 3]),
])
def test_dns(con: duckdb.DuckDBPyConnection, text: str, rows: list[int]) -> None:
    assert matching(con, "dns", text) == rows


@needs_lambda_fix
@pytest.mark.parametrize(("text", "rows"), [
    ('rrsets.rdata IN {"93.184.*"}', [1]),
    ("rrsets.name = api.example.com", [1]),
    ("servers.ip = 8.8.8.8", [2]),
    ("servers.ip = 10.0.0.0/8", [1]),
    ("servers.name_aggr != pub", [1, 3]),
])
def test_dns_lists_of_objects(con: duckdb.DuckDBPyConnection, text: str, rows: list[int]) -> None:
    assert matching(con, "dns", text) == rows


@pytest.mark.parametrize(("text", "rows"), [
    ("responseObject.kind = Pod", [1]),
    ("responseObject.kind != Pod", [2]),
    ("responseObject.apiVersion IN {v*}", [1]),
    ("user.groups = dev", [2]),
    ("user.username IN {rs-*}", [1]),
    ("responseStatus.code >= 400", [2]),
    ('timestamp > "2023-11-14T22:13:20Z"', [1, 2]),
    ("requestReceivedTimestamp > 2023-11-14T22:13:20.5Z", [2]),
    ("requestReceivedTimestamp < now-16m", [1]),
    ("requestReceivedTimestamp < now-15m", [1, 2]),
    ("annotations.authorization.k8s.io/decision = allow", [1]),
    ("verb = create AND NOT annotations.authorization.k8s.io/decision = deny", [1]),
])
def test_audit(con: duckdb.DuckDBPyConnection, text: str, rows: list[int]) -> None:
    assert matching(con, "audit_kube", text) == rows


@pytest.mark.parametrize(("text", "rows"), [
    ("dismissed = true", [2]),
    ("dismissed != TRUE", [1]),
    ("severity >= 60 AND severity < 100", [2]),
    ("time > 1700000300", [2]),
    ("mitre_ids IN {T109*}", [2]),
])
def test_events(con: duckdb.DuckDBPyConnection, text: str, rows: list[int]) -> None:
    assert matching(con, "events", text) == rows


def test_values_are_bound_never_pasted() -> None:
    sql, params = compile_selector(parse_selector('action = "x\' OR 1=1 --"'), REGISTRY["flows"])
    assert sql == '("action" = ?)' and params == ["x' OR 1=1 --"]
    sql, params = compile_selector(parse_selector(""""client_labels.ev'il" = 'x'"""), REGISTRY["dns"])
    assert "ev'il" not in sql and params == ["ev'il", "x"]


def test_blank_selector_is_true() -> None:
    assert compile_selector(parse_selector("  "), REGISTRY["flows"]) == ("TRUE", [])


@pytest.mark.parametrize(("logtype", "text", "position", "message", "suggestions"), [
    ("flows", "dest_prot = 1", 0, "unknown key 'dest_prot' for flows logs at position 0; did you mean dest_port",
     ["dest_port", "dest_ip", "dest_port_num", "dest_ips", "dest_type"]),
    ("flows", "action = allow AND sourec_namespace = x", 19, "did you mean source_namespace,", None),
    ("dns", "qnme = x", 0, "did you mean qname?", ["qname"]),
    ("dns", "client_label.app = x", 0, "unknown key 'client_label.app' for dns logs", None),
    ("audit_kube", "objectRef.nam = x", 0, "did you mean objectRef.name", None),
    ("flows", "zzz = 1", 0, "unknown key 'zzz' for flows logs at position 0; valid keys: @timestamp, action,", []),
])
def test_unknown_keys(logtype: str, text: str, position: int, message: str, suggestions: list[str] | None) -> None:
    with pytest.raises(QueryError) as err:
        compile_selector(parse_selector(text), REGISTRY[logtype], text=text)
    assert message in err.value.message
    assert err.value.details["position"] == position
    assert err.value.details["selector"] == text
    if suggestions is not None:
        assert err.value.details["suggestions"] == suggestions
    assert err.value.message.endswith("\n" + " " * (2 + position) + "^")


@pytest.mark.parametrize(("logtype", "text", "position", "message"), [
    ("flows", "dest_port = abc", 12, "expected a number for 'dest_port', got 'abc'"),
    ("flows", "dest_port IN {1, x}", 17, "expected a number for 'dest_port', got 'x'"),
    ("flows", "bytes_in > 99999999999999999999999", 11, "'bytes_in' holds 64-bit integers"),
    ("flows", "bytes_in IN {1, -9223372036854775809}", 16, "is out of range"),
    ("flows", "dest_port IN {8*}", 14, "wildcards work only on string keys, not on 'dest_port'"),
    ("flows", "source_ip IN {10.0.*}", 14, "use a CIDR such as 10.0.0.0/8"),
    ("flows", "source_ip = web", 12, "expected an IP address or CIDR for 'source_ip', got 'web'"),
    ("flows", 'source_ip = "-"', 12, "expected an IP address or CIDR"),
    ("flows", "source_ip > 10.0.0.0/8", 12, "a CIDR works only with =, != and sets, not with >"),
    ("flows", "source_ip = 2001:db8::/32", 12, "IPv6 ranges and CIDRs on 'source_ip' are not supported"),
    ("flows", "source_ip < 2001:db8::1", 12, "IPv6 ranges and CIDRs"),
    ("flows", "end_time > yesterday", 11, "end_time: cannot read 'yesterday'"),
    ("flows", "end_time > now-5x", 11, "end_time: cannot read 'now-5x'"),
    ("events", "dismissed = maybe", 12, "expected true or false for 'dismissed', got 'maybe'"),
    ("dns", "client_labels = web", 0, "'client_labels' is a map; select one of its keys as client_labels.<key>"),
])
def test_bad_values(logtype: str, text: str, position: int, message: str) -> None:
    with pytest.raises(QueryError) as err:
        compile_selector(parse_selector(text), REGISTRY[logtype], text=text)
    assert message in err.value.message
    assert err.value.details["position"] == position


def test_now_defaults_to_the_current_time() -> None:
    sql, params = compile_selector(parse_selector("end_time > now-15m"), REGISTRY["flows"])
    assert abs(params[0] - (datetime.now(UTC).timestamp() - 900)) < 60
    _, params = compile_selector(parse_selector("end_time > now"), REGISTRY["dns"], now=NOW)
    assert params == [NOW] and params[0].tzinfo is not None


# -- random ASTs: render, parse back equal, compile, and run -------------------------------------------------

ROUND_TRIP_TYPES = ("flows", "dns", "audit_ee", "events")
_TEXT = st.text(st.characters(codec="utf-8"), max_size=12)


def _value(kind: Kind) -> st.SearchStrategy[Any]:
    if kind in (Kind.KEYWORD, Kind.TEXT, Kind.KEYWORD_LIST):
        return st.one_of(_TEXT, st.integers(-10**6, 10**6), st.sampled_from(["-", "", "*", "a*b?", "x' OR 1=1 --"]))
    if kind in (Kind.IP, Kind.IP_LIST):
        return st.one_of(st.ip_addresses(v=4).map(str), st.ip_addresses(v=6).map(str),
                         st.builds(lambda ip, n: f"{ip}/{n}", st.ip_addresses(v=4), st.integers(0, 32)))
    if kind in (Kind.LONG, Kind.INTEGER, Kind.LONG_LIST):
        return st.integers(-(2**62), 2**62)
    if kind is Kind.DOUBLE:
        return st.floats(allow_nan=False, allow_infinity=False)
    if kind is Kind.BOOL:
        return st.sampled_from(["true", "false", "TRUE"])
    return st.one_of(st.integers(0, 4 * 10**9), st.sampled_from(["now", "now-15m", "now-2h", "now-7d"]),
                     st.integers(0, 4 * 10**9).map(lambda s: datetime.fromtimestamp(s, UTC).isoformat()))


def _leaf(lt: LogType) -> st.SearchStrategy[Node]:
    keys = {name: qk.kind for name, qk in lt.query_keys().items()
            if qk.kind is not Kind.MAP and not (ARROW_LAMBDA and "->" in qk.sql)}
    map_keys = [f"{column}.{suffix}" for column in lt.map_keys for suffix in ("app", "k8s.io/x", "we ird")]

    @st.composite
    def leaf(draw: st.DrawFn) -> Node:
        key = draw(st.sampled_from(sorted(keys) + map_keys))
        kind = keys.get(key, Kind.KEYWORD)
        value = draw(_value(kind))
        if draw(st.booleans()):
            values = tuple(draw(st.lists(_value(kind), max_size=4)))
            if kind not in (Kind.KEYWORD, Kind.TEXT, Kind.KEYWORD_LIST):
                values = tuple(v for v in values if not (isinstance(v, str) and ("*" in v or "?" in v)))
            return InSet(key, values, draw(st.booleans()))
        # CIDRs take only = and !=; IPv6 addresses take no order comparisons in SQL.
        only_equality = kind in (Kind.IP, Kind.IP_LIST) and ("/" in value or ":" in value)
        ops = ["=", "!="] if only_equality else ["=", "!=", "<", "<=", ">", ">="]
        return Compare(key, draw(st.sampled_from(ops)), value)

    return leaf()


def _tree(lt: LogType) -> st.SearchStrategy[Node]:
    return st.recursive(_leaf(lt), lambda children: st.one_of(
        st.lists(children, min_size=2, max_size=3).map(lambda xs: And(tuple(xs))),
        st.lists(children, min_size=2, max_size=3).map(lambda xs: Or(tuple(xs))),
        children.map(Not)), max_leaves=8)


@pytest.fixture(scope="module")
def empty() -> Iterator[duckdb.DuckDBPyConnection]:
    con = connect()
    for name in ROUND_TRIP_TYPES:
        create(con, REGISTRY[name])
    yield con
    con.close()


@pytest.mark.parametrize("logtype", ROUND_TRIP_TYPES)
@settings(max_examples=75, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_random_selectors_round_trip_and_run(empty: duckdb.DuckDBPyConnection, logtype: str, data: st.DataObject) -> None:
    lt = REGISTRY[logtype]
    tree = data.draw(_tree(lt))
    text = render(tree)
    assert parse_selector(text) == tree
    where, params = compile_selector(tree, lt, now=NOW)
    assert where.count("?") == len(params)
    query = f"SELECT count(*) FROM {logtype} WHERE {where}"  # noqa: S608 - values are parameters
    assert empty.execute(query, params).fetchall() == [(0,)]
