"""`margay access ...`, `margay retention ...`, `margay forward ...` and `margay archive ...`: the operator's
commands around the store (who may read what, what is kept, what is shipped out and brought back)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer
from rich.table import Table

from .cli_common import DataDir, console, fail, out

access_app = typer.Typer(help="Access: ask what margay's RBAC check answers for a user.", no_args_is_help=True)


@access_app.command("check")
def access_check(
    user: Annotated[str, typer.Argument(help="User name as RBAC subjects name it (alice, "
                                        "system:serviceaccount:NS:NAME).")],
    type: Annotated[str, typer.Argument(help="Log type: flows, dns, audit_ee, audit_kube, bgp, events, l7, waf, "
                                        "policy_activity, runtime, "
                                        "or 'all' for a table.")],
    cluster: Annotated[str, typer.Argument(help="Cluster name (the RBAC resource).")],
    namespace: Annotated[str, typer.Option("--namespace", "-n", help="Ask within this namespace (RoleBindings "
                                           "there count too).")] = "",
    group: Annotated[list[str] | None, typer.Option("--group", "-g", help="A group of the user (repeat); "
                                                    "system:authenticated is added.")] = None,
    verb: Annotated[str, typer.Option(help="get (read) or create (write as a person).")] = "get",
    kubeconfig: Annotated[Path | None, typer.Option(help="Ask this API server (SubjectAccessReview).",
                                                    envvar="MARGAY_KUBECONFIG")] = None,
    in_cluster: Annotated[bool, typer.Option("--in-cluster", help="Ask the API server of this pod.")] = False,
    rbac: Annotated[Path | None, typer.Option(help="Evaluate this RBAC YAML (file or folder) locally instead.",
                                              envvar="MARGAY_RBAC")] = None,
) -> None:
    """May USER read log TYPE of CLUSTER? What `kubectl auth can-i` cannot answer for lma.tigera.io.

    Prints yes or no with the request asked (exit 0 for yes, 1 for no), like `kubectl auth can-i`;
    with TYPE all, one row per log type (exit 0 when any is readable).
    """
    from .access.check import check
    from .access.identity import person
    from .access.kube import KubeClient, from_kubeconfig
    from .access.kube import in_cluster as pod_connection
    from .access.rbac import Policy, load_documents
    from .api.common import valid_cluster
    from .errors import MargayError
    from .logtypes import REGISTRY

    if sum(bool(x) for x in (kubeconfig, in_cluster, rbac)) != 1:
        fail("give exactly one of --kubeconfig FILE, --in-cluster or --rbac PATH")
    if type != "all" and type not in REGISTRY:
        fail(f"unknown log type {type!r}; use one of: {', '.join(REGISTRY)}, or all")
    if verb not in ("get", "create"):
        fail(f"unknown --verb {verb!r}: margay asks get (read) or create (write)")
    kube = policy = None
    try:
        valid_cluster(cluster)
        if not user.strip():
            fail("USER is empty: give a user name")
        who = person(user, group or [])
        if rbac is not None:
            if not rbac.exists():
                fail(f"--rbac {rbac}: no such file or folder")
            policy = Policy(load_documents(rbac), str(rbac))
        else:
            kube = KubeClient(from_kubeconfig(kubeconfig) if kubeconfig else pod_connection())
        types = list(REGISTRY.values()) if type == "all" else [REGISTRY[type]]
        answers = [(lt, check(who, lt, cluster, namespace=namespace, verb=verb, kube=kube, policy=policy))
                   for lt in types]
    except MargayError as exc:
        fail(exc.message)
    finally:
        if kube is not None:
            kube.close()
    for lt, d in answers:
        line = f"{'yes' if d.allowed else 'no'}"
        if type == "all":
            line = f"{lt.name:<11} {line}"
        out.print(f"{line}  ({d.attributes(verb, cluster, namespace)}; {d.reason})", highlight=False,
                  soft_wrap=True)
    raise typer.Exit(0 if all(d.allowed for _, d in answers) or (type == "all" and any(
        d.allowed for _, d in answers)) else 1)


retention_app = typer.Typer(help="Retention: what is kept, what expires next, and dropping what has expired.",
                            no_args_is_help=True)
ConfigFile = Annotated[Path | None, typer.Option("--config", help="YAML file holding the LogStorage resource.",
                                                 envvar="MARGAY_CONFIG")]


def _retention(data_dir: Path, config: Path | None) -> Any:
    from .errors import MargayError
    from .retention import RetentionPolicy, RetentionScheduler
    from .store.duckdb import DuckDBBackend

    try:
        policy = RetentionPolicy.from_file(config)
    except MargayError as exc:
        fail(exc.message)
    if not (data_dir / "store").is_dir():
        fail(f"{data_dir} holds no margay store")
    return RetentionScheduler(DuckDBBackend(data_dir, compact_interval=3600), policy)


@retention_app.command("status")
def retention_status(data_dir: DataDir = Path("./data"), config: ConfigFile = None,
                     json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
                     ) -> None:
    """Per log type and cluster: days kept, partitions, bytes, and what expires next and when."""
    sched = _retention(data_dir, config)
    try:
        rows = sched.status()
    finally:
        sched.backend.close()
    if json:
        print(orjson.dumps(rows, option=orjson.OPT_INDENT_2).decode())
        return
    table = Table(title=f"retention in {data_dir}")
    for col in ("type", "cluster", "days", "kept", "records", "bytes", "expires next", "at (UTC)", "overdue"):
        table.add_column(col, justify="right" if col in ("days", "records", "bytes") else "left")
    for r in rows:
        kept = f"{r['first_day']}..{r['last_day']} ({r['partitions']})" if r["partitions"] else "-"
        table.add_row(r["type"], r["cluster"], str(r["days"]), kept, f"{r['records']:,}", f"{r['bytes']:,}",
                      r["next_expiry_day"] or "-", (r["next_expiry_at"] or "-")[:16],
                      ", ".join(r["overdue"]) or "-")
    out.print(table)


@retention_app.command("apply")
def retention_apply(data_dir: DataDir = Path("./data"), config: ConfigFile = None,
                    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only show what would go.")] = False,
                    ) -> None:
    """Drop every expired partition now (stop `margay serve` on this data directory first)."""
    sched = _retention(data_dir, config)
    try:
        gone = sched.run_once(dry_run=dry_run)
    finally:
        sched.backend.close()
    verb = "would drop" if dry_run else "dropped"
    for p in gone:
        out.print(f"{verb} {p.index} ({p.docs:,} records, {p.bytes:,} bytes)")
    out.print(f"{verb} {len(gone)} partitions, {sum(p.bytes for p in gone):,} bytes")



forward_app = typer.Typer(help="Forwarding to S3, syslog and Splunk (LogCollector additionalStores).",
                          no_args_is_help=True)
archive_app = typer.Typer(help="S3 archives: bring archived logs back for a time range.", no_args_is_help=True)


@forward_app.command("status")
def forward_status(data_dir: DataDir = Path("./data"),
                   config: Annotated[Path, typer.Option("--config", help="YAML file holding the LogCollector.",
                                                        envvar="MARGAY_CONFIG")] = Path("margay.yaml"),
                   server: Annotated[str | None, typer.Option(help="Also read delivered/retried/failed counts "
                                                              "from this running server's /-/metrics.")] = None,
                   json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
                   ) -> None:
    """Per store: its log types, cursor, lag (records and seconds behind) and, with --server, its counts."""
    from .errors import MargayError
    from .forward.config import from_file
    from .forward.status import offline_status, scrape
    from .store.duckdb.offline import OfflineStore  # the embedded engine's files: a server is not needed

    try:
        configs = from_file(config)
        store = OfflineStore(data_dir)
        try:
            rows = offline_status(data_dir, configs, store)
        finally:
            store.close()
    except MargayError as exc:
        fail(exc.message)
    if server:
        import httpx

        text = httpx.get(server.rstrip("/") + "/-/metrics", timeout=10).text
        for r in rows:
            r.update({k: int(v) for k, v in scrape(text, r["store"]).items()})
    if json:
        print(orjson.dumps(rows, option=orjson.OPT_INDENT_2).decode())
        return
    table = Table(title=f"forwarding from {data_dir}")
    cols = ["store", "types", "lag records", "lag seconds"] + (["delivered", "retried", "failed", "truncated"] if server else [])
    for col in cols:
        table.add_column(col)
    for r in rows:
        cells = [r["store"], ", ".join(r["types"]), f"{r['lag_records']:,}", f"{r['lag_seconds']:.1f}"]
        cells += [f"{r[k]:,}" for k in ("delivered", "retried", "failed", "truncated")] if server else []
        table.add_row(*cells)
    out.print(table)


@archive_app.command("import")
def archive_import(
    bucket: Annotated[str, typer.Option(help="Bucket of the S3 store.")],
    start: Annotated[datetime, typer.Option("--from", help="Start of the time range (UTC unless an offset is given).")],
    end: Annotated[datetime, typer.Option("--to", help="End of the time range.")],
    prefix: Annotated[str, typer.Option(help="The store's bucketPath.")] = "",
    s3_endpoint: Annotated[str | None, typer.Option(help="S3-compatible endpoint URL (default: AWS).")] = None,
    region: Annotated[str, typer.Option(help="S3 region.", envvar="AWS_REGION")] = "us-east-1",
    path_style: Annotated[bool, typer.Option("--path-style", help="Path-style bucket addressing.")] = False,
    types: Annotated[list[str] | None, typer.Option("--type", help="Only these log types (repeatable).")] = None,
    clusters: Annotated[list[str] | None, typer.Option("--cluster", help="Only these clusters (repeatable).")] = None,
    server: Annotated[str | None, typer.Option(help="Re-ingest into this running server.")] = None,
    token: Annotated[str | None, typer.Option(help="Bearer token for --server.", envvar="MARGAY_TOKEN")] = None,
    data_dir: DataDir = Path("./data"),
) -> None:
    """Re-ingest archived records with time in [--from, --to] (credentials: AWS_ACCESS_KEY_ID/SECRET)."""
    from rich.progress import Progress

    from .client import Client, local_client
    from .forward.archive import import_archive, list_archive
    from .forward.s3 import s3_client

    start, end = (d if d.tzinfo else d.replace(tzinfo=UTC) for d in (start, end))
    if end < start:
        fail("--to is before --from")
    client = s3_client({"region": region, "endpoint": s3_endpoint, "path_style": path_style}, 30.0)
    objects = list_archive(client, bucket, prefix, start, end, types=types, clusters=clusters)
    ctx = Client(server, token) if server else local_client(data_dir)
    with ctx as api, Progress(console=console) as progress:
        task = progress.add_task("importing", total=len(objects))
        result = import_archive(
            client, bucket, prefix, start, end,
            lambda lt, cluster, body, key: api.bulk(lt, body, cluster=cluster, key=key),
            types=types, clusters=clusters, progress=lambda obj, n: progress.advance(task))
    out.print(orjson.dumps(result).decode())
    if result["failed"]:
        raise typer.Exit(1)
