"""Users x groups x clusters x log types x every read endpoint: allowed exactly as Kubernetes RBAC decides.

The expected grants (conftest.EXPECTED) are written by hand from the RBAC objects; the server's answer
must match them on every endpoint, and a refused read must carry no log data.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from margay.logtypes import REGISTRY, SAMPLES

from .conftest import CLUSTERS, EXPECTED, Rig

WIDE = {"time_range": {"from": "2000-01-01T00:00:00Z", "to": "2100-01-01T00:00:00Z"}}
# Strings that occur in the sample records and never in an error message.
DATA_MARKERS = ("payments", "coredns", "10.244.", "example.com", "kube-dns", "web-5d8c9")

# (label, query path, hints name, body extras, log types read)
READS: list[tuple[str, str, str, dict[str, Any], tuple[str, ...]]] = [
    ("flows", "/api/v1/flows/logs", "flows", {}, ("flows",)),
    ("dns", "/api/v1/dns/logs", "dns", {}, ("dns",)),
    ("audit-ee", "/api/v1/audit/logs", "audit_ee", {"type": "ee"}, ("audit_ee",)),
    ("audit-kube", "/api/v1/audit/logs", "audit_kube", {"type": "kube"}, ("audit_kube",)),
    ("audit-any", "/api/v1/audit/logs", "audit", {"type": "any"}, ("audit_ee", "audit_kube")),
    ("bgp", "/api/v1/bgp/logs", "bgp", {}, ("bgp",)),
    ("events", "/api/v1/events", "events", {}, ("events",)),
    ("l7", "/api/v1/l7/logs", "l7", {}, ("l7",)),
    ("waf", "/api/v1/waf/logs", "waf", {}, ("waf",)),
    # Linseed's policy activity and runtime reports (filter hints: the UI's explorer tabs)
    ("policy_activity", "/api/v1/policy_activity/logs", "policy_activity", {}, ("policy_activity",)),
    ("runtime", "/api/v1/runtime/reports", "runtime", {}, ("runtime",)),
    # Linseed's compliance reads (reports/ writes them); no filter hints
    ("snapshots", "/api/v1/compliance/snapshots", "", {}, ("snapshots",)),
    ("reports", "/api/v1/compliance/reports", "", {}, ("compliance_reports",)),
    ("benchmarks", "/api/v1/compliance/benchmarks", "", {}, ("benchmark_results",)),
    # Linseed's pushed threat-feed content: lists of {id, data} (the cluster inside data), no aggregation route
    ("ipset", "/api/v1/threatfeeds/ipset", "", {}, ("threatfeeds_ipset",)),
    ("domainnameset", "/api/v1/threatfeeds/domainnameset", "", {}, ("threatfeeds_domainnameset",)),
]
NO_AGGREGATION = {"/api/v1/threatfeeds/ipset", "/api/v1/threatfeeds/domainnameset"}
# The `log_type` of each aggregation route's requests in a POST /api/v1/aggregations batch.
BATCH_TYPE = {"/api/v1/flows/logs": "flows", "/api/v1/dns/logs": "dns", "/api/v1/audit/logs": "audit",
              "/api/v1/bgp/logs": "bgp", "/api/v1/events": "events", "/api/v1/l7/logs": "l7", "/api/v1/waf/logs": "waf",
              "/api/v1/policy_activity/logs": "policy_activity", "/api/v1/runtime/reports": "runtime",
              "/api/v1/compliance/snapshots": "snapshots", "/api/v1/compliance/reports": "compliance_reports",
              "/api/v1/compliance/benchmarks": "benchmark_results"}


def expected(rig: Rig, who: str, types: tuple[str, ...], clusters: list[str]) -> dict[str, int] | None:
    """Per readable cluster, the number of records the read returns; None when it must be refused (403)."""
    grants = EXPECTED[who]
    kept = [t for t in types if any((t, c) in grants for c in clusters)]
    visible = [c for c in clusters if kept and all((t, c) in grants for t in kept)]
    if not visible:
        return None
    return {c: sum(rig.counts[t] for t in kept) for c in visible}


def refused_without_data(r: Any, what: str, problems: list[str]) -> None:
    if r.status_code != 403:
        problems.append(f"{what}: expected 403, got {r.status_code} {r.text[:200]}")
        return
    body = r.json()
    if set(body) != {"error"} or any(m in r.text for m in DATA_MARKERS):
        problems.append(f"{what}: a refusal carries data: {r.text[:300]}")


def targets(who: str) -> list[tuple[str, dict[str, Any], list[str]]]:
    """(x-cluster-id, extra body, clusters asked) for every single cluster and the two multi-cluster forms."""
    out = [(c, {}, [c]) for c in CLUSTERS]
    out.append(("_MULTI_", {"clusters": list(CLUSTERS)}, list(CLUSTERS)))
    out.append(("_MULTI_", {"all_clusters": True}, list(CLUSTERS)))
    return out


@pytest.mark.parametrize("who", sorted(EXPECTED))
def test_every_read_endpoint(rig: Rig, who: str) -> None:
    problems: list[str] = []
    for label, path, hints_name, extra, types in READS:
        for header, cbody, asked in targets(who):
            want = expected(rig, who, types, asked)
            body = {**WIDE, **extra, **cbody}
            what = f"{who} {label} {header}{'+all' if 'all_clusters' in cbody else ''}"
            if who == "writer-east":
                want = None
            # search
            r = rig.post(who, path, {**body, "max_page_size": 1000}, cluster=header)
            if want is None:
                refused_without_data(r, what + " search", problems)
            elif r.status_code != 200:
                problems.append(f"{what} search: expected 200, got {r.status_code} {r.text[:200]}")
            else:
                got = r.json()
                per: dict[str, int] = {}
                for item in got["items"]:
                    c = item["cluster"] if "cluster" in item else item["data"]["cluster"]
                    per[c] = per.get(c, 0) + 1
                if per != want or got["total_hits"] != sum(want.values()):
                    problems.append(f"{what} search: got {per} / {got['total_hits']}, want {want}")
            # aggregation
            if path in NO_AGGREGATION:
                continue
            r = rig.post(who, path + "/aggregation", {**body, "aggregations": {"c": {"terms": {"field": "cluster"}}}},
                         cluster=header)
            if want is None:
                refused_without_data(r, what + " aggregation", problems)
            elif r.status_code != 200:
                problems.append(f"{what} aggregation: expected 200, got {r.status_code} {r.text[:200]}")
            else:
                buckets = {b["key"]: b["doc_count"] for b in r.json()["c"]["buckets"]}
                if buckets != want:
                    problems.append(f"{what} aggregation: got {buckets}, want {want}")
            # the same aggregation as the one item of a batch (POST /api/v1/aggregations): a refused item is its
            # own 403 without data (or the whole request's, for a caller who may read nothing at all)
            item = {"log_type": BATCH_TYPE[path], **body, "aggregations": {"c": {"terms": {"field": "cluster"}}}}
            r = rig.post(who, "/api/v1/aggregations", {"requests": [item]}, cluster=header)
            answer = r.json()["responses"][0] if r.status_code == 200 else None
            if want is None:
                if answer is None:
                    refused_without_data(r, what + " batch", problems)
                elif answer.get("status") != 403 or "aggregations" in answer or any(m in r.text for m in DATA_MARKERS):
                    problems.append(f"{what} batch: expected the item's 403 without data, got {r.text[:300]}")
            elif answer is None or answer.get("status") != 200:
                problems.append(f"{what} batch: expected 200, got {r.status_code} {r.text[:200]}")
            elif (got_b := {b["key"]: b["doc_count"] for b in answer["aggregations"]["c"]["buckets"]}) != want:
                problems.append(f"{what} batch: got {got_b}, want {want}")
            # Linseed's flow log count
            if path == "/api/v1/flows/logs":
                r = rig.post(who, path + "/count", {**body, "count_type": "global"}, cluster=header)
                if want is None:
                    refused_without_data(r, what + " count", problems)
                elif r.status_code != 200 or r.json().get("global_count") != sum(want.values()):
                    problems.append(f"{what} count: got {r.status_code} {r.text[:200]}, want {sum(want.values())}")
            # Linseed's per-policy activity: the sample policies' rules, merged over the clusters read
            if path == "/api/v1/policy_activity/logs":
                asked_for = [{"kind": d["policy"]["kind"], "namespace": d["policy"]["namespace"],
                              "name": d["policy"]["name"]} for d in map(json.loads, SAMPLES["policy_activity"])]
                r = rig.post(who, "/api/v1/policy_activity", {**cbody, "policies": asked_for}, cluster=header)
                if want is None:
                    refused_without_data(r, what + " per-policy activity", problems)
                elif r.status_code != 200 or sum(len(it["rules"]) for it in r.json()["items"]) != (
                        len(asked_for) if sum(want.values()) else 0):
                    problems.append(f"{what} per-policy activity: got {r.status_code} {r.text[:200]}, want {want}")
            # Linseed's event statistics
            if path == "/api/v1/events":
                r = rig.post(who, path + "/statistics", {**body, "field_values": {"type": {"count": True}}},
                             cluster=header)
                if want is None:
                    refused_without_data(r, what + " statistics", problems)
                elif r.status_code != 200 or sum(v["count"] for v in r.json()["field_values"]["type"]) != sum(
                        want.values()):
                    problems.append(f"{what} statistics: got {r.status_code} {r.text[:200]}, want {sum(want.values())}")
            # filter hints (the compliance types have none)
            if not hints_name:
                continue
            r = rig.post(who, f"/api/v1/{hints_name}/fields/cluster/values", body, cluster=header)
            if want is None:
                refused_without_data(r, what + " hints", problems)
            elif r.status_code != 200:
                problems.append(f"{what} hints: expected 200, got {r.status_code} {r.text[:200]}")
            else:
                values = {v["value"]: v["count"] for v in r.json()["values"]}
                if values != want:
                    problems.append(f"{what} hints: got {values}, want {want}")
            # Linseed's DNS and L7 flows (groups of the logs): exactly the readable clusters
            if label in ("dns", "l7"):
                r = rig.post(who, f"/api/v1/{label}/flows", body, cluster=header)
                if want is None:
                    refused_without_data(r, what + " flows", problems)
                elif r.status_code != 200:
                    problems.append(f"{what} flows: expected 200, got {r.status_code} {r.text[:200]}")
                elif {i["key"]["cluster"] for i in r.json()["items"]} != set(want):
                    problems.append(f"{what} flows: got clusters {r.text[:300]}, want {sorted(want)}")
            # Linseed's processes (groups of the flow logs, the flows' RBAC): the samples' processes are all
            # reported by the destination or none/several, which Linseed leaves out -- an empty list when allowed.
            if label == "flows":
                r = rig.post(who, "/api/v1/processes", body, cluster=header)
                if want is None:
                    refused_without_data(r, what + " processes", problems)
                elif r.status_code != 200 or r.json() != {"items": []}:
                    problems.append(f"{what} processes: got {r.status_code} {r.text[:200]}")
            # aggregated L3 flows
            if label == "flows":
                r = rig.post(who, "/api/v1/flows", body, cluster=header)
                if want is None:
                    refused_without_data(r, what + " L3", problems)
                elif r.status_code != 200:
                    problems.append(f"{what} L3: expected 200, got {r.status_code} {r.text[:200]}")
                else:
                    counts: dict[str, int] = {}
                    for item in r.json()["items"]:
                        c = item["key"]["cluster"]
                        counts[c] = counts.get(c, 0) + item["log_stats"]["flowLogCount"]
                    if counts != want:
                        problems.append(f"{what} L3: got {counts}, want {want}")
    # index listing: exactly the readable (type, cluster) pairs
    r = rig.get(who, "/api/v1/indices")
    assert r.status_code == 200, r.text
    pairs = {(i["log_type"], i["cluster"]) for i in r.json()["items"]}
    want_pairs = set() if who == "writer-east" else EXPECTED[who]
    if pairs != want_pairs:
        problems.append(f"{who} indices: got {sorted(pairs)}, want {sorted(want_pairs)}")
    assert not problems, "\n".join(problems[:40])


def test_matrix_covers_every_query_route(rig: Rig) -> None:
    """A new read endpoint must be added to READS (and so to the matrix)."""
    from margay.app import create_app

    paths = {r.path for r in create_app().routes if "POST" in (getattr(r, "methods", None) or ())}
    reads = {p for p in paths if not p.endswith("/bulk") and p.startswith("/api/v1")}
    covered = {p for _, p, _, _, _ in READS} | {p + "/aggregation" for _, p, _, _, _ in READS
                                                if p not in NO_AGGREGATION} | {"/api/v1/flows"}
    covered |= {"/api/v1/flows/logs/count", "/api/v1/events/statistics"}  # checked with the reads above
    covered |= {"/api/v1/aggregations"}  # each aggregation above also as a batch's item
    covered |= {"/api/v1/dns/flows", "/api/v1/l7/flows"}  # checked with the dns and l7 reads above
    covered |= {"/api/v1/processes"}  # checked with the flows reads above (and in test_scope.py)
    covered |= {"/api/v1/policy_activity"}  # checked with the policy activity reads above
    covered |= {"/api/v1/flows/graph"}  # built on build_query like /flows; its RBAC tests: tests/web/test_api.py
    covered |= {"/api/v1/reports/{name}/run"}  # a report run; its RBAC tests (with the reads): test_reports.py
    covered |= {"/api/v1/{n}/fields/{field}/values".replace("{n}", n)
                for n in ("flows", "dns", "audit", "audit_ee", "audit_kube", "bgp", "events", "l7", "waf",
                          "policy_activity", "runtime")}
    assert reads - covered == set(), f"read endpoints missing from the access matrix: {sorted(reads - covered)}"
    assert set(REGISTRY) == {t for *_, ts in READS for t in ts}
    assert set(BATCH_TYPE) == {p for _, p, *_ in READS} - NO_AGGREGATION
