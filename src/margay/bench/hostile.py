"""The hostile-batch scenario: what a batch built to hit the per-line slow path costs against a good one.

Each hostile batch has as many lines as the good batch it is compared with, and is sent the same way (a real
`margay serve`, native bulk API, one client): duplicate keys and integers of 2^63 and more in every flow
record, and events nested 100 levels deep. Its ratio is the median time of the hostile batch over the median
time of the good one; the target is at most 3x (a hostile batch costs about what a good one does).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import httpx
import orjson

from ..logtypes import REGISTRY, SAMPLES
from .data import END, flow_batches, topology
from .harness import Bench
from .targets import MargayTarget

LINES = 1000


def _flows(n: int) -> list[dict[str, Any]]:
    body = next(iter(flow_batches(topology(), n))).body
    return [orjson.loads(line) for line in body.splitlines()[:n]]


def _events(n: int) -> list[dict[str, Any]]:
    base = [orjson.loads(s) for s in SAMPLES["events"]]
    out = []
    for i in range(n):
        doc = dict(base[i % len(base)], id=f"bench-{i}")
        doc["time"] = int((END - timedelta(minutes=i % 600)).timestamp())
        out.append(doc)
    return out


def _duplicate_keys(doc: dict[str, Any]) -> bytes:
    line = orjson.dumps(doc)
    first = next(iter(doc))
    return line[:-1] + b',"' + first.encode() + b'":' + orjson.dumps(doc[first]) + b"}"


def _big_integers(doc: dict[str, Any]) -> bytes:
    return orjson.dumps(dict(doc, bytes_in=0)).replace(b'"bytes_in":0', b'"bytes_in":' + str(2**63 + 7).encode(), 1)


def _deep(doc: dict[str, Any]) -> bytes:
    line = orjson.dumps({k: v for k, v in doc.items() if k != "record"})
    return line[:-1] + b',"record":' + b'{"a":' * 100 + b"1" + b"}" * 100 + b"}"


def _time(url: str, path: str, body: bytes, runs: int) -> tuple[float, dict[str, Any]]:
    times, last = [], {}
    with httpx.Client(base_url=url, timeout=120) as http:
        for _ in range(runs):
            t = time.perf_counter()
            r = http.post(path, content=body, headers={"content-type": "application/x-ndjson"})
            times.append(time.perf_counter() - t)
            last = r.json()
    return statistics.median(times), last


def hostile(bench: Bench) -> dict[str, Any]:
    runs = 7 if bench.quick else 15
    flows, events = _flows(LINES), _events(LINES)
    cases: dict[str, tuple[str, list[dict[str, Any]], Callable[[dict[str, Any]], bytes]]] = {
        "duplicate_keys": ("flows", flows, _duplicate_keys),
        "int_2_63": ("flows", flows, _big_integers),
        "deep_nesting": ("events", events, _deep),
    }
    target = MargayTarget(bench.work_dir / "hostile-margay").start()
    out: dict[str, Any] = {"hostile_lines_per_batch": LINES}
    try:
        good_s: dict[str, float] = {}
        for name in ("flows", "events"):
            docs = flows if name == "flows" else events
            body = b"\n".join(orjson.dumps(d) for d in docs)
            good_s[name], reply = _time(target.url, "/api/v1" + REGISTRY[name].bulk_path, body, runs)
            assert reply.get("succeeded") == LINES, reply
            out[f"hostile_good_{name}_ms"] = round(good_s[name] * 1000, 1)
        for case, (name, docs, spoil) in cases.items():
            body = b"\n".join(spoil(d) for d in docs)
            seconds, reply = _time(target.url, "/api/v1" + REGISTRY[name].bulk_path, body, runs)
            assert reply.get("failed") == LINES, (case, str(reply)[:300])
            out[f"hostile_{case}_ms"] = round(seconds * 1000, 1)
            out[f"hostile_ratio_{case}"] = round(seconds / good_s[name], 2)
            bench.log(f"  {case}: {seconds * 1000:.0f} ms vs {good_s[name] * 1000:.0f} ms good "
                      f"({out[f'hostile_ratio_{case}']}x)")
    finally:
        target.stop()
    out["hostile_ratio_max"] = max(v for k, v in out.items() if k.startswith("hostile_ratio_"))
    out["notes"] = (f"{LINES}-line batches through POST /api/v1/<type>/logs/bulk of a real margay serve, median of "
                    f"{runs}: every line hostile (duplicate keys; integers of 2^63 and more; events nested 100 "
                    "levels deep) against a good batch of the same type and size; target ratio <= 3. "
                    "The machine was shared with other work while this ran.")
    return out
