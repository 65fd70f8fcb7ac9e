"""Pushed threat-feed content (Linseed's /threatfeeds/ipset and /threatfeeds/domainnameset): one document per
push, `{"id": <GlobalThreatFeed name>, "data": {"created_at", "ips" | "domains"}}` on the wire. The newest
document of an id is the feed's content; Linseed's bulk DELETE writes a `deleted` tombstone (the store is
append-only), so a later push of the same id brings the feed back."""

from __future__ import annotations

from .base import Field, Kind, LogType, f

K = Kind.KEYWORD


def _fields(values: str, what: str) -> tuple[Field, ...]:
    return (
        f("id", K, "the GlobalThreatFeed's name", required=True),
        f("created_at", Kind.TIMESTAMP, "when the content was pushed (the time field)", required=True),
        f(values, Kind.KEYWORD_LIST, what),
        f("deleted", Kind.BOOL, "margay: a tombstone written by the bulk DELETE"),
    )


IPSET = LogType(
    name="threatfeeds_ipset",
    rbac=("threatfeeds_ipset", "threatfeeds"),
    index_prefix="tigera_secure_ee_threatfeeds_ipset",
    time_field="created_at",
    fields=_fields("ips", "IP addresses and CIDRs"),
    retention_days=3650,
    retention_setting=None,
    bulk_path="/threatfeeds/ipset/bulk",
    query_path="/threatfeeds/ipset",
    envelope="data",
)

DOMAINNAMESET = LogType(
    name="threatfeeds_domainnameset",
    rbac=("threatfeeds_domainnameset", "threatfeeds"),
    index_prefix="tigera_secure_ee_threatfeeds_domainnameset",
    time_field="created_at",
    fields=_fields("domains", "domain names (`*.example.com` for every name below)"),
    retention_days=3650,
    retention_setting=None,
    bulk_path="/threatfeeds/domainnameset/bulk",
    query_path="/threatfeeds/domainnameset",
    envelope="data",
)

SAMPLES_IPSET: list[str] = [
    '{"id":"feodo","created_at":"2023-11-14T22:13:20Z","ips":["185.220.101.4","198.51.100.0/24"]}',
]
SAMPLES_DOMAINNAMESET: list[str] = [
    '{"id":"phishing","created_at":"2023-11-14T22:13:20Z","domains":["evil.example","*.bad.example"]}',
]
