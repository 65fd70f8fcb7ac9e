"""`margay simulate` and `margay demo`: the simulator driven from the command line, with progress bars."""

from __future__ import annotations

import fcntl
import os
import shlex
import shutil
import sys
import threading
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from ..clock import SystemClock
from ..errors import ConfigError
from .feed import KINDS, backfill_days, floor_time, resume_points, run_live, write_native_files
from .topology import Topology

INTERVAL = 300  # Felix's default flush interval for flow, DNS and L7 logs: backfill and live alike


def _progress(console: Console) -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TextColumn("records"), TimeElapsedColumn(), console=console)


def simulate_cmd(*, server: str | None, out_dir: Path | None, days: float, clusters: list[str], seed: int,
                 live: bool, rate: float | None, token: str | None, console: Console) -> dict[str, int]:
    topo = Topology.build(seed, clusters=clusters)
    clock = SystemClock()
    end = clock.now()
    if out_dir is not None:
        counts = write_native_files(topo, out_dir, end - timedelta(days=days), end)
        console.print(f"wrote native logs for {len(clusters)} clusters under {out_dir}: {counts}")
        return counts
    assert server is not None
    counts = backfill(server, topo, days, token=token, console=console, end=end)
    if live:
        pace = f"~{rate:g} flow records/s (time-lapse)" if rate else "at the backfill's rate, every 5 minutes"
        console.print(f"sending live traffic {pace}; Ctrl-C to stop")
        stop = threading.Event()
        try:
            run_live(server, topo, rate_per_s=rate, stop_event=stop, clock=clock, token=token,
                     start=floor_time(end, INTERVAL))
        except KeyboardInterrupt:
            stop.set()
    return counts


def backfill(server: str, topo: Topology, days: float, *, token: str | None, console: Console,
             end: datetime | None = None, resume: dict[tuple[str, str], datetime] | None = None) -> dict[str, int]:
    with _progress(console) as progress:
        tasks = {kind: progress.add_task(f"backfill {kind:<10}", total=None) for kind in KINDS}

        def advance(cluster: str, kind: str, n: int) -> None:
            progress.advance(tasks[kind], n)

        counts = backfill_days(server, topo, days, token=token, progress=advance, end=end, resume=resume,
                               interval=INTERVAL)
    console.print("backfilled " + ", ".join(f"{n} {k}" for k, n in counts.items()))
    return counts


def margay_command() -> str:
    """How to run margay from the current directory: `margay` when it is on PATH, else the venv's script."""
    script = Path(sys.executable).with_name("margay")
    found = shutil.which("margay")
    if found and script.exists() and Path(found).resolve() == script.resolve():
        return "margay"
    if not script.exists():
        return f"{shlex.quote(sys.executable)} -m margay"
    rel = os.path.relpath(script)
    return shlex.quote(rel if not rel.startswith("..") else str(script))


def try_commands(url: str) -> list[str]:
    """Commands to paste after the demo starts; tests/test_cli.py runs each one."""
    margay = margay_command()
    body = '{"all_clusters": true, "selector": "action = deny", "max_page_size": 3}'
    return [
        f"{margay} query flows 'action = \"deny\"' --since 1h --server {url}",
        f"{margay} query l7 'response_code IN {{\"500\", \"503\"}}' --since 1h --server {url}",
        f"curl -s -XPOST {url}/api/v1/flows/logs -H 'Content-Type: application/json' "
        f"-H 'x-cluster-id: _MULTI_' -d '{body}'",
    ]


def _compliance_history(app: Any, topo: Topology, cluster: str, now: datetime, console: Console,
                        stop: threading.Event) -> None:
    """A week of compliance history (snapshots, policy and label changes, daily reports) for the Reports page,
    written in the background so the demo's URL is up at once; a re-run keeps the stored week."""
    from ..reports import demo as reports_demo

    today = now.replace(hour=0, minute=0, second=0, microsecond=0)
    try:
        n = reports_demo.write_history(app.state.margay.backend, topo, cluster, today, stop=stop)
    except Exception as exc:  # the demo goes on without it
        console.print(f"compliance history not written: {exc}")
        return
    if n and not stop.is_set():
        console.print(f"compliance: a week of history for {cluster} — 7 snapshots, 6 audited policy/label changes, "
                      f"{n} reports (their jobs: GET /apis/projectcalico.org/v3/globalreports; the reports: "
                      "POST /api/v1/compliance/reports)")


