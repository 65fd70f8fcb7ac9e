"""The forwarding benchmark: delivery throughput per store, measured against the rig's real peers (S3, rsyslog,
HEC), from the embedded store it fills first."""

from __future__ import annotations

import tempfile
import time
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from itertools import islice
from pathlib import Path
from typing import Any

from ..forward.config import from_documents
from ..forward.forwarder import Forwarder
from ..forward.service import make_sink
from ..logtypes import REGISTRY
from ..metrics import Registry


def _load(backend: Any, records: int) -> int:
    from ..simulate import Topology, flows, ndjson_batches

    topo = Topology.build(3, clusters=["cluster", "app-cluster-1"])
    end = datetime(2026, 11, 26, tzinfo=UTC)
    lt = REGISTRY["flows"]
    stored = 0
    per_cluster = records // len(topo.clusters)
    for cluster in topo.clusters:
        recs = islice(flows(topo, cluster, end - timedelta(hours=48), end), per_cluster)
        for body in ndjson_batches(recs, 10_000):
            resp, _ = backend.ingest(lt, cluster, body, key=None, now=datetime.now(UTC),
                                     respond=lambda c: {"succeeded": c.succeeded})
            stored += resp["succeeded"]
    return stored


def bench(records: int = 50_000, work_dir: Path | None = None, stores: tuple[str, ...] = ("s3", "syslog", "splunk"),
          batch_size: int = 5000, timeout: float = 300.0) -> dict[str, Any]:
    """Store `records` simulated flows, then time each store delivering all of them from an empty cursor."""
    from ..rig.hec import HecReceiver
    from ..rig.rsyslog import RsyslogServer
    from ..rig.s3 import S3Server
    from ..store.duckdb import DuckDBBackend

    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(dir=work_dir) as tmp, ExitStack() as stack:
        root = Path(tmp)
        backend = DuckDBBackend(root / "data")
        stack.callback(backend.close)
        stored = _load(backend, records)
        results["stored"] = stored
        for kind in stores:
            spec: dict[str, Any] = {"logTypes": ["Flows"], "batchSize": batch_size, "flushInterval": 0,
                                    "retryInitial": 0.2, "retryMax": 2}
            if kind == "s3":
                s3 = S3Server()
                s3.start(root / "s3")
                stack.callback(s3.stop)
                creds = root / "s3-credentials.yaml"
                creds.write_text(f"key-id: {s3.access_key}\nkey-secret: {s3.secret_key}\n")
                spec.update(region=s3.region, bucketName=s3.new_bucket("bench"), bucketPath="archive",
                            endpoint=s3.endpoint, pathStyle=True, credentialsFile=str(creds))
            elif kind == "syslog":
                rs = RsyslogServer()
                rs.start(root / "rsyslog")
                stack.callback(rs.stop)
                spec.update(endpoint=f"tcp://127.0.0.1:{rs.tcp_port}", packetSize=65536)
            else:
                hec = HecReceiver()
                hec.start(root / "hec")
                stack.callback(hec.stop)
                token = root / "hec-token"
                token.write_text(hec.token)
                spec.update(endpoint=hec.url, tokenFile=str(token))
            [config] = from_documents([{"kind": "LogCollector", "spec": {"additionalStores": {kind: spec}}}])
            metrics = Registry()
            fwd = Forwarder(config, backend, make_sink(config, metrics), root / f"state-{kind}", metrics=metrics)
            started, cpu0 = time.perf_counter(), time.process_time()
            fwd.start()
            delivered = 0.0
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                delivered = metrics.get("margay_forward_delivered_records_total", store=kind, type="flows")
                if delivered >= stored:
                    break
                time.sleep(0.02)
            seconds, cpu = time.perf_counter() - started, time.process_time() - cpu0
            fwd.stop()
            results[kind] = {"records": int(delivered), "seconds": round(seconds, 3),
                             "records_per_s": round(delivered / seconds) if seconds else 0,
                             "cpu_s": round(cpu, 3),
                             "retries": int(metrics.get("margay_forward_retries_total", store=kind))}
    return results
