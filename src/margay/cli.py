"""The margay command: serve, ingest, query, simulate, demo (and the everyday tools)."""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer
from rich.markup import escape
from rich.table import Table

from . import __version__
from .cli_common import DataDir, console, fail, out

app = typer.Typer(help="margay: open log management and analytics for Kubernetes network security.",
                  no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)


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
    tokens: Annotated[Path | None, typer.Option(help="Tokens file: [{token, user, groups}] / [{token, cluster}].",
                                                envvar="MARGAY_TOKENS")] = None,
    rbac: Annotated[Path | None, typer.Option(help="RBAC YAML (ClusterRole, ClusterRoleBinding, Role, "
                                              "RoleBinding): a file or a folder.", envvar="MARGAY_RBAC")] = None,
    kubeconfig: Annotated[Path | None, typer.Option(help="Use this API server for TokenReview and "
                                                    "SubjectAccessReview.", envvar="MARGAY_KUBECONFIG")] = None,
    in_cluster: Annotated[bool, typer.Option("--in-cluster", help="TokenReview and SubjectAccessReview "
                                             "against the API server of the pod margay runs in.")] = False,
    no_auth: Annotated[bool, typer.Option("--no-auth", help="No authentication: anyone may read and write "
                                          "everything. Development only; refused unless --host is loopback.")] = False,
    backend: Annotated[str | None, typer.Option(help="Storage engine: duckdb (embedded, default) or opensearch.",
                                                envvar="MARGAY_BACKEND")] = None,
    opensearch_url: Annotated[str | None, typer.Option(help="OpenSearch/Elasticsearch URL (backend opensearch).",
                                                       envvar="MARGAY_OPENSEARCH_URL")] = None,
    opensearch_user: Annotated[str | None, typer.Option(help="Basic-auth user for OpenSearch.",
                                                        envvar="MARGAY_OPENSEARCH_USER")] = None,
    opensearch_password: Annotated[str | None, typer.Option(help="Basic-auth password for OpenSearch.",
                                                            envvar="MARGAY_OPENSEARCH_PASSWORD")] = None,
    opensearch_token: Annotated[str | None, typer.Option(help="Bearer token for OpenSearch.",
                                                         envvar="MARGAY_OPENSEARCH_TOKEN")] = None,
    opensearch_ca_file: Annotated[Path | None, typer.Option(help="CA bundle (PEM) for OpenSearch's TLS.",
                                                            envvar="MARGAY_OPENSEARCH_CA_FILE")] = None,
    opensearch_prefix: Annotated[str | None, typer.Option(
        help="Prefix before every index margay makes in OpenSearch (several margays on one cluster).",
        envvar="MARGAY_OPENSEARCH_PREFIX")] = None,
    tls_cert_file: Annotated[Path | None, typer.Option(help="Serve HTTPS with this certificate (PEM, chain "
                                                       "allowed); needs --tls-key-file.",
                                                       envvar="MARGAY_TLS_CERT_FILE")] = None,
    tls_key_file: Annotated[Path | None, typer.Option(help="Private key (PEM) of --tls-cert-file.",
                                                      envvar="MARGAY_TLS_KEY_FILE")] = None,
    detect_resources: Annotated[Path | None, typer.Option(
        help="GlobalThreatFeed/GlobalAlert YAML for the detector: a file or a folder (docs/detect.md).",
        envvar="MARGAY_DETECT_RESOURCES")] = None,
    reports_resources: Annotated[Path | None, typer.Option(
        help="GlobalReport YAML whose report jobs the server runs: a file or a folder (docs/reports.md).",
        envvar="MARGAY_REPORTS_RESOURCES")] = None,
    snapshot_dumps: Annotated[Path | None, typer.Option(
        help="Without --kubeconfig: `kubectl get -o yaml` dumps (a folder or file) the daily compliance snapshot "
             "reads.", envvar="MARGAY_SNAPSHOT_DUMPS")] = None,
    snapshot_hour: Annotated[int | None, typer.Option(
        help="Hour of the day (UTC, 0-23) of the daily compliance snapshot [default: 0].", min=0, max=23,
        envvar="MARGAY_SNAPSHOT_HOUR")] = None,
    reports_cluster: Annotated[str | None, typer.Option(
        help="Cluster name of the snapshots and reports the server makes [default: cluster].",
        envvar="MARGAY_REPORTS_CLUSTER")] = None,
    kube_watch: Annotated[bool | None, typer.Option(
        "--kube-watch/--no-kube-watch", help="With --kubeconfig, read GlobalAlerts, GlobalThreatFeeds, "
        "GlobalReports, LogStorage and the compliance kinds from the API server (list+watch) [default: on].",
        envvar="MARGAY_KUBE_WATCH")] = None,
) -> None:
    """Run the margay server: ingest, store, query, UI.

    With no --tokens, --kubeconfig or --no-auth, an admin token is generated into the data directory
    (admin-token, mode 0600) and printed. With --tls-cert-file and --tls-key-file it serves HTTPS only
    (needed for a kube-apiserver audit webhook that sends a token).
    """
    from .allocator import adopt
    from .allocator import name as allocator_name

    adopt()  # tcmalloc where installed: this process starts again with it preloaded (margay/allocator.py)
    import uvicorn

    from .app import create_app
    from .config import Settings
    from .errors import MargayError
    from .serving import bind, url_of

    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s")
    logging.getLogger("margay").info("allocator: %s", allocator_name())
    tls = _tls_files(tls_cert_file, tls_key_file)
    try:
        flags: dict[str, Any] = {"data_dir": data_dir, "host": host, "port": port, "config": config,
                                 "log_level": log_level, "tokens": tokens, "rbac": rbac, "kubeconfig": kubeconfig,
                                 "backend": backend, "opensearch_url": opensearch_url,
                                 "opensearch_user": opensearch_user, "opensearch_password": opensearch_password,
                                 "opensearch_token": opensearch_token, "opensearch_ca_file": opensearch_ca_file,
                                 "opensearch_prefix": opensearch_prefix, "detect_resources": detect_resources,
                                 "reports_resources": reports_resources, "snapshot_dumps": snapshot_dumps,
                                 "snapshot_hour": snapshot_hour, "reports_cluster": reports_cluster,
                                 "kube_watch": kube_watch}
        if no_auth and (tokens or rbac or kubeconfig or in_cluster):
            fail("--no-auth cannot be combined with --tokens, --rbac, --kubeconfig or --in-cluster")
        if no_auth:
            flags["auth"] = "none"
        elif kubeconfig or in_cluster:
            flags["auth"] = "kube"
        settings = Settings.load(flags)
        if settings.auth == "auto" and not (settings.tokens or settings.kubeconfig):
            settings.auth, settings.admin_token = "tokens", True
        application = create_app(settings)
    except MargayError as exc:
        fail(exc.message)
    access = application.state.margay.access
    if not access.enabled:
        console.print("[yellow]warning:[/yellow] authentication is off (--no-auth): anyone who can reach "
                      f"{host} may read and write every log")
    elif access.admin_token:
        where = settings.data_dir / "admin-token"
        state = "generated" if access.admin_token_new else "from"
        print(f"admin token ({state} {where}): {access.admin_token}", flush=True)
    try:
        sock = bind(host, port)
    except OSError as exc:
        fail(f"cannot listen on {host}:{port}: {exc.strerror}; pick another --port (0 = any free port)")
    print(f"listening on {url_of(sock, tls=tls is not None)}", flush=True)
    server = uvicorn.Server(uvicorn.Config(application, log_level="warning", access_log=False,
                                           timeout_graceful_shutdown=30,
                                           ssl_certfile=str(tls[0]) if tls else None,
                                           ssl_keyfile=str(tls[1]) if tls else None))
    server.run(sockets=[sock])


