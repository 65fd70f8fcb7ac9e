"""GlobalThreatFeed, GlobalAlert and GlobalAlertTemplate (projectcalico.org/v3): Calico's YAML read as is,
checked field by field so a bad resource is refused with the path of the field at fault (spec §13)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from dataclasses import field as dc_field
from datetime import timedelta
from typing import Any

from ..errors import ConfigError, QueryError
from ..logtypes import REGISTRY, Kind, LogType
from ..query.selector import And, Compare, InSet, Node, Not, Or, parse_selector

API_VERSION = "projectcalico.org/v3"
KINDS = ("GlobalThreatFeed", "GlobalAlert", "GlobalAlertTemplate")
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_UNIT_S = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600}
_SUBST = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")

DATA_SETS: dict[str, tuple[str, ...]] = {"flows": ("flows",), "dns": ("dns",), "audit": ("audit_ee", "audit_kube"),
                                         "l7": ("l7",), "waf": ("waf",)}
METRICS = ("count", "sum", "avg", "min", "max")
CONDITIONS = ("eq", "not_eq", "lt", "lte", "gt", "gte")
NUMERIC = (Kind.LONG, Kind.DOUBLE, Kind.EPOCH_S)


class ResourceError(ConfigError):
    """A resource refused at load or through the API; the message starts with the field's path."""


def fail(path: str, message: str) -> ResourceError:
    return ResourceError(f"{path}: {message}", details={"field": path})


def parse_duration(value: Any, path: str) -> timedelta:
    """A Go duration (`90s`, `5m`, `1h30m`)."""
    if not isinstance(value, str) or not value:
        raise fail(path, f"expected a duration like 5m or 1h30m, got {value!r}")
    pos, total = 0, 0.0
    for m in _DURATION.finditer(value):
        if m.start() != pos:
            break
        total += float(m.group(1)) * _UNIT_S[m.group(2)]
        pos = m.end()
    if pos != len(value):
        raise fail(path, f"expected a duration like 5m or 1h30m, got {value!r}")
    return timedelta(seconds=total)


def _only(obj: Any, path: str, allowed: tuple[str, ...]) -> dict[str, Any]:
    if not isinstance(obj, dict):
        raise fail(path, f"expected an object, got {type(obj).__name__}")
    for k in obj:
        if k not in allowed:
            raise fail(f"{path}.{k}" if path else str(k), f"unknown field (allowed: {', '.join(allowed)})")
    return obj


def _str(obj: dict[str, Any], key: str, path: str, *, default: str | None = None,
         choices: tuple[str, ...] | None = None, max_len: int | None = None) -> str | None:
    value = obj.get(key, default)
    if value is None:
        return None
    if not isinstance(value, str):
        raise fail(f"{path}.{key}", f"expected a string, got {value!r}")
    if choices is not None and value not in choices:
        raise fail(f"{path}.{key}", f"must be one of {', '.join(choices)}, got {value!r}")
    if max_len is not None and len(value) > max_len:
        raise fail(f"{path}.{key}", f"at most {max_len} characters, got {len(value)}")
    return value


def _metadata(doc: dict[str, Any]) -> str:
    meta = doc.get("metadata")
    if not isinstance(meta, dict):
        raise fail("metadata", "expected an object with a name")
    name = meta.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        raise fail("metadata.name", f"expected a lowercase DNS name (a-z, 0-9, '-', '.'), got {name!r}")
    return name


# -- GlobalThreatFeed ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Header:
    name: str
    value: str | None = None
    ref: tuple[str, str, str, bool] | None = None  # (secretKeyRef|configMapKeyRef, name, key, optional)


@dataclass(frozen=True)
class FeedFormat:
    kind: str  # newlineDelimited | json | csv
    json_path: str | None = None
    field_num: int | None = None
    field_name: str | None = None
    header: bool = False
    column_delimiter: str = ","
    comment_delimiter: str | None = None
    record_size: int | None = None
    disable_record_size_validation: bool = False


@dataclass(frozen=True)
class ThreatFeed:
    name: str
    content: str = "IPSet"
    mode: str = "Enabled"
    description: str = ""
    feed_type: str = "Custom"
    network_set_labels: dict[str, str] = dc_field(default_factory=dict)
    url: str | None = None  # None: a push feed
    period: timedelta = timedelta(hours=24)
    headers: tuple[Header, ...] = ()
    format: FeedFormat = FeedFormat("newlineDelimited")
    source: dict[str, Any] = dc_field(default_factory=dict, compare=False)

    @property
    def enabled(self) -> bool:
        return self.mode == "Enabled"


