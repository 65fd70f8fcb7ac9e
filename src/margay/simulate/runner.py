"""`margay simulate` and `margay demo`: the simulator driven from the command line, with progress bars."""

from __future__ import annotations

import threading
from datetime import timedelta
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from ..clock import SystemClock
from .feed import KINDS, backfill_days, run_live, write_native_files
from .topology import Topology


def _progress(console: Console) -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TextColumn("records"), TimeElapsedColumn(), console=console)


def simulate_cmd(*, server: str | None, out_dir: Path | None, days: float, clusters: list[str], seed: int,
                 live: bool, rate: float, token: str | None, console: Console) -> dict[str, int]:
    topo = Topology.build(seed, clusters=clusters)
    clock = SystemClock()
    end = clock.now()
    if out_dir is not None:
        counts = write_native_files(topo, out_dir, end - timedelta(days=days), end)
        console.print(f"wrote native logs for {len(clusters)} clusters under {out_dir}: {counts}")
        return counts
    assert server is not None
    counts = backfill(server, topo, days, token=token, console=console)
    if live:
        console.print(f"sending live traffic (~{rate:g} flow records/s); Ctrl-C to stop")
        stop = threading.Event()
        try:
            run_live(server, topo, rate_per_s=rate, stop_event=stop, clock=clock, token=token)
        except KeyboardInterrupt:
            stop.set()
    return counts


def backfill(server: str, topo: Topology, days: float, *, token: str | None, console: Console) -> dict[str, int]:
    with _progress(console) as progress:
        tasks = {kind: progress.add_task(f"backfill {kind:<10}", total=None) for kind in KINDS}

        def advance(cluster: str, kind: str, n: int) -> None:
            progress.advance(tasks[kind], n)

        counts = backfill_days(server, topo, days, token=token, progress=advance)
    console.print("backfilled " + ", ".join(f"{n} {k}" for k, n in counts.items()))
    return counts


def demo_cmd(*, data_dir: Path, port: int, days: float, console: Console, seed: int = 1,
             rate: float = 20.0) -> None:
    """Serve the embedded store on `port`, backfill `days` of two clusters, then keep traffic flowing."""
    from ..app import create_app
    from ..config import Settings
    from ..testing.server import ServerThread

    clusters = ["cluster", "app-cluster-1"]
    try:
        server = ServerThread(create_app(Settings(data_dir=data_dir)), host="127.0.0.1", port=port)
    except OSError:
        console.print(f"port {port} is busy: using a free port instead")
        server = ServerThread(create_app(Settings(data_dir=data_dir)), host="127.0.0.1", port=0)
    with server:
        token = getattr(server, "token", None)
        console.print(f"[bold]margay demo[/bold] — embedded store in {data_dir}, clusters: {', '.join(clusters)}")
        topo = Topology.build(seed, clusters=clusters)
        backfill(server.url, topo, days, token=token, console=console)
        print(f"margay is running at {server.url}", flush=True)
        print("try:", flush=True)
        print(f"  margay query flows 'action = \"deny\"' --since 1h --server {server.url}", flush=True)
        print(f"  curl -s -XPOST {server.url}/api/v1/flows/logs -H 'x-cluster-id: cluster' "
              "-d '{\"selector\": \"action = deny\", \"max_page_size\": 3}'", flush=True)
        stop = threading.Event()
        try:
            run_live(server.url, topo, rate_per_s=rate, stop_event=stop, clock=SystemClock(), token=token)
        except KeyboardInterrupt:
            stop.set()
            console.print("stopping")
