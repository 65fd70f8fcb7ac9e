"""Differential conformance: the same documents in margay's embedded store and in a real OpenSearch 2.19 node,
the same corpus of requests (tests/es/corpus.py) to both, every answer compared.

Compared: totals, hits and their order (every hit-returning request sorts deterministically), `_index`,
`_id`, `_score`, `_source`, sort values, and every aggregation bucket and value (floats within 1e-9
relative). The report goes to bench/results/es-conformance.{json,md}.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from margay.app import Margay, create_app
from margay.testing.server import ServerThread

from .conftest import MIDNIGHT, export_docs, load_opensearch
from .corpus import UNSUPPORTED, Case, cases

pytestmark = pytest.mark.rig

RESULTS = Path(__file__).resolve().parents[2] / "bench" / "results"
MIN_MATCH_RATE = 1.0
DROP = {"took", "timed_out", "_shards", "status", "_type"}


@pytest.fixture(scope="module")
def servers(opensearch: str, margay_loaded: Margay) -> Iterator[tuple[httpx.Client, httpx.Client]]:
    load_opensearch(opensearch, export_docs(margay_loaded))
    app = create_app(margay_loaded.settings, margay=margay_loaded)
    with ServerThread(app) as srv, httpx.Client(base_url=srv.url + "/es", timeout=120) as mine, \
            httpx.Client(base_url=opensearch, timeout=120) as theirs:
        yield mine, theirs


def normalize(v: Any) -> Any:
    if isinstance(v, dict):
        return {k: normalize(x) for k, x in v.items() if k not in DROP}
    if isinstance(v, list):
        return [normalize(x) for x in v]
    return v


def diff(a: Any, b: Any, path: str = "") -> list[str]:
    """Differences between margay's answer (a) and OpenSearch's (b)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return [] if a == b else [f"{path}: {a!r} != {b!r}"]
    if isinstance(a, int | float) and isinstance(b, int | float):
        if a == b or math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=0.0):
            return []
        return [f"{path}: {a!r} != {b!r}"]
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for k in sorted(set(a) | set(b)):
            if k not in a:
                out.append(f"{path}.{k}: missing in margay (opensearch: {json.dumps(b[k])[:200]})")
            elif k not in b:
                out.append(f"{path}.{k}: extra in margay ({json.dumps(a[k])[:200]})")
            else:
                out += diff(a[k], b[k], f"{path}.{k}")
        return out
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return [f"{path}: {len(a)} items != {len(b)} items"] + diff(a[:len(b)], b[:len(a)], path)
        out = []
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            out += diff(x, y, f"{path}[{i}]")
        return out
    return [] if a == b else [f"{path}: {json.dumps(a)[:200]} != {json.dumps(b)[:200]}"]


def send(client: httpx.Client, case: Case) -> tuple[int, Any]:
    r = client.post(f"/{case.index}/{case.endpoint}", json=case.body, params=case.params)
    try:
        return r.status_code, r.json()
    except ValueError:
        return r.status_code, r.text


def without_doc_sort(answer: Any, at: int) -> Any:
    """Hits sorted on `_doc`: drop that sort value and order hits tying on the others by `_id`."""
    hits = answer.get("hits", {}).get("hits") if isinstance(answer, dict) else None
    if not hits:
        return answer
    for h in hits:
        h["sort"] = h["sort"][:at] + h["sort"][at + 1:]
    groups: list[list[dict[str, Any]]] = []
    for h in hits:
        if groups and groups[-1][0]["sort"] == h["sort"]:
            groups[-1].append(h)
        else:
            groups.append([h])
    answer["hits"]["hits"] = [h for g in groups for h in sorted(g, key=lambda x: x["_id"])]
    return answer


