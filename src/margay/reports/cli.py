"""`margay reports ...`: take snapshots from `kubectl get -o yaml|json` dumps, run a GlobalReport over an
interval and write its downloads — against the store directly (stop `margay serve` on an embedded store
first; OpenSearch can be shared)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from rich.console import Console
from rich.markup import escape

from ..errors import MargayError, ParseError

reports_app = typer.Typer(help="Compliance reports: snapshots from resource dumps, GlobalReport runs, downloads.",
                          no_args_is_help=True)
_err = Console(stderr=True)
_out = Console()

DataDir = Annotated[Path, typer.Option("--data-dir", help="Data directory of the embedded store.",
                                       envvar="MARGAY_DATA_DIR")]
Cluster = Annotated[str, typer.Option("--cluster", help="The cluster the resources and logs belong to.")]
Backend = Annotated[str, typer.Option("--backend", help="Storage engine: duckdb (embedded) or opensearch.",
                                      envvar="MARGAY_BACKEND")]
OpenSearchURL = Annotated[str | None, typer.Option("--opensearch-url", help="OpenSearch URL (backend opensearch).",
                                                   envvar="MARGAY_OPENSEARCH_URL")]
OpenSearchPrefix = Annotated[str, typer.Option("--opensearch-prefix", help="Index name prefix on OpenSearch.",
                                               envvar="MARGAY_OPENSEARCH_PREFIX")]


def _fail(message: str) -> None:
    _err.print(f"[red]error:[/red] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(2)


def _open(data_dir: Path, backend: str, url: str | None, prefix: str) -> Any:
    from ..app import _backend
    from ..clock import SystemClock
    from ..config import Settings

    if backend == "duckdb" and not (data_dir / "store").is_dir():
        data_dir.mkdir(parents=True, exist_ok=True)
    settings = Settings(data_dir=data_dir, backend=backend, opensearch_url=url, opensearch_prefix=prefix)
    try:
        return _backend(settings, SystemClock())
    except MargayError as exc:
        _fail(exc.message)


def _time(value: str, what: str) -> datetime:
    from ..query.model import parse_time

    try:
        return parse_time(value, datetime.now(UTC), what=what)
    except MargayError as exc:
        _fail(exc.message)
        raise


@reports_app.command("snapshot")
def snapshot(
    dumps: Annotated[list[Path], typer.Argument(help="YAML or JSON dumps (`kubectl get pods,... -A -o yaml`).")],
    cluster: Cluster = "cluster", data_dir: DataDir = Path("./data"), backend: Backend = "duckdb",
    opensearch_url: OpenSearchURL = None, opensearch_prefix: OpenSearchPrefix = "",
    at: Annotated[str | None, typer.Option("--at", help="The snapshot's time (RFC 3339); default now.")] = None,
) -> None:
    """Store one snapshot of every compliance kind from resource dumps (kinds absent from them are empty)."""
    from . import snapshots
    from .resources import Resources, load_dump

    merged: Resources = {}
    for path in dumps:
        try:
            data = path.read_bytes()
        except OSError as exc:
            _fail(f"cannot read {path}: {exc.strerror}")
        try:
            for kind, items in load_dump(data, str(path)).items():
                merged.setdefault(kind, {}).update(items)
        except ParseError as exc:
            _fail(exc.message)
    when = _time(at, "--at") if at else datetime.now(UTC)
    store = _open(data_dir, backend, opensearch_url, opensearch_prefix)
    try:
        n = snapshots.take(store, cluster, merged, started=when, completed=when)
    finally:
        store.close()
    kinds = ", ".join(f"{k.split('/')[-1]} {len(v)}" for k, v in sorted(merged.items()))
    _out.print(f"stored a snapshot of {n} resources for cluster {cluster} at {when.isoformat()} ({kinds or 'none'})")


@reports_app.command("run")
def run(
    globalreport: Annotated[Path, typer.Argument(help="A GlobalReport YAML (projectcalico.org/v3).")],
    start: Annotated[str, typer.Option("--start", help="Interval start (RFC 3339 or now-1d).")],
    end: Annotated[str, typer.Option("--end", help="Interval end (RFC 3339 or now).")] = "now",
    out: Annotated[Path | None, typer.Option("--out", help="Write every download of the report here.")] = None,
    cluster: Cluster = "cluster", data_dir: DataDir = Path("./data"), backend: Backend = "duckdb",
    opensearch_url: OpenSearchURL = None, opensearch_prefix: OpenSearchPrefix = "",
) -> None:
    """Generate a report of a GlobalReport for [start, end), store it, and optionally write its downloads."""
    from . import reporter

    try:
        obj = yaml.safe_load(globalreport.read_bytes())
    except OSError as exc:
        _fail(f"cannot read {globalreport}: {exc.strerror}")
    except yaml.YAMLError as exc:
        _fail(f"{globalreport}: not YAML: {str(exc).splitlines()[0]}")
    t0, t1 = _time(start, "--start"), _time(end, "--end")
    if t1 <= t0:
        _fail("--end must be after --start")
    if t1 - t0 > timedelta(days=31):
        _fail("the interval is longer than 31 days; report on a shorter one")
    store = _open(data_dir, backend, opensearch_url, opensearch_prefix)
    try:
        reporter.check_globalreport(obj, str(globalreport))
        doc = reporter.run(store, cluster, obj, t0, t1, datetime.now(UTC))
        files = reporter.downloads(reporter.stored(store, cluster, doc["reportName"], t1))
    except MargayError as exc:
        _fail(exc.message)
    finally:
        store.close()
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        for name, content in files.items():
            (out / name).write_text(content)
    _out.print(f"report {doc['id']} ({doc['reportTypeName']}) stored"
               + (f"; wrote {', '.join(sorted(files))} to {out}" if out else ""))


@reports_app.command("benchmark")
def benchmark(
    results: Annotated[Path, typer.Argument(help="`kube-bench --json` output of one node.")],
    node: Annotated[str, typer.Option("--node", help="The node the results are from.")],
    kubernetes_version: Annotated[str, typer.Option("--kubernetes-version", help="The node's version.")] = "",
    at: Annotated[str | None, typer.Option("--at", help="When the benchmark ran (RFC 3339); default now.")] = None,
    cluster: Cluster = "cluster", data_dir: DataDir = Path("./data"), backend: Backend = "duckdb",
    opensearch_url: OpenSearchURL = None, opensearch_prefix: OpenSearchPrefix = "",
) -> None:
    """Store one node's kube-bench results for cis-benchmark reports."""
    from . import cis

    try:
        data = results.read_bytes()
    except OSError as exc:
        _fail(f"cannot read {results}: {exc.strerror}")
    when = _time(at, "--at") if at else datetime.now(UTC)
    try:
        doc = cis.from_kube_bench(data, node, kubernetes_version, when, str(results))
    except ParseError as exc:
        _fail(exc.message)
    store = _open(data_dir, backend, opensearch_url, opensearch_prefix)
    try:
        cis.store(store, cluster, [doc], datetime.now(UTC))
    finally:
        store.close()
    _out.print(f"stored {len(doc['tests'])} kube-bench results of node {node} (cluster {cluster})")


