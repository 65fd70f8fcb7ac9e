"""Prometheus metrics without a dependency: counters, gauges and histograms rendered as text."""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Callable

Labels = tuple[tuple[str, str], ...]

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


def _labels(labels: dict[str, str]) -> Labels:
    return tuple(sorted(labels.items()))


def _fmt(labels: Labels, extra: tuple[tuple[str, str], ...] = ()) -> str:
    items = labels + extra
    if not items:
        return ""
    esc = [(k, v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")) for k, v in items]
    return "{" + ",".join(f'{k}="{v}"' for k, v in esc) + "}"


class Registry:
    """A process-wide set of metrics; thread-safe, rendered on GET /-/metrics."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counters: dict[str, dict[Labels, float]] = defaultdict(lambda: defaultdict(float))
        self._hists: dict[str, dict[Labels, list[float]]] = defaultdict(dict)
        self._help: dict[str, tuple[str, str]] = {}
        self._gauges: dict[str, Callable[[], list[tuple[dict[str, str], float]]]] = {}

    def describe(self, name: str, kind: str, help_text: str) -> None:
        self._help[name] = (kind, help_text)

    def inc(self, name: str, value: float = 1.0, **labels: str) -> None:
        with self._lock:
            self._counters[name][_labels(labels)] += value

    def get(self, name: str, **labels: str) -> float:
        with self._lock:
            return self._counters.get(name, {}).get(_labels(labels), 0.0)

    def observe(self, name: str, value: float, **labels: str) -> None:
        key = _labels(labels)
        with self._lock:
            h = self._hists[name].get(key)
            if h is None:
                h = [0.0] * (len(LATENCY_BUCKETS) + 2)  # buckets..., sum, count
                self._hists[name][key] = h
            for i, bound in enumerate(LATENCY_BUCKETS):
                if value <= bound:
                    h[i] += 1
            h[-2] += value
            h[-1] += 1

    def gauge(self, name: str, fn: Callable[[], list[tuple[dict[str, str], float]]]) -> None:
        self._gauges[name] = fn

    def render(self) -> str:
        lines: list[str] = []
        with self._lock:
            names = sorted(set(self._counters) | set(self._hists) | set(self._gauges) | set(self._help))
            for name in names:
                kind, text = self._help.get(name, ("untyped", ""))
                if text:
                    lines.append(f"# HELP {name} {text}")
                lines.append(f"# TYPE {name} {kind}")
                for labels, value in sorted(self._counters.get(name, {}).items()):
                    lines.append(f"{name}{_fmt(labels)} {value:g}")
                for labels, h in sorted(self._hists.get(name, {}).items()):
                    for i, bound in enumerate(LATENCY_BUCKETS):
                        lines.append(f"{name}_bucket{_fmt(labels, (('le', f'{bound:g}'),))} {h[i]:g}")
                    lines.append(f"{name}_bucket{_fmt(labels, (('le', '+Inf'),))} {h[-1]:g}")
                    lines.append(f"{name}_sum{_fmt(labels)} {h[-2]:g}")
                    lines.append(f"{name}_count{_fmt(labels)} {h[-1]:g}")
                fn = self._gauges.get(name)
                if fn is not None:
                    for labels_d, value in fn():
                        lines.append(f"{name}{_fmt(_labels(labels_d))} {value:g}")
        return "\n".join(lines) + "\n"


def standard(registry: Registry) -> Registry:
    """Describe margay's own metrics."""
    registry.describe("margay_records_accepted_total", "counter", "Records stored, by log type and cluster.")
    registry.describe("margay_records_rejected_total", "counter", "Records refused at ingest, by log type and cluster.")
    registry.describe("margay_ingest_batches_total", "counter", "Ingest requests, by log type and outcome.")
    registry.describe("margay_ingest_seconds", "histogram", "Ingest request latency until durable.")
    registry.describe("margay_query_seconds", "histogram", "Query latency, by endpoint.")
    registry.describe("margay_aggregations_total", "counter",
                      "Aggregation requests, by the rows they read: rollup (pre-summed hours), raw or native.")
    registry.describe("margay_dropped_records_total", "counter", "Records dropped, by reason.")
    registry.describe("margay_store_bytes", "gauge", "Bytes of the store on disk.")
    registry.describe("margay_compaction_merges_total", "counter", "Merges of small files the compactor has made.")
    registry.describe("margay_compaction_rollups_total", "counter", "Roll-ups built for files that had none.")
    registry.describe("margay_compaction_active", "gauge", "1 while the compactor writes a merge or a roll-up.")
    registry.describe("margay_store_retired_files", "gauge",
                      "Files a merge or a drop replaced, still on disk until the reads that began before finish.")
    registry.describe("margay_ingest_group_commits_total", "counter",
                      "Group commits: small batches that arrived together, converted and committed as one.")
    registry.describe("margay_ingest_grouped_batches_total", "counter", "Batches committed in group commits.")
    registry.describe("margay_request_body_bytes", "gauge",
                      "Bytes of request bodies (as sent and inflated) held now, against max_inflight_body_bytes.")
    registry.describe("margay_request_body_refused_total", "counter",
                      "Requests answered 503 because the bodies held at once were at max_inflight_body_bytes.")
    return registry
