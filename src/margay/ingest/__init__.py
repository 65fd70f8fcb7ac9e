"""Ingest: native formats in, Arrow batches of good records out, a report for every bad line."""
