"""One budget for the request bodies the server holds at once, as sent and inflated.

Each body is bounded (`max_body_bytes`, after decompression), but not their sum: a hundred kilobytes of gzip
inflate to a hundred megabytes, so six such requests at once held ~500 MB more than the server needs (each
stays held until its response is sent: inflated, parsed, converted). Every byte a request reads or inflates is
counted against `max_inflight_body_bytes`, released when its response has been sent; a request that would go
past it while others hold bytes is answered 503 with Retry-After (agents and HTTP shippers retry it). A request
alone is always let through up to its own bound, so one largest batch never waits for nothing.
"""

from __future__ import annotations

import threading
from contextvars import ContextVar

from starlette.types import ASGIApp, Receive, Scope, Send

from ..errors import MargayError

MiB = 1 << 20


class Busy(MargayError):
    status = 503
    type = "busy"


class BodyBudget:
    """The bytes of request bodies held now, against a cap."""

    def __init__(self, cap: int, *, holder: str = "the server", setting: str = "max_inflight_body_bytes") -> None:
        self.cap = cap
        self.holder = holder  # who holds the bodies and which setting bounds them, for the 503's message
        self.setting = setting
        self.used = 0
        self.refused = 0  # requests answered 503 by the budget
        self._lock = threading.Lock()

    def charge(self, held: Held, n: int) -> None:
        with self._lock:
            if self.used + n > self.cap and self.used > held.n:  # others hold bytes: not now
                self.refused += 1
                others = self.used - held.n
                raise Busy(f"{self.holder} holds {others // MiB} MiB of other request bodies (its limit is "
                           f"{self.cap // MiB} MiB, {self.setting}): retry in a moment or send smaller batches")
            self.used += n
            held.n += n

    def release(self, held: Held) -> None:
        with self._lock:
            self.used -= held.n
            held.n = 0


class Held:
    """One request's bytes under the budget."""

    __slots__ = ("budget", "n")

    def __init__(self, budget: BodyBudget) -> None:
        self.budget = budget
        self.n = 0


_HELD: ContextVar[Held | None] = ContextVar("margay_body_bytes", default=None)


def charge(n: int) -> None:
    """Count `n` more bytes of the current request's body (raises Busy past the budget). Outside a request (the
    CLI, tests calling the readers directly) nothing is counted. Worker threads see the request's count: they
    run in a copy of its context (asyncio.to_thread, the ingest pool's copy_context)."""
    held = _HELD.get()
    if held is not None and n:
        held.budget.charge(held, n)


class BodyBudgetMiddleware:
    """ASGI middleware, outermost: gives each HTTP request its count and releases it once the response is sent."""

    def __init__(self, app: ASGIApp, budget: BodyBudget) -> None:
        self.app = app
        self.budget = budget

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        held = Held(self.budget)
        token = _HELD.set(held)
        try:
            await self.app(scope, receive, send)
        finally:
            _HELD.reset(token)
            self.budget.release(held)
