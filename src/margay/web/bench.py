"""Time to first render of the UI's pages, measured in Chromium (for the benchmark harness).

A page counts as rendered when every panel has drawn its first data (the page sets
`window.__margayRendered[page]`); the time is from the start of navigation, so it includes loading the
shell and the libraries and every API call the page makes. Beside it, the API calls the page made until
then and, given the server's CPU clock (`cpu`), the server's CPU seconds per render: on a busy machine the
wall time stretches with everyone else's load, the CPU much less.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Callable
from typing import Any

from .session import sign_in_page

PAGES = {"overview": "#/overview", "graph": "#/graph"}


def bench(url: str, token: str | None, *, time_range: str = "now-24h", runs: int = 3, timeout_s: float = 60,
          browser: Any = None, cpu: Callable[[], float] | None = None) -> dict[str, Any]:
    """Median seconds to first render of the overview and the flow visualizer (and each run's time); the
    API calls each page made; with `cpu` (the server's CPU seconds so far), the median server CPU per render."""
    if browser is not None:
        return _measure(browser, url, token, time_range, runs, timeout_s, cpu)
    from ..rig.chromium import chromium_browser

    with chromium_browser() as b:
        return _measure(b, url, token, time_range, runs, timeout_s, cpu)


def _measure(browser: Any, url: str, token: str | None, time_range: str, runs: int, timeout_s: float,
             cpu: Callable[[], float] | None) -> dict[str, Any]:
    out: dict[str, Any] = {"time_range": time_range, "runs": runs}
    init = "localStorage.setItem('margay.range', " + json.dumps(json.dumps({"from": time_range, "to": "now"})) + ");"
    for name, frag in PAGES.items():
        times: list[float] = []
        cpus: list[float] = []
        calls: list[str] = []  # the API calls of the run in hand
        for _ in range(runs):
            context = browser.new_context(viewport={"width": 1440, "height": 900})
            try:
                page = context.new_page()
                if token:
                    sign_in_page(page, url, token)
                page.add_init_script(init)
                calls = []
                page.on("request", lambda r, seen=calls: seen.append(r.url) if "/api/" in r.url else None)
                cpu0 = cpu() if cpu else 0.0
                page.goto(url.rstrip("/") + "/ui/" + frag, wait_until="commit")
                page.wait_for_function(f"() => window.__margayRendered && window.__margayRendered[{json.dumps(name)}]",
                                       timeout=timeout_s * 1000)
                if cpu:
                    cpus.append(cpu() - cpu0)
                ms = page.evaluate(f"window.__margayRendered[{json.dumps(name)}]")
                errors = page.evaluate("[...document.querySelectorAll('.error')].map((e) => e.textContent)")
                if errors:
                    raise RuntimeError(f"{name}: the page rendered {len(errors)} error panel(s): {errors[:3]}")
                times.append(round(ms / 1000, 3))
            finally:
                context.close()
        out[f"{name}_first_render_s"] = statistics.median(times)
        out[f"{name}_runs_s"] = times
        out[f"{name}_api_calls"] = len(calls)  # the last run's
        if cpus:
            out[f"{name}_server_cpu_s"] = round(statistics.median(cpus), 3)
    return out

