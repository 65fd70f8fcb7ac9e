"""The agent's settings in one table; precedence: flag > environment (MARGAY_AGENT_*) > config file > default.

A config file holds a `kind: MargayAgent` document (settings under `spec:`) or a plain `agent:` mapping,
and may also hold Calico's `LogCollector` whose `spec.additionalSources.eksCloudwatchLog` is honoured.
"""

from __future__ import annotations

import os
import re
import socket
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from ..config import load_documents, redacted_repr, resolve
from ..errors import ConfigError

MiB = 1024 * 1024


def setting(default: Any, help: str, *, secret: bool = False) -> Any:
    return field(default=default, metadata={"help": help, "secret": secret})


# Source name -> (log type, default path as in spec §0). An empty path turns a source off.
FILE_SOURCES: dict[str, tuple[str, str]] = {
    "flows": ("flows", "/var/log/calico/flowlogs/flows.log"),
    "dns": ("dns", "/var/log/calico/dnslogs/dns.log"),
    "l7": ("l7", "/var/log/calico/l7logs/l7.log"),
    "bird": ("bgp", "/var/log/calico/bird/current"),
    "bird6": ("bgp", "/var/log/calico/bird6/current"),
    "audit_ee": ("audit_ee", "/var/log/calico/audit/tsee-audit.log"),
    "audit_kube": ("audit_kube", "/var/log/calico/audit/kube-audit.log"),
}


@dataclass
class AgentSettings:
    server: str = setting("http://127.0.0.1:8080", "URL of the margay server the agent ships to.")
    token_file: Path | None = setting(None, "File holding the bearer token of this cluster (re-read when it changes).")
    token: str | None = setting(None, "Bearer token (prefer token_file).", secret=True)
    node: str = setting("", "Node name stamped as `host` (default: $NODE_NAME, else the hostname).")
    cluster: str = setting("cluster", "Cluster name sent as x-cluster-id (the server may enforce the token's).")
    state_dir: Path = setting(Path("/var/lib/margay-agent"), "Checkpoints and the spool live here.")
    flows: str = setting(FILE_SOURCES["flows"][1], "Felix flow log file ('' turns it off).")
    dns: str = setting(FILE_SOURCES["dns"][1], "Felix DNS log file ('' turns it off).")
    l7: str = setting(FILE_SOURCES["l7"][1], "Felix L7 log file, tailed once it exists ('' turns it off).")
    bird: str = setting(FILE_SOURCES["bird"][1], "BIRD log file ('' turns it off).")
    bird6: str = setting(FILE_SOURCES["bird6"][1], "BIRD6 log file ('' turns it off).")
    audit_ee: str = setting(FILE_SOURCES["audit_ee"][1], "Calico API server audit log ('' turns it off).")
    audit_kube: str = setting(FILE_SOURCES["audit_kube"][1], "kube-apiserver audit log ('' turns it off).")
    listen: str = setting("127.0.0.1:9081", "host:port of the status, metrics and audit webhook endpoint; '' = none.")
    webhook: bool = setting(True, "Accept kube-apiserver audit webhook EventLists on POST /audit/webhook.")
    webhook_token_file: Path | None = setting(
        None, "File holding the bearer token kube-apiserver sends to the webhook (the `token` of its webhook "
        "kubeconfig; re-read when it changes). Every post must carry it. Without it the webhook is served only "
        "when listen is a loopback address.")
    tls_cert_file: Path | None = setting(
        None, "Serve listen over HTTPS with this certificate (PEM, chain allowed; needs tls_key_file): "
        "kube-apiserver sends its webhook token only to an https:// URL.")
    tls_key_file: Path | None = setting(None, "Private key (PEM) of tls_cert_file.")
    max_inflight_body_bytes: int = setting(
        128 * MiB, "Webhook bodies (as sent and inflated) held at once; past it a post is answered 503 with "
        "Retry-After, which kube-apiserver retries. A post alone always passes (up to its 64 MiB bound).")
    batch_bytes: int = setting(2 * MiB, "Ship a batch once this many bytes of whole lines are ready (spooled batches are coalesced up to it).")
    batch_age: float = setting(2.0, "... or once the oldest unshipped line is this many seconds old.")
    poll_interval: float = setting(0.25, "Seconds between looks at the files.")
    rotate_wait: float = setting(1.0, "Seconds a renamed file is still read before moving to the new one.")
    rotated_names: str = setting(
        "{name}.*,{name}-*,{stem}-*{ext},@*.s,@*.u",
        "Glob patterns (comma-separated, in the log's folder) of its rotated files: {name} flows.log, {stem} "
        "flows, {ext} .log; covers flows.log.1, flows.log-20261205, flows-2026-12-05T10-00-00.000.log, @4000….s.")
    spool_max_bytes: int = setting(512 * MiB, "Bound of the on-disk spool (gzip bytes); past it files are not read further until there is room.")
    senders: int = setting(2, "Batches in flight at once (at most one per source, so order per file holds).")
    backoff_base: float = setting(0.25, "First retry delay in seconds (doubles each time, with jitter).")
    backoff_max: float = setting(30.0, "Longest retry delay in seconds.")
    request_timeout: float = setting(60.0, "Seconds before a request to the server is abandoned and retried.")
    aggregate: int | None = setting(None, "Aggregate flows/DNS before sending at this level (needs margay.aggregate).")
    cloudwatch_group: str | None = setting(None, "EKS: CloudWatch Logs group holding kube-apiserver audit streams.")
    cloudwatch_region: str | None = setting(None, "EKS: AWS region of the log group.")
    cloudwatch_stream_prefix: str = setting("kube-apiserver-audit-", "EKS: prefix of the audit log streams.")
    cloudwatch_fetch_interval: float = setting(60.0, "EKS: seconds between fetches.")
    cloudwatch_endpoint: str | None = setting(None, "EKS: CloudWatch Logs endpoint URL (default: AWS's).")
    cloudwatch_audit_filter: str = setting(
        "calico", "EKS: which audit events to ship: calico (as Calico's EKS pipeline: level RequestResponse and "
        "verb create, patch, update or delete) or all.")
    log_level: str = setting("info", "debug, info, warning or error.")

    def __repr__(self) -> str:
        return redacted_repr(self)

    @staticmethod
    def env_name(name: str) -> str:
        return "MARGAY_AGENT_" + name.upper()

    @classmethod
    def load(cls, flags: dict[str, Any] | None = None, environ: dict[str, str] | None = None,
             config: Path | None = None) -> AgentSettings:
        flags = {k: v for k, v in (flags or {}).items() if v is not None}
        environ = dict(os.environ if environ is None else environ)
        config_path = config or environ.get(cls.env_name("config"))
        from_file = file_settings(Path(config_path)) if config_path else {}
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(from_file) - known)
        if unknown:
            raise ConfigError(f"config file {config_path}: unknown agent setting(s): {', '.join(unknown)}")
        settings = cls(**resolve(cls, flags, environ, from_file))
        if not settings.node:
            settings.node = environ.get("NODE_NAME") or socket.gethostname()
        if settings.senders < 1 or settings.batch_bytes < 1024 or settings.spool_max_bytes < 1:
            raise ConfigError("senders must be >= 1, batch_bytes >= 1024 and spool_max_bytes >= 1")
        if settings.max_inflight_body_bytes < MiB:
            raise ConfigError("max_inflight_body_bytes must be >= 1048576 (1 MiB); the default is 128 MiB")
        if (settings.tls_cert_file is None) != (settings.tls_key_file is None):
            raise ConfigError("tls_cert_file and tls_key_file go together: give both (or neither for plain HTTP)")
        check_rotated_names(settings.rotated_names)
        return settings

    def bearer(self) -> str | None:
        """The current token: token_file (re-read each time, so rotated tokens are picked up) or token."""
        if self.token_file is not None:
            try:
                return self.token_file.read_text().strip() or None
            except OSError as exc:
                raise ConfigError(f"token file {self.token_file}: {exc.strerror}") from None
        return self.token

    def file_sources(self) -> dict[str, tuple[str, Path]]:
        """Enabled file sources: name -> (log type, path)."""
        out = {}
        for name, (log_type, _) in FILE_SOURCES.items():
            path = getattr(self, name)
            if path and str(path).lower() not in ("none", "off", "false"):
                out[name] = (log_type, Path(path))
        return out


