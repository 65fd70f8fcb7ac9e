"""Felix flow logs (spec §1): one record per source/destination/reporter/action per flush interval."""

from __future__ import annotations

from .base import Field, Kind, LogType, Rollup, Side, f

K, L, IP = Kind.KEYWORD, Kind.LONG, Kind.IP

POLICY_ARRAYS = ("all_policies", "enforced_policies", "pending_policies", "transit_policies")

_endpoint = []
for side in ("source", "dest"):
    _endpoint += [
        f(f"{side}_ip", IP, "endpoint IP; null when aggregated away"),
        f(f"{side}_name", K, "pod, host endpoint or network set name; '-' when aggregated"),
        f(f"{side}_name_aggr", K, "pod generateName prefix + '*', hep host, set name, or pvt/pub"),
        f(f"{side}_namespace", K, "namespace; '-' when not namespaced"),
        f(f"{side}_port", L, "L4 port; null when aggregated away"),
        f(f"{side}_type", K, "wep, hep, ns or net", allowed=("wep", "hep", "ns", "net")),
        f(f"{side}_labels", Kind.STRUCT, "labels as k=v strings", children=(Field("labels", Kind.KEYWORD_LIST),)),
    ]

FIELDS: tuple[Field, ...] = (
    f("start_time", Kind.EPOCH_S, "start of the export interval", required=True),
    f("end_time", Kind.EPOCH_S, "end of the export interval; the time field", required=True),
    f("host", K, "node that produced the log"),
    f("action", K, "final verdict", required=True, allowed=("allow", "deny")),
    f("reporter", K, "which side reported", required=True, allowed=("src", "dst", "fwd", "src,fwd", "dst,fwd")),
    f("proto", K, "protocol name or number"),
    *_endpoint,
    f("dest_service_namespace", K), f("dest_service_name", K), f("dest_service_port", K),
    f("dest_service_port_num", L),
    f("dest_domains", Kind.KEYWORD_LIST, "domains mapped to the destination IP"),
    f("policies", Kind.STRUCT, "policy traces <order>|<tier>|<policy>|<action>|<rule>",
      children=tuple(Field(p, Kind.KEYWORD_LIST) for p in POLICY_ARRAYS)),
    f("bytes_in", L), f("bytes_out", L), f("packets_in", L), f("packets_out", L),
    f("transit_bytes_in", L), f("transit_bytes_out", L), f("transit_packets_in", L), f("transit_packets_out", L),
    f("num_flows", L), f("num_flows_started", L), f("num_flows_completed", L),
    f("http_requests_allowed_in", L), f("http_requests_denied_in", L),
    f("process_name", K), f("process_id", K), f("process_args", Kind.KEYWORD_LIST),
    f("num_process_names", L), f("num_process_ids", L), f("num_process_args", L),
    f("nat_outgoing_ports", Kind.LONG_LIST),
    f("original_source_ips", Kind.IP_LIST), f("num_original_source_ips", L),
    f("source_ips", Kind.IP_LIST, "beyond Calico: bounded set of source IPs kept when aggregated"),
    f("dest_ips", Kind.IP_LIST, "beyond Calico: bounded set of destination IPs kept when aggregated"),
    f("num_source_ips", L), f("num_dest_ips", L),
    f("tcp_mean_send_congestion_window", L), f("tcp_min_send_congestion_window", L),
    f("tcp_mean_smooth_rtt", L), f("tcp_max_smooth_rtt", L), f("tcp_mean_min_rtt", L), f("tcp_max_min_rtt", L),
    f("tcp_mean_mss", L), f("tcp_min_mss", L), f("tcp_total_retransmissions", L), f("tcp_lost_packets", L),
    f("tcp_unrecovered_to", L),
)

LOGTYPE = LogType(
    name="flows",
    rbac=("flows",),
    index_prefix="tigera_secure_ee_flows",
    time_field="end_time",
    fields=FIELDS,
    retention_days=8,
    retention_setting="flows",
    aliases={
        "source_port_num": "source_port", "dest_port_num": "dest_port",
        "dest_service_port_name": "dest_service_port", "source.ip": "source_ip", "source.port": "source_port",
        "source.bytes": "bytes_out", "source.packets": "packets_out", "destination.ip": "dest_ip",
        "destination.port": "dest_port", "destination.bytes": "bytes_in", "destination.packets": "packets_in",
        "network.protocol": "proto", "event.action": "action", "@timestamp": "end_time",
    },
    epoch_timestamp=True,
    aggregation="flows",
    bulk_path="/flows/logs/bulk",
    query_path="/flows/logs",
    sides=(Side("source", "source_namespace", ("source_name", "source_name_aggr", "source_ip", "source_labels",
                                               "source_ips", "original_source_ips")),
           Side("dest", "dest_namespace", ("dest_name", "dest_name_aggr", "dest_ip", "dest_labels", "dest_ips",
                                           "dest_domains", "dest_service_name"))),
    # The process fields belong to the reporting endpoint, whichever side that is; the policies that judged
    # the flow are both sides' (`<namespace>/<tier>.<name>` names the other side's namespace policies).
    shared=("process_name", "process_id", "process_args", "policies"),
    # About 50x fewer rows than the data file on the bench topology (host or ports would be too fine).
    rollup=Rollup(
        dims=("cluster", "reporter", "action", "proto", "source_type", "source_namespace", "source_name_aggr",
              "dest_type", "dest_namespace", "dest_name_aggr", "dest_service_namespace", "dest_service_name",
              "dest_port"),
        measures=("bytes_in", "bytes_out", "packets_in", "packets_out", "num_flows", "num_flows_started",
                  "num_flows_completed", "http_requests_allowed_in", "http_requests_denied_in"),
        derived=(("dest_domain", 'list_min("dest_domains")'),),  # the flow graph's node of a domain destination
    ),
)

