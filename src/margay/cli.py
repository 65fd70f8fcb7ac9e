"""The margay command: serve, ingest, query, simulate, demo (and the everyday tools)."""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer
from rich.console import Console
from rich.table import Table

from . import __version__

app = typer.Typer(help="margay: open log management and analytics for Kubernetes network security.",
                  no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)
console = Console(stderr=True)
out = Console()

DataDir = Annotated[Path, typer.Option("--data-dir", help="Data directory of the embedded store.",
                                       envvar="MARGAY_DATA_DIR")]


def fail(message: str, code: int = 2) -> None:
    console.print(f"[red]error:[/red] {message}")
    raise typer.Exit(code)


@app.command()
def version() -> None:
    """Print margay's version."""
    out.print(__version__)


@app.command()
def serve(
    data_dir: DataDir = Path("./data"),
    host: Annotated[str, typer.Option(help="Address to bind.", envvar="MARGAY_HOST")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to bind; 0 picks a free port.", envvar="MARGAY_PORT")] = 8080,
    config: Annotated[Path | None, typer.Option(help="YAML file: LogStorage, LogCollector, settings.",
                                                envvar="MARGAY_CONFIG")] = None,
    log_level: Annotated[str, typer.Option(help="debug, info, warning or error.")] = "info",
) -> None:
    """Run the margay server: ingest, store, query, UI."""
    import uvicorn

    from .app import create_app
    from .config import Settings
    from .errors import MargayError
    from .testing.server import bind, url_of

    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s")
    try:
        settings = Settings.load({"data_dir": data_dir, "host": host, "port": port, "config": config,
                                  "log_level": log_level})
        application = create_app(settings)
    except MargayError as exc:
        fail(exc.message)
    try:
        sock = bind(host, port)
    except OSError as exc:
        fail(f"cannot listen on {host}:{port}: {exc.strerror}; pick another --port (0 = any free port)")
    print(f"listening on {url_of(sock)}", flush=True)
    server = uvicorn.Server(uvicorn.Config(application, log_level="warning", access_log=False,
                                           timeout_graceful_shutdown=30))
    server.run(sockets=[sock])


@app.command()
def ingest(
    files: Annotated[list[Path], typer.Argument(help="Native log files (NDJSON, BIRD logs, audit logs).")],
    type: Annotated[str, typer.Option("--type", "-t", help="flows, dns, audit_ee, audit_kube, bgp, events, l7")],
    cluster: Annotated[str, typer.Option(help="Cluster the records belong to.")] = "cluster",
    server: Annotated[str | None, typer.Option(help="Send to a running server at this URL.")] = None,
    data_dir: DataDir = Path("./data"),
    token: Annotated[str | None, typer.Option(help="Bearer token for --server.", envvar="MARGAY_TOKEN")] = None,
    host: Annotated[str | None, typer.Option(help="Node name for BIRD logs (default: from the path).")] = None,
    batch_lines: Annotated[int, typer.Option(help="Lines per batch.")] = 20_000,
) -> None:
    """Load native log files into a data directory or a running server, with a progress bar."""
    from .ingest.loader import load_files
    from .logtypes import REGISTRY

    if type not in REGISTRY:
        fail(f"unknown --type {type!r}; use one of: {', '.join(REGISTRY)}")
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        fail(f"no such file: {', '.join(missing)}")
    summary = load_files(REGISTRY[type], files, cluster=cluster, server=server, data_dir=data_dir,
                         token=token, host=host, batch_lines=batch_lines, console=console)
    out.print(f"{summary['succeeded']} records stored, {summary['failed']} refused "
              f"({summary['batches']} batches, {summary['seconds']:.1f}s)")
    for err in summary["errors"][:20]:
        out.print(f"  {err['file']}:{err['line']}: {err.get('field') or ''} {err['msg']}")
    if summary["failed"]:
        raise typer.Exit(1)


@app.command()
def query(
    type: Annotated[str, typer.Argument(help="flows, dns, audit, audit_ee, audit_kube, bgp, events, l7")],
    selector: Annotated[str, typer.Argument(help='Selector, e.g. \'action = "deny" AND dest_namespace IN {"db"}\'')] = "",
    since: Annotated[str, typer.Option(help="How far back: 15m, 1h, 7d, or an RFC 3339 time.")] = "1h",
    until: Annotated[str, typer.Option(help="End of the range: now, or an RFC 3339 time.")] = "now",
    cluster: Annotated[list[str] | None, typer.Option(help="Cluster(s) to read; repeat for several.")] = None,
    limit: Annotated[int, typer.Option(help="Records to print.")] = 20,
    json: Annotated[bool, typer.Option("--json", help="Print NDJSON records instead of a table.")] = False,
    server: Annotated[str | None, typer.Option(help="Query a running server at this URL.")] = None,
    data_dir: DataDir = Path("./data"),
    token: Annotated[str | None, typer.Option(help="Bearer token for --server.", envvar="MARGAY_TOKEN")] = None,
) -> None:
    """Search stored logs with margay's selector syntax."""
    from .client import Client, local_client

    start = since if not since[:1].isdigit() or "T" in since else f"now-{since}"
    body: dict[str, Any] = {"time_range": {"from": start, "to": until}, "selector": selector,
                            "max_page_size": limit}
    clusters = cluster or ["cluster"]
    with (Client(server, token) if server else local_client(data_dir)) as client:
        result = client.search(type, body, clusters)
    if json:
        for item in result["items"]:
            out.print_json(orjson.dumps(item).decode()) if sys.stdout.isatty() else print(orjson.dumps(item).decode())
        return
    _print_table(type, result)


def _print_table(type: str, result: dict[str, Any]) -> None:
    from .web.columns import default_columns

    cols = default_columns(type)
    table = Table(title=f"{type}: {len(result['items'])} of {result.get('total_hits')} records")
    for c in cols:
        table.add_column(c, overflow="fold")
    for item in result["items"]:
        table.add_row(*[_cell(item, c) for c in cols])
    out.print(table)


def _cell(item: dict[str, Any], path: str) -> str:
    value: Any = item
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    if value is None:
        return ""
    if isinstance(value, list | dict):
        return orjson.dumps(value).decode()
    return str(value)


@app.command()
def simulate(
    server: Annotated[str | None, typer.Option(help="Post to a running server at this URL.")] = None,
    out_dir: Annotated[Path | None, typer.Option("--out", help="Write native log files here instead.")] = None,
    days: Annotated[float, typer.Option(help="Backfill this many days up to now.")] = 1.0,
    clusters: Annotated[list[str] | None, typer.Option("--cluster", help="Cluster names (repeat).")] = None,
    seed: Annotated[int, typer.Option(help="Seed: the same seed gives the same logs.")] = 1,
    live: Annotated[bool, typer.Option(help="After the backfill, keep sending current logs.")] = False,
    rate: Annotated[float, typer.Option(help="Flow records per second when --live.")] = 50.0,
    token: Annotated[str | None, typer.Option(help="Bearer token for --server.", envvar="MARGAY_TOKEN")] = None,
) -> None:
    """Generate a deterministic multi-cluster workload: native files, or posts to a server."""
    from .simulate.runner import simulate_cmd

    if (server is None) == (out_dir is None):
        fail("give exactly one of --server URL or --out DIR")
    simulate_cmd(server=server, out_dir=out_dir, days=days, clusters=clusters or ["cluster", "app-cluster-1"],
                 seed=seed, live=live, rate=rate, token=token, console=console)


@app.command()
def demo(
    data_dir: DataDir = Path("./demo-data"),
    port: Annotated[int, typer.Option(help="Port to bind; 0 picks a free port.")] = 8080,
    days: Annotated[float, typer.Option(help="Days of history to backfill.")] = 1.0,
) -> None:
    """A server on the embedded store, fed by a simulated two-cluster workload."""
    from .simulate.runner import demo_cmd

    demo_cmd(data_dir=data_dir, port=port, days=days, console=console)


def main() -> None:
    app()


__all__ = ["app", "main", "datetime", "timedelta", "UTC"]
