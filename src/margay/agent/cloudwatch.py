"""EKS: kube-apiserver audit events pulled from CloudWatch Logs, as Calico's `eksCloudwatchLog` source does.

Every `fetchInterval` seconds the streams of `groupName` whose names start with `streamPrefix` are read
forward from their saved tokens. The tokens travel in each spooled batch's position and are checkpointed
when the server acknowledges it, so a restart goes on where the last durable batch ended.

By default only the events Calico's EKS pipeline keeps are shipped (`filter-eks-audit.conf`): level
`RequestResponse` and verb create, patch, update or delete — the changes, not the reads and watches that
make up most of an EKS audit stream. `cloudwatchAuditFilter: all` ships every event.
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any

import orjson

from ..errors import ConfigError
from .host import AgentHost, batch_key
from .settings import AgentSettings

log = logging.getLogger("margay.agent")
SOURCE = "cloudwatch"
FILTERS = ("calico", "all")
CALICO_VERBS = frozenset({"create", "patch", "update", "delete"})


def calico_keeps(message: str) -> bool:
    """Calico's EKS audit filter: a RequestResponse-level create, patch, update or delete. A line that is not
    a JSON object is kept, so the server names it in its answer rather than it vanishing here."""
    try:
        event = orjson.loads(message)
    except orjson.JSONDecodeError:
        return True
    if not isinstance(event, dict):
        return True
    return event.get("level") == "RequestResponse" and event.get("verb") in CALICO_VERBS


def one_line(messages: list[str]) -> list[str]:
    """Each CloudWatch message as one NDJSON line. EKS audit messages are one-line JSON; one holding a newline
    (besides a trailing one) would be shipped as several records. JSON spread over lines (the newlines are
    whitespace: a JSON string cannot hold a raw one) is re-encoded on one line; anything else is left out
    (the caller counts it: multiline_message)."""
    out = []
    for m in messages:
        m = m.rstrip("\r\n")
        if "\n" in m:  # the server splits NDJSON at \n only
            try:
                m = orjson.dumps(orjson.loads(m)).decode()
            except orjson.JSONDecodeError:
                continue
        out.append(m)
    return out


class CloudWatchSource:
    def __init__(self, agent: AgentHost, settings: AgentSettings) -> None:
        self.agent = agent
        self.group = str(settings.cloudwatch_group)
        self.prefix = settings.cloudwatch_stream_prefix
        self.interval = settings.cloudwatch_fetch_interval
        self.batch_bytes = settings.batch_bytes
        self.region = settings.cloudwatch_region
        self.endpoint = settings.cloudwatch_endpoint
        if settings.cloudwatch_audit_filter not in FILTERS:
            raise ConfigError(f"cloudwatchAuditFilter: expected calico or all, got {settings.cloudwatch_audit_filter!r}")
        self.calico_filter = settings.cloudwatch_audit_filter == "calico"
        position = agent.resume_position(SOURCE) or {}
        self.tokens: dict[str, str] = dict(position.get("streams", {}))
        self._client: Any = None

    def client(self) -> Any:
        if self._client is None:
            import boto3  # optional: only EKS agents need it (pip install 'margay[eks]')

            self._client = boto3.client("logs", region_name=self.region, endpoint_url=self.endpoint)
        return self._client

    def run(self) -> None:
        stop = self.agent.stop_event
        while not stop.is_set():
            try:
                self.fetch_once()
            except Exception as exc:  # network, credentials, throttling: try again next round
                log.warning("cloudwatch %s: %s", self.group, exc)
                self.agent.metrics.inc("margay_agent_retries_total", reason="cloudwatch")
            stop.wait(self.interval)

    def streams(self) -> list[str]:
        names: list[str] = []
        pages = self.client().get_paginator("describe_log_streams").paginate(
            logGroupName=self.group, logStreamNamePrefix=self.prefix)
        for page in pages:
            names += [s["logStreamName"] for s in page.get("logStreams", [])]
        return sorted(names)

    def fetch_once(self) -> int:
        """Read every stream forward; returns the number of events spooled."""
        total = 0
        for stream in self.streams():
            while not self.agent.stop_event.is_set():
                if not self.agent.spool.has_room(self.batch_bytes):
                    return total  # the spool is full: CloudWatch keeps the events until the next round
                n = self._fetch_page(stream)
                total += n
                if n == 0:
                    break
        return total

    def _fetch_page(self, stream: str) -> int:
        before = self.tokens.get(stream)
        kwargs: dict[str, Any] = {"logGroupName": self.group, "logStreamName": stream, "startFromHead": True}
        if before:
            kwargs["nextToken"] = before
        page = self.client().get_log_events(**kwargs)
        events = page.get("events", [])
        after: str | None = page.get("nextForwardToken") or before
        if not events:
            if after and after != before:
                self.tokens[stream] = after
            return 0
        raw = [e["message"] for e in events if e.get("message", "").strip()]
        messages = one_line(raw)
        if len(messages) < len(raw):
            dropped = len(raw) - len(messages)
            self.agent.metrics.inc("margay_dropped_records_total", dropped, reason="multiline_message", source=SOURCE)
            log.warning("cloudwatch %s/%s: %d message(s) spanning several lines and not JSON dropped",
                        self.group, stream, dropped)
        if self.calico_filter:
            messages = [m for m in messages if calico_keeps(m)]
        lines = [m.encode() for m in messages]
        body = b"\n".join(lines) + b"\n" if lines else b""
        tokens = dict(self.tokens)
        if after:
            tokens[stream] = after
        if body:
            digest = hashlib.sha256(body).hexdigest()

            key = batch_key(self.agent.instance, SOURCE, self.group, stream, before or "head", digest)
            if not self.agent.enqueue(SOURCE, "audit_kube", body, len(lines), key, {"streams": tokens},
                                      drop_when_full=False):
                return 0  # not spooled: the token stays, and the page is read again next round
        self.tokens = tokens
        return len(events)
