"""The embedded engine: DuckDB over Parquet partitions (see docs/architecture.md, "Storage").

- `engine`: the Backend itself — write path, commit journal, snapshots of the file lists, search.
- `reads`: aggregations, L3 flows, filter hints and event ids, compiled to SQL over a query's files.
- `graph`: the flow visualizer's graph in one statement.
"""

from .engine import DuckDBBackend, connect

__all__ = ["DuckDBBackend", "connect"]
