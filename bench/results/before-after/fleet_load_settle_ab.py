"""A fleet's small batches at 1,000 clusters: server CPU of the load and of the settle after it, interleaved between
two code trees (issue 25 item 2, branch s13-fleet).

The fleet's quick-sized batches (fleet_fixed_ab.py's cache, /tmp/fleet-fixed-ab/batches-1000.pkl: 1,401 batches of
~150 records dealt by flow to 1,000 clusters), 32 senders in calls of 256, into a fresh store; then the wait until
compaction has settled (MargayTarget.settle: the hot day goes cold 60 s after the last write, merges, roll-ups,
retired files deleted). Prints one JSON line per run: load CPU-ms a batch, settle CPU-s, the sum, files and bytes.
The server's threads are split as fleet_http_profile.py does (CPU per thread from /proc; threads named by
`py-spy dump` at the end of the load).

Usage: [BATCHES=PKL] .venv/bin/python bench/results/before-after/fleet_load_settle_ab.py WORK SRC_A SRC_B [REPS]
(SRC_*: a checkout's src/ folder, put first on the server's PYTHONPATH; runs A, B, A, B, ...; BATCHES: another
cache of batches, e.g. 500,000 flows dealt the same way, for a load long enough for the compactor's rounds)."""
import json, os, pickle, re, subprocess, sys, time

ONE = r'''
import collections, json, os, pickle, re, subprocess, sys, time
from pathlib import Path
from margay.bench.targets import MargayTarget
batches = pickle.load(open(os.environ.get("BATCHES", "/tmp/fleet-fixed-ab/batches-1000.pkl"), "rb"))
TICK = os.sysconf("SC_CLK_TCK")
def per_thread(pid):
    out = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try: st = open(f"/proc/{pid}/task/{tid}/stat").read()
        except FileNotFoundError: continue
        f = st[st.rindex(")") + 2:].split(); out[tid] = (int(f[11]) + int(f[12])) / TICK
    return out
def names(pid):
    txt = subprocess.run([str(Path(sys.executable).with_name("py-spy")), "dump", "--nonblocking", "-p", str(pid)],
                         capture_output=True, text=True).stdout
    return {m.group(1): re.sub(r"[_-]?\d+$", "", m.group(2))
            for m in re.finditer(r'Thread (?:0x[0-9A-Fa-f]+ )?\(?(\d+)\)? \((?:active|idle)[^)]*\): "([^"]+)"', txt)}
t = MargayTarget(Path(sys.argv[1])).start()
try:
    a = per_thread(t.pid); c0 = t.cpu(); w0 = time.monotonic(); n = 0
    for i in range(0, len(batches), 256):
        n1, _ = t.ingest(batches[i:i + 256], 32); n += n1
    load_wall = time.monotonic() - w0; c1 = t.cpu(); b = per_thread(t.pid); nm = names(t.pid)
    split = collections.Counter()
    for k, v in b.items(): split[nm.get(k, "unnamed")] += v - a.get(k, 0)
    files_loaded = t.folders()
    t.settle(); c2 = t.cpu()
    print(json.dumps({"batches": len(batches), "records": n, "load_cpu_ms_per_batch": round((c1 - c0) * 1000 / len(batches), 3),
                      "load_threads_ms_per_batch": {k: round(v * 1000 / len(batches), 3) for k, v in split.most_common() if v > 0.005},
                      "load_wall_s": round(load_wall, 2), "settle_cpu_s": round(c2 - c1, 2), "load_cpu_s": round(c1 - c0, 2),
                      "total_cpu_s": round(c2 - c0, 2), "folders_files_loaded": list(files_loaded),
                      "folders_files_settled": list(t.folders()), "disk_bytes": t.disk_bytes()}))
finally:
    t.stop()
'''


def main() -> None:
    work, sides = sys.argv[1], {"A": sys.argv[2], "B": sys.argv[3]}
    reps = int(sys.argv[4]) if len(sys.argv) > 4 else 2
    for rep in range(reps):
        for side, src in sides.items():
            env = {**os.environ, "PYTHONPATH": src}
            load, start = os.getloadavg()[0], time.strftime("%H:%M:%S", time.gmtime())
            out = subprocess.run([sys.executable, "-c", ONE, f"{work}/{side}"], capture_output=True, text=True,
                                 check=True, env=env).stdout
            print(json.dumps({"rep": rep, "side": side, "src": src, "batches_file": os.environ.get("BATCHES", ""), "start": start,
                              "load_avg": [round(load, 1), round(os.getloadavg()[0], 1)],
                              **json.loads(out.strip().splitlines()[-1])}), flush=True)


if __name__ == "__main__":
    main()
