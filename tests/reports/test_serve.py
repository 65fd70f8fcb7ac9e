"""Compliance inside `margay serve`, on both engines with a fake clock: daily snapshots from a dumps folder
(a failing one retried and shown), GlobalReport jobs from --reports-resources ticked by the server, status
over the API, and incremental replay (a later report starts from the previous interval's end, not from an
older snapshot) giving exactly the report a replay from scratch gives."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import yaml

from margay.app import Margay, create_app
from margay.clock import FakeClock
from margay.config import Settings
from margay.errors import ConfigError
from margay.logtypes import REGISTRY
from margay.reports import reporter, snapshots
from margay.reports.state import Checkpoints, timeline

DAY1 = datetime(2026, 12, 1, tzinfo=UTC)
REPORT = {"apiVersion": "projectcalico.org/v3", "kind": "GlobalReport", "metadata": {"name": "daily"},
          "spec": {"reportType": "inventory", "schedule": "0 0 * * *"}}


def pod(name: str, app: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "shop", "labels": {"app": app}},
            "spec": {"serviceAccountName": "default", "containers": [{"name": "main", "image": "x"}]},
            "status": {"phase": "Running"}}


def dump(web1_app: str) -> str:
    return yaml.safe_dump({"apiVersion": "v1", "kind": "List", "items": [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}},
        pod("web-1", web1_app), pod("db-1", "db"),
        {"apiVersion": "projectcalico.org/v3", "kind": "GlobalNetworkPolicy", "metadata": {"name": "default.web-in"},
         "spec": {"tier": "default", "selector": "app == 'web'", "types": ["Ingress"]}}]})


def patch_event(at: datetime, app: str) -> dict[str, Any]:
    stamp = at.strftime("%Y-%m-%dT%H:%M:%SZ")
    return {"kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "RequestResponse", "auditID": f"p-{stamp}",
            "stage": "ResponseComplete", "requestURI": "/api/v1/namespaces/shop/pods/web-1", "verb": "patch",
            "user": {"username": "alice"}, "responseStatus": {"code": 200},
            "objectRef": {"resource": "pods", "namespace": "shop", "name": "web-1", "apiVersion": "v1"},
            "responseObject": pod("web-1", app), "requestReceivedTimestamp": stamp, "stageTimestamp": stamp}


@pytest.fixture
def served(engine: dict[str, Any], tmp_path: Path) -> Iterator[tuple[Margay, FakeClock, Path]]:
    dumps = tmp_path / "dumps"
    dumps.mkdir()
    (dumps / "cluster.yaml").write_text(dump("web"))
    (tmp_path / "reports.yaml").write_text(yaml.safe_dump(REPORT))
    clock = FakeClock(datetime(2026, 11, 30, 12, 0, tzinfo=UTC))
    m = Margay(Settings(data_dir=tmp_path / "data", reports_resources=tmp_path / "reports.yaml",
                        snapshot_dumps=dumps, snapshot_hour=12, reports_cluster="c1", **engine), clock=clock)
    yield m, clock, dumps
    m.close()


def test_snapshots_jobs_and_incremental_replay(served: tuple[Margay, FakeClock, Path]) -> None:
    m, clock, dumps = served
    backend = m.backend
    # the first tick snapshots at once (none yet); the GlobalReport's first interval is [Dec 1, Dec 2)
    assert m.reports.tick() == [{"snapshot": "taken", "at": "2026-11-30T12:00:00Z", "resources": 4}]
    clock.set(datetime(2026, 11, 30, 23, 0, tzinfo=UTC))
    assert m.reports.tick() == []  # nothing due: the next snapshot is at 12:00, the first job after Dec 2 00:30

    events = [patch_event(DAY1 + timedelta(hours=6), "legacy"), patch_event(DAY1 + timedelta(days=1, hours=6), "web")]
    resp, _ = backend.ingest(REGISTRY["audit_kube"], "c1", b"\n".join(orjson.dumps(e) for e in events), key=None,
                             now=DAY1, respond=lambda c: c.succeeded)
    assert resp == 2

    # Dec 1 12:00: the dumps folder holds a malformed dump: the snapshot fails, names it, and is retried
    (dumps / "cluster.yaml").write_text(dump("legacy"))
    (dumps / "extra.yaml").write_text(yaml.safe_dump({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "x"}}))
    clock.set(DAY1 + timedelta(hours=12))
    got = m.reports.tick()
    assert [(g["snapshot"], g["attempt"]) for g in got] == [("failed", 1)]
    assert "extra.yaml document 1.metadata.namespace" in got[0]["error"]
    clock.advance(timedelta(minutes=1))
    assert [g.get("attempt") for g in m.reports.tick()] == [2]
    st = m.reports.snapshot_status()
    assert st["failedAttempts"] == 2 and st["lastSuccessfulSnapshot"] == "2026-11-30T12:00:00Z"
    assert st["errorConditions"][0]["type"] == "SnapshotFailed" and "extra.yaml" in st["errorConditions"][0]["message"]
    (dumps / "extra.yaml").unlink()
    clock.advance(timedelta(minutes=1))
    assert m.reports.tick() == [{"snapshot": "taken", "at": "2026-12-01T12:02:00Z", "resources": 4}]
    assert m.reports.snapshot_status()["errorConditions"] == []

    # Dec 2 00:30: the job of [Dec 1, Dec 2) replays from the newest snapshot at or before Dec 1 (Nov 30 12:00)
    clock.set(DAY1 + timedelta(days=1, minutes=30))
    got = m.reports.tick()
    assert [(g["result"], g["reportEnd"], g["replayBase"], g["replayedFrom"]) for g in got] == [
        ("succeeded", "2026-12-02T00:00:00Z", "snapshot", "2026-11-30T12:00:00Z")]
    first = reporter.stored(backend, "c1", "daily", DAY1 + timedelta(days=1))
    web1 = next(e for e in first["endpoints"] if str(e["endpoint"]).endswith("(shop/web-1)"))
    assert web1["ingressProtected"] is False  # unprotected from 06:00 (labelled legacy)

    (dumps / "cluster.yaml").write_text(dump("web"))
    clock.set(DAY1 + timedelta(days=1, hours=12))
    assert [g["snapshot"] for g in m.reports.tick()] == ["taken"]

    # Dec 3 00:30: [Dec 2, Dec 3) starts from the state at the end of the previous interval (a checkpoint at
    # Dec 2 00:00, nearer than the Dec 1 12:02 snapshot): only the audit writes after it are replayed
    clock.set(DAY1 + timedelta(days=2, minutes=30))
    got = m.reports.tick()
    assert [(g["reportEnd"], g["replayBase"], g["replayedFrom"]) for g in got] == [
        ("2026-12-03T00:00:00Z", "checkpoint", "2026-12-02T00:00:00Z")]
    incremental = reporter.stored(backend, "c1", "daily", DAY1 + timedelta(days=2))
    # ... and it is exactly the report a replay from the snapshot gives
    scratch_cps = Checkpoints()
    tl = timeline(backend, "c1", DAY1 + timedelta(days=1), DAY1 + timedelta(days=2), scratch_cps)
    assert scratch_cps.last["c1"] == ("snapshot", DAY1 + timedelta(hours=12, minutes=2))
    assert [c.at for c in tl.changes] == [DAY1 + timedelta(days=1, hours=6)]
    again = reporter.run(backend, "c1", {**REPORT, "metadata": {"name": "scratch"}}, DAY1 + timedelta(days=1),
                         DAY1 + timedelta(days=2), clock.now())
    for key in ("endpoints", "endpointsSummary", "namespaces", "namespacesSummary", "services", "servicesSummary"):
        assert orjson.loads(orjson.dumps(incremental[key])) == orjson.loads(orjson.dumps(again[key])), key
    assert reporter.downloads(incremental)["endpoints.csv"] == reporter.downloads(
        reporter.stored(backend, "c1", "scratch", DAY1 + timedelta(days=2)))["endpoints.csv"]

    # a stored snapshot nearer than (or as near as) any checkpoint wins: it is the truth
    snapshots.take(backend, "c1", snapshots.latest(backend, "c1", DAY1 + timedelta(days=2))[1],
                   started=DAY1 + timedelta(days=3), completed=DAY1 + timedelta(days=3))
    cps = m.reports.jobs.checkpoints
    cps.put("c1", DAY1 + timedelta(days=3), {})
    timeline(backend, "c1", DAY1 + timedelta(days=3), DAY1 + timedelta(days=3, hours=1), cps)
    assert cps.last["c1"] == ("snapshot", DAY1 + timedelta(days=3))

    # status over the API: the jobs, and the snapshots
    r, listed, missing, st = asyncio.run(_api(m))
    assert r.status_code == 200, r.text
    assert [j["reportEnd"] for j in r.json()["lastSuccessfulReportJobs"]] == ["2026-12-03T00:00:00Z",
                                                                           "2026-12-02T00:00:00Z"]
    assert r.json()["source"] == "file"
    assert [i["metadata"]["name"] for i in listed.json()["items"]] == ["daily"]
    assert listed.json()["kind"] == "GlobalReportList" and missing.status_code == 404
    assert st.json()["snapshots"]["lastSuccessfulSnapshot"] == "2026-12-02T12:00:00Z"
    assert st.json()["apiServer"] is None


async def _api(m: Margay) -> list[httpx.Response]:
    """The API in process, without the app's lifespan (this test ticks by hand)."""
    transport = httpx.ASGITransport(app=create_app(margay=m))
    async with httpx.AsyncClient(transport=transport, base_url="http://margay") as client:
        return [await client.get(p) for p in ("/apis/projectcalico.org/v3/globalreports/daily/status",
                                               "/apis/projectcalico.org/v3/globalreports",
                                               "/apis/projectcalico.org/v3/globalreports/nope",
                                               "/api/v1/compliance/status")]


