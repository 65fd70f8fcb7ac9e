"""Shipping spooled batches to the server's bulk endpoints: retries with backoff, and what each answer means.

- 200, or 400 with a per-line report: acknowledged (the good lines are stored; the bad ones are counted,
  never resent).
- 400 without a report, 415: the batch can never be stored; counted as rejected and acknowledged.
- 413: split in halves (keys `<key>.0`, `<key>.1`, so a retry after a crash splits the same way).
- anything else (5xx, 401/403, 408, 429, connection errors): retried, with exponential backoff and jitter,
  forever — the batch stays in the spool meanwhile.
"""

from __future__ import annotations

import gzip
import logging
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from ..logtypes import REGISTRY
from .spool import Batch

log = logging.getLogger("margay.agent")


@dataclass
class Result:
    succeeded: int = 0
    failed: int = 0  # lines the server refused (bad lines), never resent
    rejected: int = 0  # lines of batches refused as a whole (415, 400 without report, too large)
    replayed: bool = False
    errors: list[dict[str, Any]] = field(default_factory=list)

    def add(self, other: Result) -> None:
        self.succeeded += other.succeeded
        self.failed += other.failed
        self.rejected += other.rejected
        self.replayed = self.replayed or other.replayed
        self.errors.extend(other.errors[:20])


class Retry(Exception):
    """The server did not take the batch this time; try again later."""


class Shipper:
    def __init__(self, server: str, cluster: str, bearer: Callable[[], str | None], *, timeout: float,
                 backoff_base: float, backoff_max: float, stop: threading.Event,
                 on_retry: Callable[[str], None] = lambda reason: None) -> None:
        self.http = httpx.Client(base_url=server.rstrip("/"), timeout=timeout)
        self.cluster = cluster
        self.bearer = bearer
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.stop = stop
        self.on_retry = on_retry
        self.last_error: str | None = None
        self.reachable: bool | None = None

    def close(self) -> None:
        self.http.close()

    def ship(self, batch: Batch, body: bytes) -> Result | None:
        """Send until the server has answered for good; None if the agent is stopping first."""
        attempt = 0
        while not self.stop.is_set():
            try:
                result = self._send(batch, batch.key, body, batch.content_type, batch.lines)
                self.reachable = True
                return result
            except Retry as exc:
                self.last_error = str(exc)
                self.on_retry(str(exc).split(":", 1)[0])
                # Full jitter over an exponentially growing window, never below the base delay.
                window = min(self.backoff_max, self.backoff_base * (2 ** min(attempt, 30)))
                delay = random.uniform(self.backoff_base, max(self.backoff_base, window))  # noqa: S311
                attempt += 1
                if attempt in (1, 5) or attempt % 20 == 0:
                    log.warning("batch %s (%s) not shipped (%s); retrying in %.1fs (attempt %d)",
                                batch.key[:12], batch.source, exc, delay, attempt)
                self.stop.wait(delay)
        return None

    def _send(self, batch: Batch, key: str, body: bytes, content_type: str, lines: int) -> Result:
        headers = {"content-type": content_type, "content-encoding": "gzip", "x-cluster-id": self.cluster,
                   "idempotency-key": key}
        token = self.bearer()
        if token:
            headers["authorization"] = f"Bearer {token}"
        path = "/api/v1" + REGISTRY[batch.log_type].bulk_path
        try:
            r = self.http.post(path, content=body, headers=headers, params=batch.params or None)
        except httpx.TransportError as exc:
            self.reachable = False
            raise Retry(f"unreachable: {type(exc).__name__}: {exc}") from None
        answer = _json(r)
        replayed = r.headers.get("idempotent-replayed") == "true"
        if r.status_code in (200, 400) and isinstance(answer, dict) and "total" in answer:
            res = Result(int(answer.get("succeeded", 0)) + int(answer.get("dropped_noise", 0)),
                         int(answer.get("failed", 0)), 0, replayed, list(answer.get("errors", []))[:20])
            if res.failed:
                log.warning("%s: %d line(s) refused by the server, e.g. %s", batch.source, res.failed,
                            res.errors[:3])
            return res
        message = _message(answer)
        if r.status_code in (400, 415):
            log.error("%s: batch %s refused as a whole (%d): %s", batch.source, key[:12], r.status_code, message)
            return Result(rejected=lines, errors=[{"msg": message}])
        if r.status_code == 413:
            return self._split(batch, key, body, content_type, lines)
        raise Retry(f"http {r.status_code}: {message}")

    def _split(self, batch: Batch, key: str, body: bytes, content_type: str, lines: int) -> Result:
        raw = gzip.decompress(body)
        if content_type == "application/json":  # an EventList: split its items as NDJSON
            from ..ingest.native import eventlist_to_ndjson

            raw = (eventlist_to_ndjson(raw) or raw) + b"\n"
            content_type = "application/x-ndjson"
        parts = raw.splitlines(keepends=True)
        if len(parts) <= 1:
            log.error("%s: a single line is larger than the server accepts; dropped", batch.source)
            return Result(rejected=max(1, lines))
        half = len(parts) // 2
        out = Result()
        for i, chunk in enumerate((parts[:half], parts[half:])):
            data = b"".join(chunk)
            out.add(self._send(batch, f"{key}.{i}", gzip.compress(data, 1), content_type, len(chunk)))
        return out


def _json(r: httpx.Response) -> Any:
    try:
        return r.json()
    except ValueError:
        return r.text


def _message(answer: Any) -> str:
    if isinstance(answer, dict) and isinstance(answer.get("error"), dict):
        return str(answer["error"].get("message"))
    return str(answer)[:300]
