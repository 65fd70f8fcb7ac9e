"""Test helpers that ship with margay: a running server, a fake clock, real peers for tests."""