def test_globalreports_come_and_go_without_a_restart(served: tuple[Margay, FakeClock, Path]) -> None:
    m, clock, _ = served
    weekly = {"apiVersion": "projectcalico.org/v3", "kind": "GlobalReport", "metadata": {"name": "weekly"},
              "spec": {"reportType": "inventory", "schedule": "0 0 * * 1"}}
    m.reports.put(weekly)
    assert m.reports.status("weekly")["source"] == "cluster"
    bad = {**weekly, "spec": {**weekly["spec"], "schedule": "every day"}}
    m.reports.put(bad)  # refused, naming the field; the good version keeps its schedule
    st = m.reports.status("weekly")
    assert "spec.schedule" in st["errorConditions"][0]["message"]
    assert m.reports.jobs.entries["weekly"].report["spec"]["schedule"] == "0 0 * * 1"
    m.reports.put({**REPORT, "spec": {**REPORT["spec"], "schedule": "0 6 * * *"}})  # the file's one wins
    assert m.reports.jobs.entries["daily"].report["spec"]["schedule"] == "0 0 * * *"
    assert "--reports-resources" in m.reports.status("daily")["errorConditions"][0]["message"]
    suspended = {**weekly, "spec": {**weekly["spec"], "suspend": True}}
    m.reports.put(suspended)
    assert m.reports.jobs.entries["weekly"].report["spec"]["suspend"] is True
    m.reports.remove("weekly")
    assert "weekly" not in m.reports.jobs.entries
    m.reports.remove("daily")  # the cluster cannot remove a file's GlobalReport
    assert "daily" in m.reports.jobs.entries


