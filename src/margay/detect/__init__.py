"""Intrusion detection beside the store: threat feeds, incremental matching, GlobalAlerts and their scheduler."""
