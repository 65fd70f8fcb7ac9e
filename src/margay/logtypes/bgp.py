"""BIRD / BIRD6 logs (spec §4): one record per BIRD line, noise dropped."""

from __future__ import annotations

from .base import Field, Kind, LogType, f

FIELDS: tuple[Field, ...] = (
    f("logtime", Kind.TIMESTAMP, "time of the BIRD line (UTC, seconds)", required=True),
    f("message", Kind.TEXT, "the BIRD message"),
    f("host", Kind.KEYWORD, "node"),
    f("ip_version", Kind.KEYWORD, "IPv4 (bird) or IPv6 (bird6)", allowed=("IPv4", "IPv6")),
)

LOGTYPE = LogType(
    name="bgp",
    rbac=("ee_bgp", "bgp"),
    index_prefix="tigera_secure_ee_bgp",
    time_field="logtime",
    fields=FIELDS,
    retention_days=8,
    retention_setting="bgpLogs",
    native_formats=("ndjson", "bird"),
    bulk_path="/bgp/logs/bulk",
    default_window_s=300,  # Linseed reads the last five minutes of BGP logs when no range is given
    query_path="/bgp/logs",
)

# Native BIRD lines as they appear in /var/log/calico/bird/current; the scan line is noise and is dropped.
SAMPLES: list[str] = [
    "2023-11-14T22:13:20.12345 bird: Mesh_10_0_0_12: State changed to up",
    "2023-11-14T22:13:21.00001 bird: device1: Scanning interfaces",
    "2023-11-14T22:13:25.54321 bird: Mesh_10_0_0_13: Received: Hold timer expired",
    "2023-11-14T22:13:25.54322 bird: Mesh_10_0_0_13: State changed to start",
]