def _tls_files(cert: Path | None, key: Path | None) -> tuple[Path, Path] | None:
    """Check --tls-cert-file/--tls-key-file by loading them, so a bad pair is one line, not a traceback."""
    import ssl

    if cert is None and key is None:
        return None
    if cert is None or key is None:
        fail("--tls-cert-file and --tls-key-file go together: give both (or neither for plain HTTP)")
    assert cert is not None and key is not None
    for flag, path in (("--tls-cert-file", cert), ("--tls-key-file", key)):
        if not path.is_file():
            fail(f"{flag} {path}: no such file")
    try:
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(str(cert), str(key))
    except (ssl.SSLError, OSError) as exc:
        fail(f"cannot use --tls-cert-file {cert} with --tls-key-file {key}: {exc.strerror or exc}; "
             "give a PEM certificate and its matching PEM private key")
    return cert, key


@app.command()
def ingest(
    files: Annotated[list[Path], typer.Argument(help="Native log files (NDJSON, BIRD logs, audit logs).")],
    type: Annotated[str, typer.Option("--type", "-t", help="flows, dns, audit_ee, audit_kube, bgp, events, l7, waf, "
                                                           "policy_activity, runtime")],
    cluster: Annotated[str, typer.Option(help="Cluster the records belong to.")] = "cluster",
    server: Annotated[str | None, typer.Option(help="Send to a running server at this URL.",
                                                envvar="MARGAY_SERVER")] = None,
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


Server = Annotated[str | None, typer.Option(help="URL of a running server, e.g. http://127.0.0.1:8080.",
                                            envvar="MARGAY_SERVER")]


@app.command()
def query(
    type: Annotated[str, typer.Argument(help="flows, dns, audit, audit_ee, audit_kube, bgp, events, l7, waf, "
                                             "policy_activity, runtime")],
    selector: Annotated[str, typer.Argument(help='Selector, e.g. \'action = "deny" AND dest_namespace IN {"db"}\'')] = "",
    since: Annotated[str, typer.Option(help="How far back: 15m, 1h, 7d, or an RFC 3339 time.")] = "1h",
    until: Annotated[str, typer.Option(help="End of the range: now, or an RFC 3339 time.")] = "now",
    cluster: Annotated[list[str] | None, typer.Option(help="Cluster(s) to read; repeat for several. "
                                                      "Default: every cluster you may read.")] = None,
    limit: Annotated[int, typer.Option(help="Records to print (the newest).")] = 20,
    json: Annotated[bool, typer.Option("--json", help="Print NDJSON records instead of a table.")] = False,
    server: Server = None,
    data_dir: Annotated[Path, typer.Option("--data-dir", help="Without --server: the data directory of a "
                                           "stopped server to read.", envvar="MARGAY_DATA_DIR")] = Path("./data"),
    token: Annotated[str | None, typer.Option(help="Bearer token for --server.", envvar="MARGAY_TOKEN")] = None,
) -> None:
    """Search stored logs with margay's selector syntax: newest first, times in UTC.

    Reads every cluster you may read unless --cluster names some; a named cluster that holds no logs
    you may read is an error.
    """
    from .cli_query import QueryUsageError, check_type, open_target, readable_clusters, request_body, table

    try:
        type = check_type(type)
        with open_target(server, token, data_dir) as client:
            readable = readable_clusters(client, type)
            unknown = [c for c in cluster or [] if c not in readable]
            if unknown:
                known = ", ".join(readable) or "none yet"
                fail(f"no {type} logs of cluster {', '.join(unknown)} on this server (or none you may read); "
                     f"clusters with {type} logs you may read: {known}")
            result = client.search(type, request_body(type, selector, since, until, limit), cluster or None)
    except QueryUsageError as exc:
        fail(str(exc))
    if json:
        for item in result["items"]:
            out.print_json(orjson.dumps(item).decode()) if sys.stdout.isatty() else print(orjson.dumps(item).decode())
        return
    out.print(table(type, result, cluster or readable))


@app.command()
def simulate(
    server: Annotated[str | None, typer.Option(help="Post to a running server at this URL.")] = None,
    out_dir: Annotated[Path | None, typer.Option("--out", help="Write native log files here instead.")] = None,
    days: Annotated[float, typer.Option(help="Backfill this many days up to now.")] = 1.0,
    clusters: Annotated[list[str] | None, typer.Option("--cluster", help="Cluster names (repeat).")] = None,
    seed: Annotated[int, typer.Option(help="Seed: the same seed gives the same logs.")] = 1,
    live: Annotated[bool, typer.Option(help="After the backfill, keep sending current logs.")] = False,
    rate: Annotated[float | None, typer.Option(help="With --live: a time-lapse of about this many flow records "
                                               "per second (default: the backfill's own rate, every 5 minutes).")] = None,
    token: Annotated[str | None, typer.Option(help="Bearer token for --server.", envvar="MARGAY_TOKEN")] = None,
) -> None:
    """Generate a deterministic multi-cluster workload: native files, or posts to a server."""
    from .client import server_url
    from .simulate.runner import simulate_cmd

    if (server is None) == (out_dir is None):
        fail("give exactly one of --server URL or --out DIR")
    simulate_cmd(server=server_url(server) if server else None, out_dir=out_dir, days=days, clusters=clusters or ["cluster", "app-cluster-1"],
                 seed=seed, live=live, rate=rate, token=token, console=console)


@app.command()
def demo(
    data_dir: DataDir = Path("./demo-data"),
    port: Annotated[int, typer.Option(help="Port to bind; 0 picks a free port.")] = 8080,
    days: Annotated[float, typer.Option(help="Days of history to backfill.")] = 1.0,
) -> None:
    """A server on the embedded store, fed by a simulated two-cluster workload."""
    from .allocator import adopt

    adopt()
    from .simulate.runner import demo_cmd

    demo_cmd(data_dir=data_dir, port=port, days=days, console=console)


@app.command()
def bench(
    mode: Annotated[str, typer.Option(
        help="quick (under 5 minutes), full (under 45) or large (the query scenario at 10 M and 50 M flow records "
             "on both systems: ~1 h 45 min here; OpenSearch, with its bulk-load settings, loads 12-23k records/s on 2 "
             "cores).", envvar="BENCH")] = "quick",
    scenario: Annotated[list[str] | None, typer.Option(help="Scenario(s) to run; default: all.")] = None,
    out_dir: Annotated[Path, typer.Option("--out", help="Where results go.")] = Path("bench/results"),
    work_dir: Annotated[Path, typer.Option(help="Scratch space for servers and data.")] = Path(".bench"),
    summarize: Annotated[bool, typer.Option(help="Only rebuild latest.json and SUMMARY.md from the results.")] = False,
    sizes: Annotated[str | None, typer.Option(
        help="The query scenario's flow-record counts instead of the mode's, e.g. 10m or 2m,10m "
             "(k and m suffixes); the reports, peers and fleet scenarios and the detect one (full mode: its alerts) "
             "take the largest.")] = None,
) -> None:
    """Run the benchmark scenarios and write bench/results/ (JSON per scenario, latest.json, SUMMARY.md).

    Each mode's results go to their own file, <date>-<scenario>.json (quick), <date>-<scenario>-full.json and
    <date>-<scenario>-large.json, so a run never overwrites another mode's; latest.json takes the unsuffixed
    query numbers (p95s, records, bytes per record) from the largest data measured.
    """
    from .bench.harness import MODES, parse_sizes, rebuild, run
    from .bench.scenarios import SCENARIOS

    if summarize:
        rebuild(out_dir)
        out.print(f"rebuilt {out_dir / 'latest.json'} and {out_dir / 'SUMMARY.md'}")
        return

    names = scenario or list(SCENARIOS)
    unknown = [n for n in names if n not in SCENARIOS]
    if unknown:
        fail(f"unknown scenario {', '.join(unknown)}; known: {', '.join(SCENARIOS)}")
    if mode not in MODES:
        fail("--mode must be quick, full or large")
    try:
        counts = parse_sizes(sizes) if sizes else None
    except ValueError as exc:
        fail(f"--sizes: {exc}")
    latest = run(SCENARIOS, names, mode=mode, work_dir=work_dir, out_dir=out_dir, log=console.print, sizes=counts)
    table = Table(title=f"margay bench ({mode})")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, value in sorted(latest.items()):
        table.add_row(key, f"{value:,}")
    out.print(table)


@app.command()
def agent(
    config: Annotated[Path | None, typer.Option(help="YAML: a MargayAgent document (and/or a LogCollector).",
                                                envvar="MARGAY_AGENT_CONFIG")] = None,
    server: Annotated[str | None, typer.Option(help="URL of the margay server.")] = None,
    token_file: Annotated[Path | None, typer.Option(help="File holding this cluster's bearer token.")] = None,
    node: Annotated[str | None, typer.Option(help="Node name stamped as host (default $NODE_NAME).")] = None,
    cluster: Annotated[str | None, typer.Option(help="Cluster name (x-cluster-id).")] = None,
    state_dir: Annotated[Path | None, typer.Option(help="Checkpoints and spool directory.")] = None,
    flows: Annotated[str | None, typer.Option(help="Felix flows.log ('' = off).")] = None,
    dns: Annotated[str | None, typer.Option(help="Felix dns.log ('' = off).")] = None,
    l7: Annotated[str | None, typer.Option(help="Felix l7.log ('' = off).")] = None,
    bird: Annotated[str | None, typer.Option(help="BIRD log ('' = off).")] = None,
    bird6: Annotated[str | None, typer.Option(help="BIRD6 log ('' = off).")] = None,
    audit_ee: Annotated[str | None, typer.Option(help="Calico API server audit log ('' = off).")] = None,
    audit_kube: Annotated[str | None, typer.Option(help="kube-apiserver audit log ('' = off).")] = None,
    listen: Annotated[str | None, typer.Option(help="host:port for status, metrics, audit webhook.")] = None,
    aggregate: Annotated[int | None, typer.Option(help="Aggregate flows/DNS at this level before sending.")] = None,
    log_level: Annotated[str | None, typer.Option(help="debug, info, warning or error.")] = None,
) -> None:
    """Run the node agent: tail Calico's logs, checkpoint, spool and ship them to a server (docs/agent.md)."""
    from .agent import run_agent
    from .client import server_url
    from .errors import MargayError

    if server:
        server = server_url(server)  # `--server 127.0.0.1:8080` fails here, not later in the shipper
    flags = {k: v for k, v in locals().items() if k not in ("config", "run_agent", "MargayError", "server_url")}
    try:
        run_agent(flags, config=config)
    except MargayError as exc:
        fail(exc.message)



@app.command()
def aggregate(
    file: Annotated[Path, typer.Argument(help="NDJSON flow or DNS records ('-' = standard input).")],
    type: Annotated[str, typer.Option("--type", "-t", help="flows or dns")],
    level: Annotated[int | None, typer.Option(help="Level for allowed flows (0-3, default 2) or DNS (0-1, default 1).")] = None,
    level_denied: Annotated[int | None, typer.Option(help="Level for denied flows (0-3, default 1).")] = None,
    flush_interval: Annotated[int, typer.Option(help="Window in seconds records are merged over.")] = 300,
    per_node_limit: Annotated[int, typer.Option(help="DNS: records per node and window; the rest are "
                                                     "counted in one `unlogged` record (0 = no limit).")] = 0,
) -> None:
    """Aggregate flow or DNS logs as Felix does (docs/aggregation.md); writes NDJSON to standard output."""
    from .aggregate import aggregate as run_aggregate
    from .errors import MargayError

    if type not in ("flows", "dns"):
        fail("--type must be flows or dns")
    if file != Path("-") and not file.exists():
        fail(f"no such file: {file}")
    try:
        body = sys.stdin.buffer.read() if file == Path("-") else file.read_bytes()
        result = run_aggregate(type, body, level=level, level_denied=level_denied, flush_interval=flush_interval,
                               per_node_limit=per_node_limit)
    except ValueError as exc:
        fail(str(exc))
    except MargayError as exc:
        fail(exc.message)
    sys.stdout.buffer.write(result.body)
    sys.stdout.buffer.flush()
    console.print(f"{result.records_in} records in, {result.records_out} out")


# The operator's command groups (cli_admin.py), reports, and the detector's (cli_detect.py), in --help order.
from .cli_admin import access_app, archive_app, forward_app, retention_app  # noqa: E402
from .cli_detect import alerts_app, feeds_app  # noqa: E402
from .reports.cli import reports_app  # noqa: E402  (compliance reports, a side path beside the store)

app.add_typer(access_app, name="access")
app.add_typer(retention_app, name="retention")
app.add_typer(reports_app, name="reports")
app.add_typer(forward_app, name="forward")
app.add_typer(archive_app, name="archive")
app.add_typer(alerts_app, name="alerts")
app.add_typer(feeds_app, name="feeds")


def _explain(exc: BaseException) -> str | None:
    """One line that says what went wrong and what to do, for the errors a user can cause; None for bugs."""
    import httpx

    from .client import BadServerURL, ClientError
    from .errors import MargayError

    if isinstance(exc, ClientError):
        if exc.status == 401:
            return (f"{exc}: pass --token TOKEN or set MARGAY_TOKEN (`margay serve` prints its admin token; "
                    "it is also in <data-dir>/admin-token)")
        if exc.status == 403:
            return f"{exc} (ask an administrator for an RBAC grant, or pick another --cluster)"
        return str(exc)
    if isinstance(exc, BadServerURL):
        return str(exc)
    if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout):
        return f"cannot reach the server ({exc}); is `margay serve` running there? (check --server)"
    if isinstance(exc, httpx.UnsupportedProtocol | httpx.InvalidURL):
        return f"--server is not a usable URL ({exc}); use e.g. http://127.0.0.1:8080"
    if isinstance(exc, httpx.TimeoutException):
        return f"the server did not answer in time ({exc}); try again, or narrow --since"
    if isinstance(exc, httpx.TransportError):
        return f"talking to the server failed ({type(exc).__name__}: {exc}); check --server"
    if isinstance(exc, MargayError):
        return exc.message
    return None