# Real-looking Felix lines: the spec's example, a denied flow to a public peer with a staged policy in
# the code's position, a host endpoint flow, and a level-0 record with ports and process info.
SAMPLES: list[str] = [
    '{"start_time":1700000000,"end_time":1700000300,"source_ip":null,"source_name":"-","source_name_aggr":"web-5d8c9-*",'
    '"source_namespace":"shop","source_port":null,"source_type":"wep","source_labels":{"labels":["app=web"]},'
    '"dest_ip":null,"dest_name":"-","dest_name_aggr":"cart-6f7b8-*","dest_namespace":"shop","dest_port":8080,'
    '"dest_type":"wep","dest_labels":{"labels":["app=cart"]},"dest_service_namespace":"shop",'
    '"dest_service_name":"cart","dest_service_port":"http","dest_service_port_num":80,"dest_domains":null,'
    '"nat_outgoing_ports":[],"proto":"tcp","action":"allow","reporter":"src","policies":{"all_policies":'
    '["0|default|shop/default.web-egress|allow|0"],"enforced_policies":["0|default|shop/default.web-egress|allow|0"],'
    '"pending_policies":["0|default|shop/default.web-egress|allow|0"],"transit_policies":[]},"bytes_in":5120,'
    '"bytes_out":1830,"packets_in":12,"packets_out":14,"num_flows":4,"num_flows_started":3,"num_flows_completed":4,'
    '"http_requests_allowed_in":0,"http_requests_denied_in":0,"process_name":"-","num_process_names":0,'
    '"process_id":"-","num_process_ids":0,"process_args":null,"num_process_args":0,"original_source_ips":null,'
    '"num_original_source_ips":0,"host":"worker-2","@timestamp":1700000300000}',
    '{"start_time":1700000300,"end_time":1700000600,"source_ip":null,"source_name":"-","source_name_aggr":"api-7c9f-*",'
    '"source_namespace":"payments","source_port":null,"source_type":"wep","source_labels":{"labels":["app=api","tier=backend"]},'
    '"dest_ip":null,"dest_name":"-","dest_name_aggr":"pub","dest_namespace":"-","dest_port":443,"dest_type":"net",'
    '"dest_labels":null,"dest_service_namespace":"-","dest_service_name":"-","dest_service_port":"-",'
    '"dest_domains":["api.stripe.com"],"proto":"tcp","action":"deny","reporter":"src","policies":{"all_policies":'
    '["0|security|payments/security.staged:restrict-egress|deny|-1","1|security|security.block-egress|deny|2"],'
    '"enforced_policies":["0|security|security.block-egress|deny|2"],"pending_policies":'
    '["0|security|payments/staged:security.restrict-egress|deny|-1"],"transit_policies":[]},"bytes_in":0,'
    '"bytes_out":1480,"packets_in":0,"packets_out":20,"num_flows":5,"num_flows_started":5,"num_flows_completed":0,'
    '"http_requests_allowed_in":0,"http_requests_denied_in":0,"process_name":"*","num_process_names":3,'
    '"process_id":"*","num_process_ids":4,"process_args":["-s","https://api.stripe.com"],"num_process_args":2,'
    '"host":"worker-1"}',
    '{"start_time":1700000600,"end_time":1700000900,"source_ip":"10.0.0.12","source_name":"node-3","source_name_aggr":"node-3",'
    '"source_namespace":"-","source_port":51234,"source_type":"hep","source_labels":null,"dest_ip":"10.244.2.9",'
    '"dest_name":"coredns-5d78c9869d-4xk2p","dest_name_aggr":"coredns-5d78c9869d-*","dest_namespace":"kube-system",'
    '"dest_port":53,"dest_type":"wep","dest_labels":{"labels":["k8s-app=kube-dns"]},"dest_service_namespace":"kube-system",'
    '"dest_service_name":"kube-dns","dest_service_port":"dns","dest_service_port_num":53,"proto":"udp","action":"allow",'
    '"reporter":"dst","policies":{"all_policies":["0|__PROFILE__|__PROFILE__.kns.kube-system|allow|0"],'
    '"enforced_policies":["0|__PROFILE__|__PROFILE__.kns.kube-system|allow|0"],"pending_policies":[],'
    '"transit_policies":[]},"bytes_in":840,"bytes_out":1260,"packets_in":10,"packets_out":10,"num_flows":1,'
    '"num_flows_started":1,"num_flows_completed":1,"process_name":"/usr/bin/coredns","num_process_names":1,'
    '"process_id":"4711","num_process_ids":1,"nat_outgoing_ports":[31000,31001],"host":"node-3"}',
    '{"start_time":1700000900,"end_time":1700001200,"source_ip":"192.168.7.20","source_name":"-","source_name_aggr":"pvt",'
    '"source_namespace":"-","source_type":"net","dest_ip":"10.244.1.7","dest_name":"db-0","dest_name_aggr":"db-*",'
    '"dest_namespace":"data","dest_port":5432,"dest_type":"wep","dest_labels":{"labels":["app=db"]},"proto":"6",'
    '"action":"deny","reporter":"dst","policies":{"all_policies":["0|default|data/knp.default.db-ingress|deny|-1"],'
    '"enforced_policies":["0|default|data/knp.default.db-ingress|deny|-1"],"pending_policies":'
    '["0|default|data/staged:knp.default.db-open|allow|0"]},"bytes_in":120,"bytes_out":0,"packets_in":2,'
    '"packets_out":0,"num_flows":1,"num_flows_started":1,"num_flows_completed":1,"original_source_ips":["203.0.113.9"],'
    '"num_original_source_ips":1,"host":"worker-3"}',
]
