"""Audit logs (spec §5): Kubernetes audit.k8s.io/v1 Events from the Calico and Kubernetes API servers."""

from __future__ import annotations

from dataclasses import replace

from .base import Field, Kind, LogType, Side, f

K = Kind.KEYWORD

_user = (Field("username", K), Field("uid", K), Field("groups", Kind.KEYWORD_LIST), Field("extra", Kind.JSON))

FIELDS: tuple[Field, ...] = (
    f("apiVersion", K), f("kind", K),
    f("level", K, allowed=("None", "Metadata", "Request", "RequestResponse")),
    f("auditID", K), f("stage", K, allowed=("RequestReceived", "ResponseStarted", "ResponseComplete", "Panic")),
    f("requestURI", K), f("verb", K),
    f("user", Kind.STRUCT, children=_user),
    f("impersonatedUser", Kind.STRUCT, children=_user),
    f("sourceIPs", Kind.IP_LIST), f("userAgent", K),
    f("objectRef", Kind.STRUCT, children=tuple(Field(n, K) for n in (
        "resource", "namespace", "name", "uid", "apiGroup", "apiVersion", "resourceVersion", "subresource"))),
    f("responseStatus", Kind.STRUCT, children=(
        Field("code", Kind.LONG), Field("status", K), Field("message", Kind.TEXT), Field("reason", K),
        Field("metadata", Kind.JSON), Field("details", Kind.JSON))),
    f("requestObject", Kind.JSON), f("responseObject", Kind.JSON),
    f("requestReceivedTimestamp", Kind.TIMESTAMP, "the time field", required=True),
    f("stageTimestamp", Kind.TIMESTAMP),
    f("annotations", Kind.MAP),
    f("name", K, "responseObject.metadata.name, else responseObject.details.name, else objectRef.name, else -"),
)

_NAME = ("coalesce(\"name\", json_extract_string(\"responseObject\", '$.metadata.name'), "
         "json_extract_string(\"responseObject\", '$.details.name'), \"objectRef\".\"name\", '-')")

AUDIT_EE = LogType(
    name="audit_ee",
    rbac=("audit_ee", "audit*", "audit"),
    index_prefix="tigera_secure_ee_audit_ee",
    time_field="requestReceivedTimestamp",
    fields=FIELDS,
    retention_days=91,
    retention_setting="auditReports",
    native_formats=("ndjson", "eventlist"),
    aliases={"timestamp": "requestReceivedTimestamp"},
    map_keys=("annotations",),
    json_keys={"responseObject.apiVersion": ("responseObject", "$.apiVersion"),
               "responseObject.kind": ("responseObject", "$.kind")},
    derived={"name": _NAME},
    bulk_path="/audit/logs/ee/bulk",
    query_path="/audit/logs",
    sides=(Side("object", "objectRef.namespace"),),
)
AUDIT_KUBE = replace(AUDIT_EE, name="audit_kube", rbac=("audit_kube", "audit*", "audit"),
                     index_prefix="tigera_secure_ee_audit_kube", bulk_path="/audit/logs/kube/bulk")

SAMPLES_EE: list[str] = [
    '{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"RequestResponse","auditID":"8f3c0a7e-1b2d-4c5e-9f01-aa11bb22cc33",'
    '"stage":"ResponseComplete","requestURI":"/apis/projectcalico.org/v3/globalnetworkpolicies/security.block-egress",'
    '"verb":"patch","user":{"username":"alice@example.com","groups":["system:authenticated","netsec"]},'
    '"sourceIPs":["10.0.0.5"],"userAgent":"calicoctl/v3.21.0","objectRef":{"resource":"globalnetworkpolicies",'
    '"name":"security.block-egress","apiGroup":"projectcalico.org","apiVersion":"v3"},"responseStatus":'
    '{"metadata":{},"code":200},"requestObject":{"spec":{"order":100}},"responseObject":{"kind":"GlobalNetworkPolicy",'
    '"apiVersion":"projectcalico.org/v3","metadata":{"name":"security.block-egress","resourceVersion":"4711"}},'
    '"requestReceivedTimestamp":"2023-11-14T22:13:20.000000Z","stageTimestamp":"2023-11-14T22:13:20.041233Z",'
    '"annotations":{"authorization.k8s.io/decision":"allow","authorization.k8s.io/reason":"RBAC: allowed by ClusterRoleBinding"}}',
    '{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"RequestResponse","auditID":"0a1b2c3d-0000-4000-8000-000000000001",'
    '"stage":"ResponseComplete","requestURI":"/apis/projectcalico.org/v3/namespaces/shop/networkpolicies/default.allow-web",'
    '"verb":"delete","user":{"username":"system:serviceaccount:ci:deployer","uid":"9d0c","groups":["system:serviceaccounts"]},'
    '"sourceIPs":["10.0.3.4","10.0.3.1"],"objectRef":{"resource":"networkpolicies","namespace":"shop",'
    '"name":"default.allow-web","apiGroup":"projectcalico.org","apiVersion":"v3"},"responseStatus":{"metadata":{},'
    '"status":"Success","code":200,"details":{"name":"default.allow-web","kind":"networkpolicies"}},'
    '"responseObject":{"kind":"Status","apiVersion":"v1","status":"Success","details":{"name":"default.allow-web"}},'
    '"requestReceivedTimestamp":"2023-11-14T22:15:00Z","stageTimestamp":"2023-11-14T22:15:00.2Z"}',
]

SAMPLES_KUBE: list[str] = [
    '{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"RequestResponse","auditID":"5e6f7a8b-1111-4222-8333-444455556666",'
    '"stage":"ResponseComplete","requestURI":"/api/v1/namespaces/shop/pods","verb":"create","user":'
    '{"username":"system:serviceaccount:kube-system:replicaset-controller","groups":["system:serviceaccounts",'
    '"system:serviceaccounts:kube-system","system:authenticated"]},"sourceIPs":["172.18.0.2"],"userAgent":'
    '"kube-controller-manager/v1.30.2","objectRef":{"resource":"pods","namespace":"shop","apiVersion":"v1"},'
    '"responseStatus":{"metadata":{},"code":201},"responseObject":{"kind":"Pod","apiVersion":"v1","metadata":'
    '{"name":"web-5d8c9-abcde","generateName":"web-5d8c9-","namespace":"shop"}},'
    '"requestReceivedTimestamp":"2023-11-14T22:13:20.500000Z","stageTimestamp":"2023-11-14T22:13:20.530000Z"}',
    '{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","auditID":"5e6f7a8b-1111-4222-8333-444455556667",'
    '"stage":"ResponseComplete","requestURI":"/apis/networking.k8s.io/v1/namespaces/data/networkpolicies/db-ingress",'
    '"verb":"update","user":{"username":"bob","groups":["dev"]},"sourceIPs":["10.0.9.9"],"objectRef":'
    '{"resource":"networkpolicies","namespace":"data","name":"db-ingress","apiGroup":"networking.k8s.io","apiVersion":"v1"},'
    '"responseStatus":{"metadata":{},"status":"Failure","message":"forbidden","reason":"Forbidden","code":403},'
    '"requestReceivedTimestamp":"2023-11-14T22:14:00Z","stageTimestamp":"2023-11-14T22:14:00.01Z"}',
]

# The kube-apiserver audit webhook posts an EventList; margay accepts it on the kube bulk endpoint.
SAMPLE_EVENTLIST = ('{"kind":"EventList","apiVersion":"audit.k8s.io/v1","metadata":{},"items":['
                    + ",".join(SAMPLES_KUBE) + "]}")
