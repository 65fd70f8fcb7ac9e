"""L7 logs (spec §7): HTTP request summaries; off by default in Calico, accepted here when sent."""

from __future__ import annotations

from .base import Field, Kind, LogType, Side, f

K, L = Kind.KEYWORD, Kind.LONG

FIELDS: tuple[Field, ...] = (
    f("start_time", Kind.EPOCH_S, required=True), f("end_time", Kind.EPOCH_S, "the time field", required=True),
    f("host", K), f("bytes_in", L), f("bytes_out", L), f("duration_mean", L), f("duration_max", L), f("count", L),
    f("src_name_aggr", K), f("src_namespace", K), f("src_type", K),
    f("dest_name_aggr", K), f("dest_namespace", K), f("dest_type", K),
    f("dest_service_name", K), f("dest_service_namespace", K), f("dest_service_port", L),
    f("url", K), f("response_code", K), f("method", K), f("user_agent", K), f("type", K),
    f("protocol", K), f("protocol_version", K), f("latency", L),
    f("source_port_num", L), f("dest_port_num", L), f("dest_service_port_name", K),
    # Gateway-collector records (Linseed's L7Log): the route and gateway a request went through.
    f("route_name", K), f("gateway_name", K), f("collector_name", K), f("collector_type", K),
    f("gateway_namespace", K), f("gateway_class", K), f("gateway_status", K), f("gateway_status_message", K),
    f("gateway_listener_name", K), f("gateway_listener_port", L), f("gateway_listener_protocol", K),
    f("gateway_listener_full_name", K), f("gateway_listener_hostname", K),
    f("gateway_route_type", K), f("gateway_route_name", K), f("gateway_route_namespace", K),
    f("gateway_route_hostname", K), f("gateway_route_status", K), f("gateway_route_status_message", K),
)

LOGTYPE = LogType(
    name="l7",
    rbac=("l7",),
    index_prefix="tigera_secure_ee_l7",
    time_field="end_time",
    fields=FIELDS,
    retention_days=1,
    retention_setting=None,
    bulk_path="/l7/logs/bulk",
    query_path="/l7/logs",
    sides=(Side("source", "src_namespace", ("src_name_aggr",)),
           # a gateway's route and listener name the destination's host (`shop.ns2.internal`) like its URL
           Side("dest", "dest_namespace", ("dest_name_aggr", "dest_service_name", "url", "gateway_route_hostname",
                                           "gateway_listener_hostname", "gateway_route_name"))),
)

SAMPLES: list[str] = [
    '{"start_time":1700000000,"end_time":1700000300,"host":"worker-2","bytes_in":3400,"bytes_out":98000,'
    '"duration_mean":12000,"duration_max":88000,"count":17,"src_name_aggr":"web-5d8c9-*","src_namespace":"shop",'
    '"src_type":"wep","dest_name_aggr":"cart-6f7b8-*","dest_namespace":"shop","dest_type":"wep",'
    '"dest_service_name":"cart","dest_service_namespace":"shop","dest_service_port":80,"url":"cart.shop.svc/api/items",'
    '"response_code":"200","method":"GET","user_agent":"python-requests/2.31","type":"html/1.1"}',
]