def demo_cmd(*, data_dir: Path, port: int, days: float, console: Console, seed: int = 1) -> None:
    """Serve the embedded store on `port`, backfill `days` of two clusters, then keep traffic flowing.

    A re-run on the same data directory continues the stored data: each cluster and log type resumes
    after its newest stored record (resume_points), and live traffic is the backfill continued.
    """
    from ..app import create_app
    from ..config import Settings
    from ..serving import ServerThread

    clusters = ["cluster", "app-cluster-1"]
    data_dir.mkdir(parents=True, exist_ok=True)
    lock = open(data_dir / ".demo.lock", "w")  # noqa: SIM115 - held for the demo's life
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise ConfigError(f"{data_dir} is in use by another margay demo: stop it (Ctrl-C), or pass "
                          "--data-dir DIR") from None
    from ..detect import demo as detect_demo

    feeds = detect_demo.feed_server()  # the demo's threat feeds, served on loopback (allowed past the SSRF guard)
    feeds_url = feeds.__enter__()
    resources = detect_demo.write_resources(data_dir / "detect-demo", feeds_url)
    from ..reports import demo as reports_demo

    reports = reports_demo.write_globalreports(data_dir / "reports-demo")
    reports_demo.write_dump(Topology.build(seed, clusters=clusters), clusters[0], data_dir / "reports-demo" / "dumps")
    app = create_app(Settings(data_dir=data_dir, detect_resources=resources, feeds_allow_networks="127.0.0.0/8",
                              detect_interval=15, reports_resources=reports,
                              snapshot_dumps=data_dir / "reports-demo" / "dumps"))
    try:
        server = ServerThread(app, host="127.0.0.1", port=port)
    except OSError:
        console.print(f"port {port} is busy: using a free port instead")
        server = ServerThread(app, host="127.0.0.1", port=0)
    with server:
        console.print(f"[bold]margay demo[/bold] — embedded store in {data_dir}, clusters: {', '.join(clusters)}")
        topo = Topology.build(seed, clusters=clusters)
        clock = SystemClock()
        now = clock.now()
        stop_at = floor_time(now, INTERVAL)
        resume = resume_points(server.url, topo, stop_at - timedelta(days=days))
        flows_from = [t for (_, kind), t in resume.items() if kind == "flows"]
        if flows_from:
            console.print(f"continuing the stored demo data (flows stored up to {min(flows_from):%Y-%m-%d %H:%M} "
                          "UTC): only what is missing is sent")
        backfill(server.url, topo, days, token=None, console=console, end=now, resume=resume)
        switched_on = f"detector: {len(detect_demo.DEMO_TEMPLATES)} alerts from templates and 2 threat feeds switched on"
        if flows_from:  # a re-run continues the data: the attack scenarios were sent the first time
            console.print(switched_on)
        else:
            sent = detect_demo.send_scenarios(server.url, clusters[0], int(now.timestamp()))
            console.print(f"{switched_on}; {sent} records of attack scenarios sent — their events appear within "
                          "a minute")
        history_stop = threading.Event()
        history = threading.Thread(target=_compliance_history, name="margay-demo-compliance", daemon=True,
                                   args=(app, topo, clusters[0], now, console, history_stop))
        history.start()
        print(f"margay is running at {server.url} (no sign-in on this loopback demo)", flush=True)
        print("try:", flush=True)
        for line in try_commands(server.url):
            print(f"  {line}", flush=True)
        stop = threading.Event()
        console.print("live traffic: the next 5-minute window of each cluster as it closes; Ctrl-C to stop")
        try:
            run_live(server.url, topo, stop_event=stop, clock=clock, start=stop_at, interval=INTERVAL)
        except KeyboardInterrupt:
            stop.set()
            console.print("stopping")
        finally:
            history_stop.set()  # the store closes with the server: let the history's current report finish first
            history.join(timeout=120)
            feeds.__exit__(None, None, None)
