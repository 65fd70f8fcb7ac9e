"""Compliance data (spec §12.2): resource snapshots and generated reports, stored like Calico's
`tigera_secure_ee_snapshots` and `tigera_secure_ee_compliance_reports` indices."""

from __future__ import annotations

from .base import Field, Kind, LogType, f

K = Kind.KEYWORD

SNAPSHOT_FIELDS: tuple[Field, ...] = (
    f("kind", K, "the List kind, e.g. PodList or GlobalNetworkPolicyList", required=True),
    f("apiVersion", K, "the API version of the listed resources", required=True),
    f("metadata", Kind.JSON, "the List's metadata (resourceVersion)"),
    f("items", Kind.JSON, "every resource of the kind at the time of the list"),
    f("requestStartedTimestamp", Kind.TIMESTAMP, "when the list was requested"),
    f("requestCompletedTimestamp", Kind.TIMESTAMP, "when the list completed (the time field)", required=True),
)

SNAPSHOTS = LogType(
    name="snapshots",
    rbac=("snapshots",),
    index_prefix="tigera_secure_ee_snapshots",
    time_field="requestCompletedTimestamp",
    fields=SNAPSHOT_FIELDS,
    retention_days=91,
    retention_setting="snapshots",
    aliases={"timestamp": "requestCompletedTimestamp"},
    bulk_path="/compliance/snapshots/bulk",
    query_path="/compliance/snapshots",
)

REPORT_FIELDS: tuple[Field, ...] = (
    f("id", K, "<reportName>_<endTime>: one report per GlobalReport run"),
    f("reportName", K, "the GlobalReport", required=True),
    f("reportTypeName", K, "inventory, network-access, policy-audit or cis-benchmark", required=True),
    f("reportSpec", Kind.JSON), f("reportTypeSpec", Kind.JSON),
    f("startTime", Kind.TIMESTAMP, "start of the reported interval", required=True),
    f("endTime", Kind.TIMESTAMP, "end of the reported interval (the time field)", required=True),
    f("generationTime", Kind.TIMESTAMP),
    f("endpoints", Kind.JSON), f("endpointsSummary", Kind.JSON),
    f("namespaces", Kind.JSON), f("namespacesSummary", Kind.JSON),
    f("services", Kind.JSON), f("servicesSummary", Kind.JSON),
    f("auditEvents", Kind.JSON), f("auditSummary", Kind.JSON),
    f("flows", Kind.JSON), f("cisBenchmark", Kind.JSON), f("cisBenchmarkSummary", Kind.JSON),
    f("uiSummary", Kind.TEXT),
)

REPORTS = LogType(
    name="compliance_reports",
    rbac=("compliance_reports",),
    index_prefix="tigera_secure_ee_compliance_reports",
    time_field="endTime",
    fields=REPORT_FIELDS,
    retention_days=91,
    retention_setting="complianceReports",
    bulk_path="/compliance/reports/bulk",
    query_path="/compliance/reports",
)

SAMPLES_SNAPSHOTS: list[str] = [
    '{"kind":"NamespaceList","apiVersion":"v1","metadata":{"resourceVersion":"812"},"items":[{"apiVersion":"v1",'
    '"kind":"Namespace","metadata":{"name":"shop","labels":{"team":"web"}}}],'
    '"requestStartedTimestamp":"2023-11-14T00:00:00Z","requestCompletedTimestamp":"2023-11-14T00:00:01Z"}',
]
SAMPLES_REPORTS: list[str] = [
    '{"id":"daily-inventory_2023-11-15T00:00:00Z","reportName":"daily-inventory","reportTypeName":"inventory",'
    '"startTime":"2023-11-14T00:00:00Z","endTime":"2023-11-15T00:00:00Z","generationTime":"2023-11-15T00:30:02Z",'
    '"endpointsSummary":{"numTotal":1,"numIngressProtected":1,"numEgressProtected":0}}',
]

BENCHMARK_FIELDS: tuple[Field, ...] = (
    f("version", K, "the CIS benchmark version kube-bench ran, e.g. cis-1.6"),
    f("kubernetesVersion", K, "the node's Kubernetes version"),
    f("type", K, "kube"),
    f("node_name", K, "the node", required=True),
    f("timestamp", Kind.TIMESTAMP, "when the benchmark ran (the time field)", required=True),
    f("error", Kind.TEXT, "why the benchmark could not run, if it could not"),
    f("tests", Kind.JSON, "[{section, section_desc, test_number, test_desc, test_info, status, scored}]"),
)

BENCHMARKS = LogType(
    name="benchmark_results",
    rbac=("benchmark_results",),
    index_prefix="tigera_secure_ee_benchmark_results",
    time_field="timestamp",
    fields=BENCHMARK_FIELDS,
    retention_days=91,
    retention_setting=None,
    bulk_path="/compliance/benchmarks/bulk",
    query_path="/compliance/benchmarks",
)

SAMPLES_BENCHMARKS: list[str] = [
    '{"version":"cis-1.6","kubernetesVersion":"v1.30.2","type":"kube","node_name":"node-1",'
    '"timestamp":"2023-11-14T00:00:00Z","tests":[{"section":"4.1","section_desc":"Worker Node Configuration Files",'
    '"test_number":"4.1.1","test_desc":"Ensure that the kubelet service file permissions are set to 644",'
    '"test_info":"chmod 644 /etc/systemd/system/kubelet.service.d/kubeadm.conf","status":"PASS","scored":true}]}',
]
