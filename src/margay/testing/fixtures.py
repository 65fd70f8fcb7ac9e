"""pytest fixtures that ship with margay: a real server on port 0 over a fresh data directory."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ..app import create_app
from ..client import Client
from ..clock import FakeClock
from ..config import Settings
from .server import ServerThread


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def server(data_dir: Path) -> Iterator[ServerThread]:
    """margay serve in a thread on 127.0.0.1:<free port>, real HTTP, embedded store."""
    with ServerThread(create_app(Settings(data_dir=data_dir))) as s:
        yield s


@pytest.fixture
def client(server: ServerThread) -> Iterator[Client]:
    with Client(server.url) as c:
        yield c


@pytest.fixture
def fake_clock() -> FakeClock:
    return FakeClock()