def _header(raw: Any, path: str) -> Header:
    h = _only(raw, path, ("name", "value", "valueFrom"))
    name = h.get("name")
    if not isinstance(name, str) or not name or any(c in name for c in ":\r\n "):
        raise fail(f"{path}.name", f"expected an HTTP header name, got {name!r}")
    if "valueFrom" in h:
        vf = _only(h["valueFrom"], f"{path}.valueFrom", ("configMapKeyRef", "secretKeyRef"))
        if len(vf) != 1:
            raise fail(f"{path}.valueFrom", "expected exactly one of configMapKeyRef, secretKeyRef")
        kind, ref = next(iter(vf.items()))
        rp = f"{path}.valueFrom.{kind}"
        r = _only(ref, rp, ("name", "key", "optional"))
        key = r.get("key")
        if not isinstance(key, str) or not key:
            raise fail(f"{rp}.key", "required")
        return Header(name, ref=(kind, str(r.get("name") or ""), key, bool(r.get("optional", False))))
    value = h.get("value", "")
    if not isinstance(value, str) or "\n" in value or "\r" in value:
        raise fail(f"{path}.value", "expected a single-line string")
    return Header(name, value=value)


def _format(raw: Any, path: str) -> FeedFormat:
    fm = _only(raw if raw is not None else {"newlineDelimited": {}}, path, ("newlineDelimited", "json", "csv"))
    if len(fm) > 1:
        raise fail(path, "expected exactly one of newlineDelimited, json, csv")
    if not fm or "newlineDelimited" in fm:
        _only(fm.get("newlineDelimited") or {}, f"{path}.newlineDelimited", ())
        return FeedFormat("newlineDelimited")
    if "json" in fm:
        j = _only(fm["json"] or {}, f"{path}.json", ("path",))
        jp = _str(j, "path", f"{path}.json")
        if not jp:
            raise fail(f"{path}.json.path", "required: a JSONPath like $.items[*].ip")
        from .formats import compile_json_path

        compile_json_path(jp, f"{path}.json.path")
        return FeedFormat("json", json_path=jp)
    c = _only(fm["csv"] or {}, f"{path}.csv", ("fieldNum", "fieldName", "header", "columnDelimiter",
                                               "commentDelimiter", "recordSize", "disableRecordSizeValidation"))
    cp = f"{path}.csv"
    num, fname = c.get("fieldNum"), _str(c, "fieldName", cp)
    if (num is None) == (fname is None):
        raise fail(cp, "expected exactly one of fieldNum, fieldName")
    if num is not None and (not isinstance(num, int) or isinstance(num, bool) or num < 0):
        raise fail(f"{cp}.fieldNum", f"expected a column number from 0, got {num!r}")
    header = c.get("header", False)
    if not isinstance(header, bool):
        raise fail(f"{cp}.header", "expected true or false")
    if fname is not None and not header:
        raise fail(f"{cp}.fieldName", "needs header: true")
    delim = _str(c, "columnDelimiter", cp, default=",") or ","
    comment = _str(c, "commentDelimiter", cp)
    for key, val in (("columnDelimiter", delim), ("commentDelimiter", comment)):
        if val is not None and (len(val) != 1 or val in "\r\n\""):
            raise fail(f"{cp}.{key}", f"expected one character other than a quote or newline, got {val!r}")
    if comment is not None and comment == delim:
        raise fail(f"{cp}.commentDelimiter", "must differ from columnDelimiter")
    size = c.get("recordSize")
    if size is not None and (not isinstance(size, int) or isinstance(size, bool) or size < 1):
        raise fail(f"{cp}.recordSize", f"expected a positive integer, got {size!r}")
    drs = c.get("disableRecordSizeValidation", False)
    if not isinstance(drs, bool):
        raise fail(f"{cp}.disableRecordSizeValidation", "expected true or false")
    return FeedFormat("csv", field_num=num, field_name=fname, header=header, column_delimiter=delim,
                      comment_delimiter=comment, record_size=size, disable_record_size_validation=drs)


