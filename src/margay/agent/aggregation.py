"""The `--aggregate LEVEL` hook: flow and DNS batches aggregated on the node before they are sent.

Uses `margay.aggregate` (flows: `aggregate_flows(body, FlowLevels)`, DNS: `aggregate_dns(body, DNSLevels)`)
when it is importable; otherwise batches go out as read and the status says why. A batch holding any
record the aggregator finds invalid is sent as read, so the server names the bad lines.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

log = logging.getLogger("margay.agent")


class Aggregation:
    def __init__(self, level: int | None) -> None:
        self.level = level
        self.error: str | None = None
        self._fns: dict[str, Callable[[bytes], Any]] = {}
        if level is None:
            return
        try:
            from ..aggregate.dns import DNSLevels, aggregate_dns
            from ..aggregate.flows import FlowLevels, aggregate_flows

            flows = FlowLevels(allowed=level, denied=min(level, 3))
            dns = DNSLevels(level=min(level, 1))
            self._fns = {"flows": lambda body: aggregate_flows(body, flows),
                         "dns": lambda body: aggregate_dns(body, dns)}
        except (ImportError, AttributeError, TypeError, ValueError) as exc:
            self.error = f"margay.aggregate unavailable: {exc}"
            log.warning("--aggregate %s ignored: %s", level, self.error)

    def apply(self, log_type: str, body: bytes) -> bytes:
        fn = self._fns.get(log_type)
        if fn is None:
            return body
        try:
            result = fn(body)
        except Exception as exc:  # the aggregator must never cost a batch: send it as read
            log.warning("aggregation of a %s batch failed (%s); sent as read", log_type, exc)
            return body
        if getattr(result, "invalid", 0):
            return body
        out: bytes = result.body
        return out if out.endswith(b"\n") or not out else out + b"\n"

    def describe(self) -> dict[str, Any]:
        return {"level": self.level, "active": bool(self._fns), "error": self.error}
