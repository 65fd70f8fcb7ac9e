"""Forwarding and archiving (spec §11): LogCollector `additionalStores` S3, syslog and Splunk HEC.

Each store follows the store by `_seq` with its own durable cursor, in its own thread, and delivers at
least once; `archive` brings S3 archives back. See docs/forwarding.md.
"""

from __future__ import annotations

from .config import StoreConfig, from_documents, from_file
from .forwarder import DeliveryError, Forwarder
from .service import Forwarding

__all__ = ["DeliveryError", "Forwarder", "Forwarding", "StoreConfig", "from_documents", "from_file"]
