"""The detector in `make demo`: built-in templates switched on, two threat feeds served over loopback, and
scenario traffic that trips them, so the demo's events come from margay's own detector."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import orjson
import yaml

from ..logtypes import REGISTRY
from .scenarios import BAD_DOMAINS, BAD_IPS, SCENARIOS, threat_feed_hits
from .templates import alert_from_template

DEMO_TEMPLATES = ("margay.port-scan", "margay.dns-failure-flood", "margay.pod-exec", "margay.secret-read",
                  "margay.policy-change", "margay.denied-flow-spike", "margay.lateral-movement",
                  "margay.threat-set-traffic")


@contextmanager
def feed_server() -> Iterator[str]:
    """A loopback HTTP server with /ips.txt and /domains.txt; yields its base URL."""
    bodies = {"/ips.txt": BAD_IPS.encode(), "/domains.txt": BAD_DOMAINS.encode()}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            body = bodies.get(self.path)
            self.send_response(200 if body is not None else 404)
            self.send_header("Content-Length", str(len(body or b"")))
            self.end_headers()
            self.wfile.write(body or b"")

        def log_message(self, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, name="margay-demo-feeds", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def write_resources(folder: Path, feeds_url: str) -> Path:
    """GlobalAlerts from the demo templates and the two feeds, as one YAML file in `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    docs: list[dict[str, Any]] = [alert_from_template(t, t.removeprefix("margay."), period="1m")
                                  for t in DEMO_TEMPLATES]
    for name, content, path in (("demo-bad-ips", "IPSet", "/ips.txt"),
                                ("demo-bad-domains", "DomainNameSet", "/domains.txt")):
        docs.append({"apiVersion": "projectcalico.org/v3", "kind": "GlobalThreatFeed", "metadata": {"name": name},
                     "spec": {"content": content, "description": "margay demo feed (documentation ranges)",
                              "pull": {"period": "5m", "http": {"url": feeds_url + path}}}})
    target = folder / "demo-detection.yaml"
    target.write_text(yaml.safe_dump_all(docs, sort_keys=False))
    return folder


def send_scenarios(url: str, cluster: str, t: int) -> int:
    """Post every scenario's records (and the threat-feed hits) to a running server; returns records sent."""
    sent = 0
    batches = [s(t) for s in SCENARIOS.values()] + [threat_feed_hits(t)]
    with httpx.Client(base_url=url, timeout=60) as client:
        for batch in batches:
            for lt, records in batch.items():
                r = client.post("/api/v1" + (REGISTRY[lt].bulk_path or ""), headers={
                    "x-cluster-id": cluster, "content-type": "application/x-ndjson"},
                    content=b"\n".join(orjson.dumps(x) for x in records))
                r.raise_for_status()
                sent += len(records)
    return sent