def check_rotated_names(patterns: str) -> None:
    """rotated_names: comma-separated glob patterns of file names (no folders) using {name}, {stem}, {ext}."""
    for p in patterns.split(","):
        p = p.strip()
        try:
            name = p.format(name="flows.log", stem="flows", ext=".log")
        except (KeyError, IndexError, ValueError):
            raise ConfigError(f"rotated_names: pattern {p!r} may only use {{name}}, {{stem}} and {{ext}}") from None
        if "/" in name or name in ("*", "flows.log"):
            raise ConfigError(f"rotated_names: pattern {p!r} must name files in the log's own folder, "
                              "other than the log itself (e.g. {name}.*)")


def _snake(key: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", key).lower().replace("-", "_")


def file_settings(path: Path) -> dict[str, Any]:
    """Agent settings from a YAML file: MargayAgent spec / `agent:` mapping, plus LogCollector's EKS source."""
    out: dict[str, Any] = {}
    for doc in load_documents(path):
        if doc.get("kind") == "MargayAgent":
            out.update({_snake(k): v for k, v in (doc.get("spec") or {}).items()})
        elif isinstance(doc.get("agent"), dict):
            out.update({_snake(k): v for k, v in doc["agent"].items()})
        elif doc.get("kind") == "LogCollector":
            eks = ((doc.get("spec") or {}).get("additionalSources") or {}).get("eksCloudwatchLog")
            if isinstance(eks, dict):
                for src, dst in (("groupName", "cloudwatch_group"), ("region", "cloudwatch_region"),
                                 ("streamPrefix", "cloudwatch_stream_prefix"),
                                 ("fetchInterval", "cloudwatch_fetch_interval")):
                    if eks.get(src) is not None:
                        out.setdefault(dst, eks[src])
    return out


def documented() -> list[tuple[str, str, Any, str]]:
    """(flag/config key, environment variable, default, help) of every agent setting."""
    return [(f.name, AgentSettings.env_name(f.name), f.default, f.metadata["help"]) for f in fields(AgentSettings)]
