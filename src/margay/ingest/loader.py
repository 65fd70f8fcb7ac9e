"""Loading native files (margay ingest): batches of lines to a server or a local data directory."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn

from ..logtypes import LogType

MAX_BATCH_BYTES = 32 * 1024 * 1024


def batches(path: Path, lines_per_batch: int) -> Iterator[tuple[bytes, int]]:
    """Chunks of whole lines (and the bytes they take in the file)."""
    with path.open("rb") as fh:
        buf: list[bytes] = []
        size = 0
        for line in fh:
            buf.append(line)
            size += len(line)
            if len(buf) >= lines_per_batch or size >= MAX_BATCH_BYTES:
                yield b"".join(buf), size
                buf, size = [], 0
        if buf:
            yield b"".join(buf), size


def _is_eventlist(path: Path) -> bool:
    with path.open("rb") as fh:
        head = fh.read(4096)
    return head.lstrip().startswith(b"{") and b'"EventList"' in head


def load_files(lt: LogType, files: list[Path], *, cluster: str, server: str | None, data_dir: Path,
               token: str | None, host: str | None, batch_lines: int, console: Console) -> dict[str, Any]:
    from ..client import Client, local_client

    summary: dict[str, Any] = {"succeeded": 0, "failed": 0, "batches": 0, "errors": [], "seconds": 0.0}
    started = time.perf_counter()
    ctx = Client(server, token) if server else local_client(data_dir)
    with ctx as client, Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
                                 TimeRemainingColumn(), console=console, transient=False) as progress:
        for path in files:
            task = progress.add_task(f"{lt.name} ← {path.name}", total=path.stat().st_size)
            native_bird = "bird" in lt.native_formats and not path.read_bytes()[:1] == b"{"
            params = None
            ctype = "application/x-ndjson"
            if native_bird:
                ctype = "text/plain"
                node = host or (path.parent.parent.name if path.name == "current" else path.stem)
                params = {"host": node, "ip_version": "IPv6" if "bird6" in str(path) else "IPv4"}
            chunks: Iterator[tuple[bytes, int]]
            if lt.name.startswith("audit") and _is_eventlist(path):
                data = path.read_bytes()
                ctype = "application/json"
                chunks = iter([(data, len(data))])
            else:
                chunks = batches(path, batch_lines)
            first_line = 1
            for body, size in chunks:
                key = hashlib.sha256(f"{path.resolve()}:{first_line}:{len(body)}".encode()).hexdigest()[:32]
                result = client.bulk(lt.name, body, cluster=cluster, key=key, content_type=ctype, params=params)
                summary["batches"] += 1
                summary["succeeded"] += result.get("succeeded", 0)
                summary["failed"] += result.get("failed", 0)
                for err in result.get("errors", []):
                    summary["errors"].append({**err, "file": str(path), "line": err["line"] + first_line - 1})
                first_line += body.count(b"\n")
                progress.update(task, advance=size)
    summary["seconds"] = time.perf_counter() - started
    return summary
