"""pytest fixtures for the rig's s3 peer: SeaweedFS `weed mini` with a SigV4-checking S3 gateway."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from margay.rig.s3 import S3Server


@pytest.fixture(scope="session")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """One S3 server for the session (`.endpoint`, `.access_key`, `.secret_key`, `.region`, `.client()`).

    Raises (the test errors, never skips) if the server cannot start.
    """
    server = S3Server()
    server.start(tmp_path_factory.mktemp("s3"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def s3_bucket(s3: S3Server) -> str:
    """A fresh, empty bucket on the session's S3 server."""
    return s3.new_bucket()
