"""pytest fixtures for the rig's opensearch peer: a real OpenSearch 2.19 node from Maven Central jars."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from margay.rig.opensearch import OpenSearchNode


@pytest.fixture(scope="session")
def opensearch_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OpenSearchNode]:
    """The session's OpenSearch node (`.url`, `.version`, `.log_file`, `.startup_seconds`).

    Raises (the tests error, never skip) if the node cannot start; the error names the node's log.
    """
    node = OpenSearchNode()
    node.start(tmp_path_factory.mktemp("opensearch"))
    try:
        yield node
    finally:
        node.stop()


@pytest.fixture(scope="session")
def opensearch(opensearch_node: OpenSearchNode) -> str:
    """Base URL of the session's OpenSearch node, e.g. "http://127.0.0.1:23456" (no trailing slash)."""
    return opensearch_node.url
