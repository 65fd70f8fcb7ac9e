"""A small HTTP client of margay's API, used by the CLI, the simulator and tests."""

from __future__ import annotations

import gzip
import ssl
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

import httpx

from .logtypes import REGISTRY

QUERY_PATHS = {"flows": "/flows/logs", "dns": "/dns/logs", "audit": "/audit/logs", "audit_ee": "/audit/logs",
               "audit_kube": "/audit/logs", "bgp": "/bgp/logs", "events": "/events", "l7": "/l7/logs",
               "waf": "/waf/logs", "policy_activity": "/policy_activity/logs", "runtime": "/runtime/reports"}


class ClientError(RuntimeError):
    def __init__(self, status: int, body: Any) -> None:
        msg = body.get("error", {}).get("message") if isinstance(body, dict) and "error" in body else body
        super().__init__(f"HTTP {status}: {msg}")
        self.status = status
        self.body = body


class BadServerURL(ValueError):
    """A --server value that is not an http(s) URL; the message says what to type instead."""


def server_url(value: str) -> str:
    """`value` as a base URL, or BadServerURL naming the fix (`127.0.0.1:8080` -> use http://127.0.0.1:8080)."""
    text = value.strip()
    if "://" not in text:
        raise BadServerURL(f"--server {value!r} has no scheme: use --server http://{text.lstrip('/')}")
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 - raises ValueError on a port that is not a number
    except ValueError as exc:
        raise BadServerURL(f"--server {value!r} is not a valid URL ({exc}): use e.g. http://127.0.0.1:8080") from None
    if parts.scheme not in ("http", "https"):
        raise BadServerURL(f"--server {value!r}: the scheme must be http or https, e.g. http://127.0.0.1:8080")
    if not parts.hostname or " " in text:
        raise BadServerURL(f"--server {value!r} names no host: use e.g. http://127.0.0.1:8080")
    return text.rstrip("/")


class Client:
    def __init__(self, url: str, token: str | None = None, *, timeout: float = 120.0,
                 verify: ssl.SSLContext | bool = True) -> None:
        # verify: True (system CAs), an SSLContext (e.g. trusting a private CA), or False
        headers = {"authorization": f"Bearer {token}"} if token else {}
        self.http = httpx.Client(base_url=server_url(url), headers=headers, timeout=timeout, verify=verify)

    def __enter__(self) -> Client:
        return self

    def __exit__(self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        self.http.close()

    def _json(self, r: httpx.Response, ok: tuple[int, ...] = (200,)) -> Any:
        try:
            body = r.json()
        except ValueError:
            body = r.text
        if r.status_code not in ok:
            raise ClientError(r.status_code, body)
        return body

    def bulk(self, log_type: str, body: bytes, *, cluster: str = "cluster", key: str | None = None,
             compress: bool = True, content_type: str = "application/x-ndjson",
             params: dict[str, str] | None = None, retries: int = 8) -> dict[str, Any]:
        """POST one batch; retried on connection errors and 5xx with the same idempotency key."""
        headers = {"content-type": content_type, "x-cluster-id": cluster}
        if key:
            headers["idempotency-key"] = key
        data = body
        if compress:
            data = gzip.compress(body, compresslevel=1)
            headers["content-encoding"] = "gzip"
        path = "/api/v1" + REGISTRY[log_type].bulk_path
        delay = 0.2
        for attempt in range(retries + 1):
            try:
                r = self.http.post(path, content=data, headers=headers, params=params)
            except httpx.TransportError:
                if attempt == retries:
                    raise
            else:
                if r.status_code < 500 or attempt == retries:
                    return dict(self._json(r, ok=(200, 400)))
            time.sleep(delay)
            delay = min(delay * 2, 5.0)
        raise AssertionError("unreachable")

    def search(self, log_type: str, body: dict[str, Any], clusters: list[str] | None) -> dict[str, Any]:
        """One page of records; clusters None reads every cluster the caller may read (all_clusters)."""
        if log_type not in QUERY_PATHS:
            raise ValueError(f"unknown log type {log_type!r}; use one of: {', '.join(QUERY_PATHS)}")
        body = dict(body)
        if log_type in ("audit_ee", "audit_kube"):
            body["type"] = log_type.split("_", 1)[1]
        if clusters is None:
            headers = {"x-cluster-id": "_MULTI_"}
            body["all_clusters"] = True
        elif len(clusters) > 1:
            headers = {"x-cluster-id": "_MULTI_"}
            body["clusters"] = clusters
        else:
            headers = {"x-cluster-id": clusters[0]}
        return dict(self._json(self.http.post("/api/v1" + QUERY_PATHS[log_type], json=body, headers=headers)))

    def post(self, path: str, body: dict[str, Any], *, cluster: str = "cluster") -> Any:
        return self._json(self.http.post(path, json=body, headers={"x-cluster-id": cluster}))

    def get(self, path: str) -> Any:
        return self._json(self.http.get(path))


@contextmanager
def local_client(data_dir: Path) -> Iterator[Client]:
    """A client of a server started in this process on a data directory (for offline CLI use)."""
    from .app import create_app
    from .config import Settings
    from .serving import ServerThread

    with ServerThread(create_app(Settings(data_dir=data_dir))) as server, Client(server.url) as client:
        yield client