Name = Annotated[str, typer.Argument(help="The GlobalReport's name.")]


@reports_app.command("history")
def history_cmd(
    name: Name,
    since: Annotated[str, typer.Option("--since", help="Runs ending at or after this (RFC 3339 or now-30d).")] = "now-30d",
    cluster: Cluster = "cluster", data_dir: DataDir = Path("./data"), backend: Backend = "duckdb",
    opensearch_url: OpenSearchURL = None, opensearch_prefix: OpenSearchPrefix = "",
    json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """The stored runs of a GlobalReport, newest first, with their summary figures."""
    import orjson
    from rich.table import Table

    from . import history

    t0 = _time(since, "--since")
    store = _open(data_dir, backend, opensearch_url, opensearch_prefix)
    try:
        rows = history.runs(store, cluster, name, since=t0, until=datetime.now(UTC))
    except MargayError as exc:
        _fail(exc.message)
    finally:
        store.close()
    if json:
        print(orjson.dumps(rows, option=orjson.OPT_INDENT_2).decode())
        return
    table = Table(title=f"runs of {name} in cluster {cluster}")
    for col in ("start", "end", "type", "endpoints", "ingress protected", "egress protected"):
        table.add_column(col)
    for r in rows:
        es = r.get("endpointsSummary") or {}
        table.add_row(r["startTime"], r["endTime"], r["reportTypeName"], str(es.get("numTotal", "-")),
                      str(es.get("numIngressProtected", "-")), str(es.get("numEgressProtected", "-")))
    _out.print(table)


@reports_app.command("diff")
def diff_cmd(
    name: Name,
    older: Annotated[str, typer.Option("--from", help="End time of the earlier run (RFC 3339).")],
    newer: Annotated[str, typer.Option("--to", help="End time of the later run (RFC 3339).")],
    cluster: Cluster = "cluster", data_dir: DataDir = Path("./data"), backend: Backend = "duckdb",
    opensearch_url: OpenSearchURL = None, opensearch_prefix: OpenSearchPrefix = "",
) -> None:
    """What changed between two runs of a GlobalReport (JSON): protection, endpoints, policies."""
    import orjson

    from . import history, reporter

    t0, t1 = _time(older, "--from"), _time(newer, "--to")
    store = _open(data_dir, backend, opensearch_url, opensearch_prefix)
    try:
        d = history.compare(store, cluster, reporter.stored(store, cluster, name, t0),
                            reporter.stored(store, cluster, name, t1))
    except MargayError as exc:
        _fail(exc.message)
    finally:
        store.close()
    print(orjson.dumps(d, option=orjson.OPT_INDENT_2).decode())
