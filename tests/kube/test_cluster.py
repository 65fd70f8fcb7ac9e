"""`margay serve --kubeconfig` against the rig's real kube-apiserver: GlobalAlert, GlobalThreatFeed, GlobalReport
and LogStorage created, changed and deleted with the API server are followed without a restart; a feed's
status is written to its `status` subresource; an API-server outage (a TCP proxy in between, cut and
restored) keeps what was known, refuses snapshots, and on recovery margay catches up; a live snapshot from
the API server feeds a report, on both engines."""

from __future__ import annotations

import secrets
import socket
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
import yaml

from margay.app import Margay
from margay.clock import FakeClock
from margay.config import Settings
from margay.errors import ConfigError
from margay.reports import reporter, snapshots

CRD = "crd.projectcalico.org/v1"
NOW = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)
LOGSTORAGE_CRD = {
    "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
    "metadata": {"name": "logstorages.operator.tigera.io"},
    "spec": {"group": "operator.tigera.io", "scope": "Cluster",
             "names": {"kind": "LogStorage", "plural": "logstorages", "singular": "logstorage",
                       "listKind": "LogStorageList"},
             "versions": [{"name": "v1", "served": True, "storage": True, "schema": {"openAPIV3Schema": {
                 "type": "object", "x-kubernetes-preserve-unknown-fields": True}}}]}}


class Proxy:
    """A TCP proxy on a fixed loopback port: `cut()` drops the listener and every connection (the API server
    is unreachable from margay), `restore()` listens again on the same port."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = 0
        self._conns: list[socket.socket] = []
        self._listener: socket.socket | None = None
        self._lock = threading.Lock()

    def restore(self) -> Proxy:
        ls = socket.socket()
        ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        ls.bind(("127.0.0.1", self.port))
        ls.listen(64)
        self.port = ls.getsockname()[1]
        self._listener = ls
        threading.Thread(target=self._accept, args=(ls,), daemon=True).start()
        return self

    def _accept(self, ls: socket.socket) -> None:
        while True:
            try:
                client, _ = ls.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def cut(self) -> None:
        if self._listener is not None:
            try:
                self._listener.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept() so the port is freed
            except OSError:
                pass
            self._listener.close()
            self._listener = None
        with self._lock:
            conns, self._conns = self._conns, []
        for s in conns:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()


def eventually(check: Callable[[], Any], timeout: float = 30.0, what: str = "") -> None:
    """Wait for the watcher's threads to hand a change on (waiting for work, not for time to pass)."""
    stop = threading.Event()
    for _ in range(int(timeout / 0.05)):
        if check():
            return
        stop.wait(0.05)
    raise AssertionError(f"timed out waiting for {what or check}: {check()}")


@pytest.fixture
def proxied(kube: Any, tmp_path: Path) -> Iterator[tuple[Proxy, Path]]:
    url = urlparse(kube.api.url)
    proxy = Proxy((url.hostname or "127.0.0.1", int(url.port or 443))).restore()
    path = kube.api.kubeconfig(tmp_path / "kubeconfig")
    cfg = yaml.safe_load(path.read_text())
    cfg["clusters"][0]["cluster"]["server"] = f"https://127.0.0.1:{proxy.port}"
    path.write_text(yaml.safe_dump(cfg))
    yield proxy, path
    proxy.cut()


def _failing(m: Margay) -> dict[str, Any]:
    assert m.cluster is not None
    return {k: v for k, v in m.cluster.watcher.status().items() if v["last_error"] and v["last_error"] != "not served"}


def served(settings: Settings, clock: FakeClock) -> Margay:
    m = Margay(settings, clock=clock)
    assert m.cluster is not None
    m.cluster.watcher.retry_interval = 0.2  # recover quickly in tests
    m.cluster.start()  # only the API-server side: the detector and report jobs are ticked by hand here
    return m


