"""Settings in one table: each declared once with its default, type, help and environment variable.

Precedence: command-line flag > environment (MARGAY_*) > config file (`margay:` section) > default.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from .errors import ConfigError


def setting(default: Any, help: str, *, secret: bool = False) -> Any:
    return field(default=default, metadata={"help": help, "secret": secret})


@dataclass
class Settings:
    data_dir: Path = setting(Path("./data"), "Where the embedded store and state live.")
    host: str = setting("127.0.0.1", "Address to bind.")
    port: int = setting(8080, "Port to bind; 0 picks a free one.")
    config: Path | None = setting(None, "YAML file with LogStorage, LogCollector and margay settings.")
    backend: str = setting("duckdb", "Storage engine: duckdb (embedded) or opensearch.")
    opensearch_url: str | None = setting(None, "OpenSearch/Elasticsearch URL when backend=opensearch.")
    opensearch_user: str | None = setting(None, "Basic-auth user for OpenSearch.")
    opensearch_password: str | None = setting(None, "Basic-auth password for OpenSearch.", secret=True)
    opensearch_token: str | None = setting(None, "Bearer token for OpenSearch (instead of basic auth).", secret=True)
    opensearch_ca_file: Path | None = setting(None, "CA bundle (PEM) that signs OpenSearch's TLS certificate.")
    opensearch_prefix: str = setting("", "Prefix before every index margay creates in OpenSearch (to share a "
                                     "cluster); empty keeps Calico's names.")
    max_body_bytes: int = setting(100 * 1024 * 1024, "Largest accepted ingest body (after decompression).")
    max_inflight_body_bytes: int = setting(512 * 1024 * 1024, "Request bodies (as sent and inflated) all requests "
                                           "may hold at once; past it a request gets 503 with Retry-After (one "
                                           "request alone always gets up to max_body_bytes).")
    log_level: str = setting("info", "Log level: debug, info, warning, error.")
    min_free_bytes: int = setting(256 * 1024 * 1024, "Disk guard: below this many free bytes on the data volume "
                                  "ingest answers 507 (0 turns the guard off).")
    store_memory_bytes: int = setting(1024 * 1024 * 1024, "Memory the embedded store's query engine may hold "
                                      "(background compaction: half of it); larger sorts and aggregations spill "
                                      "to <data_dir>/scratch. 0 = DuckDB's default, 80% of RAM per engine.")
    retention_interval: int = setting(900, "Seconds between retention runs that drop expired partitions.")
    auth: str = setting("auto", "Authentication: auto (kube with --kubeconfig, tokens with --tokens/--rbac or an "
                        "admin token, else none), none (development, loopback only), tokens or kube.")
    tokens: Path | None = setting(None, "YAML tokens file: [{token, user, groups}] for people, [{token, cluster}] "
                                  "for writers; `sha256:<hex>` values accepted.")
    rbac: Path | None = setting(None, "ClusterRole/ClusterRoleBinding/Role/RoleBinding YAML: a file or a folder.")
    kubeconfig: Path | None = setting(None, "Kubeconfig of the API server for TokenReview and SubjectAccessReview "
                                      "(auth=kube without it: in-cluster service account).")
    cookie_secure: str = setting("auto", "The UI's session cookies' Secure flag: auto (when the request came over "
                                 "https), always (behind a TLS-terminating ingress), never.")
    admin_token: bool = setting(False, "Generate an admin token into <data_dir>/admin-token (mode 0600) and "
                                "accept it; `margay serve` does this when no auth is configured.")

    detect_resources: Path | None = setting(None, "GlobalThreatFeed/GlobalAlert/GlobalAlertTemplate YAML for the "
                                            "detector: a file or a folder (see docs/detect.md).")
    detect_interval: int = setting(30, "Seconds between detector runs (each feed and alert still keeps its own "
                                       "period).")
    feeds_allow_networks: str = setting("", "Comma-separated CIDRs that threat-feed URLs may reach although the "
                                            "SSRF guard refuses loopback, link-local and metadata addresses.")
    feeds_secrets_dir: Path | None = setting(None, "Folder of <name>/<key> files that feed headers' secretKeyRef and "
                                                   "configMapKeyRef read (else MARGAY_FEED_<NAME>_<KEY>).")
    kube_watch: bool = setting(True, "With --kubeconfig, also list+watch the API server's GlobalAlerts, "
                               "GlobalThreatFeeds, GlobalReports, LogStorage and the compliance kinds (snapshots); "
                               "false uses it for TokenReview/SubjectAccessReview only.")
    reports_resources: Path | None = setting(None, "GlobalReport YAML whose jobs `margay serve` runs: a file or a "
                                             "folder (see docs/reports.md).")
    reports_cluster: str = setting("cluster", "The cluster that GlobalReports, snapshots and report jobs of "
                                   "`margay serve` belong to.")
    reports_interval: int = setting(60, "Seconds between checks for due report jobs and snapshots.")
    snapshot_hour: int = setting(0, "Hour of the day (UTC, 0-23) of the daily compliance snapshot "
                                 "(Calico's TIGERA_COMPLIANCE_SNAPSHOT_HOUR).")
    snapshot_dumps: Path | None = setting(None, "Without --kubeconfig: a folder (or file) of `kubectl get -o "
                                          "yaml` dumps that the daily snapshot reads.")

    def __repr__(self) -> str:
        return redacted_repr(self)

    @staticmethod
    def env_name(name: str) -> str:
        return "MARGAY_" + name.upper()

    @classmethod
    def load(cls, flags: dict[str, Any] | None = None, environ: dict[str, str] | None = None) -> Settings:
        """Resolve every setting from flags, environment, config file and defaults."""
        flags = {k: v for k, v in (flags or {}).items() if v is not None}
        environ = dict(os.environ if environ is None else environ)
        config_path = flags.get("config") or environ.get(cls.env_name("config"))
        from_file = _file_settings(Path(config_path)) if config_path else {}
        return cls(**resolve(cls, flags, environ, from_file))


def redacted_repr(obj: Any) -> str:
    """A settings dataclass's repr with secret values replaced by ***."""
    parts = []
    for f in fields(obj):
        value = getattr(obj, f.name)
        if f.metadata.get("secret") and value:
            value = "***"
        parts.append(f"{f.name}={value!r}")
    return f"{type(obj).__name__}(" + ", ".join(parts) + ")"


