"""A real VictoriaLogs server (the bench's log-store peer), built by scripts/rig/victorialogs.sh.

Started on 127.0.0.1:<free port> with its data in a folder of the caller's; fed through `/insert/jsonline`
with stream fields, asked through `/select/logsql/query` (LogsQL). `flush()` makes what was inserted
searchable (`/internal/force_flush`; in-memory parts reach the disk within `-inmemoryDataFlushInterval`, set
to its 1 s minimum here), `merge()` compacts it (`/internal/force_merge`).
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from types import TracebackType

import httpx

from .process import REPO_ROOT, RIG_DIR, PeerError, free_port, spawn, stop_process, wait_until

VL_BINARY = RIG_DIR / "victorialogs" / "victoria-logs"
VL_SCRIPT = REPO_ROOT / "scripts" / "rig" / "victorialogs.sh"


class VictoriaLogs:
    def __init__(self, data_dir: Path, binary: Path = VL_BINARY) -> None:
        self.data_dir = data_dir
        self.binary = binary
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.data_dir.parent / f"{self.data_dir.name}.log"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self, timeout: float = 60.0) -> VictoriaLogs:
        if not self.binary.exists():
            subprocess.run(["bash", str(VL_SCRIPT)], check=True)
        if not self.binary.exists():
            raise PeerError(f"VictoriaLogs is not built: run `bash {VL_SCRIPT}` (expected {self.binary})")
        self.port = free_port()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.proc = spawn([str(self.binary), f"-storageDataPath={self.data_dir}",
                           f"-httpListenAddr=127.0.0.1:{self.port}", "-retentionPeriod=100y",
                           "-inmemoryDataFlushInterval=1s", "-loggerLevel=WARN"], log=self.log_path)
        wait_until(lambda: httpx.get(self.url + "/health", timeout=2).status_code == 200, timeout=timeout,
                   proc=self.proc, what="VictoriaLogs", log=self.log_path)
        return self

    def flush(self) -> None:
        httpx.get(self.url + "/internal/force_flush", timeout=600).raise_for_status()

    def merge(self) -> None:
        httpx.get(self.url + "/internal/force_merge", timeout=3600).raise_for_status()

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc)
            self.proc = None

    def __enter__(self) -> VictoriaLogs:
        return self.start()

    def __exit__(self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()
