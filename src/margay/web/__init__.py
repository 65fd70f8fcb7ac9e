"""The web UI: pages that are clients of the public JSON API."""
