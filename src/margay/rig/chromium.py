"""Debian's Chromium driven by Playwright (sync API) as a test peer.

Playwright's own browser download (`playwright install`) is impossible here, so the browser is the
apt package `chromium` (scripts/rig/install.sh), launched through `executable_path`. Use the sync API
outside any running asyncio loop.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from margay.rig.process import PeerError

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Playwright

CHROMIUM_EXECUTABLE = Path("/usr/bin/chromium")
CHROMIUM_ARGS: tuple[str, ...] = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    "--disable-quic",
)


def launch_options(**overrides: Any) -> dict[str, Any]:
    """Keyword arguments for `playwright.chromium.launch()`; extra `args` are appended to ours."""
    if not CHROMIUM_EXECUTABLE.exists():
        raise PeerError(f"{CHROMIUM_EXECUTABLE} not found: run scripts/rig/install.sh (apt package chromium)")
    extra_args = list(overrides.pop("args", []))
    options: dict[str, Any] = {
        "executable_path": str(CHROMIUM_EXECUTABLE),
        "headless": True,
        "chromium_sandbox": False,
        "args": [*CHROMIUM_ARGS, *extra_args],
        "timeout": 60_000,
    }
    options.update(overrides)
    return options


def launch_chromium(playwright: Playwright, **overrides: Any) -> Browser:
    """Launch Debian's Chromium through a running `sync_playwright()`."""
    return playwright.chromium.launch(**launch_options(**overrides))


@contextmanager
def chromium_browser(**overrides: Any) -> Iterator[Browser]:
    """Start Playwright and Chromium, yield the Browser, close both afterwards."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = launch_chromium(playwright, **overrides)
        try:
            yield browser
        finally:
            browser.close()


def measure_startup() -> float:
    """Seconds from starting Playwright to a launched browser with a blank page (for the rig docs)."""
    t0 = time.monotonic()
    with chromium_browser() as browser:
        page = browser.new_page()
        page.goto("about:blank")
        elapsed = time.monotonic() - t0
        page.close()
    return elapsed
