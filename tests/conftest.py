"""Test configuration: the rig's real peers are session fixtures from tests/rig/fixture_*.py."""

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

pytest_plugins = [
    "margay.testing.fixtures",
    "rig.fixture_opensearch",
    "rig.fixture_rsyslog",
    "rig.fixture_s3",
    "rig.fixture_hec",
    "rig.fixture_chromium",
    "rig.fixture_kube",
]



ENGINES = ["duckdb", "opensearch"]


def _engine(request: pytest.FixtureRequest, name: str) -> Iterator[dict[str, Any]]:
    if name == "duckdb":
        yield {"backend": "duckdb"}
        return
    url = request.getfixturevalue("opensearch")
    prefix = f"e{uuid.uuid4().hex[:8]}-"
    yield {"backend": "opensearch", "opensearch_url": url, "opensearch_prefix": prefix}
    drop_prefix(url, prefix)


def drop_prefix(url: str, prefix: str) -> None:
    """Remove every index and index template under a test's prefix: two cluster-state updates (a template
    wildcard is one update, where deleting margay's ~20 templates one by one took ~20, seconds per test)."""
    httpx.delete(f"{url}/{prefix}*", params={"expand_wildcards": "all"})
    httpx.delete(f"{url}/_index_template/{prefix}*")  # 404 when the test never wrote (no templates)


@pytest.fixture(params=ENGINES)
def engine(request: pytest.FixtureRequest) -> Iterator[dict[str, Any]]:
    """Settings that choose the storage engine: the embedded store, or the rig's real OpenSearch node under
    a fresh index prefix (removed afterwards). Product tests take it so that each runs on both engines."""
    yield from _engine(request, request.param)


@pytest.fixture(scope="module", params=ENGINES)
def module_engine(request: pytest.FixtureRequest) -> Iterator[dict[str, Any]]:
    """`engine` for module-scoped fixtures (data loaded once per engine)."""
    yield from _engine(request, request.param)


def engine_args(settings: dict[str, Any]) -> list[str]:
    """The same choice as `margay serve` flags."""
    out = ["--backend", settings["backend"]]
    if settings["backend"] == "opensearch":
        out += ["--opensearch-url", settings["opensearch_url"], "--opensearch-prefix", settings["opensearch_prefix"]]
    return out
