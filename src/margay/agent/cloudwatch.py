"""EKS: kube-apiserver audit events pulled from CloudWatch Logs, as Calico's `eksCloudwatchLog` source does.

Every `fetchInterval` seconds the streams of `groupName` whose names start with `streamPrefix` are read
forward from their saved tokens. The tokens travel in each spooled batch's position and are checkpointed
when the server acknowledges it, so a restart goes on where the last durable batch ended.
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any

from .host import AgentHost, batch_key
from .settings import AgentSettings

log = logging.getLogger("margay.agent")
SOURCE = "cloudwatch"


class CloudWatchSource:
    def __init__(self, agent: AgentHost, settings: AgentSettings) -> None:
        self.agent = agent
        self.group = str(settings.cloudwatch_group)
        self.prefix = settings.cloudwatch_stream_prefix
        self.interval = settings.cloudwatch_fetch_interval
        self.batch_bytes = settings.batch_bytes
        self.region = settings.cloudwatch_region
        self.endpoint = settings.cloudwatch_endpoint
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
        lines = [e["message"].rstrip("\n").encode() for e in events if e.get("message", "").strip()]
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
