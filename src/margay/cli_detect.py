"""`margay alerts ...` and `margay feeds ...`: check resources, list and use the built-in templates, pull feeds
once, and dry-run an alert over a past window before saving it."""

from __future__ import annotations

import ipaddress
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from rich.console import Console
from rich.markup import escape
from rich.table import Table

alerts_app = typer.Typer(help="GlobalAlerts: check, templates, dry runs.", no_args_is_help=True)
feeds_app = typer.Typer(help="GlobalThreatFeeds: check and pull.", no_args_is_help=True)
out = Console()
err = Console(stderr=True)

Resources = Annotated[Path, typer.Argument(help="A YAML file or a folder of GlobalThreatFeed / GlobalAlert / "
                                                "GlobalAlertTemplate resources.")]


def _fail(message: str) -> None:
    err.print(f"[red]error:[/red] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(1)


def _load(path: Path) -> list[Any]:
    from .detect.load import load_resources
    from .errors import MargayError

    try:
        return load_resources(path)
    except MargayError as exc:
        _fail(exc.message)
        raise AssertionError from None


@alerts_app.command("check")
def alerts_check(path: Resources) -> None:
    """Check every resource in PATH and list the alerts; exit 1 naming the file and field of the first bad one."""
    from .detect.resources import Alert

    table = Table("kind", "name", "dataSet", "severity", "period", "lookback", "aggregateBy", "metric")
    for r in _load(path):
        if isinstance(r, Alert):
            table.add_row(r.kind, r.name, r.data_set, str(r.severity), str(r.period), str(r.lookback),
                          ",".join(r.aggregate_by) or "-",
                          f"{r.metric} {r.condition} {r.threshold:g}" if r.metric and r.threshold is not None
                          else r.metric or "-")
    out.print(table)


@alerts_app.command("templates")
def alerts_templates() -> None:
    """List margay's built-in GlobalAlertTemplates."""
    from .detect.templates import templates

    table = Table("name", "dataSet", "severity", "description")
    for name, t in sorted(templates().items()):
        table.add_row(name, t.data_set, str(t.severity), t.description)
    out.print(table)


@alerts_app.command("new")
def alerts_new(
    template: Annotated[str, typer.Argument(help="A built-in template (see `margay alerts templates`).")],
    name: Annotated[str, typer.Argument(help="Name of the GlobalAlert to write.")],
    set_: Annotated[list[str] | None, typer.Option("--set", help="Override a spec field: key=value (YAML value), "
                                                                 "e.g. --set threshold=50. Repeat for several.")] = None,
) -> None:
    """Print a GlobalAlert made from a template, ready for --detect-resources or the API."""
    from .detect.templates import alert_from_template
    from .errors import MargayError

    overrides: dict[str, Any] = {}
    for item in set_ or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            _fail(f"--set {item!r}: expected key=value, e.g. --set threshold=50")
        overrides[key] = yaml.safe_load(value)
    try:
        doc = alert_from_template(template, name, **overrides)
    except MargayError as exc:
        _fail(exc.message)
    print(yaml.safe_dump(doc, sort_keys=False), end="")


@alerts_app.command("dry-run")
def alerts_dry_run(
    path: Resources,
    name: Annotated[str | None, typer.Option(help="Which GlobalAlert in PATH (default: the only one).")] = None,
    since: Annotated[str, typer.Option(help="Start of the window: 24h, 7d, or an RFC 3339 time.")] = "24h",
    until: Annotated[str, typer.Option(help="End of the window: now or an RFC 3339 time.")] = "now",
    server: Annotated[str | None, typer.Option(help="URL of a running server (else --data-dir).",
                                               envvar="MARGAY_SERVER")] = None,
    token: Annotated[str | None, typer.Option(help="Bearer token for --server.", envvar="MARGAY_TOKEN")] = None,
    data_dir: Annotated[Path, typer.Option("--data-dir", help="Without --server: the data directory of a "
                                                             "stopped server.")] = Path("./data"),
) -> None:
    """Evaluate an alert over a past window without saving it: how many events it would have raised."""
    from .client import BadServerURL, Client, local_client
    from .detect.resources import Alert

    alerts = [r for r in _load(path) if isinstance(r, Alert) and r.kind == "GlobalAlert"]
    chosen = [a for a in alerts if name is None or a.name == name]
    if len(chosen) != 1:
        _fail(f"{path} holds {len(alerts)} GlobalAlerts ({', '.join(a.name for a in alerts) or 'none'}); "
              "pick one with --name")
    alert = chosen[0]
    window = {"from": _relative(since), "to": _relative(until)}
    body = {"alert": {k: v for k, v in alert.source.items() if k != "status"}, **window}
    try:
        ctx = Client(server, token) if server else local_client(data_dir)
        with ctx as client:
            r = client.http.post("/apis/projectcalico.org/v3/globalalerts/-/dry-run", json=body)
    except BadServerURL as exc:
        _fail(str(exc))
    if r.status_code != 200:
        _fail(r.json().get("error", {}).get("message", r.text) if r.headers.get("content-type", "").startswith(
            "application/json") else r.text)
    answer = r.json()
    out.print(f"{alert.name}: {answer['events']} event(s) from {answer['from']} to {answer['to']}"
              + "".join(f"\n  {c}: {n}" for c, n in sorted(answer["by_cluster"].items())))
    for e in answer["sample"][:10]:
        out.print(f"  - {escape(e['description'])}", highlight=False)


def _relative(text: str) -> str:
    t = text.strip()
    return f"now-{t}" if t and t[0].isdigit() and t[-1] in "smhdw" and t[:-1].isdigit() else t


@feeds_app.command("check")
def feeds_check(path: Resources) -> None:
    """Check every resource in PATH and list the threat feeds."""
    from .detect.resources import ThreatFeed

    table = Table("name", "content", "mode", "source", "period", "format")
    for r in _load(path):
        if isinstance(r, ThreatFeed):
            table.add_row(r.name, r.content, r.mode, r.url or "push", str(r.period) if r.url else "-",
                          r.format.kind if r.url else "-")
    out.print(table)


@feeds_app.command("pull")
def feeds_pull(
    path: Resources,
    allow_network: Annotated[list[str] | None, typer.Option(help="A CIDR feed URLs may reach despite the SSRF "
                                                                 "guard (repeat), e.g. 127.0.0.0/8.")] = None,
    secrets_dir: Annotated[Path | None, typer.Option(help="Folder of <name>/<key> files for header "
                                                           "secretKeyRef/configMapKeyRef.")] = None,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for each feed.")] = 30.0,
) -> None:
    """Pull every enabled pull feed in PATH once and show what it holds; exit 1 if any pull fails."""
    from .detect.feeds import FeedPuller, FeedStatus
    from .detect.resources import ThreatFeed

    try:
        allowed = [ipaddress.ip_network(n, strict=False) for n in allow_network or []]
    except ValueError as exc:
        _fail(f"--allow-network: {exc}")
    puller = FeedPuller(timeout=timeout, allowed=allowed, secrets_dir=secrets_dir)
    table = Table("name", "entries", "skipped", "result")
    failed = 0
    for r in _load(path):
        if not isinstance(r, ThreatFeed) or r.url is None or not r.enabled:
            continue
        status = FeedStatus()
        ok = puller.sync(r, status, datetime.now(UTC))
        failed += not ok
        table.add_row(r.name, str(len(status.entries)), str(status.skipped),
                      "ok" if ok else escape(status.error_conditions[-1]["message"]))
    out.print(table)
    if failed:
        raise typer.Exit(1)
