"""pytest fixtures for the rig's rsyslog peer: a real rsyslogd with TCP, UDP and TLS inputs."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from margay.rig.rsyslog import RsyslogServer


@pytest.fixture(scope="session")
def rsyslog(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RsyslogServer]:
    """rsyslogd on free loopback ports; every received message lands verbatim in `.output_file`.

    Raises (the test errors, never skips) if rsyslogd cannot start.
    """
    server = RsyslogServer()
    server.start(tmp_path_factory.mktemp("rsyslog"))
    try:
        yield server
    finally:
        server.stop()
