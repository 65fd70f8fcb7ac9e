"""The policy activity write throttle's memory under hostile writers: bounded in entries and in bytes per
entry, and never suppressing a report it did not remember (api/throttle.py)."""

from __future__ import annotations

import gc
import tracemalloc
from datetime import UTC, datetime, timedelta

import orjson

from margay.api.throttle import WriteThrottle
from margay.logtypes import REGISTRY

LT = REGISTRY["policy_activity"]
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _batch(names: list[str], rule: str = "1|ingress|0") -> bytes:
    return b"\n".join(orjson.dumps({"policy": {"kind": "NetworkPolicy", "namespace": "ns", "name": n},
                                    "rule": rule, "last_evaluated": "2026-01-01T00:00:00Z"}) for n in names)


def _write(throttle: WriteThrottle, cluster: str, names: list[str], now: datetime) -> int:
    """Send a batch as the ingest API does (every kept line stored); how many lines were throttled."""
    _, throttled, kept = throttle.admit(LT, cluster, _batch(names), now)
    throttle.mark(LT, cluster, kept, set(), now)
    return throttled


def test_the_throttle_remembers_at_most_max_entries_and_lets_the_rest_through() -> None:
    throttle = WriteThrottle(max_entries=100)
    first = [f"p{i}" for i in range(100)]
    flood = [f"flood{i}" for i in range(5000)]
    assert _write(throttle, "east", first, T0) == 0
    assert _write(throttle, "east", flood, T0 + timedelta(seconds=1)) == 0
    assert len(throttle) == 100, "a writer's flood of new identities must not grow the map"
    # the remembered ones are still throttled; the flood, not remembered, is written again (never lost)
    assert _write(throttle, "east", first, T0 + timedelta(seconds=2)) == 100
    assert _write(throttle, "east", flood[:50], T0 + timedelta(seconds=3)) == 0
    # another cluster's identical reports are its own
    assert _write(throttle, "west", first[:10], T0 + timedelta(seconds=4)) == 0
    # once the window has passed, expired entries make room again
    later = T0 + timedelta(hours=1, minutes=2)
    assert _write(throttle, "east", flood[:10], later) == 0
    assert _write(throttle, "east", flood[:10], later + timedelta(seconds=1)) == 10
    assert len(throttle) <= 100


def test_a_long_identity_costs_the_throttle_no_more_than_a_short_one() -> None:
    throttle = WriteThrottle()
    names = [f"{i:04d}" + "x" * 200_000 for i in range(40)]  # 8 MB of policy names
    body = _batch(names)
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        _, _, kept = throttle.admit(LT, "east", body, T0)
        throttle.mark(LT, "east", kept, set(), T0)
        del kept
        gc.collect()
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert len(throttle) == 40
    assert held < 200_000, f"the throttle holds {held} bytes for 40 identities"
    assert throttle.admit(LT, "east", body, T0 + timedelta(minutes=1))[1] == 40  # and still throttles them
