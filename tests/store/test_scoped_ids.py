"""Dismissal and deletion by id under a namespace-scoped restriction, on both engines: an id may name several
records of a cluster (a writer's own ids); a scoped caller acts only on those it reads, and that holds after a
restart of the embedded engine (its overlay lines keep the caller's namespaces)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from margay.query.model import Query
from margay.query.restriction import Restriction
from margay.query.selector import parse_selector
from margay.store.duckdb import DuckDBBackend

from .test_contract import EVENTS, NOW, ingest, ndjson, open_store

SHOP = Restriction({"c1": frozenset({"shop"})})


def twins(id_: str) -> list[dict[str, Any]]:
    """Two events of one id, a day apart (two documents on OpenSearch too), in namespaces shop and db."""
    return [{"id": id_, "time": 1700000000 + 86400 * k, "type": "global_alert", "severity": 5, "description": "x",
             "source_namespace": ns, "dest_namespace": ns} for k, ns in enumerate(("shop", "db"))]


@pytest.fixture(params=["duckdb", "opensearch"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    yield from open_store(request, tmp_path)


def seen(store: Any, selector: str) -> list[tuple[str, str, bool]]:
    q = Query(EVENTS, ["c1"], selector=parse_selector(selector), selector_text=selector, now=NOW)
    return sorted((i["id"], i["source_namespace"], bool(i.get("dismissed"))) for i in store.search(q).items)


def test_a_scoped_caller_dismisses_and_deletes_only_the_records_it_reads(store: Any, tmp_path: Path) -> None:
    ingest(store, EVENTS, ndjson(twins("d1") + twins("x1") + twins("w1")))
    scoped = Query(EVENTS, ["c1"], now=NOW, restriction=SHOP)
    assert store.dismiss(scoped, ["d1"]) == ["d1"] and store.delete(scoped, ["x1"]) == ["x1"]
    assert store.dismiss(Query(EVENTS, ["c1"], now=NOW), ["w1"]) == ["w1"]  # a whole-cluster caller: both
    want = [("d1", "db", False), ("d1", "shop", True), ("w1", "db", True), ("w1", "shop", True), ("x1", "db", False)]
    assert seen(store, 'id IN {"d1", "x1", "w1"}') == want
    assert seen(store, 'dismissed = true') == [w for w in want if w[2]]
    assert seen(store, 'dismissed = false AND id IN {"d1", "x1", "w1"}') == [w for w in want if not w[2]]
    if isinstance(store, DuckDBBackend):  # the overlay as read back at start-up
        store.close()
        again = DuckDBBackend(tmp_path, compact_interval=3600)
        try:
            assert seen(again, 'id IN {"d1", "x1", "w1"}') == want
        finally:
            again.close()