def test_the_server_ticks_by_itself(served: tuple[Margay, FakeClock, Path]) -> None:
    m, _, _ = served
    m.reports.start()
    done = threading.Event()
    for _ in range(300):  # the thread's first tick happens at once; wait for it, not for time to pass
        if m.reports.snapshot_status()["lastSuccessfulSnapshot"]:
            done.set()
            break
        threading.Event().wait(0.05)
    assert done.is_set(), m.reports.snapshot_status()
    assert snapshots.latest(m.backend, "c1", datetime(2026, 11, 30, 12, 0, tzinfo=UTC)) is not None


def test_bad_settings_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="snapshot_hour"):
        Margay(Settings(data_dir=tmp_path / "d", snapshot_hour=24))
    with pytest.raises(ConfigError, match="reports_cluster"):
        Margay(Settings(data_dir=tmp_path / "d2", reports_cluster="bad/name"))
    (tmp_path / "r.yaml").write_text(yaml.safe_dump({**REPORT, "spec": {"reportType": "nope"}}))
    with pytest.raises(Exception, match=r"r.yaml document 1.spec.reportType"):
        Margay(Settings(data_dir=tmp_path / "d3", reports_resources=tmp_path / "r.yaml"))


def test_margay_serve_runs_reports_and_snapshots(engine: dict[str, Any], tmp_path: Path) -> None:
    """The flags of `margay serve`, in its own process: the first tick snapshots the dumps at once, and the
    GlobalReport from --reports-resources is scheduled and shown."""
    from conftest import engine_args
    from margay.rig.children import ServerProcess

    dumps = tmp_path / "dumps"
    dumps.mkdir()
    (dumps / "cluster.yaml").write_text(dump("web"))
    (tmp_path / "reports.yaml").write_text(yaml.safe_dump(REPORT))
    args = ["--reports-resources", str(tmp_path / "reports.yaml"), "--snapshot-dumps", str(dumps),
            "--snapshot-hour", "3", "--reports-cluster", "prod", *engine_args(engine)]
    with ServerProcess(tmp_path / "data", *args) as server:
        status: dict[str, Any] = {}
        for _ in range(600):  # wait for the server's first tick (a thread), not for time to pass
            status = httpx.get(server.url + "/api/v1/compliance/status", timeout=10).json()
            if status["snapshots"]["lastSuccessfulSnapshot"]:
                break
            threading.Event().wait(0.1)
        assert status["cluster"] == "prod" and status["snapshots"]["resources"] == 4, status
        assert status["snapshots"]["snapshotHour"] == 3
        listed = httpx.get(server.url + "/apis/projectcalico.org/v3/globalreports", timeout=10).json()
        assert [(i["metadata"]["name"], i["status"]["source"]) for i in listed["items"]] == [("daily", "file")]


def test_margay_serve_refuses_a_bad_snapshot_hour(tmp_path: Path) -> None:
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-m", "margay", "serve", "--data-dir", str(tmp_path), "--no-auth",
                        "--snapshot-hour", "24"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "'--snapshot-hour'" in r.stderr and "less than or equal to 23" in r.stderr
