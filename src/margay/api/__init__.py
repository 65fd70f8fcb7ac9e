"""HTTP API: Linseed-shaped native endpoints, operator endpoints, and (later) the ES-compatible API."""
