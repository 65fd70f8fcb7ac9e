"""A real Splunk HTTP Event Collector (HEC) receiver: the OpenTelemetry Collector's splunk_hec receiver.

The binary is built by scripts/rig/hec.sh (OpenTelemetry Collector Builder, manifest
scripts/rig/hec/builder-config.yaml) into <rig>/hec/otelcol-hec. It holds three components:

- receiver `splunk_hec` on 127.0.0.1:<free port>, plain HTTP, the Splunk paths
  (/services/collector, /services/collector/event, /services/collector/raw, /services/collector/health);
- extension `bearertokenauth` with scheme "Splunk": the receiver itself accepts any token, so this
  checks `Authorization: Splunk <token>` and answers 401 to a missing or wrong one;
- exporter `file`, format json: one OTLP-JSON `{"resourceLogs": [...]}` object per line, flushed every 100 ms.

`read_events()` maps that back to HEC's terms. The receiver puts HEC metadata on the resource as
`host.name`, `com.splunk.source`, `com.splunk.sourcetype` and `com.splunk.index` (checked by experiment
with receiver v0.157.0), the event in the log body, `time` in timeUnixNano and `fields` in the log
record's attributes. It groups a request's events by (host, source, sourcetype, index), so across
groups the output order is not the posting order.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import time
import uuid
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx
import yaml

from margay.rig.process import (
    REPO_ROOT,
    RIG_DIR,
    PeerError,
    free_port,
    spawn,
    stop_process,
    wait_until,
)

HEC_BINARY = RIG_DIR / "hec" / "otelcol-hec"
HEC_SCRIPT = REPO_ROOT / "scripts" / "rig" / "hec.sh"
HOST_ATTR = "host.name"
SOURCE_ATTR = "com.splunk.source"
SOURCETYPE_ATTR = "com.splunk.sourcetype"
INDEX_ATTR = "com.splunk.index"


def _any_value(v: dict[str, Any]) -> Any:
    """An OTLP-JSON AnyValue as the Python value it stands for."""
    if "stringValue" in v:
        return v["stringValue"]
    if "boolValue" in v:
        return v["boolValue"]
    if "intValue" in v:
        return int(v["intValue"])  # OTLP-JSON writes 64-bit integers as strings
    if "doubleValue" in v:
        return float(v["doubleValue"])  # the receiver turns every JSON number into a double
    if "kvlistValue" in v:
        return {kv["key"]: _any_value(kv.get("value", {})) for kv in v["kvlistValue"].get("values", [])}
    if "arrayValue" in v:
        return [_any_value(x) for x in v["arrayValue"].get("values", [])]
    if "bytesValue" in v:
        return base64.b64decode(v["bytesValue"])
    return None


def _attributes(items: list[dict[str, Any]] | None) -> dict[str, Any]:
    return {kv["key"]: _any_value(kv.get("value", {})) for kv in items or []}


def parse_otlp_json_logs(text: str) -> list[dict[str, Any]]:
    """HEC events from the file exporter's output (one OTLP-JSON logs object per line).

    A last line without its newline is still being written and is left for the next read.
    """
    events: list[dict[str, Any]] = []
    lines = text.split("\n")
    for line in lines[:-1]:  # the part after the last newline is incomplete (or empty)
        if not line.strip():
            continue
        doc = json.loads(line)
        for rl in doc.get("resourceLogs", []):
            res = _attributes(rl.get("resource", {}).get("attributes"))
            for sl in rl.get("scopeLogs", []):
                for rec in sl.get("logRecords", []):
                    ns = int(rec.get("timeUnixNano", 0) or 0)
                    events.append({
                        "event": _any_value(rec.get("body", {})),
                        "time": ns / 1e9 if ns else None,
                        "host": res.get(HOST_ATTR),
                        "source": res.get(SOURCE_ATTR),
                        "sourcetype": res.get(SOURCETYPE_ATTR),
                        "index": res.get(INDEX_ATTR),
                        "fields": _attributes(rec.get("attributes")),
                        "resource": res,
                    })
    return events


class HecReceiver:
    """A Splunk HEC endpoint on loopback that writes what it accepts to a file; see the module doc."""

    def __init__(self, binary: Path | None = None, *, token: str | None = None,
                 startup_timeout: float = 30.0, build_timeout: float = 120.0) -> None:
        self.binary = Path(binary) if binary else HEC_BINARY
        self.build_timeout = build_timeout
        self.token = token or str(uuid.uuid4())  # Splunk's HEC tokens are GUIDs
        self.startup_timeout = startup_timeout
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 0
        self.workdir: Path | None = None
        self.startup_seconds: float | None = None

    # -- addresses -----------------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        """The HEC endpoint for JSON events (Splunk's /services/collector)."""
        return f"{self.base_url}/services/collector"

    @property
    def raw_url(self) -> str:
        return f"{self.base_url}/services/collector/raw"

    @property
    def health_url(self) -> str:
        return f"{self.base_url}/services/collector/health"

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Splunk {self.token}"}

    @property
    def output_path(self) -> Path:
        assert self.workdir is not None, "start() first"
        return self.workdir / "events.jsonl"

    @property
    def log_path(self) -> Path:
        assert self.workdir is not None, "start() first"
        return self.workdir / "otelcol-hec.log"

    @property
    def config_path(self) -> Path:
        assert self.workdir is not None, "start() first"
        return self.workdir / "otelcol-hec.yaml"

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    # -- life cycle ----------------------------------------------------------------------------
    def _config(self) -> dict[str, Any]:
        return {
            "extensions": {"bearertokenauth/hec": {"scheme": "Splunk", "token": self.token}},
            "receivers": {"splunk_hec": {
                "endpoint": f"127.0.0.1:{self.port}",
                "auth": {"authenticator": "bearertokenauth/hec"},
            }},
            "exporters": {"file": {
                "path": str(self.output_path),
                "format": "json",
                "flush_interval": "100ms",
            }},
            "service": {
                "extensions": ["bearertokenauth/hec"],
                # No internal-metrics server: the only port opened is the HEC one.
                "telemetry": {"metrics": {"level": "none"}, "logs": {"level": "info"}},
                "pipelines": {"logs": {"receivers": ["splunk_hec"], "exporters": ["file"]}},
            },
        }

    def _ensure_built(self) -> None:
        """Run scripts/rig/hec.sh: a no-op (~0.1 s) when the binary matches the manifest, a short rebuild
        when only the manifest changed. A cold build takes minutes: that belongs to `make rig`, so it is
        cut off after `build_timeout` seconds rather than eating a test's time."""
        proc = subprocess.Popen(["bash", str(HEC_SCRIPT)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, start_new_session=True)
        try:
            out, err = proc.communicate(timeout=self.build_timeout)
        except subprocess.TimeoutExpired as e:
            os.killpg(proc.pid, signal.SIGKILL)  # the script and the go build it started
            proc.communicate()
            raise PeerError(f"scripts/rig/hec.sh took over {self.build_timeout:.0f}s (cold Go cache?): "
                            "run it (or make rig) before the tests") from e
        if proc.returncode != 0:
            raise PeerError(f"scripts/rig/hec.sh failed ({proc.returncode}):\n{out[-2000:]}{err[-4000:]}")

    def _healthy(self) -> bool:
        r = httpx.get(self.health_url, headers=self.headers, timeout=2.0)
        return r.status_code == 200

    def start(self, workdir: Path) -> HecReceiver:
        if self.proc is not None:
            raise PeerError("HEC receiver already started")
        if self.binary == HEC_BINARY:
            self._ensure_built()
        if not self.binary.is_file():
            raise PeerError(f"HEC receiver binary {self.binary} is missing: run scripts/rig/hec.sh (or make rig)")
        self.workdir = Path(workdir).resolve()  # the collector runs with this as its cwd: no relative paths
        self.workdir.mkdir(parents=True, exist_ok=True)
        last: PeerError | None = None
        for _attempt in range(3):  # a free port can be taken between free_port() and the bind
            self.port = free_port()
            self.output_path.unlink(missing_ok=True)
            self.config_path.write_text(yaml.safe_dump(self._config(), sort_keys=False))
            t0 = time.monotonic()
            proc = spawn([str(self.binary), "--config", str(self.config_path)], log=self.log_path,
                         cwd=self.workdir)
            try:
                wait_until(self._healthy, timeout=self.startup_timeout, proc=proc,
                           what=f"HEC receiver (otelcol-hec on port {self.port})", log=self.log_path,
                           interval=0.05)
            except PeerError as e:
                stop_process(proc, timeout=5)
                last = e
                if "address already in use" in self.log_path.read_text(errors="replace")[-4000:]:
                    continue
                raise
            self.startup_seconds = time.monotonic() - t0
            self.proc = proc
            return self
        raise PeerError(f"HEC receiver could not bind a port after 3 tries: {last}")

    def stop(self) -> None:
        """Stop the collector by its PID (SIGTERM, it flushes the file; SIGKILL after 30 s)."""
        if self.proc is not None:
            stop_process(self.proc)
            self.proc = None

    def __enter__(self) -> HecReceiver:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    # -- output --------------------------------------------------------------------------------
    def read_events(self) -> list[dict[str, Any]]:
        """Every event written so far: dicts with event, time (epoch seconds or None), host, source,
        sourcetype, index, fields (the HEC `fields`), resource (all resource attributes)."""
        try:
            text = self.output_path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return []
        return parse_otlp_json_logs(text)

    def wait_for_events(self, predicate: Any = None, *, count: int = 1,
                        timeout: float = 10.0) -> list[dict[str, Any]]:
        """Poll read_events() until at least `count` events match `predicate` (all events if None);
        returns the matching ones, or raises TimeoutError with what was seen."""
        deadline = time.monotonic() + timeout
        while True:
            events = [e for e in self.read_events() if predicate is None or predicate(e)]
            if len(events) >= count:
                return events
            if time.monotonic() >= deadline:
                raise TimeoutError(f"{len(events)} of {count} HEC events after {timeout:.0f}s in {self.output_path}")
            time.sleep(0.05)
