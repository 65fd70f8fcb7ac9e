"""Time to first render of the UI's pages, measured in Chromium (for the benchmark harness).

A page counts as rendered when every panel has drawn its first data (the page sets
`window.__margayRendered[page]`); the time is from the start of navigation, so it includes loading the
shell and the libraries and every API call the page makes.
"""

from __future__ import annotations

import json
import statistics
from typing import Any

from .session import sign_in_page

PAGES = {"overview": "#/overview", "graph": "#/graph"}


def bench(url: str, token: str | None, *, time_range: str = "now-24h", runs: int = 3, timeout_s: float = 60,
          browser: Any = None) -> dict[str, Any]:
    """Median seconds to first render of the overview and the flow visualizer (and each run's time)."""
    if browser is not None:
        return _measure(browser, url, token, time_range, runs, timeout_s)
    from ..rig.chromium import chromium_browser

    with chromium_browser() as b:
        return _measure(b, url, token, time_range, runs, timeout_s)


def _measure(browser: Any, url: str, token: str | None, time_range: str, runs: int, timeout_s: float) -> dict[str, Any]:
    out: dict[str, Any] = {"time_range": time_range, "runs": runs}
    init = "localStorage.setItem('margay.range', " + json.dumps(json.dumps({"from": time_range, "to": "now"})) + ");"
    for name, frag in PAGES.items():
        times = []
        for _ in range(runs):
            context = browser.new_context(viewport={"width": 1440, "height": 900})
            try:
                page = context.new_page()
                if token:
                    sign_in_page(page, url, token)
                page.add_init_script(init)
                page.goto(url.rstrip("/") + "/ui/" + frag, wait_until="commit")
                page.wait_for_function(f"() => window.__margayRendered && window.__margayRendered[{json.dumps(name)}]",
                                       timeout=timeout_s * 1000)
                ms = page.evaluate(f"window.__margayRendered[{json.dumps(name)}]")
                errors = page.evaluate("document.querySelectorAll('.error').length")
                if errors:
                    raise RuntimeError(f"{name}: the page rendered {errors} error panel(s)")
                times.append(round(ms / 1000, 3))
            finally:
                context.close()
        out[f"{name}_first_render_s"] = statistics.median(times)
        out[f"{name}_runs_s"] = times
    return out

