"""The access matrix on the Elasticsearch-compatible API: every identity x log type x index pattern x
/es/ read endpoint (_search, _count, _msearch) sees exactly the (log type, cluster) pairs RBAC grants.
A pattern that names only unreadable indices answers as one that names none: empty, never 403 (so no one
learns which clusters exist); writer tokens, which read nothing, are refused."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from margay.logtypes import REGISTRY

from .conftest import CLUSTERS, EXPECTED, Rig
from .test_matrix import DATA_MARKERS

AGG = {"size": 10_000, "track_total_hits": True}


def patterns(prefix: str) -> list[tuple[str, list[str], bool]]:
    """(index expression, clusters it names, concrete?) for one log type."""
    out = [(f"{prefix}.{c}.*", [c], True) for c in CLUSTERS]
    out.append((f"{prefix}.*", list(CLUSTERS), False))
    out.append((f"{prefix}.{CLUSTERS[0]}.*,{prefix}.{CLUSTERS[1]}.*", list(CLUSTERS[:2]), True))
    return out


def refused_without_data(r: Any, what: str, problems: list[str], who: str = "writer-east") -> None:
    """Nothing: for readers, the empty answer of a pattern that matches no index; for writer tokens, a 403
    in Elasticsearch's error envelope ({error, status}). Neither carries log data."""
    if who != "writer-east":
        doc = r.json() if r.status_code == 200 else {}
        empty = doc.get("count") == 0 or (doc.get("hits", {}).get("hits") == []
                                          and doc["hits"]["total"]["value"] == 0)
        if r.status_code != 200 or not empty or any(m in r.text for m in DATA_MARKERS):
            problems.append(f"{what}: expected an empty answer, got {r.status_code} {r.text[:200]}")
        return
    if r.status_code != 403:
        problems.append(f"{what}: expected 403, got {r.status_code} {r.text[:200]}")
    elif set(r.json()) - {"error", "status"} or any(m in r.text for m in DATA_MARKERS):
        problems.append(f"{what}: a refusal carries data: {r.text[:300]}")


def hits_by_pair(doc: dict[str, Any]) -> dict[tuple[str, str], int]:
    by_prefix = {lt.index_prefix: name for name, lt in REGISTRY.items()}
    out: dict[tuple[str, str], int] = {}
    for h in doc["hits"]["hits"]:
        prefix, cluster, _day = h["_index"].split(".")
        key = (by_prefix[prefix], cluster)
        out[key] = out.get(key, 0) + 1
    return out


@pytest.mark.parametrize("who", sorted(EXPECTED))
def test_es_reads_follow_rbac(rig: Rig, who: str) -> None:
    problems: list[str] = []
    grants = EXPECTED[who]
    headers = {"authorization": f"Bearer {rig.token(who)}"}
    for name, lt in REGISTRY.items():
        for pattern, clusters, _concrete in patterns(lt.index_prefix):
            want = {(name, c): rig.counts[name] for c in clusters if (name, c) in grants}
            what = f"{who} {pattern}"
            r = rig.http.post(f"/es/{pattern}/_search", json=AGG, headers=headers)
            if not want:
                refused_without_data(r, what + " _search", problems, who)
            elif r.status_code != 200:
                problems.append(f"{what} _search: {r.status_code} {r.text[:200]}")
            elif hits_by_pair(r.json()) != want or r.json()["hits"]["total"]["value"] != sum(want.values()):
                problems.append(f"{what} _search: got {hits_by_pair(r.json())}, want {want}")
            r = rig.http.post(f"/es/{pattern}/_count", json={}, headers=headers)
            if not want:
                refused_without_data(r, what + " _count", problems, who)
            elif r.status_code != 200 or r.json()["count"] != sum(want.values()):
                problems.append(f"{what} _count: {r.status_code} {r.text[:200]}, want {sum(want.values())}")
            body = b"".join(orjson.dumps(x) + b"\n" for x in ({"index": pattern}, AGG))
            r = rig.http.post("/es/_msearch", content=body,
                              headers={**headers, "content-type": "application/x-ndjson"})
            if r.status_code != 200:
                problems.append(f"{what} _msearch: {r.status_code} {r.text[:200]}")
            else:
                answer = r.json()["responses"][0]
                if not want and who == "writer-east":
                    if answer.get("status") != 403 or any(k in answer for k in ("hits", "aggregations")):
                        problems.append(f"{what} _msearch: expected a 403 item, got {str(answer)[:200]}")
                elif not want:
                    if answer.get("status") != 200 or answer["hits"]["hits"] or answer["hits"]["total"]["value"]:
                        problems.append(f"{what} _msearch: expected an empty item, got {str(answer)[:200]}")
                elif hits_by_pair(answer) != want:
                    problems.append(f"{what} _msearch: got {hits_by_pair(answer)}, want {want}")
    # Every index of every type: exactly the granted pairs (empty when none).
    r = rig.http.post("/es/tigera_secure_ee_*/_search", json=AGG, headers=headers)
    want_all = {pair: rig.counts[pair[0]] for pair in grants}
    if not want_all:
        refused_without_data(r, f"{who} tigera_secure_ee_* _search", problems, who)
    elif r.status_code != 200 or hits_by_pair(r.json()) != want_all:
        problems.append(f"{who} tigera_secure_ee_*: {r.status_code} "
                        f"{hits_by_pair(r.json()) if r.status_code == 200 else r.text[:200]}, want {want_all}")
    assert not problems, "\n".join(problems[:40])