def parse_threat_feed(doc: dict[str, Any]) -> ThreatFeed:
    name = _metadata(doc)
    spec = _only(doc.get("spec") or {}, "spec", ("content", "mode", "description", "feedType", "globalNetworkSet",
                                                  "pull"))
    content = _str(spec, "content", "spec", default="IPSet", choices=("IPSet", "DomainNameSet"))
    mode = _str(spec, "mode", "spec", default="Enabled", choices=("Enabled", "Disabled"))
    description = _str(spec, "description", "spec", default="", max_len=256)
    feed_type = _str(spec, "feedType", "spec", default="Custom", choices=("Builtin", "Custom"))
    labels: dict[str, str] = {}
    if "globalNetworkSet" in spec:
        gns = _only(spec["globalNetworkSet"] or {}, "spec.globalNetworkSet", ("labels",))
        raw = gns.get("labels") or {}
        if not isinstance(raw, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in raw.items()):
            raise fail("spec.globalNetworkSet.labels", "expected a map of strings")
        if content != "IPSet":
            raise fail("spec.globalNetworkSet", "only an IPSet feed can sync into a GlobalNetworkSet")
        labels = dict(raw)
    url: str | None = None
    period = timedelta(hours=24)
    headers: tuple[Header, ...] = ()
    fmt = FeedFormat("newlineDelimited")
    if "pull" in spec:
        pull = _only(spec["pull"] or {}, "spec.pull", ("period", "http"))
        if "period" in pull:
            period = parse_duration(pull["period"], "spec.pull.period")
            if period < timedelta(minutes=5):
                raise fail("spec.pull.period", f"must be at least 5m, got {pull['period']}")
        if "http" not in pull:
            raise fail("spec.pull.http", "required")
        http = _only(pull["http"] or {}, "spec.pull.http", ("url", "headers", "format"))
        url = _str(http, "url", "spec.pull.http")
        if not url or not re.match(r"^https?://[^/\s]+", url):
            raise fail("spec.pull.http.url", f"expected an http:// or https:// URL, got {url!r}")
        raw_headers = http.get("headers") or []
        if not isinstance(raw_headers, list):
            raise fail("spec.pull.http.headers", "expected a list of {name, value|valueFrom}")
        headers = tuple(_header(h, f"spec.pull.http.headers[{i}]") for i, h in enumerate(raw_headers))
        fmt = _format(http.get("format"), "spec.pull.http.format")
    elif labels:
        raise fail("spec.globalNetworkSet", "needs spec.pull")
    return ThreatFeed(name, content or "IPSet", mode or "Enabled", description or "", feed_type or "Custom",
                      labels, url, period, headers, fmt, source=doc)


# -- GlobalAlert / GlobalAlertTemplate ----------------------------------------------------------------------

DISABLED = "margay.io/disabled"


@dataclass(frozen=True)
class Alert:
    name: str
    kind: str
    description: str
    severity: int
    data_set: str
    summary: str | None = None
    query: str = ""
    selector: Node | None = None  # the query with substitutions applied, parsed
    aggregate_by: tuple[str, ...] = ()
    metric: str | None = None
    field: str | None = None
    condition: str | None = None
    threshold: float | None = None
    period: timedelta = timedelta(minutes=5)
    lookback: timedelta = timedelta(minutes=10)
    source: dict[str, Any] = dc_field(default_factory=dict, compare=False)

    @property
    def logtypes(self) -> list[LogType]:
        return [REGISTRY[n] for n in DATA_SETS[self.data_set]]

    @property
    def disabled(self) -> bool:
        """margay's switch (beyond Calico, whose GlobalAlert has none): the annotation `margay.io/disabled: "true"`
        keeps the alert and its status but stops its runs."""
        meta = self.source.get("metadata") if isinstance(self.source, dict) else None
        notes = meta.get("annotations") if isinstance(meta, dict) else None
        return isinstance(notes, dict) and str(notes.get(DISABLED, "")).lower() == "true"


def substitute(query: str, subs: dict[str, list[str]], path: str) -> str:
    """`${name}` becomes `{"v1", "v2"}`, for use after IN / NOTIN."""
    def repl(m: re.Match[str]) -> str:
        name = m.group(1)
        if name not in subs:
            raise fail(path, f"${{{name}}} is not defined in spec.substitutions")
        return "{" + ", ".join('"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"' for v in subs[name]) + "}"
    return _SUBST.sub(repl, query)


def _keys(node: Node | None) -> list[str]:
    if node is None:
        return []
    if isinstance(node, Compare | InSet):
        return [node.key]
    if isinstance(node, Not):
        return _keys(node.item)
    assert isinstance(node, And | Or)
    return [k for item in node.items for k in _keys(item)]


def _check_key(lts: list[LogType], key: str, path: str) -> None:
    keys = lts[0].query_keys()
    if key in keys or any(key.startswith(k + ".") for k in keys):
        return
    raise fail(path, f"unknown key {key!r} for the {lts[0].name} data set")


