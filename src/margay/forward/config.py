"""Forwarding configuration in LogCollector form (spec §11): `spec.additionalStores` s3, syslog and splunk.

Beyond Calico every store may take any log type, a `selector` (the query syntax) to forward a subset, a
list of `dropFields`, and delivery tuning (`batchSize`, `flushInterval`, `retryInitial`, `retryMax`,
`startFrom`). Every error is a ConfigError that names the field, raised at start-up.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from ..config import load_documents
from ..errors import ConfigError, MargayError
from ..logtypes import REGISTRY, LogType
from ..query.selector import Node, parse_selector

API_VERSION = "operator.tigera.io/v1"
KIND = "LogCollector"
BASE = "spec.additionalStores"

# Calico's logTypes names, plus BGP and L7, and every margay type name.
TYPE_NAMES: dict[str, tuple[str, ...]] = {
    "Audit": ("audit_ee", "audit_kube"), "DNS": ("dns",), "Flows": ("flows",), "IDSEvents": ("events",),
    "BGP": ("bgp",), "L7": ("l7",), "WAF": ("waf",), **{n: (n,) for n in REGISTRY},
}
DEFAULT_TYPES = {"s3": ("flows", "dns", "audit_ee", "audit_kube", "l7"),
                 "splunk": ("flows", "dns", "audit_ee", "audit_kube")}
COMMON = {"logTypes", "selector", "dropFields", "batchSize", "flushInterval", "retryInitial", "retryMax",
          "startFrom", "hostScope", "timeout"}
FIELDS = {
    "s3": COMMON | {"region", "bucketName", "bucketPath", "endpoint", "pathStyle", "credentialsFile",
                    "maxObjectBytes"},
    "syslog": COMMON | {"endpoint", "packetSize", "encryption", "caFile", "facility"},
    "splunk": COMMON | {"endpoint", "tokenFile", "index", "sourcetype", "source", "perType", "insecureSkipVerify",
                        "caFile"},
}


@dataclass
class StoreConfig:
    """One additional store: what it forwards and how it is delivered."""

    kind: str  # s3 | syslog | splunk
    types: list[LogType]
    selector: str | None = None
    drop_fields: list[str] = field(default_factory=list)
    batch_size: int = 5000
    flush_interval: float = 5.0  # seconds a record may wait for a fuller batch (S3: object age rollover)
    retry_initial: float = 1.0
    retry_max: float = 60.0
    timeout: float = 10.0
    start_from: str = "oldest"  # oldest: everything already stored; latest: only what comes next
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.kind

    def where(self, lt: LogType) -> Node | None:
        """The selector the forwarded records of one type must match (checked against the type), or None."""
        if not self.selector:
            return None
        from ..query.sql import compile_selector

        node = parse_selector(self.selector)
        if node is not None:
            compile_selector(node, lt, text=self.selector)  # names every unknown key now, not at delivery
        return node


def _err(path: str, message: str) -> ConfigError:
    return ConfigError(f"LogCollector {path}: {message}", details={"field": path})


def _number(spec: dict[str, Any], key: str, path: str, default: float, *, integer: bool = False,
            minimum: float = 0) -> Any:
    raw = spec.get(key, default)
    if isinstance(raw, bool) or not isinstance(raw, (int, float)) or (integer and not isinstance(raw, int)):
        raise _err(f"{path}.{key}", f"expected {'an integer' if integer else 'a number'}, got {raw!r}")
    if raw < minimum:
        raise _err(f"{path}.{key}", f"must be at least {minimum}, got {raw!r}")
    return raw


def _string(spec: dict[str, Any], key: str, path: str, *, required: bool = False) -> str | None:
    raw = spec.get(key)
    if raw is None:
        if required:
            raise _err(f"{path}.{key}", "is required")
        return None
    if not isinstance(raw, str) or (required and not raw.strip()):
        raise _err(f"{path}.{key}", f"expected a non-empty string, got {raw!r}")
    return raw


def _types(kind: str, spec: dict[str, Any], path: str) -> list[LogType]:
    raw = spec.get("logTypes")
    if raw is None:
        if kind == "syslog":
            raise _err(f"{path}.logTypes", "is required for syslog (any of Audit, DNS, Flows, IDSEvents, BGP, L7)")
        return [REGISTRY[n] for n in DEFAULT_TYPES[kind]]
    if not isinstance(raw, list) or not raw:
        raise _err(f"{path}.logTypes", f"expected a non-empty list, got {raw!r}")
    names: list[str] = []
    for i, t in enumerate(raw):
        if t not in TYPE_NAMES:
            raise _err(f"{path}.logTypes[{i}]", f"unknown log type {t!r}; use {', '.join(TYPE_NAMES)}")
        names.extend(n for n in TYPE_NAMES[t] if n not in names)
    return [REGISTRY[n] for n in names]


def _common(kind: str, spec: dict[str, Any], path: str) -> StoreConfig:
    if not isinstance(spec, dict):
        raise _err(path, f"expected a mapping, got {spec!r}")
    for key in spec:
        if key not in FIELDS[kind]:
            raise _err(f"{path}.{key}", f"unknown field; {kind} takes {', '.join(sorted(FIELDS[kind]))}")
    cfg = StoreConfig(kind, _types(kind, spec, path))
    cfg.selector = _string(spec, "selector", path)
    if cfg.selector:
        for lt in cfg.types:
            try:
                cfg.where(lt)
            except MargayError as exc:
                raise _err(f"{path}.selector", f"for {lt.name}: {exc.message}") from None
    drop = spec.get("dropFields", [])
    if not isinstance(drop, list) or not all(isinstance(d, str) and d for d in drop):
        raise _err(f"{path}.dropFields", f"expected a list of field names, got {drop!r}")
    cfg.drop_fields = list(drop)
    cfg.batch_size = _number(spec, "batchSize", path, 5000 if kind != "syslog" else 1000, integer=True, minimum=1)
    cfg.flush_interval = float(_number(spec, "flushInterval", path, 5.0))
    cfg.retry_initial = float(_number(spec, "retryInitial", path, 1.0))
    cfg.retry_max = float(_number(spec, "retryMax", path, 60.0))
    cfg.timeout = float(_number(spec, "timeout", path, 10.0, minimum=0.01))
    if cfg.retry_max < cfg.retry_initial:
        raise _err(f"{path}.retryMax", f"must be at least retryInitial ({cfg.retry_initial})")
    cfg.start_from = spec.get("startFrom", "oldest")
    if cfg.start_from not in ("oldest", "latest"):
        raise _err(f"{path}.startFrom", f"expected oldest or latest, got {cfg.start_from!r}")
    if spec.get("hostScope", "All") not in ("All", "NonClusterOnly"):
        raise _err(f"{path}.hostScope", f"expected All or NonClusterOnly, got {spec.get('hostScope')!r}")
    return cfg


def _s3(spec: dict[str, Any], path: str) -> StoreConfig:
    cfg = _common("s3", spec, path)
    opts = cfg.options
    opts["region"] = _string(spec, "region", path, required=True)
    opts["bucket"] = _string(spec, "bucketName", path, required=True)
    opts["path"] = (_string(spec, "bucketPath", path) or "").strip("/")
    endpoint = _string(spec, "endpoint", path)
    if endpoint is not None and urlsplit(endpoint).scheme not in ("http", "https"):
        raise _err(f"{path}.endpoint", f"expected an http:// or https:// URL, got {endpoint!r}")
    opts["endpoint"] = endpoint
    style = spec.get("pathStyle", False)
    if not isinstance(style, bool):
        raise _err(f"{path}.pathStyle", f"expected true or false, got {style!r}")
    opts["path_style"] = style
    opts["max_object_bytes"] = _number(spec, "maxObjectBytes", path, 64 * 1024 * 1024, integer=True, minimum=1024)
    creds = _string(spec, "credentialsFile", path)
    if creds is not None:
        opts["key_id"], opts["key_secret"] = _s3_credentials(Path(creds), f"{path}.credentialsFile")
    elif not (os.environ.get("AWS_ACCESS_KEY_ID") and os.environ.get("AWS_SECRET_ACCESS_KEY")):
        raise _err(f"{path}.credentialsFile", "is required unless AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are set")
    return cfg


def _s3_credentials(path: Path, field_path: str) -> tuple[str, str]:
    """`key-id`/`key-secret` as in Calico's Secret: a mounted Secret folder, or a YAML/JSON file."""
    try:
        if path.is_dir():
            return (path / "key-id").read_text().strip(), (path / "key-secret").read_text().strip()
        data = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise _err(field_path, f"cannot read {path}: {exc.strerror}") from None
    except yaml.YAMLError:
        data = None
    if not isinstance(data, dict) or not data.get("key-id") or not data.get("key-secret"):
        raise _err(field_path, f"{path} must hold key-id and key-secret")
    return str(data["key-id"]), str(data["key-secret"])


