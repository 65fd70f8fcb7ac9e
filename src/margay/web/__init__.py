"""The web UI: pages that are clients of the public JSON API."""

from __future__ import annotations

from typing import Any


def bench(url: str, token: str | None, **options: Any) -> dict[str, Any]:
    """Time to first render of the overview and the flow visualizer, in Chromium (see web/bench.py)."""
    from .bench import bench as run

    return run(url, token, **options)


__all__ = ["bench"]