def run_case(mine: httpx.Client, theirs: httpx.Client, case: Case) -> dict[str, Any]:
    s1, a = send(mine, case)
    s2, b = send(theirs, case)
    if case.doc_sort is not None and s1 == s2 == 200:
        a, b = without_doc_sort(a, case.doc_sort), without_doc_sort(b, case.doc_sort)
    problems = [] if s1 == s2 else [f"status {s1} != {s2}"]
    their_hits = b.get("hits", {}).get("hits", []) if isinstance(b, dict) else []
    problems += [f"no hit in OpenSearch's answer shows {k}: the case proves nothing" for k in case.shows
                 if not any(k in h for h in their_hits)]
    if s1 == s2 == 200:
        problems += diff(normalize(a), normalize(b))
    elif s1 != s2:
        problems.append(f"margay: {json.dumps(a)[:300]} | opensearch: {json.dumps(b)[:300]}")
    return {"name": case.name, "index": case.index, "endpoint": case.endpoint, "status": s2,
            "matched": not problems, "problems": problems[:12], "request": case.body}


def write_report(results: list[dict[str, Any]], unsupported: list[dict[str, Any]]) -> dict[str, Any]:
    matched = sum(r["matched"] for r in results)
    report = {"matched": matched, "total": len(results), "rate": matched / len(results),
              "opensearch": "2.19", "unsupported_checked": len(unsupported),
              "unsupported_answered_400": sum(u["ok"] for u in unsupported),
              "mismatches": [r for r in results if not r["matched"]], "cases": [
                  {"name": r["name"], "matched": r["matched"]} for r in results]}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "es-conformance.json").write_text(json.dumps(report, indent=1) + "\n")
    lines = ["# ES API conformance: margay /es/ vs OpenSearch 2.19", "",
             f"**{matched} / {len(results)} requests match** ({100 * matched / len(results):.1f} %): hits, order, "
             "totals, every aggregation bucket and value (floats within 1e-9 relative).", "",
             f"Unsupported features answered 400 by margay: {report['unsupported_answered_400']} / "
             f"{len(unsupported)}.", "", "Generated by `tests/es/test_conformance.py` (corpus: `tests/es/corpus.py`).", ""]
    if report["mismatches"]:
        lines += ["## Mismatches", ""]
        for r in report["mismatches"]:
            lines.append(f"- `{r['name']}` (`{r['index']}/{r['endpoint']}`): " + "; ".join(
                p.replace("|", "\\|") for p in r["problems"][:3]))
    else:
        lines += ["No mismatches."]
    (RESULTS / "es-conformance.md").write_text("\n".join(lines) + "\n")
    return report


def test_conformance(servers: tuple[httpx.Client, httpx.Client]) -> None:
    mine, theirs = servers
    corpus = cases(MIDNIGHT)
    assert len(corpus) >= 150, len(corpus)
    results = [run_case(mine, theirs, c) for c in corpus]
    unsupported = []
    for name, index, body, word in UNSUPPORTED:
        r = mine.post(f"/{index}/_search", json=body)
        reason = r.json().get("error", {}).get("reason", "") if r.status_code == 400 else ""
        unsupported.append({"name": name, "status": r.status_code, "ok": r.status_code == 400 and word in reason,
                            "reason": reason})
    report = write_report(results, unsupported)
    bad_400 = [u for u in unsupported if not u["ok"]]
    assert not bad_400, bad_400
    failing = [(r["name"], r["problems"][:3]) for r in report["mismatches"]]
    assert report["rate"] >= MIN_MATCH_RATE, f"{report['matched']}/{report['total']} match; mismatches: {failing}"


