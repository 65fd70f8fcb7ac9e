"""`margay forward status` without a running server: each store's cursor and lag, read from the data dir.

Only reads: the cursor files here, and the records through the store the caller opens on the same data dir (the
CLI opens the embedded engine's files, `store/duckdb/offline.py`: never the journal), so it is safe beside a
server.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from .config import StoreConfig
from .cursor import Cursor

if TYPE_CHECKING:
    from ..logtypes import LogType
    from ..query.selector import Node


class Backlogs(Protocol):
    """What the look needs of a store: `Backend.backlog`, which a read-only view of a data dir answers too."""

    def backlog(self, lt: LogType, after_seq: int, *, where: Node | None = None) -> tuple[int, float | None]: ...


def offline_status(data_dir: Path, configs: list[StoreConfig], store: Backlogs) -> list[dict[str, Any]]:
    """Each store's types, cursor and lag; `store` holds `data_dir`'s records (the caller opens and closes it)."""
    out = []
    for cfg in configs:
        cursor = Cursor.for_store(data_dir, cfg.name)
        lag, oldest = 0, None
        for lt in cfg.types:
            n, t = store.backlog(lt, cursor.get(lt.name) or 0, where=cfg.where(lt))
            lag += n
            if t is not None:
                oldest = t if oldest is None else min(oldest, t)
        out.append({"store": cfg.name, "types": [lt.name for lt in cfg.types], "cursor": dict(cursor.positions),
                    "lag_records": lag, "lag_seconds": round(max(0.0, time.time() - oldest), 3) if oldest else 0.0})
    return out


def scrape(metrics_text: str, store: str) -> dict[str, float]:
    """A running server's delivered/retried/failed/truncated counts for one store, from /-/metrics."""
    names = {"margay_forward_delivered_records_total": "delivered", "margay_forward_retries_total": "retried",
             "margay_forward_failed_records_total": "failed", "margay_forward_truncated_total": "truncated"}
    out = dict.fromkeys(names.values(), 0.0)
    for line in metrics_text.splitlines():
        name, _, rest = line.partition("{")
        if name in names and f'store="{store}"' in rest:
            out[names[name]] += float(line.rsplit(" ", 1)[1])
    return out
