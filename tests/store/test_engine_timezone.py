"""The embedded engine reads and writes in UTC whatever the process's TZ: every cursor of every engine."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

# Run in a child process: DuckDB takes its default TimeZone from the process's TZ when it starts.
_CHILD = """
import json, sys
from datetime import UTC, datetime
from pathlib import Path
import orjson
from margay.logtypes import REGISTRY, SAMPLES
from margay.query.model import Query
from margay.store.duckdb import DuckDBBackend

store = DuckDBBackend(Path(sys.argv[1]), compact_interval=3600)
try:
    zone = "SELECT current_setting('TimeZone'), strftime(TIMESTAMPTZ '2026-01-01 00:30:00+00', '%d %H')"
    cursors = {"reader": store.cursor(), "ingest": store.ingest_con.cursor(), "compactor": store.compact_con.cursor()}
    out = {name: list(cur.execute(zone).fetchone()) for name, cur in cursors.items()}
    for cur in cursors.values():
        cur.close()
    flows = REGISTRY["flows"]
    # 00:30 UTC on 1 January: still 31 December in any zone west of UTC (the partition's day, the bucket's).
    doc = dict(orjson.loads(SAMPLES["flows"][0]), start_time=1767227400, end_time=1767227400)
    now = datetime(2026, 1, 1, 12, tzinfo=UTC)
    store.ingest(flows, "c", orjson.dumps(doc), key=None, now=now, respond=lambda c: {})
    q = Query(flows, ["c"], start=datetime(2026, 1, 1, tzinfo=UTC), end=now, now=now)
    out["partitions"] = [p.day for p in store.partitions(flows)]
    days = store.aggregate(q, {"d": {"date_histogram": {"field": "end_time", "calendar_interval": "day"}}})
    out["days"] = [b["key_as_string"] for b in days.result["d"]["buckets"] if b["doc_count"]]
    fed = store.records_after(flows, 0, 10, upto=1 << 62)
    out["fed_time"] = [r["_time"] for r in fed]
finally:
    store.close()
print(json.dumps(out))
"""


def test_every_cursor_is_in_utc_when_the_process_tz_is_not(tmp_path: Path) -> None:
    env = dict(os.environ, TZ="America/New_York")
    run = subprocess.run([sys.executable, "-c", _CHILD, str(tmp_path)], env=env, capture_output=True, text=True,
                         timeout=120, check=False)
    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout.strip().splitlines()[-1])
    for name in ("reader", "ingest", "compactor"):
        assert out[name] == ["UTC", "01 00"], name
    assert out["partitions"] == ["20260101"]
    assert out["days"] == ["2026-01-01T00:00:00.000Z"]  # read: the day's partition was not pruned
    assert out["fed_time"] == [1767227400]