def main() -> None:
    import os

    try:
        code = app(standalone_mode=False)  # usage errors come back as exceptions: one line each, below
    except typer.TyperException as exc:  # click's UsageError, BadParameter, NoSuchOption, ... (typer's click)
        if type(exc).__name__ == "NoArgsIsHelpError":  # `margay` or a command group alone: help was printed
            sys.exit(2)
        ctx = getattr(exc, "ctx", None)
        hint = f" (see `{ctx.command_path} --help`)" if ctx is not None else ""
        console.print(f"[red]error:[/red] {escape(exc.format_message())}{escape(hint)}", highlight=False,
                      soft_wrap=True)
        sys.exit(getattr(exc, "exit_code", 2))
    except typer.Abort:
        console.print("aborted")
        sys.exit(130)
    except Exception as exc:
        if os.environ.get("MARGAY_DEBUG"):
            raise
        message = _explain(exc)
        if message is None:  # a bug: still one line, and how to see the rest
            message = (f"unexpected {type(exc).__name__}: {exc} (a bug in margay: rerun with MARGAY_DEBUG=1 "
                       "for the traceback and report it)")
        console.print(f"[red]error:[/red] {escape(message)}", highlight=False, soft_wrap=True)
        sys.exit(2)
    sys.exit(code if isinstance(code, int) else 0)


__all__ = ["app", "main", "datetime", "timedelta", "UTC"]