def _syslog(spec: dict[str, Any], path: str) -> StoreConfig:
    cfg = _common("syslog", spec, path)
    endpoint = _string(spec, "endpoint", path, required=True) or ""
    parts = urlsplit(endpoint)
    if parts.scheme not in ("tcp", "udp", "tls") or not parts.hostname or not parts.port:
        raise _err(f"{path}.endpoint", f"expected tcp://host:port or udp://host:port, got {endpoint!r}")
    enc = spec.get("encryption", "TLS" if parts.scheme == "tls" else "None")
    if enc not in ("None", "TLS"):
        raise _err(f"{path}.encryption", f"expected None or TLS, got {enc!r}")
    if enc == "TLS" and parts.scheme == "udp":
        raise _err(f"{path}.encryption", "TLS needs a tcp:// endpoint")
    ca = _string(spec, "caFile", path)
    if ca is not None and not Path(ca).is_file():
        raise _err(f"{path}.caFile", f"no such file: {ca}")
    facility = _number(spec, "facility", path, 1, integer=True)
    if facility > 23:
        raise _err(f"{path}.facility", f"expected 0-23, got {facility}")
    cfg.options.update(protocol="udp" if parts.scheme == "udp" else "tcp", host=parts.hostname, port=parts.port,
                       tls=enc == "TLS", ca_file=ca, facility=facility,
                       packet_size=_number(spec, "packetSize", path, 1024, integer=True, minimum=64))
    return cfg


