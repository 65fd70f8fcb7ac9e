"""The scale-out engine: the Backend protocol on OpenSearch or Elasticsearch (see engine.py)."""

from .client import index_cluster
from .engine import OpenSearchBackend

__all__ = ["OpenSearchBackend", "index_cluster"]
