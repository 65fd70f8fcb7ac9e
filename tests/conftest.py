"""Test configuration: the rig's real peers are session fixtures from tests/rig/fixture_*.py."""

pytest_plugins = [
    "margay.testing.fixtures",
    "rig.fixture_opensearch",
    "rig.fixture_rsyslog",
    "rig.fixture_s3",
    "rig.fixture_hec",
    "rig.fixture_chromium",
    "rig.fixture_kube",
]
