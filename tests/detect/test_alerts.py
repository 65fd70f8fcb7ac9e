"""GlobalAlerts over every data set and metric, evaluated in the engine on both engines: exactly the expected
events, once, with the documented fields; the fake clock sets the window."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest

from margay.app import _backend
from margay.clock import FakeClock
from margay.config import Settings
from margay.detect.alerts import evaluate, render
from margay.detect.resources import parse_resource
from margay.detect.scheduler import Detector
from margay.logtypes import REGISTRY
from margay.query.model import Query

from .test_matching import settle

NOW = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)
T = int(NOW.timestamp())


def _iso(t: int) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat().replace("+00:00", "Z")


def flows() -> list[dict[str, Any]]:
    out = []
    for i in range(12):  # 6 from payments (4 denied), 4 from shop, 2 from dev
        ns = "payments" if i < 6 else "shop" if i < 10 else "dev"
        out.append({"start_time": T - 300 + i, "end_time": T - 240 + i, "action": "deny" if i < 4 else "allow",
                    "reporter": "src", "proto": "tcp", "source_ip": f"10.0.0.{i}", "source_namespace": ns,
                    "source_name_aggr": f"{ns}-*", "source_type": "wep", "dest_ip": "10.9.0.1", "dest_port": 5432,
                    "dest_namespace": "db", "dest_name_aggr": "pg-*", "dest_type": "wep", "bytes_in": 100,
                    "bytes_out": 10 * (i + 1), "packets_in": 1, "packets_out": 1, "num_flows": 1, "host": "n1"})
    # an old flow outside every lookback
    out.append({**out[0], "start_time": T - 7200, "end_time": T - 7140, "source_namespace": "old"})
    return out


def dns() -> list[dict[str, Any]]:
    return [{"start_time": T - 200 + i, "end_time": T - 140 + i, "count": 1, "client_ip": f"10.1.0.{i}",
             "client_name": "-", "client_name_aggr": "web-*", "client_namespace": "shop" if i < 5 else "dev",
             "qname": f"r{i}.example", "qtype": "A", "qclass": "IN", "rcode": "NXDomain" if i < 6 else "NoError",
             "rrsets": [], "servers": [], "host": "n1"} for i in range(8)]


def audit() -> list[dict[str, Any]]:
    def ev(i: int, user: str, verb: str, resource: str) -> dict[str, Any]:
        return {"kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "Metadata", "auditID": f"a-{i}",
                "stage": "ResponseComplete", "requestURI": f"/api/v1/namespaces/shop/{resource}/x{i}", "verb": verb,
                "user": {"username": user, "groups": []}, "sourceIPs": [f"10.2.0.{i}"],
                "objectRef": {"resource": resource, "namespace": "shop", "name": f"x{i}", "apiVersion": "v1"},
                "responseStatus": {"code": 200}, "requestReceivedTimestamp": _iso(T - 100 + i),
                "stageTimestamp": _iso(T - 100 + i)}
    return [ev(0, "mallory", "get", "secrets"), ev(1, "system:serviceaccount:kube-system:x", "get", "secrets"),
            ev(2, "mallory", "list", "pods")]


def l7() -> list[dict[str, Any]]:
    return [{"start_time": T - 120, "end_time": T - 60, "host": "n1", "bytes_in": 1, "bytes_out": 2,
             "duration_mean": 10, "duration_max": d, "count": 1, "src_name_aggr": "web-*", "src_namespace": "shop",
             "src_type": "wep", "dest_name_aggr": d_name, "dest_namespace": "shop", "dest_type": "wep",
             "url": "cart/x", "response_code": "500", "method": "GET", "type": "http/1.1"}
            for d, d_name in ((100, "cart-*"), (900, "cart-*"), (50, "pay-*"))]


@pytest.fixture(scope="module")
def loaded(module_engine: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    clock = FakeClock(NOW)
    backend = _backend(Settings(data_dir=tmp_path_factory.mktemp("alerts"), **module_engine), clock)
    for name, records in (("flows", flows()), ("dns", dns()), ("audit_kube", audit()), ("l7", l7())):
        resp, _ = backend.ingest(REGISTRY[name], "c1", b"\n".join(orjson.dumps(r) for r in records), key=None,
                                 now=NOW, respond=lambda c: {"failed": c.failed_lines})
        assert resp == {"failed": 0}, name
    settle(backend)
    yield backend
    backend.close()


def alert(name: str, **spec: Any) -> Any:
    return parse_resource({"apiVersion": "projectcalico.org/v3", "kind": "GlobalAlert", "metadata": {"name": name},
                           "spec": {"severity": 70, "description": "d", **spec}})


def records(backend: Any, a: Any) -> list[dict[str, Any]]:
    return sorted((e["record"] for e in evaluate(backend, a, NOW).get("c1", [])), key=orjson.dumps)


CASES = [
    ("count-by-ns", {"dataSet": "flows", "aggregateBy": ["source_namespace"], "metric": "count", "condition": "gte",
                     "threshold": 4}, [{"source_namespace": "payments", "count": 6},
                                       {"source_namespace": "shop", "count": 4}]),
    ("denied", {"dataSet": "flows", "query": "action = deny", "aggregateBy": ["source_namespace", "dest_namespace"],
                "metric": "count", "condition": "gt", "threshold": 3},
     [{"source_namespace": "payments", "dest_namespace": "db", "count": 4}]),
    ("sum-bytes", {"dataSet": "flows", "aggregateBy": ["source_namespace"], "metric": "sum", "field": "bytes_out",
                   "condition": "gt", "threshold": 300}, [{"source_namespace": "shop", "sum": 340.0}]),
    ("avg", {"dataSet": "flows", "metric": "avg", "field": "bytes_out", "condition": "eq", "threshold": 65},
     [{"avg": 65.0}]),
    ("min", {"dataSet": "flows", "metric": "min", "field": "bytes_out", "condition": "lt", "threshold": 11},
     [{"min": 10.0}]),
    ("max-miss", {"dataSet": "flows", "metric": "max", "field": "bytes_out", "condition": "gt", "threshold": 120},
     []),
    ("count-all", {"dataSet": "flows", "metric": "count", "condition": "not_eq", "threshold": 0}, [{"count": 12}]),
    ("no-metric-buckets", {"dataSet": "flows", "query": "source_namespace IN ${nss}", "aggregateBy": ["source_namespace"],
                           "substitutions": [{"name": "nss", "values": ["dev", "nope"]}]},
     [{"source_namespace": "dev", "count": 2}]),
    ("nx-flood", {"dataSet": "dns", "query": "rcode = NXDomain", "aggregateBy": ["client_namespace"],
                  "metric": "count", "condition": "gte", "threshold": 5}, [{"client_namespace": "shop", "count": 5}]),
    ("l7-slow", {"dataSet": "l7", "aggregateBy": ["dest_name_aggr"], "metric": "max", "field": "duration_max",
                 "condition": "gte", "threshold": 500}, [{"dest_name_aggr": "cart-*", "max": 900.0}]),
]


@pytest.mark.parametrize(("name", "spec", "expected"), CASES, ids=[c[0] for c in CASES])
def test_alert_buckets_and_metrics(loaded, name, spec, expected):
    assert records(loaded, alert(name, **spec)) == sorted(expected, key=orjson.dumps)


def test_per_document_audit_alert_copies_sides(loaded):
    a = alert("secrets-read", dataSet="audit",
              query='objectRef.resource = secrets AND verb IN {get, list, watch} AND '
                    'NOT "user.username" IN {"system:*"}',
              description="${user.username} read secret ${objectRef.namespace}/${objectRef.name}")
    [event] = evaluate(loaded, a, NOW)["c1"]
    assert event["description"] == "mallory read secret shop/x0"
    assert (event["type"], event["origin"], event["severity"], event["time"]) == ("global_alert", "secrets-read", 70, T)
    assert (event["source_ip"], event["source_namespace"], event["source_name"]) == ("10.2.0.0", "shop", "x0")
    assert event["record"]["auditID"] == "a-0"


def test_scheduler_runs_on_the_clock_writes_once_and_isolates_failures(engine, tmp_path):
    clock = FakeClock(NOW)
    backend = _backend(Settings(data_dir=tmp_path / "d", **engine), clock)
    try:
        resp, _ = backend.ingest(REGISTRY["flows"], "c1", b"\n".join(orjson.dumps(r) for r in flows()), key=None,
                                 now=NOW, respond=lambda c: {"failed": c.failed_lines})
        settle(backend)
        det = Detector(backend, clock, state_path=tmp_path / "state.json")
        det.put(alert("busy", dataSet="flows", aggregateBy=["source_namespace"], metric="count", condition="gte",
                      threshold=4, period="5m", lookback="10m",
                      description="${source_namespace} made ${count} flows"))
        det.put(alert("broken", dataSet="flows", metric="sum", field="bytes_out", condition="gt", threshold=1))
        det.alerts["broken"] = det.alerts["broken"].__class__(**{**det.alerts["broken"].__dict__,
                                                                 "field": "no_such_field"})
        results = det.tick()
        assert results["alert/busy"] == "ok" and results["alert/broken"].startswith("error")
        st = det.alert_status["busy"].as_status()
        assert st["healthy"] and st["lastExecuted"] == "2026-12-05T12:00:00Z" and st["lastEvent"]
        bad = det.alert_status["broken"].as_status()
        assert not bad["healthy"] and bad["errorConditions"][0]["type"] == "QueryFailed"

        def stored() -> list[dict[str, Any]]:
            q = Query(REGISTRY["events"], ["c1"], size=100, now=clock.now())
            return sorted(backend.search(q).items, key=lambda e: e["description"])

        assert [e["description"] for e in stored()] == ["payments made 6 flows", "shop made 4 flows"]
        clock.advance(timedelta(minutes=1))
        assert "alert/busy" not in det.tick()  # not due before its period
        det.close()
        again = Detector(backend, clock, state_path=tmp_path / "state.json")  # a restart keeps lastExecuted
        again.put(alert("busy", dataSet="flows", aggregateBy=["source_namespace"], metric="count",
                        condition="gte", threshold=4))
        assert "alert/busy" not in again.tick()
        clock.advance(timedelta(minutes=4))
        assert again.tick()["alert/busy"] == "ok"  # due again: same flows still in the window, a new run
        assert len(stored()) == 4
        clock.advance(timedelta(minutes=10))
        again.tick()  # the flows left the lookback window: nothing more
        assert len(stored()) == 4
        again.close()
    finally:
        backend.close()


def test_render_formats_floats_with_one_decimal():
    assert render("${a} ${b} ${c.d} ${missing}", {"a": 2.25, "b": "x", "c": {"d": 3}}) == "2.2 x 3 ${missing}"
