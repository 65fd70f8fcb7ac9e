"""Fleet load phases: per 256-batch part, the types sent, wall, server CPU, merges made so far."""
import json, os, sys, time, re, subprocess
from itertools import chain, islice
from pathlib import Path
import httpx
from margay.bench import fleet as F
from margay.bench.data import flow_batches, other_batches, topology
from margay.bench.targets import MargayTarget

work, clusters = Path(sys.argv[1]), int(sys.argv[2])
flows = int(sys.argv[3]) if len(sys.argv) > 3 else 3_000_000
topo = topology()
src = F.fleet_batches(chain(flow_batches(topo, flows), F.by_type(other_batches(topo, 24 * 7))), clusters)
target = MargayTarget(work / f"fleet-{clusters}-{os.getpid()}").start()
def metric(name):
    t = httpx.get(target.url + "/-/metrics", timeout=60).text
    m = re.search(rf"^{name} (\S+)$", t, re.M)
    return float(m.group(1)) if m else float("nan")
try:
    t0 = time.perf_counter(); cpu = 0.0; sent = 0
    rows = []
    while part := list(islice(src, 256)):
        types = {}
        for b in part:
            types[b.log_type] = types.get(b.log_type, 0) + 1
        c0 = target.cpu()
        n = target.ingest(part, F.CLIENTS)[0]
        c = target.cpu() - c0
        cpu += c; sent += n
        rows.append((round(time.perf_counter() - t0, 1), types, n, round(c, 2), metric("margay_compaction_merges_total")))
    for r in rows:
        print(r)
    print(json.dumps({"clusters": clusters, "records": sent, "cpu": round(cpu, 2), "per_M": round(cpu / sent * 1e6, 2),
                      "wall": round(time.perf_counter() - t0, 1)}))
finally:
    target.stop()
    import shutil; shutil.rmtree(target.work, ignore_errors=True)