@pytest.mark.rig
def test_calico_config_follows_the_api_server(kube: Any, proxied: tuple[Proxy, Path], tmp_path: Path) -> None:
    proxy, kubeconfig = proxied
    sfx = secrets.token_hex(3)
    alert, feed, report = f"alert-{sfx}", f"feed-{sfx}", f"report-{sfx}"
    clock = FakeClock(NOW)
    early = {"apiVersion": CRD, "kind": "GlobalReport", "metadata": {"name": f"early-{sfx}"},
             "spec": {"reportType": "policy-audit", "schedule": "0 0 * * 0"}}
    assert kube.api.apply([early])[0].status_code == 201  # there before margay starts
    m = served(Settings(data_dir=tmp_path / "data", kubeconfig=kubeconfig), clock)
    try:
        assert m.cluster is not None and m.cluster.watcher.wait_synced(60), m.cluster.watcher.status()
        eventually(lambda: f"early-{sfx}" in m.reports.jobs.entries, what="the first list handed on")
        det = m.detection.detector

        # GlobalAlert: created, changed, refused when invalid (the last good one keeps running), deleted
        ga = {"apiVersion": CRD, "kind": "GlobalAlert", "metadata": {"name": alert},
              "spec": {"description": "many DNS", "severity": 50, "dataSet": "dns", "metric": "count",
                       "condition": "gt", "threshold": 10}}
        assert kube.api.apply([ga])[0].status_code == 201
        eventually(lambda: alert in det.alerts, what="alert created")
        assert det.alerts[alert].threshold == 10
        with pytest.raises(ConfigError, match="comes from the API server"):
            m.detection.apply({**ga, "apiVersion": "projectcalico.org/v3"})
        ga["spec"]["threshold"] = 99
        kube.api.apply([ga])
        eventually(lambda: det.alerts[alert].threshold == 99, what="alert changed")
        bad = {**ga, "spec": {**ga["spec"], "period": "10s"}}
        kube.api.apply([bad])
        eventually(lambda: m.detection.status("GlobalAlert", alert).get("errorConditions"), what="refusal")
        assert "spec.period" in m.detection.status("GlobalAlert", alert)["errorConditions"][0]["message"]
        assert det.alerts[alert].threshold == 99

        # GlobalThreatFeed: created; its status written to the API server's status subresource
        gtf = {"apiVersion": CRD, "kind": "GlobalThreatFeed", "metadata": {"name": feed},
               "spec": {"content": "IPSet", "description": "blocklist"}}
        assert kube.api.apply([gtf])[0].status_code == 201
        eventually(lambda: feed in det.feeds, what="feed created")
        det.tick(timeout=30)  # the feed's search runs at NOW
        assert m.cluster.write_feed_status() == 1
        with kube.api.client() as http:
            got = http.get(f"/apis/{CRD}/globalthreatfeeds/{feed}").json()
        assert got["status"]["lastSuccessfulSearch"] == "2026-12-05T12:00:00Z", got
        assert m.cluster.write_feed_status() == 0  # unchanged: not written again
        gtf["spec"]["mode"] = "Disabled"
        kube.api.apply([gtf])
        eventually(lambda: not det.feeds[feed].enabled, what="feed disabled")

        # GlobalReport: created, its schedule changed, suspended, deleted
        gr = {"apiVersion": CRD, "kind": "GlobalReport", "metadata": {"name": report},
              "spec": {"reportType": "inventory", "schedule": "0 0 * * *"}}
        assert kube.api.apply([gr])[0].status_code == 201
        jobs = m.reports.jobs.entries
        eventually(lambda: report in jobs, what="report created")
        assert m.reports.status(report)["source"] == "cluster"
        gr["spec"]["schedule"] = "0 6 * * *"
        kube.api.apply([gr])
        eventually(lambda: jobs[report].schedule.hours == frozenset({6}), what="schedule changed")
        gr["spec"]["suspend"] = True
        kube.api.apply([gr])
        eventually(lambda: jobs[report].report["spec"].get("suspend") is True, what="suspended")

        # LogStorage tigera-secure: its retention days replace the defaults while it exists
        assert kube.api.apply([LOGSTORAGE_CRD])[0].status_code in (200, 201)
        eventually(lambda: m.cluster.watcher.status()["LogStorage"]["synced"], 60, "LogStorage served")
        ls = {"apiVersion": "operator.tigera.io/v1", "kind": "LogStorage", "metadata": {"name": "tigera-secure"},
              "spec": {"retention": {"flows": 3, "snapshots": 10}}}
        assert kube.api.apply([ls])[0].status_code in (200, 201)
        eventually(lambda: m.retention.policy.days_for("flows") == 3, what="retention from LogStorage")
        with kube.api.client() as http:
            assert http.delete("/apis/operator.tigera.io/v1/logstorages/tigera-secure").status_code == 200
        eventually(lambda: m.retention.policy.days_for("flows") == 8, what="retention back to the default")

        # An outage: margay keeps what it knew and refuses snapshots; changes made meanwhile are caught up
        proxy.cut()
        eventually(lambda: any(v["errors"] for v in m.cluster.watcher.status().values()), what="outage seen")
        with kube.api.client() as http:
            assert http.delete(f"/apis/{CRD}/globalreports/{report}").status_code == 200
            assert http.delete(f"/apis/{CRD}/globalalerts/{alert}").status_code == 200
        ga2 = {**ga, "metadata": {"name": alert + "-2"}, "spec": {**ga["spec"], "period": "5m"}}
        assert kube.api.apply([ga2])[0].status_code == 201
        with pytest.raises(ConfigError, match="cannot list"):
            m.cluster.snapshot()
        assert alert in det.alerts and report in jobs and alert + "-2" not in det.alerts
        proxy.restore()
        eventually(lambda: alert + "-2" in det.alerts and alert not in det.alerts and report not in jobs,
                   60, "recovery")
        eventually(lambda: not _failing(m), 60, f"snapshots again {_failing(m)}")
        assert m.cluster.snapshot()
        # GlobalThreatFeed deleted
        with kube.api.client() as http:
            assert http.delete(f"/apis/{CRD}/globalthreatfeeds/{feed}").status_code == 200
            http.delete(f"/apis/{CRD}/globalalerts/{alert}-2")
            http.delete(f"/apis/{CRD}/globalreports/early-{sfx}")
        eventually(lambda: feed not in det.feeds and alert + "-2" not in det.alerts
                   and f"early-{sfx}" not in m.reports.jobs.entries, what="deletes")
    finally:
        m.close()


