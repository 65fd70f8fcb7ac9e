"""Runtime security reports (Linseed's Report / RuntimeReport, `linseed/pkg/apis/v1/runtime.go`): what the
runtime security agent saw a container's process do to a file over a reporting interval."""

from __future__ import annotations

from .base import Field, Kind, LogType, f

K = Kind.KEYWORD
L = Kind.LONG

FIELDS: tuple[Field, ...] = (
    f("count", L, "events this report stands for"),
    f("type", K, "what was observed, e.g. ProcessStart or FileAccess"),
    f("config_name", K, "the runtime security configuration that asked for it"),
    f("start_time", Kind.TIMESTAMP, "start of the reporting interval; the time field", required=True),
    f("end_time", Kind.TIMESTAMP, "end of the reporting interval"),
    # Linseed's PodInfo; `start_time` inside it is kept as the text sent (Go writes 0001-01-01T00:00:00Z).
    f("pod", Kind.STRUCT, "the pod of the container", children=(
        Field("namespace", K), Field("name", K), Field("name_aggr", K), Field("container_name", K),
        Field("start_time", K), Field("ready", Kind.BOOL))),
    f("file", Kind.STRUCT, "the file", children=(Field("path", K), Field("host_path", K))),
    # `hashes` is an object inside an object: stored and returned, queryable only in /es/.
    f("process_start", Kind.STRUCT, "the process started", children=(
        Field("invocation", K),
        Field("hashes", Kind.STRUCT, children=(Field("md5", K), Field("sha1", K), Field("sha256", K))))),
    f("file_access", Kind.STRUCT, "read/write/mmap counters of the file", children=(
        Field("created", Kind.BOOL),
        *(Field(n, L) for n in (
            "num_read_calls_since_last", "num_read_bytes_since_last", "total_num_read_calls",
            "total_num_read_bytes", "num_write_calls_since_last", "num_write_bytes_since_last",
            "total_num_write_calls", "total_num_write_bytes", "is_mmapped", "mmap_offset", "is_dupped")))),
    f("host", K, "node"),
)

LOGTYPE = LogType(
    name="runtime",
    rbac=("runtimereports",),  # lma.tigera.io resourceName of Linseed's runtime handler
    index_prefix="tigera_secure_ee_runtime",
    time_field="start_time",
    fields=FIELDS,
    retention_days=8,  # LogStorage has no runtime key; a fixed default like DNS and BGP logs
    retention_setting=None,
    aliases={"timestamp": "start_time"},
    bulk_path="/runtime/reports/bulk",
    query_path="/runtime/reports",
    # Linseed's runtime list bounds `time_range` on generated_time (when margay stored the report), so a
    # poller asking "since my last read" gets reports of any start_time that arrived since: generated_time at
    # or after `from`; `to` and `field` are ignored (backend/legacy/runtime: a range query with From only).
    range_field="generated_time",
    range_from_only=True,
)

SAMPLES: list[str] = [
    '{"count":1,"type":"ProcessStart","config_name":"default","start_time":"2023-11-14T22:13:20.460223952Z",'
    '"end_time":"2023-11-14T22:13:25Z","pod":{"namespace":"shop","name":"web-5d8c9-abcde","name_aggr":"web-5d8c9-*",'
    '"container_name":"web","start_time":"2023-11-14T20:00:00Z","ready":true},"file":{"path":"/usr/bin/curl",'
    '"host_path":"/var/lib/containerd/rootfs/usr/bin/curl"},"process_start":{"invocation":"curl http://evil.example",'
    '"hashes":{"md5":"d41d8cd98f00b204e9800998ecf8427e","sha1":"da39a3ee5e6b4b0d3255bfef95601890afd80709",'
    '"sha256":"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"}},"file_access":{"created":false,'
    '"num_read_calls_since_last":0,"num_read_bytes_since_last":0,"total_num_read_calls":0,"total_num_read_bytes":0,'
    '"num_write_calls_since_last":0,"num_write_bytes_since_last":0,"total_num_write_calls":0,'
    '"total_num_write_bytes":0,"is_mmapped":0,"mmap_offset":0,"is_dupped":0},"host":"worker-2"}',
]
