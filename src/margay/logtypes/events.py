"""Intrusion-detection events (spec §6): threat-feed hits, GlobalAlert results and others."""

from __future__ import annotations

from .base import Field, Kind, LogType, Side, f

K = Kind.KEYWORD

FIELDS: tuple[Field, ...] = (
    f("id", K, "document id; deterministic for threat-feed events"),
    f("time", Kind.TIMESTAMP, "event time (RFC 3339 or Unix seconds); the time field", required=True),
    f("type", K, "global_alert, gtf_suspicious_flow, gtf_suspicious_dns_query, ..."),
    f("description", K), f("severity", Kind.LONG, "1-100"), f("origin", K), f("name", K),
    f("dismissed", Kind.BOOL),
    f("source_ip", Kind.IP), f("source_port", Kind.LONG), f("source_namespace", K), f("source_name", K),
    f("source_name_aggr", K),
    f("dest_ip", Kind.IP), f("dest_port", Kind.LONG), f("dest_namespace", K), f("dest_name", K),
    f("dest_name_aggr", K),
    f("host", K), f("protocol", K), f("attack_vector", K), f("mitre_tactic", K),
    f("mitre_ids", Kind.KEYWORD_LIST), f("mitigations", Kind.KEYWORD_LIST),
    f("record", Kind.JSON), f("geo_info", Kind.JSON),
)

LOGTYPE = LogType(
    name="events",
    rbac=("events", "ee_events"),
    index_prefix="tigera_secure_ee_events",
    time_field="time",
    fields=FIELDS,
    retention_days=91,
    retention_setting=None,
    derived={"dismissed": "coalesce(\"dismissed\", false)"},
    bulk_path="/events/bulk",
    query_path="/events",
    sides=(Side("source", "source_namespace", ("source_name", "source_name_aggr", "source_ip")),
           Side("dest", "dest_namespace", ("dest_name", "dest_name_aggr", "dest_ip"))),
    # Free text that may name either side, and what Calico derives from both: a threat-feed event's id holds both
    # endpoints' IPs and ports, its geo_info the withheld IP's country and ASN.
    shared=("description", "record", "id", "geo_info"),
    dismissable=True,
)

SAMPLES: list[str] = [
    '{"id":"feodo~tor_1700000000_tcp_10.244.1.7_43112_185.220.101.4_443","time":1700000300,'
    '"type":"gtf_suspicious_flow","description":"suspicious IP 185.220.101.4 from feeds feodo, tor",'
    '"severity":100,"origin":"Suspicious Flow","name":"Suspicious Flow","dismissed":false,"source_ip":"10.244.1.7",'
    '"source_port":43112,"source_namespace":"shop","source_name":"web-5d8c9-abcde","source_name_aggr":"web-5d8c9-*",'
    '"dest_ip":"185.220.101.4","dest_port":443,"dest_namespace":"-","dest_name":"-","dest_name_aggr":"pub",'
    '"host":"worker-2","protocol":"tcp","attack_vector":"Network","mitre_tactic":"Exfiltration","mitre_ids":["T1041"],'
    '"mitigations":["Create a global network policy to prevent traffic to this IP address"],'
    '"record":{"flow_action":"allow","protocol":"tcp","feeds":["feodo","tor"],"suspicious_prefix":null},'
    '"geo_info":{"city_name":"","country_name":"Germany","iso":"DE","asn":"AS24940"}}',
    '{"time":"2023-11-14T22:20:00Z","type":"global_alert","description":"too many denied flows from payments: 57.0",'
    '"severity":60,"origin":"payments-denies","name":"payments-denies","source_namespace":"payments",'
    '"record":{"source_namespace":"payments","count":57}}',
]
