"""The forwarders of a running server: built from the LogCollector document, one thread per store."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..metrics import Registry
from .config import StoreConfig, from_file
from .forwarder import Forwarder, Sink


def make_sink(config: StoreConfig, metrics: Registry) -> Sink:
    if config.kind == "s3":
        from .s3 import S3Sink

        return S3Sink(config)
    if config.kind == "syslog":
        from .syslog import SyslogSink

        return SyslogSink(config, metrics)
    from .splunk import SplunkSink

    return SplunkSink(config)


def describe(metrics: Registry) -> None:
    metrics.describe("margay_forward_delivered_records_total", "counter",
                     "Records a store's destination acknowledged, by store and log type.")
    metrics.describe("margay_forward_retries_total", "counter", "Failed delivery attempts that will be retried, by store.")
    metrics.describe("margay_forward_failed_records_total", "counter",
                     "Records a destination refused for good (e.g. HEC invalid data), by store and log type.")
    metrics.describe("margay_forward_truncated_total", "counter", "Syslog messages cut at packetSize, by store.")
    metrics.describe("margay_forward_lag_records", "gauge", "Stored records a store has not delivered yet.")
    metrics.describe("margay_forward_lag_seconds", "gauge", "Age of the oldest record a store has not delivered yet.")


class Forwarding:
    """Every configured store's Forwarder; start() and stop() from the server's lifecycle."""

    def __init__(self, configs: list[StoreConfig], backend: Any, data_dir: Path, metrics: Registry) -> None:
        self.metrics = metrics
        describe(metrics)
        self.forwarders = [Forwarder(c, backend, make_sink(c, metrics), data_dir, metrics=metrics) for c in configs]
        metrics.gauge("margay_forward_lag_records",
                      lambda: [({"store": f.config.name}, float(f.lag_records)) for f in self.forwarders])
        metrics.gauge("margay_forward_lag_seconds",
                      lambda: [({"store": f.config.name}, f.lag_seconds) for f in self.forwarders])

    @classmethod
    def from_file(cls, path: Path | None, backend: Any, data_dir: Path, metrics: Registry) -> Forwarding:
        return cls(from_file(path), backend, data_dir, metrics)

    def start(self) -> None:
        for f in self.forwarders:
            f.start()

    def stop(self) -> None:
        for f in self.forwarders:
            f.request_stop()  # all at once, then wait for each
        for f in self.forwarders:
            f.stop()

    def status(self) -> list[dict[str, Any]]:
        return [f.status() for f in self.forwarders]
