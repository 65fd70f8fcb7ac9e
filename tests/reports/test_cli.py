"""`margay reports snapshot|run` as a user runs them (a subprocess), on both engines; errors are one line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from conftest import engine_args

SNAPSHOT = """\
apiVersion: v1
kind: List
items:
- {apiVersion: v1, kind: Namespace, metadata: {name: shop}}
- apiVersion: v1
  kind: Pod
  metadata: {name: web-1, namespace: shop, labels: {app: web}}
  spec: {containers: [{name: main}]}
- apiVersion: v1
  kind: Pod
  metadata: {name: cache-1, namespace: shop, labels: {app: cache}}
  spec: {containers: [{name: main}]}
- apiVersion: projectcalico.org/v3
  kind: NetworkPolicy
  metadata: {name: default.web, namespace: shop}
  spec: {selector: app == 'web', types: [Ingress, Egress]}
"""
REPORT = {"apiVersion": "projectcalico.org/v3", "kind": "GlobalReport", "metadata": {"name": "daily"},
          "spec": {"reportType": "inventory", "schedule": "0 0 * * *"}}


def margay(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("MARGAY_") or k == "MARGAY_RIG_DIR"},
           "COLUMNS": "200", "NO_COLOR": "1"}
    return subprocess.run([sys.executable, "-m", "margay", "reports", *args], capture_output=True, text=True,
                          timeout=300, env=env)


def test_snapshot_then_run(engine: dict[str, Any], tmp_path: Path) -> None:
    dump = tmp_path / "dump.yaml"
    dump.write_text(SNAPSHOT)
    report = tmp_path / "report.yaml"
    report.write_text(yaml.safe_dump(REPORT))
    store = ["--data-dir", str(tmp_path / "data"), "--cluster", "c1", *engine_args(engine)]
    r = margay("snapshot", str(dump), "--at", "2026-12-01T00:00:00Z", *store)
    assert r.returncode == 0, r.stderr
    assert "stored a snapshot of 4 resources for cluster c1" in r.stdout
    r = margay("run", str(report), "--start", "2026-12-01T00:00:00Z", "--end", "2026-12-02T00:00:00Z",
               "--out", str(tmp_path / "out"), *store)
    assert r.returncode == 0, r.stderr
    assert "report daily_2026-12-02T00:00:00Z (inventory) stored" in r.stdout
    assert (tmp_path / "out" / "endpoints.csv").read_text() == (
        "endpoint,ingressProtected,egressProtected,envoyEnabled,appliedPolicies,services\n"
        "Pod.v1(shop/cache-1),false,false,false,,\n"
        "Pod.v1(shop/web-1),true,true,false,NetworkPolicy(shop/default.web),\n")
    r = margay("run", str(report), "--start", "2026-12-02T00:00:00Z", "--end", "2026-12-03T00:00:00Z", *store)
    assert r.returncode == 0, r.stderr
    r = margay("diff", "daily", "--from", "2026-12-02T00:00:00Z", "--to", "2026-12-03T00:00:00Z", *store)
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert d["from"]["id"] == "daily_2026-12-02T00:00:00Z" and d["becameIngressUnprotected"] == []
    r = margay("history", "daily", "--since", "2026-11-01T00:00:00Z", "--json", *store)
    assert [x["endTime"] for x in json.loads(r.stdout)] == ["2026-12-03T00:00:00Z", "2026-12-02T00:00:00Z"]
    r = margay("diff", "daily", "--from", "2026-11-02T00:00:00Z", "--to", "2026-12-03T00:00:00Z", *store)
    assert r.returncode == 2 and r.stderr.strip() == "error: no report of 'daily' ending 2026-11-02T00:00:00Z"
    r = margay("history", 'x"y', *store)
    assert r.returncode == 2 and r.stderr.strip() == (
        "error: report name: 'x\"y' is not a Kubernetes name (lower-case letters, digits, - and .)")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "endpoints.csv", "namespaces.csv", "report.json", "services.csv", "summary.csv", "summary.html"]


def test_errors_are_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("kind: List\nitems:\n- {apiVersion: v1, kind: Pod, metadata: {name: p}}\n")
    r = margay("snapshot", str(bad), "--data-dir", str(tmp_path / "d"))
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [
        f"error: {bad} document 1.items[0].metadata.namespace: a Pod is namespaced; give its namespace"]
    report = tmp_path / "r.yaml"
    report.write_text(yaml.safe_dump({**REPORT, "spec": {"reportType": "inventory",
                                                         "endpoints": {"selector": "app == 'x' &&"}}}))
    r = margay("run", str(report), "--start", "2026-12-01T00:00:00Z", "--end", "2026-12-02T00:00:00Z",
               "--data-dir", str(tmp_path / "d"))
    assert r.returncode == 2
    assert len(r.stderr.strip().splitlines()) == 1
    assert f"error: {report}.spec.endpoints.selector: expected" in r.stderr
    r = margay("run", str(report), "--start", "2026-12-02T00:00:00Z", "--end", "2026-12-01T00:00:00Z")
    assert r.stderr.strip() == "error: --end must be after --start"


def test_benchmark(tmp_path: Path) -> None:
    bench = tmp_path / "kb.json"
    bench.write_text('{"Controls": [{"version": "cis-1.6", "tests": [{"section": "4.1", "results": ['
                     '{"test_number": "4.1.1", "status": "PASS", "scored": true}]}]}]}')
    r = margay("benchmark", str(bench), "--node", "n1", "--data-dir", str(tmp_path / "d"))
    assert r.returncode == 0, r.stderr
    assert "stored 1 kube-bench results of node n1 (cluster cluster)" in r.stdout
    bench.write_text('{"Controls": [{"tests": [{"section": "4.1", "results": [{"test_number": "4.1.1"}]}]}]}')
    r = margay("benchmark", str(bench), "--node", "n1", "--data-dir", str(tmp_path / "d"))
    assert r.returncode == 2
    assert r.stderr.strip() == (f"error: {bench}.Controls[0].tests[0].results[0].status: expected PASS, FAIL, "
                                "WARN or INFO, got None")
