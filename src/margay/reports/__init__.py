"""Compliance reports (spec §12): snapshots, state replay, policy evaluation and the report types."""
