"""pytest fixtures for the rig's hec peer: a real Splunk HEC receiver (OpenTelemetry Collector splunk_hec).

The binary comes from scripts/rig/hec.sh (make rig). If it is missing or does not start, the fixture
raises: tests that need HEC fail loudly, they are never skipped.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from margay.rig.hec import HecReceiver


@pytest.fixture(scope="session")
def hec(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HecReceiver]:
    receiver = HecReceiver()
    receiver.start(tmp_path_factory.mktemp("hec"))
    try:
        yield receiver
    finally:
        receiver.stop()