@pytest.mark.rig
def test_live_snapshot_feeds_a_report(kube: Any, engine: dict[str, Any], tmp_path: Path) -> None:
    ns = "snap-" + secrets.token_hex(4)
    answers = kube.api.apply([
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}},
        {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web", "namespace": ns, "labels": {"app": "web"}},
         "spec": {"containers": [{"name": "web", "image": "nginx"}]}},
        {"apiVersion": CRD, "kind": "GlobalNetworkPolicy", "metadata": {"name": f"default.{ns}"},
         "spec": {"tier": "default", "selector": f"projectcalico.org/namespace == '{ns}'", "types": ["Ingress"]}},
    ])
    assert all(r.status_code in (200, 201) for r in answers), [r.text for r in answers]
    clock = FakeClock(NOW)
    m = served(Settings(data_dir=tmp_path / "data", kubeconfig=kube.api.kubeconfig(tmp_path / "kc"),
                        reports_cluster="live", snapshot_hour=NOW.hour, **engine), clock)
    try:
        assert m.cluster is not None and m.cluster.watcher.wait_synced(60)
        eventually(lambda: m.cluster is not None and m.cluster.watcher.get("Pod", "web", ns) is not None)
        eventually(lambda: not _failing(m), 60, "every kind listed")  # a watch may meet a passing 429
        got = m.reports.tick()
        assert got and got[0]["snapshot"] == "taken", got
        snap = snapshots.latest(m.backend, "live", NOW)
        assert snap is not None and snap[0] == NOW
        assert (ns, "web") in snap[1]["Pod"] and ("", ns) in snap[1]["Namespace"]
        assert ("", f"default.{ns}") in snap[1]["projectcalico.org/GlobalNetworkPolicy"]
        assert m.reports.tick() == []  # taken today: the next one is tomorrow at the same hour
        clock.advance(timedelta(days=1))
        eventually(lambda: not _failing(m), 60, "every kind listed")
        assert [g["snapshot"] for g in m.reports.tick()] == ["taken"]
        spec = {"reportType": "inventory", "endpoints": {"namespaces": {"names": [ns]}}}
        doc = reporter.run(m.backend, "live", {"kind": "GlobalReport", "metadata": {"name": "live"}, "spec": spec},
                           NOW + timedelta(hours=1), NOW + timedelta(hours=2), clock.now())
        assert [(e["endpoint"], e["ingressProtected"], e["egressProtected"]) for e in doc["endpoints"]] == [
            (f"Pod.v1({ns}/web)", True, False)]
    finally:
        m.close()
        with kube.api.client() as http:
            http.delete(f"/apis/{CRD}/globalnetworkpolicies/default.{ns}")
            http.delete(f"/api/v1/namespaces/{ns}")