def _splunk(spec: dict[str, Any], path: str) -> StoreConfig:
    cfg = _common("splunk", spec, path)
    endpoint = _string(spec, "endpoint", path, required=True) or ""
    parts = urlsplit(endpoint)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise _err(f"{path}.endpoint", f"expected an HEC URL such as https://splunk:8088, got {endpoint!r}")
    url = endpoint.rstrip("/")
    if not parts.path.strip("/"):
        url += "/services/collector/event"
    token_file = _string(spec, "tokenFile", path)
    if token_file is not None:
        tp = Path(token_file)
        try:
            token = ((tp / "token") if tp.is_dir() else tp).read_text().strip()
        except OSError as exc:
            raise _err(f"{path}.tokenFile", f"cannot read {token_file}: {exc.strerror}") from None
    else:
        token = os.environ.get("SPLUNK_HEC_TOKEN", "")
    if not token:
        raise _err(f"{path}.tokenFile", "is required (or set SPLUNK_HEC_TOKEN): the HEC token")
    meta: dict[str, dict[str, str | None]] = {}
    per = spec.get("perType", {})
    if not isinstance(per, dict):
        raise _err(f"{path}.perType", f"expected a mapping of log type to index/sourcetype/source, got {per!r}")
    for lt in cfg.types:
        m = {"index": _string(spec, "index", path), "sourcetype": _string(spec, "sourcetype", path) or "_json",
             "source": _string(spec, "source", path) or lt.index_prefix}
        meta[lt.name] = m
    for key, over in per.items():
        if key not in TYPE_NAMES:
            raise _err(f"{path}.perType.{key}", f"unknown log type; use {', '.join(TYPE_NAMES)}")
        if not isinstance(over, dict) or any(k not in ("index", "sourcetype", "source") for k in over):
            raise _err(f"{path}.perType.{key}", "expected a mapping with index, sourcetype and/or source")
        for name in TYPE_NAMES[key]:
            if name in meta:
                meta[name].update({k: str(v) for k, v in over.items()})
    cfg.options.update(url=url, token=token, meta=meta, ca_file=_string(spec, "caFile", path),
                       verify=not spec.get("insecureSkipVerify", False))
    return cfg


BUILDERS = {"s3": _s3, "syslog": _syslog, "splunk": _splunk}


def from_documents(docs: list[dict[str, Any]]) -> list[StoreConfig]:
    """The stores of the LogCollector document (none when there is no LogCollector)."""
    found = [d for d in docs if d.get("kind") == KIND]
    if not found:
        return []
    if len(found) > 1:
        raise ConfigError(f"more than one {KIND} document")
    doc = found[0]
    if doc.get("apiVersion", API_VERSION) != API_VERSION:
        raise _err("apiVersion", f"expected {API_VERSION}, got {doc.get('apiVersion')!r}")
    spec = doc.get("spec") or {}
    if not isinstance(spec, dict):
        raise _err("spec", "expected a mapping")
    stores = spec.get("additionalStores") or {}
    if not isinstance(stores, dict):
        raise _err(BASE, "expected a mapping with s3, syslog and/or splunk")
    out = []
    for kind, sub in stores.items():
        if kind not in BUILDERS:
            raise _err(f"{BASE}.{kind}", "unknown store; use s3, syslog or splunk")
        out.append(BUILDERS[kind](sub, f"{BASE}.{kind}"))
    return out


def from_file(path: Path | None) -> list[StoreConfig]:
    return from_documents(load_documents(path)) if path is not None else []