def resolve(cls: Any, flags: dict[str, Any], environ: dict[str, str], from_file: dict[str, Any]) -> dict[str, Any]:
    """Each setting's value by precedence: flag > environment (cls.env_name) > config file; defaults stay."""
    values: dict[str, Any] = {}
    for f in fields(cls):
        if f.name in flags:
            raw = flags[f.name]
        elif cls.env_name(f.name) in environ:
            raw = environ[cls.env_name(f.name)]
        elif f.name in from_file:
            raw = from_file[f.name]
        else:
            continue
        values[f.name] = coerce(f.name, f.type, raw)
    return values


def coerce(name: str, typ: Any, raw: Any) -> Any:
    """A raw value (flag, environment text, YAML) as the setting's declared type."""
    t = str(typ)
    try:
        if raw is None:
            return None
        if "Path" in t:
            return Path(raw)
        if t.startswith("bool"):
            if isinstance(raw, bool):
                return raw
            if str(raw).strip().lower() in ("1", "true", "yes", "on"):
                return True
            if str(raw).strip().lower() in ("0", "false", "no", "off", ""):
                return False
            raise ValueError(raw)
        if t.startswith("int"):
            return int(raw)
        if t.startswith("float"):
            return float(raw)
        return "" if raw is False else str(raw) if not isinstance(raw, list | dict) else raw
    except (TypeError, ValueError):
        raise ConfigError(f"setting {name}: cannot use {raw!r} ({t} expected)") from None


def _file_settings(path: Path) -> dict[str, Any]:
    """The `margay` document (kind: MargaySettings or a plain `margay:` mapping) of a config file."""
    for doc in load_documents(path):
        if doc.get("kind") == "MargaySettings":
            return dict(doc.get("spec") or {})
        if "margay" in doc and isinstance(doc["margay"], dict):
            return dict(doc["margay"])
    return {}


def load_documents(path: Path) -> list[dict[str, Any]]:
    """Every YAML document of a config file (LogStorage, LogCollector, ...)."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"config file {path}: {exc.strerror}") from None
    try:
        docs = [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path}: not valid YAML: {exc}") from None
    for i, d in enumerate(docs):
        if not isinstance(d, dict):
            raise ConfigError(f"config file {path}: document {i + 1} is not a mapping")
    return docs


def documented() -> list[tuple[str, str, Any, str]]:
    """(flag, environment variable, default, help) of every setting, for docs and --help."""
    return [("--" + f.name.replace("_", "-"), Settings.env_name(f.name), f.default, f.metadata["help"])
            for f in fields(Settings)]
