"""The demo's detector: its resources load, its feeds are pulled over loopback, and its scenarios raise
events from margay's own detector (feeds and every demo template)."""

from __future__ import annotations

import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

from margay.app import create_app
from margay.clock import FakeClock
from margay.config import Settings
from margay.detect import demo
from margay.logtypes import REGISTRY
from margay.query.model import Query
from margay.testing.server import ServerThread

NOW = datetime(2026, 12, 5, 12, tzinfo=UTC)


def test_demo_detector_raises_events(tmp_path: Path):
    clock = FakeClock(NOW)
    with demo.feed_server() as feeds_url:
        resources = demo.write_resources(tmp_path / "res", feeds_url)
        settings = Settings(data_dir=tmp_path / "data", auth="none", detect_resources=resources,
                            feeds_allow_networks="127.0.0.0/8", detect_interval=3600)
        app = create_app(settings, clock=clock)
        with ServerThread(app) as server:
            detector = app.state.margay.detection.detector
            deadline = time.monotonic() + 30
            while any(s.last_executed is None for s in detector.alert_status.values()) and time.monotonic() < deadline:
                time.sleep(0.05)  # the service's first (empty) run happens at start-up on its own thread
            demo.send_scenarios(server.url, "cluster", int(NOW.timestamp()))
            clock.advance(timedelta(minutes=1))
            results = detector.tick()
            assert set(results.values()) == {"ok"}, results
            q = Query(REGISTRY["events"], ["cluster"], size=1000, now=clock.now())
            events = app.state.margay.backend.search(q).items
    origins = Counter(e["origin"] for e in events)
    assert origins == {"Suspicious Flow": 2, "Suspicious DNS Query": 1,
                       **{t.removeprefix("margay."): 1 for t in demo.DEMO_TEMPLATES}}, origins
    assert detector.feed_status["demo-bad-ips"].as_status()["entries"] == 2
