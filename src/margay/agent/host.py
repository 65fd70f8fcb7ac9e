"""What an agent's sources and its HTTP side see of the running agent (runner.Agent implements it)."""

from __future__ import annotations

import hashlib
import threading
from typing import Any, Protocol

from ..metrics import Registry
from .settings import AgentSettings
from .spool import Spool


class AgentHost(Protocol):
    settings: AgentSettings
    metrics: Registry
    spool: Spool
    instance: str
    stop_event: threading.Event

    def status(self) -> dict[str, Any]: ...

    def resume_position(self, source: str) -> dict[str, Any] | None: ...

    def enqueue(self, source: str, log_type: str, raw: bytes, lines: int, key: str, position: dict[str, Any],
                content_type: str = ..., params: dict[str, str] | None = ..., drop_when_full: bool = ...) -> bool: ...


def batch_key(instance: str, source: str, *parts: object) -> str:
    """A batch's idempotency key: the same lines of the same source of the same agent, the same key."""
    text = "\x1f".join([instance, source, *map(str, parts)])
    return hashlib.sha256(text.encode()).hexdigest()[:48]
