"""Storage: one Backend protocol, an embedded DuckDB engine (default) and OpenSearch for scale-out."""