def test_index_discovery_matches_opensearch(servers: tuple[httpx.Client, httpx.Client]) -> None:
    """What Kibana/OpenSearch Dashboards and clients ask before searching: `_resolve/index` and `HEAD /<index>`."""
    mine, theirs = servers
    day = MIDNIGHT.strftime("%Y%m%d")
    exprs = ["tigera_secure_ee_flows.*", "tigera_secure_ee_*", f"tigera_secure_ee_dns.app-1.{day}",
             "tigera_secure_ee_flows.*,-tigera_secure_ee_flows.app-1.*", "nomatch*",
             "tigera_secure_ee_flows.nosuch.20200101"]
    problems = []
    for expr in exprs:
        a, b = mine.get(f"/_resolve/index/{expr}"), theirs.get(f"/_resolve/index/{expr}")
        if a.status_code != b.status_code or (a.status_code == 200 and a.json() != b.json()):
            problems.append(f"_resolve/index/{expr}: {a.status_code} {a.text[:200]} | {b.status_code} {b.text[:200]}")
        a, b = mine.head(f"/{expr}"), theirs.head(f"/{expr}")
        if a.status_code != b.status_code:
            problems.append(f"HEAD /{expr}: margay {a.status_code}, opensearch {b.status_code}")
        for fields, extra in (("*", {}), ("action,end_time,source_*,nothing", {}), ("cluster,qname", {
                "include_unmapped": "true"})):
            a, b = (c.get(f"/{expr}/_field_caps", params={"fields": fields, **extra}) for c in (mine, theirs))
            if a.status_code != b.status_code or (a.status_code == 200 and a.json() != b.json()):
                problems.append(f"{expr}/_field_caps?fields={fields}: {a.status_code} {a.text[:300]} | "
                                f"{b.status_code} {b.text[:300]}")
            elif a.status_code == 200 and expr.startswith("tigera") and fields == "*":
                assert len(a.json()["fields"]) > 50, a.text[:300]  # not vacuous
    a, b = (c.post("/tigera_secure_ee_dns.*/_field_caps", params={"fields": "rrsets.*,client_labels*"}, json={})
            for c in (mine, theirs))
    assert a.status_code == b.status_code == 200 and a.json() == b.json() and a.json()["fields"], (a.text, b.text)
    # Elasticsearch 8's form (fields in the body), which OpenSearch 2.19 refuses: margay takes it too
    body = mine.post("/tigera_secure_ee_dns.*/_field_caps", json={"fields": ["rrsets.*", "client_labels*"]})
    assert body.json() == a.json()
    assert not problems, problems


def test_scroll_and_point_in_time_page_as_opensearch(servers: tuple[httpx.Client, httpx.Client]) -> None:
    """Discover-style paging: the same documents in the same order, page after page, through a scroll and
    through a point in time (each side's own context ids and sort values passed back)."""
    mine, theirs = servers
    index, query = "tigera_secure_ee_dns.*", {"terms": {"qtype": ["AAAA", "PTR"]}}
    sort = [{"end_time": "asc"}, {"id": "asc"}]

    def scrolled(c: httpx.Client) -> list[str]:
        r = c.post(f"/{index}/_search", params={"scroll": "1m"}, json={"size": 37, "query": query, "sort": sort})
        assert r.status_code == 200, r.text
        ids, sid = [h["_id"] for h in r.json()["hits"]["hits"]], r.json()["_scroll_id"]
        while page := c.post("/_search/scroll", json={"scroll": "1m", "scroll_id": sid}).json()["hits"]["hits"]:
            ids += [h["_id"] for h in page]
        assert c.request("DELETE", "/_search/scroll", json={"scroll_id": [sid]}).status_code == 200
        return ids

    def in_pit(c: httpx.Client) -> list[str]:
        r = c.post(f"/{index}/_search/point_in_time", params={"keep_alive": "1m"})
        assert r.status_code == 200, r.text
        pit, ids, after = r.json()["pit_id"], [], None
        while True:
            body: dict[str, Any] = {"size": 41, "query": query, "sort": sort, "pit": {"id": pit, "keep_alive": "1m"}}
            if after is not None:
                body["search_after"] = after
            hits = c.post("/_search", json=body).json()["hits"]["hits"]
            if not hits:
                break
            ids += [h["_id"] for h in hits]
            after = hits[-1]["sort"]
        assert c.request("DELETE", "/_search/point_in_time", json={"pit_id": [pit]}).status_code == 200
        return ids

    want = scrolled(theirs)
    assert len(want) > 100  # several pages
    assert scrolled(mine) == want
    assert in_pit(mine) == in_pit(theirs) == want
