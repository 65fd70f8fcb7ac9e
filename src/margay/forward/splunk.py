"""The Splunk store: HTTP Event Collector JSON events (`time`, `host`, `source`, `sourcetype`, `index`,
`event`) posted in batches to `/services/collector/event`.

HEC answers are honoured: code 0 acknowledges the batch; 413 splits it in halves; "invalid data format"
(code 6) with `invalid-event-number` n means events before n were accepted: event n is counted as failed
and the rest is sent again; any other 4xx but 401/403/408/429 is a permanent refusal of the batch
(counted as failed, logged); 401/403 (token), 408, 429 and 5xx are retried.
"""

from __future__ import annotations

import logging
from typing import Any

import httpx
import orjson

from ..logtypes import LogType
from .config import StoreConfig
from .forwarder import DeliveryError

log = logging.getLogger(__name__)
RETRY = {401, 403, 408, 429}


class SplunkSink:
    def __init__(self, config: StoreConfig) -> None:
        self.opts = config.options
        verify: Any = self.opts.get("ca_file") or self.opts.get("verify", True)
        self.http = httpx.Client(timeout=config.timeout, verify=verify,
                                 headers={"Authorization": f"Splunk {self.opts['token']}",
                                          "Content-Type": "application/json"})

    def event(self, lt: LogType, r: dict[str, Any]) -> bytes:
        meta = self.opts["meta"][lt.name]
        ev: dict[str, Any] = {"time": r.get("_time"), "source": meta["source"], "sourcetype": meta["sourcetype"],
                              "event": {k: v for k, v in r.items() if k not in ("_seq", "_time")}}
        if isinstance(r.get("host"), str) and r["host"]:
            ev["host"] = r["host"]
        if meta.get("index"):
            ev["index"] = meta["index"]
        return orjson.dumps(ev)

    def deliver(self, lt: LogType, records: list[dict[str, Any]]) -> int:
        return self._post(lt, [self.event(lt, r) for r in records])

    def _post(self, lt: LogType, events: list[bytes]) -> int:
        if not events:
            return 0
        try:
            r = self.http.post(self.opts["url"], content=b"\n".join(events))
        except httpx.HTTPError as exc:
            raise DeliveryError(f"HEC {self.opts['url']}: {type(exc).__name__}: {exc}") from exc
        try:
            body = r.json()
        except ValueError:
            body = {}
        code = body.get("code") if isinstance(body, dict) else None
        if r.status_code == 200 and code in (0, None):
            return 0
        if r.status_code == 413 and len(events) > 1:
            half = len(events) // 2
            return self._post(lt, events[:half]) + self._post(lt, events[half:])
        if r.status_code == 400 and code == 6 and isinstance(body.get("invalid-event-number"), int):
            n = body["invalid-event-number"]
            log.error("HEC refused %s event %d of a batch: %s", lt.name, n, body.get("text"))
            return 1 + self._post(lt, events[n + 1:])
        if r.status_code in RETRY or r.status_code >= 500:
            raise DeliveryError(f"HEC answered {r.status_code}: {body or r.text[:200]}")
        log.error("HEC refused a batch of %d %s events for good: %s %s", len(events), lt.name, r.status_code,
                  body or r.text[:200])
        return len(events)

    def close(self) -> None:
        self.http.close()
