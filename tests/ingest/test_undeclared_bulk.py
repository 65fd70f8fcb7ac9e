"""Large batches keep undeclared fields as sent on both engines, whichever answers the batch-wide look: the C
scanner (ingest/keyscan.py), or DuckDB alone (a build without the extension)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from margay.ingest import keyscan
from margay.ingest.parse import SMALL_BATCH
from margay.logtypes.base import own_keys
from margay.query.model import Query
from margay.query.selector import parse_selector
from store.test_contract import FLOWS, NOW, flow, open_store, respond

N = SMALL_BATCH + 500  # a large batch: the look runs


@pytest.fixture(params=[("duckdb", "native"), ("duckdb", "absent"), ("opensearch", "native"),
                        ("opensearch", "absent")], ids="-".join)
def store(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    engine, scanner = request.param
    if scanner == "absent":
        monkeypatch.setattr(keyscan, "_NativeKeySet", None)
    else:
        assert keyscan.NATIVE
    yield from open_store(request, tmp_path, engine)


def _ingest(store: Any, lines: list[bytes]) -> None:
    response, _ = store.ingest(FLOWS, "c1", b"\n".join(lines) + b"\n", key=None, now=NOW, respond=respond)
    assert response["succeeded"] == N and response["failed"] == 0, response


def _doc(store: Any, bytes_out: int) -> dict[str, Any]:
    q = Query(FLOWS, ["c1"], selector=parse_selector(f"bytes_out = {bytes_out}"),
              selector_text=f"bytes_out = {bytes_out}", size=10, now=NOW)
    res = store.search(q)
    assert res.total == 1, (bytes_out, res.total)
    return res.items[0]


def _count(store: Any, selector: str) -> int:
    return store.search(Query(FLOWS, ["c1"], selector=parse_selector(selector), selector_text=selector, size=1,
                              now=NOW)).total


def test_undeclared_keys_of_large_batches_are_kept(store: Any) -> None:
    # 0. a clean batch (the scanner's CLEAN: no `_extra` computed) comes back as sent, nothing added
    base = 30_000
    _ingest(store, [orjson.dumps({**flow(i), "bytes_out": base + i}) for i in range(N)])
    doc = _doc(store, base + 5)
    sent = {k: v for k, v in flow(5).items() if k not in ("bytes_out", "policies")}  # (a struct comes back whole)
    assert {k: doc[k] for k in sent} == sent
    assert set(doc) <= set(own_keys(FLOWS)), set(doc) - set(own_keys(FLOWS))
    # 1. plain: one record of 1,500 has undeclared fields; the rest come back without any
    lines = [orjson.dumps(flow(i)) for i in range(N)]
    odd = 1234
    lines[odd] = orjson.dumps({**flow(odd), "new_felix_field": {"a": [1, "x"]}, "flag": None})
    _ingest(store, lines)
    got = _doc(store, odd)
    assert got["new_felix_field"] == {"a": [1, "x"]} and "flag" in got and got["flag"] is None
    assert "new_felix_field" not in _doc(store, 7)
    # 2. a declared key written with an escape (`sourc\u0065_ip`): declared, no `_extra`, its value stored
    base = 10_000
    lines = [orjson.dumps({**flow(i), "bytes_out": base + i}) for i in range(N)]
    lines[3] = lines[3].replace(b'"source_ip"', b'"sourc\\u0065_ip"')
    _ingest(store, lines)
    doc = _doc(store, base + 3)
    assert doc["source_ip"] == flow(3)["source_ip"] and "sourc\\u0065_ip" not in doc
    # 3. an undeclared key written with an escape: kept, under its decoded name
    base = 20_000
    lines = [orjson.dumps({**flow(i), "bytes_out": base + i}) for i in range(N)]
    lines[N - 1] = lines[N - 1].replace(b"{", b'{"n\\u0065w_key":[{"k":"}"}],', 1)
    _ingest(store, lines)
    assert _doc(store, base + N - 1)["new_key"] == [{"k": "}"}]
    assert "new_key" not in _doc(store, base)
    assert _count(store, "bytes_out >= 0") == 4 * N
