"""WAF logs (Linseed's WAFLog, `linseed/pkg/apis/v1/waf.go`): one record per HTTP request the web application
firewall (ModSecurity rules in the L7 proxy or a gateway) flagged or blocked."""

from __future__ import annotations

from .base import Field, Kind, LogType, Side, f

K = Kind.KEYWORD


def _endpoint(doc: str) -> Field:
    # Linseed's WAFEndpoint: `name`/`namespace` are the pod's (absent for off-cluster peers).
    return f(doc, Kind.STRUCT, f"the {doc} of the request", children=(
        Field("hostname", K), Field("ip", Kind.IP), Field("port_num", Kind.LONG), Field("name", K),
        Field("namespace", K)))


FIELDS: tuple[Field, ...] = (
    f("@timestamp", Kind.TIMESTAMP, "when the request was checked; the time field", required=True),
    f("count", Kind.LONG, "requests this record stands for"),
    _endpoint("source"), _endpoint("destination"),
    f("level", K, "log level of the WAF line (error, warning, ...)"),
    f("method", K), f("msg", K, "the WAF's summary, e.g. `[blocked] 3 WAF rule(s) got hit`"),
    f("path", K, "request path and query"), f("protocol", K, "HTTP version"), f("request_id", K),
    f("rule_info", K, "older records: the rules hit, as one line of text"),
    # Linseed's WAFRuleHit; `line` is text in its struct (a long in Calico's mapping), kept as text here.
    f("rules", Kind.STRUCT_LIST, "the rules hit", children=(
        Field("id", K), Field("message", K), Field("severity", K), Field("file", K), Field("line", K),
        Field("disruptive", Kind.BOOL))),
    f("host", K, "node"), f("gateway_name", K), f("gateway_namespace", K),
)

LOGTYPE = LogType(
    name="waf",
    rbac=("waf",),  # lma.tigera.io resourceName, as Calico's dashboards and manager UI use it
    index_prefix="tigera_secure_ee_waf",
    time_field="@timestamp",
    fields=FIELDS,
    retention_days=8,  # LogStorage has no WAF key; a fixed default like DNS and BGP logs
    retention_setting=None,
    aliases={"timestamp": "@timestamp"},  # Calico's WAF selector key (libcalico-go validate_waf.go)
    bulk_path="/waf/logs/bulk",
    query_path="/waf/logs",
    sides=(Side("source", "source.namespace", ("source.name", "source.hostname", "source.ip")),
           Side("dest", "destination.namespace", ("destination.name", "destination.hostname", "destination.ip"))),
    # the request's text may name either endpoint, and so may a rule hit's message and file
    shared=("path", "msg", "rule_info", "request_id", "rules.message", "rules.file"),
)

SAMPLES: list[str] = [
    '{"@timestamp":"2023-11-14T22:13:20.460223952Z","destination":{"hostname":"cart","ip":"10.244.2.7",'
    '"port_num":8080,"name":"cart-6f7b8-x2p4q","namespace":"shop"},"level":"error","method":"GET",'
    '"msg":"[blocked] 2 WAF rule(s) got hit","path":"/api/items?id=1%20union%20select%201","protocol":"HTTP/1.1",'
    '"request_id":"9c1d3f52-5b1e-4c9a-9a57-0d5f6a1b2c3d","rules":[{"id":"942100","message":'
    '"SQL Injection Attack Detected via libinjection","severity":"2","file":'
    '"/etc/modsecurity-ruleset/REQUEST-942-APPLICATION-ATTACK-SQLI.conf","line":"46","disruptive":false},'
    '{"id":"949110","message":"Inbound Anomaly Score Exceeded (Total Score: 5)","severity":"2","file":'
    '"/etc/modsecurity-ruleset/REQUEST-949-BLOCKING-EVALUATION.conf","line":"81","disruptive":true}],'
    '"source":{"hostname":"-","ip":"10.244.1.9","port_num":41746,"name":"web-5d8c9-abcde","namespace":"shop"},'
    '"host":"worker-2"}',
]
