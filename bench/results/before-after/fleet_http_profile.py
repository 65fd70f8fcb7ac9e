"""Where a fleet batch's server CPU goes over HTTP (issue 25 item 2, branch s12-fleet): the fleet's 1,401
quick-sized batches at 1,000 clusters (fleet_fixed_ab.py's cache), 32 senders in calls of 256, into a fresh
server; CPU per thread from /proc (ms a batch, threads named from py-spy's record) and `py-spy record --threads
-f raw` of the whole load into OUT (read the MainThread's stacks for the event loop's share).

Usage: .venv/bin/python bench/results/before-after/fleet_http_profile.py WORK_DIR OUT"""
import pickle, sys, subprocess, time, json
from pathlib import Path
from margay.bench.targets import MargayTarget
batches = pickle.load(open("/tmp/fleet-fixed-ab/batches-1000.pkl", "rb"))
work = Path(sys.argv[1]); out = sys.argv[2]
t = MargayTarget(work).start()
try:
    spy = subprocess.Popen([str(Path(sys.executable).with_name("py-spy")), "record", "-p", str(t.pid), "-r", "200",
                            "--threads", "-f", "raw", "-o", out, "--nonblocking"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1)
    import os, collections
    TICK = os.sysconf("SC_CLK_TCK")
    def per_thread(pid):
        out = {}
        for tid in os.listdir(f"/proc/{pid}/task"):
            try: st = open(f"/proc/{pid}/task/{tid}/stat").read()
            except FileNotFoundError: continue
            f = st[st.rindex(")")+2:].split(); out[tid] = (int(f[11]) + int(f[12])) / TICK
        return out
    a = per_thread(t.pid)
    c0 = t.cpu(); n = w = 0
    for i in range(0, len(batches), 256):
        n1, w1 = t.ingest(batches[i:i + 256], 32); n += n1; w += w1
    cpu = t.cpu() - c0
    b = per_thread(t.pid)
    spy.send_signal(2); spy.wait()
    import re
    names = {}
    for line in open(out):
        m = re.match(r"thread \((\d+)\): ([^;]+)", line)
        if m: names[m.group(1)] = re.sub(r"[_-]?\d+$", "", m.group(2))
    agg = collections.Counter()
    for k, v in b.items(): agg[names.get(k, "unnamed")] += v - a.get(k, 0)
    print(json.dumps({k: round(v * 1000 / len(batches), 2) for k, v in agg.most_common() if v > 0.005}))
    print(json.dumps({"cpu_ms_per_batch": round(cpu * 1000 / len(batches), 2), "wall": round(w, 1), "records": n}))
finally:
    t.stop()
