"""Felix DNS logs (spec §3): one record per client/question/answer per flush interval."""

from __future__ import annotations

from .base import Field, Kind, LogType, Rollup, Side, f

K = Kind.KEYWORD

FIELDS: tuple[Field, ...] = (
    f("start_time", Kind.TIMESTAMP, "start of the interval", required=True),
    f("end_time", Kind.TIMESTAMP, "end of the interval; the time field", required=True),
    f("type", K, "log, or unlogged for the overflow record"),
    f("count", Kind.LONG, "lookups matching this record"),
    f("client_ip", Kind.IP), f("client_name", K), f("client_name_aggr", K), f("client_namespace", K),
    f("client_labels", Kind.MAP),
    f("qname", K, "queried name, lowercased"), f("qtype", K), f("qclass", K), f("rcode", K),
    f("rrsets", Kind.STRUCT_LIST, "answer, additional and authority sections", children=(
        Field("name", K), Field("type", K), Field("class", K), Field("rdata", Kind.KEYWORD_LIST))),
    f("servers", Kind.STRUCT_LIST, "the DNS servers that answered", children=(
        Field("ip", Kind.IP), Field("name", K), Field("name_aggr", K), Field("namespace", K),
        Field("labels", Kind.MAP))),
    f("latency", Kind.STRUCT, "latency in ns", children=(
        Field("count", Kind.LONG), Field("mean", Kind.LONG), Field("max", Kind.LONG))),
    f("latency_count", Kind.LONG), f("latency_mean", Kind.LONG), f("latency_max", Kind.LONG),
    f("host", K),
)

LOGTYPE = LogType(
    name="dns",
    rbac=("dns", "ee_dns"),
    index_prefix="tigera_secure_ee_dns",
    time_field="end_time",
    fields=FIELDS,
    retention_days=8,
    retention_setting="dnsLogs",
    aliases={"dns.question.name": "qname", "dns.question.registered_domain": "qname",
             "dns.question.type": "qtype", "dns.question.class": "qclass", "dns.response_code": "rcode",
             "source.ip": "client_ip", "@timestamp": "end_time"},
    map_keys=("client_labels",),
    # Docs write LOG/UNLOGGED, Felix writes lowercase (spec §3): both are accepted and stored lowercase.
    derived={"type": "lower(\"type\")", "qname": "lower(\"qname\")", "qtype": "upper(\"qtype\")",
             "qclass": "upper(\"qclass\")",
             "latency_count": "coalesce(\"latency_count\", \"latency\".\"count\")",
             "latency_mean": "coalesce(\"latency_mean\", \"latency\".\"mean\")",
             "latency_max": "coalesce(\"latency_max\", \"latency\".\"max\")"},
    aggregation="dns",
    bulk_path="/dns/logs/bulk",
    query_path="/dns/logs",
    sides=(Side("client", "client_namespace", ("client_name", "client_name_aggr", "client_ip", "client_labels")),
           Side("server", "namespace", ("name", "name_aggr", "ip", "labels"), nested="servers", selects=False)),
    rollup=Rollup(  # about 22x fewer rows than the data file on the bench topology
        dims=("cluster", "type", "qname", "qtype", "qclass", "rcode", "client_namespace", "client_name_aggr"),
        measures=("count", "latency_count", "latency_mean", "latency_max"),
    ),
)

SAMPLES: list[str] = [
    '{"start_time":"2023-11-14T22:13:20Z","end_time":"2023-11-14T22:18:20.123456789Z","type":"log","count":7,'
    '"client_ip":null,"client_name":"-","client_name_aggr":"web-5d8c9-*","client_namespace":"shop",'
    '"client_labels":{"app":"web","pod-template-hash":"5d8c9"},"qname":"api.example.com","qtype":"A","qclass":"IN",'
    '"rcode":"NoError","rrsets":[{"name":"api.example.com","type":"A","class":"IN","rdata":["93.184.216.34"]}],'
    '"servers":[{"ip":"10.96.0.10","name":"coredns-5d78c9869d-4xk2p","name_aggr":"coredns-5d78c9869d-*",'
    '"namespace":"kube-system","labels":{"k8s-app":"kube-dns"}}],"latency":{"count":7,"mean":412000,"max":1900000},'
    '"latency_count":7,"latency_mean":412000,"latency_max":1900000,"host":"worker-2"}',
    '{"start_time":"2023-11-14T22:18:20+00:00","end_time":"2023-11-14T22:23:20+00:00","type":"LOG","count":1,'
    '"client_ip":"10.244.1.9","client_name":"api-7c9f-x2p4q","client_name_aggr":"api-7c9f-*",'
    '"client_namespace":"payments","client_labels":{"app":"api"},"qname":"NoSuch.Example.ORG","qtype":"AAAA",'
    '"qclass":"in","rcode":"NXDomain","rrsets":[],"servers":[{"ip":"8.8.8.8","name":"-","name_aggr":"pub",'
    '"namespace":"-","labels":null}],"latency":{"count":1,"mean":25000000,"max":25000000},"host":"worker-1"}',
    '{"start_time":"2023-11-14T22:23:20Z","end_time":"2023-11-14T22:28:20Z","type":"unlogged","count":153}',
]
