"""A real OpenSearch 2.19 single node as a test peer, built from Maven Central jars (no tarball).

`scripts/rig/opensearch.sh` builds the launcher in `tests/rig/opensearch` (a `Node` subclass plus the
netty4, analysis-common, painless and mapper-extras modules) and caches its java classpath in
`$RIG_DIR/opensearch/classpath.txt`. `OpenSearchNode.start(data_dir)` runs that script (a no-op while the
sources are unchanged), spawns `java` in its own process group with the node's home, data and log file
(`opensearch.log`) under `data_dir`, and waits for `_cluster/health?wait_for_status=yellow`.

Plain HTTP on 127.0.0.1, no security plugin, no authentication. Standard library only.

    python -m margay.rig.opensearch [--data-dir DIR] [--port PORT]

starts a node, prints its URL and waits until Ctrl-C or SIGTERM (for manual use and benchmarks).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import Any

from margay.rig.process import REPO_ROOT, RIG_DIR, PeerError, spawn, stop_process, wait_until

BUILD_SCRIPT = REPO_ROOT / "scripts" / "rig" / "opensearch.sh"
CLASSPATH_FILE = RIG_DIR / "opensearch" / "classpath.txt"
MAIN_CLASS = "margay.rig.opensearch.LocalNode"
LOG_NAME = "opensearch.log"

JVM_FLAGS = [
    "-Xms512m", "-Xmx1g",
    # what the 2.x distribution's launcher passes on JDK 9+ (some date patterns parse differently without it)
    "-Djava.locale.providers=SPI,COMPAT",
    "-Dfile.encoding=UTF-8", "-Djava.awt.headless=true", "-Djna.nosys=true",
    "-XX:-OmitStackTraceInFastThrow", "-Dlog4j2.disable.jmx=true",
    "-Dio.netty.noUnsafe=true", "-Dio.netty.noKeySetOptimization=true",
    "-Dio.netty.recycler.maxCapacityPerThread=0", "-Dio.netty.allocator.numDirectArenas=0",
]
# The node binds its transport port too; a range lets several nodes (tests, benchmarks) coexist.
TRANSPORT_PORTS = "9300-9399"
# The HTTP port is drawn from 10000-11999: below the kernel's ephemeral range (32768+), so that no outgoing
# connection takes it during the seconds before the JVM binds it, and outside the S3 peer's 12000-31999.
_HTTP_PORT_RANGE = (10000, 12000)


def _pick_http_port() -> int:
    rng = random.SystemRandom()
    for _ in range(200):
        port = rng.randrange(*_HTTP_PORT_RANGE)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise PeerError("no free port for OpenSearch HTTP found")


def java_binary() -> str:
    """`$MARGAY_OPENSEARCH_JAVA`, else `java` on PATH (OpenSearch 2.19 wants Java 17 or 21)."""
    java = os.environ.get("MARGAY_OPENSEARCH_JAVA") or shutil.which("java")
    if not java:
        raise PeerError("java not found: install a JDK 17 (make rig) or set MARGAY_OPENSEARCH_JAVA")
    return java


def build() -> str:
    """Run the idempotent build script (skips Maven while sources are unchanged); return the classpath."""
    if BUILD_SCRIPT.exists():
        result = subprocess.run(["bash", str(BUILD_SCRIPT)], capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise PeerError(f"{BUILD_SCRIPT} failed with code {result.returncode}:\n"
                            f"{result.stdout}{result.stderr}")
    if not CLASSPATH_FILE.exists():
        raise PeerError(f"{CLASSPATH_FILE} missing: run `make rig` (scripts/rig/opensearch.sh)")
    return CLASSPATH_FILE.read_text().strip()


def _get_json(url: str, timeout: float = 5.0) -> Any:
    with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 - loopback http only
        return json.load(resp)


class OpenSearchNode:
    """One OpenSearch 2.19 node on a free 127.0.0.1 port.

    Use as a context manager (`with OpenSearchNode() as node:`) or call `start(data_dir)` / `stop()`.
    Without a data_dir, a fresh one under `$RIG_DIR/opensearch/` is made and removed again by `stop()`.
    """

    def __init__(self, data_dir: Path | None = None, *, port: int | None = None,
                 startup_timeout: float = 120.0, stop_timeout: float = 30.0) -> None:
        self.data_dir = data_dir
        self.requested_port = port
        self.startup_timeout = startup_timeout
        self.stop_timeout = stop_timeout
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 0
        self.version = ""
        self.startup_seconds = 0.0
        self._owns_dir = False

    @property
    def url(self) -> str:
        """Base URL without a trailing slash, e.g. http://127.0.0.1:23456."""
        if not self.port:
            raise PeerError("OpenSearchNode not started")
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_file(self) -> Path:
        if self.data_dir is None:
            raise PeerError("OpenSearchNode has no data directory yet: call start()")
        return self.data_dir / LOG_NAME

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self, data_dir: Path | None = None) -> OpenSearchNode:
        if self.proc is not None:
            raise PeerError("OpenSearchNode already started")
        classpath = build()
        java = java_binary()
        if data_dir is not None:
            self.data_dir = data_dir
        if self.data_dir is None:
            (RIG_DIR / "opensearch").mkdir(parents=True, exist_ok=True)
            self.data_dir = Path(tempfile.mkdtemp(prefix="run-", dir=RIG_DIR / "opensearch"))
            self._owns_dir = True
        self.data_dir = Path(self.data_dir).resolve()
        home = self.data_dir / "home"
        tmp = self.data_dir / "tmp"
        tmp.mkdir(parents=True, exist_ok=True)

        t0 = time.monotonic()
        attempts = 1 if self.requested_port else 3
        for attempt in range(1, attempts + 1):
            self.port = self.requested_port or _pick_http_port()
            args = [java, *JVM_FLAGS, f"-Djava.io.tmpdir={tmp}", "-cp", classpath, MAIN_CLASS,
                    str(home), str(self.port), TRANSPORT_PORTS]
            self.proc = spawn(args, log=self.log_file, cwd=self.data_dir)
            try:
                wait_until(self._healthy, timeout=self.startup_timeout, proc=self.proc,
                           what=f"OpenSearch (pid {self.proc.pid}, port {self.port})", log=self.log_file,
                           interval=0.25)
                self.version = str(_get_json(self.url)["version"]["number"])
                break
            except BaseException as exc:
                self.stop(remove=False)
                if (attempt < attempts and isinstance(exc, PeerError)
                        and "BindHttpException" in self.log_file.read_text(errors="replace")):
                    continue  # someone took the port between the check and the bind: try another
                if isinstance(exc, PeerError):
                    raise PeerError(f"{exc}\n--- last lines of {self.log_file} ---\n{self.log_tail()}") from exc
                raise
        self.startup_seconds = time.monotonic() - t0
        return self

    def _healthy(self) -> bool:
        health = _get_json(f"{self.url}/_cluster/health?wait_for_status=yellow&timeout=1s")
        return health.get("status") in ("yellow", "green") and not health.get("timed_out", False)

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self, *, remove: bool = True) -> None:
        """SIGTERM the node's process group (SIGKILL after stop_timeout); remove a data dir it made."""
        if self.proc is not None:
            stop_process(self.proc, timeout=self.stop_timeout)
            self.proc = None
        if remove and self._owns_dir and self.data_dir is not None:
            shutil.rmtree(self.data_dir, ignore_errors=True)
            self._owns_dir = False

    def __enter__(self) -> OpenSearchNode:
        return self.start() if self.proc is None else self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m margay.rig.opensearch",
                                     description="Start a real OpenSearch 2.19 node, print its URL, wait.")
    parser.add_argument("--data-dir", type=Path, help="node home, data and log (default: a fresh "
                        "directory under .rig/opensearch/, removed on exit)")
    parser.add_argument("--port", type=int, help="HTTP port (default: a free one)")
    opts = parser.parse_args(argv)

    def on_term(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    node = OpenSearchNode(opts.data_dir, port=opts.port)
    try:
        with node:
            print(node.url, flush=True)
            print(f"OpenSearch {node.version} ready in {node.startup_seconds:.1f}s, pid {node.pid}, "
                  f"log {node.log_file}; Ctrl-C stops it", file=sys.stderr, flush=True)
            while node.proc is not None and node.proc.poll() is None:
                time.sleep(1)
            node._owns_dir = False  # keep the log
            print(f"OpenSearch exited on its own; see {node.log_file}", file=sys.stderr)
            return 1
    except KeyboardInterrupt:
        return 0
    except PeerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
