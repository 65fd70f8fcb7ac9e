"""Forwarding and archiving (spec §11): LogCollector `additionalStores` S3, syslog and Splunk HEC.

Each store follows the store by `_seq` with its own durable cursor, in its own thread, and delivers at
least once; `archive` brings S3 archives back. See docs/forwarding.md.
"""

from __future__ import annotations

from typing import Any

from .config import StoreConfig, from_documents, from_file
from .forwarder import DeliveryError, Forwarder
from .service import Forwarding


def bench(*args: Any, **kwargs: Any) -> dict[str, Any]:
    """Delivery throughput per store (records/s), measured against real peers: see forward.throughput."""
    from .throughput import bench as run

    return run(*args, **kwargs)


__all__ = ["DeliveryError", "Forwarder", "Forwarding", "StoreConfig", "bench", "from_documents", "from_file"]
