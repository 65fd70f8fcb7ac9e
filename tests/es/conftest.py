"""Shared data for the ES-API tests: one simulated multi-cluster workload in margay's embedded store, and
(for the conformance suite) the very same documents in the rig's real OpenSearch node."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from margay.app import Margay, create_app
from margay.config import Settings
from margay.logtypes import REGISTRY
from margay.query.es.fields import id_sql
from margay.simulate import Topology, audit_ee, dns, events, flows
from margay.store.mapping import mapping_for

CLUSTERS = ("cluster", "app-1")
GENERATORS = {"flows": flows, "dns": dns, "audit_ee": audit_ee, "events": events}
# Two hours around a UTC midnight, so every (type, cluster) has two daily indices.
MIDNIGHT = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=1)
START, END = MIDNIGHT - timedelta(minutes=50), MIDNIGHT + timedelta(minutes=70)


@dataclass
class Loaded:
    app: Any
    margay: Margay
    client: httpx.AsyncClient | None
    midnight: datetime


def load_margay(data_dir: Path) -> Margay:
    m = Margay(Settings(data_dir=data_dir))
    topo = Topology.build(7, clusters=CLUSTERS)
    for cluster in CLUSTERS:
        for name, gen in GENERATORS.items():
            lines = [orjson.dumps(r) for r in gen(topo, cluster, START, END)]
            for i in range(0, len(lines), 5000):
                body = b"\n".join(lines[i:i + 5000]) + b"\n"
                resp, _ = m.backend.ingest(REGISTRY[name], cluster, body, key=None, now=m.clock.now(),
                                           respond=lambda c: {"failed": len(c.errors), "errors": c.errors[:3]})
                assert not resp["failed"], resp
    return m


def export_docs(m: Margay) -> dict[str, list[tuple[str, bytes]]]:
    """Every stored document as margay's ES API shows it, by Calico daily index: (_id, _source)."""
    out: dict[str, list[tuple[str, bytes]]] = {}
    from margay.query.model import Query

    for p in m.backend.partitions():
        lt = REGISTRY[p.log_type]
        q = Query(lt, [p.cluster], size=0)
        f = lt.time_field
        tk = lt.query_keys()[f].sql
        day = f"strftime(to_timestamp({tk}), '%Y%m%d')" if lt.time.kind.value == "epoch_second" else \
            f"strftime({tk}, '%Y%m%d')"
        doc = m.backend.compiler.doc(lt)
        rows = m.backend.run_over(q, lambda run, src, ps, doc=doc, day=day, lt=lt, p=p: run(
            f"SELECT {doc}, {id_sql(lt)} {src} AND {day} = ?", ps + [p.day]))
        out[p.index] = [(r[1], r[0].encode()) for r in rows]
    return out


def load_opensearch(base: str, docs: dict[str, list[tuple[str, bytes]]]) -> None:
    with httpx.Client(base_url=base, timeout=120) as http:
        http.delete("/tigera_secure_ee_*")
        for index, items in docs.items():
            lt = next(lt for lt in REGISTRY.values() if index.startswith(lt.index_prefix + "."))
            r = http.put(f"/{index}", json={"settings": {"number_of_shards": 1, "number_of_replicas": 0},
                                             "mappings": mapping_for(lt)})
            assert r.status_code == 200, r.text
            for i in range(0, len(items), 5000):
                chunk = items[i:i + 5000]
                body = b"".join(orjson.dumps({"index": {"_index": index, "_id": _id}}) + b"\n" + src + b"\n"
                                for _id, src in chunk)
                r = http.post("/_bulk", content=body, headers={"Content-Type": "application/x-ndjson"})
                assert r.status_code == 200 and not r.json()["errors"], r.text[:2000]
        http.post("/tigera_secure_ee_*/_refresh")


@pytest.fixture(scope="session")
def margay_loaded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Margay]:
    m = load_margay(tmp_path_factory.mktemp("es-data"))
    try:
        yield m
    finally:
        m.close()


@pytest.fixture(scope="session")
def es_app(margay_loaded: Margay) -> Any:
    return create_app(Settings(data_dir=margay_loaded.settings.data_dir), margay=margay_loaded)