def parse_alert(doc: dict[str, Any], kind: str = "GlobalAlert") -> Alert:
    name = _metadata(doc)
    spec = _only(doc.get("spec") or {}, "spec", ("type", "description", "summary", "severity", "dataSet", "query",
                                                  "aggregateBy", "metric", "field", "condition", "threshold",
                                                  "period", "lookback", "substitutions", "detector"))
    atype = _str(spec, "type", "spec", default="RuleBased", choices=("RuleBased", "AnomalyDetection"))
    if atype != "RuleBased" or "detector" in spec:
        raise fail("spec.type", "only RuleBased alerts are supported (AnomalyDetection was removed from Calico)")
    description = _str(spec, "description", "spec")
    if not description:
        raise fail("spec.description", "required")
    summary = _str(spec, "summary", "spec")
    sev = spec.get("severity")
    if not isinstance(sev, int) or isinstance(sev, bool) or not 1 <= sev <= 100:
        raise fail("spec.severity", f"required: an integer from 1 to 100, got {sev!r}")
    data_set = _str(spec, "dataSet", "spec", choices=tuple(DATA_SETS))
    if data_set is None:
        raise fail("spec.dataSet", f"required: one of {', '.join(DATA_SETS)}")
    lts = [REGISTRY[n] for n in DATA_SETS[data_set]]
    subs: dict[str, list[str]] = {}
    raw_subs = spec.get("substitutions") or []
    if not isinstance(raw_subs, list):
        raise fail("spec.substitutions", "expected a list of {name, values}")
    for i, s in enumerate(raw_subs):
        sp = f"spec.substitutions[{i}]"
        s = _only(s, sp, ("name", "values"))
        sname, values = s.get("name"), s.get("values") or []
        if not isinstance(sname, str) or not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", sname):
            raise fail(f"{sp}.name", f"expected an identifier, got {sname!r}")
        if sname in subs:
            raise fail(f"{sp}.name", f"{sname!r} is defined twice")
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            raise fail(f"{sp}.values", "expected a list of strings")
        subs[sname] = values
    query = _str(spec, "query", "spec", default="") or ""
    text = substitute(query, subs, "spec.query")
    try:
        selector = parse_selector(text) if text.strip() else None
    except QueryError as exc:  # its message carries a caret under the fault
        raise fail("spec.query", str(exc)) from None
    for key in _keys(selector):
        _check_key(lts, key, "spec.query")
    agg = spec.get("aggregateBy") or []
    if not isinstance(agg, list) or not all(isinstance(a, str) for a in agg):
        raise fail("spec.aggregateBy", "expected a list of field names")
    for i, a in enumerate(agg):
        if a not in lts[0].query_keys():
            raise fail(f"spec.aggregateBy[{i}]", f"unknown field {a!r} for the {data_set} data set")
    metric = _str(spec, "metric", "spec", choices=METRICS)
    fld = _str(spec, "field", "spec")
    if metric in ("sum", "avg", "min", "max"):
        if not fld:
            raise fail("spec.field", f"required with metric {metric}")
        qk = lts[0].query_keys().get(fld)
        if qk is None:
            raise fail("spec.field", f"unknown field {fld!r} for the {data_set} data set")
        if qk.kind not in NUMERIC:
            raise fail("spec.field", f"{fld!r} is not numeric; metric {metric} needs a number")
    elif fld:
        raise fail("spec.field", f"only used with metric sum, avg, min or max (metric is {metric or 'unset'})")
    condition = _str(spec, "condition", "spec", choices=CONDITIONS)
    threshold = spec.get("threshold")
    if threshold is not None and (not isinstance(threshold, int | float) or isinstance(threshold, bool)):
        raise fail("spec.threshold", f"expected a number, got {threshold!r}")
    if metric is None and (threshold is not None or condition is not None):
        raise fail("spec.threshold" if threshold is not None else "spec.condition", "needs spec.metric")
    if metric is not None and (condition is None) != (threshold is None):
        raise fail("spec.condition" if condition is None else "spec.threshold",
                   "condition and threshold go together")
    period = parse_duration(spec.get("period", "5m"), "spec.period")
    if period < timedelta(minutes=1):
        raise fail("spec.period", f"must be at least 1m, got {spec.get('period')}")
    lookback = parse_duration(spec.get("lookback", "10m"), "spec.lookback")
    if lookback < timedelta(minutes=1):
        raise fail("spec.lookback", f"must be at least 1m, got {spec.get('lookback')}")
    return Alert(name, kind, description, sev, data_set, summary, query, selector, tuple(agg), metric, fld,
                 condition, float(threshold) if threshold is not None else None, period, lookback, source=doc)


Resource = ThreatFeed | Alert


def parse_resource(doc: Any) -> Resource:
    """One Calico resource document, checked; ResourceError names the field at fault."""
    if not isinstance(doc, dict):
        raise fail("(document)", "expected a mapping with apiVersion, kind, metadata, spec")
    _only(doc, "", ("apiVersion", "kind", "metadata", "spec", "status"))
    if doc.get("apiVersion") != API_VERSION:
        raise fail("apiVersion", f"expected {API_VERSION}, got {doc.get('apiVersion')!r}")
    kind = doc.get("kind")
    if kind == "GlobalThreatFeed":
        return parse_threat_feed(doc)
    if kind in ("GlobalAlert", "GlobalAlertTemplate"):
        return parse_alert(doc, kind)
    raise fail("kind", f"expected one of {', '.join(KINDS)}, got {kind!r}")
