"""A full disk answers 507 in the error envelope, on every write path, without server paths; the journal
keeps nothing of a refused batch. The kernel's own ENOSPC comes from /dev/full."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest

from margay.app import create_app
from margay.config import Settings
from margay.logtypes import REGISTRY, SAMPLES
from margay.store.journal import Journal
from margay.testing.server import ServerThread

pytestmark = pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full (Linux)")

NDJSON = {"content-type": "application/x-ndjson"}


@pytest.fixture
def full(tmp_path: Path) -> Iterator[tuple[str, Path, object]]:
    data = tmp_path / "data"
    app = create_app(Settings(data_dir=data))
    with ServerThread(app) as server:
        yield server.url, data, app


def test_ingest_on_a_full_disk_is_507_and_leaves_no_trace(full: tuple[str, Path, object]) -> None:
    url, data, app = full
    backend = app.state.margay.backend  # type: ignore[attr-defined]
    good = backend.journal
    events = "\n".join(SAMPLES["events"]).encode()
    backend.journal = Journal(Path("/dev/full"))  # every commit now meets ENOSPC
    try:
        r = httpx.post(url + "/api/v1" + REGISTRY["flows"].bulk_path, content="\n".join(SAMPLES["flows"]).encode(),
                       headers={**NDJSON, "idempotency-key": "k-1"}, timeout=30)
        assert r.status_code == 507, r.text
        assert r.json()["error"]["type"] == "insufficient_storage"
        assert str(data) not in r.text and "/dev/full" not in r.text
        bulk = b"".join(orjson.dumps({"index": {"_index": "tigera_secure_ee_events.cluster"}}) + b"\n" + line + b"\n"
                        for line in events.splitlines())
        r = httpx.post(url + "/es/_bulk", content=bulk, headers=NDJSON, timeout=30)
        assert r.status_code == 507, r.text
    finally:
        backend.journal = good
    # Space again: the same batch (same key) is stored now, not answered from a commit that never happened.
    r = httpx.post(url + "/api/v1" + REGISTRY["flows"].bulk_path, content="\n".join(SAMPLES["flows"]).encode(),
                   headers={**NDJSON, "idempotency-key": "k-1"}, timeout=30)
    assert r.status_code == 200 and r.headers.get("idempotent-replayed") is None
    assert not list((data / "scratch").glob("*/*.parquet"))


def test_event_dismissal_on_a_full_disk_is_507(full: tuple[str, Path, object]) -> None:
    url, data, _ = full
    r = httpx.post(url + "/api/v1" + REGISTRY["events"].bulk_path, content="\n".join(SAMPLES["events"]).encode(),
                   headers=NDJSON, timeout=30)
    assert r.status_code == 200, r.text
    some_id = orjson.loads(SAMPLES["events"][0]).get("id")
    (data / "events").mkdir(parents=True, exist_ok=True)
    os.symlink("/dev/full", data / "events" / "dismissed.ndjson")
    r = httpx.put(url + "/api/v1/events/bulk", json={"ids": [some_id]}, timeout=30)
    assert r.status_code == 507, r.text
    assert r.json()["error"]["type"] == "insufficient_storage" and str(data) not in r.text


def test_a_failed_journal_append_leaves_the_journal_at_its_last_good_line(tmp_path: Path) -> None:
    path = tmp_path / "journal.ndjson"
    j = Journal(path)
    j.append({"op": "commit", "n": 1})
    j._fh.close()
    j._fh = open("/dev/full", "ab")  # noqa: SIM115 - the next append meets ENOSPC
    with pytest.raises(OSError):
        j.append({"op": "commit", "n": 2})
    j.append({"op": "commit", "n": 3})  # the reset handle writes to the real file again
    assert [e["n"] for e in j.entries()] == [1, 3]
