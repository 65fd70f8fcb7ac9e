"""Server CPU per ingest batch at 1,000 clusters, before and after a change, interleaved (issue 25 item 2).

The fleet scenario's quick-sized records (150,000 flows, 24 h of DNS and audit) dealt by flow to CLUSTERS
clusters: 1,401 batches at 1,000 (all but 8 under 1,000 lines, ~150 records each), sent over HTTP by 4 and by
32 concurrent senders into a fresh store, alternately by the `before` and the `after` Python (each a venv with
margay installed from its own checkout: the server runs that venv's code), rep after rep.

Usage: .venv/bin/python bench/results/before-after/fleet_fixed_ab.py BEFORE_PYTHON AFTER_PYTHON [REPS] [CLUSTERS]
Prints one JSON line per run. FLEET_AB_WORK=DIR puts the two stores under DIR (default /tmp/fleet-fixed-ab), so that
two people's runs on one machine do not share a store; the batches stay cached in /tmp/fleet-fixed-ab."""
import json, os, pickle, subprocess, sys
from pathlib import Path

WORK = os.environ.get("FLEET_AB_WORK", "/tmp/fleet-fixed-ab")
CLIENTS = (32,)  # the fleet scenario's senders
ONE = r'''
import json, pickle, sys
from pathlib import Path
from margay.bench.targets import MargayTarget
batches = pickle.load(open(sys.argv[1], "rb")); clients = int(sys.argv[2])
t = MargayTarget(Path(sys.argv[3])).start()
try:
    cpu = 0.0; sent = 0; wall = 0.0
    for i in range(0, len(batches), 256):
        c0 = t.cpu(); n, w = t.ingest(batches[i:i + 256], clients); cpu += t.cpu() - c0; sent += n; wall += w
    stats = t.folders()
    print(json.dumps({"clients": clients, "batches": len(batches), "records": sent, "cpu_s": round(cpu, 2),
                      "cpu_ms_per_batch": round(cpu * 1000 / len(batches), 2), "wall_s": round(wall, 1),
                      "folders_files_before_settle": list(stats)}))
finally:
    t.stop()
'''


def main() -> None:
    before, after = sys.argv[1], sys.argv[2]
    reps = int(sys.argv[3]) if len(sys.argv) > 3 else 2
    clusters = int(sys.argv[4]) if len(sys.argv) > 4 else 1000
    cache = Path(f"/tmp/fleet-fixed-ab/batches-{clusters}.pkl")
    if not cache.exists():
        from itertools import chain

        from margay.bench import fleet as F
        from margay.bench.data import flow_batches, other_batches, topology
        topo = topology()
        cache.parent.mkdir(parents=True, exist_ok=True)
        batches = list(F.fleet_batches(chain(flow_batches(topo, 150_000), F.by_type(other_batches(topo, 24))), clusters))
        pickle.dump(batches, open(cache, "wb"))
    for rep in range(reps):
        for clients in CLIENTS:
            for side, python in (("before", before), ("after", after)):
                out = subprocess.run([python, "-c", ONE, str(cache), str(clients), f"{WORK}/{side}"],
                                     capture_output=True, text=True, check=True).stdout
                print(json.dumps({"rep": rep, "side": side, **json.loads(out.strip().splitlines()[-1])}), flush=True)


if __name__ == "__main__":
    main()
