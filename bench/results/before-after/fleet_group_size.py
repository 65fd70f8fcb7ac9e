"""A fleet's ingest and the sizes of its group commits (issue 25 item 2, session 15).

The `fleet` scenario's records and dealing (margay.bench.fleet: FLOWS flows of the last 24 h and 7 days of DNS and
audit, one batch per cluster, type and day, 256 batches per call from 32 senders), into a fresh server whose code is
the `margay` on PYTHONPATH. Prints one JSON line: server CPU-s per million records over the load, CPU-ms a batch,
the senders' p50/p95 latency, and from /-/metrics the group commits and the batches in them (the rest of the
committed batches went alone).

Per-thread server CPU (from /proc, threads named by `py-spy dump`); PERF=FILE records `perf` of the server over the
load, PROFILE=FILE a py-spy raw profile.

Usage: PYTHONPATH=SRC [MARGAY_...=...] [PERF=F|PROFILE=F] [SENDERS=N] .venv/bin/python bench/results/before-after/fleet_group_size.py WORK CLUSTERS [FLOWS]
"""
import json, os, sys, time
from itertools import chain, islice
from pathlib import Path

import httpx

import margay
from margay.bench import fleet as F
from margay.bench.data import flow_batches, other_batches, topology
from margay.bench.targets import MargayTarget

work, clusters = Path(sys.argv[1]), int(sys.argv[2])
flows = int(sys.argv[3]) if len(sys.argv) > 3 else 1_000_000
SENDERS = int(os.environ.get("SENDERS", F.CLIENTS))  # concurrent senders (the scenario's 32 unless set)
topo = topology()
parts = list(iter(lambda s=F.fleet_batches(chain(flow_batches(topo, flows), F.by_type(other_batches(topo, 24 * 7))),
                                           clusters): list(islice(s, 256)), []))
target = MargayTarget(work / f"fleet-{clusters}-{os.getpid()}").start()
try:
    spy = None
    if os.environ.get("PERF"):  # perf of the server over the load (CPU by DSO and symbol, kernel included)
        import subprocess
        spy = subprocess.Popen(["perf", "record", "-F", "499", "-p", str(target.pid), "-o", os.environ["PERF"]],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(1)
    elif os.environ.get("PROFILE"):  # py-spy of the server over the load, collapsed stacks per thread
        import subprocess
        spy = subprocess.Popen([str(Path(sys.executable).with_name("py-spy")), "record", "-p", str(target.pid), "-r", "100",
                                "-f", "raw", "-t", "-n", "-o", os.environ["PROFILE"]], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
        time.sleep(1)
    TICK = os.sysconf("SC_CLK_TCK")

    def per_thread(pid):
        out = {}
        for tid in os.listdir(f"/proc/{pid}/task"):
            try:
                st = open(f"/proc/{pid}/task/{tid}/stat").read()
            except FileNotFoundError:
                continue
            name = st[st.index("(") + 1:st.rindex(")")]
            f = st[st.rindex(")") + 2:].split()
            out[tid] = (name, (int(f[11]) + int(f[12])) / TICK)
        return out
    th0 = per_thread(target.pid)
    sent = batches = 0
    cpu = 0.0
    t0 = time.perf_counter()
    for part in parts:
        c0 = target.cpu()
        sent += target.ingest(part, SENDERS)[0]
        cpu += target.cpu() - c0
        batches += len(part)
    wall = time.perf_counter() - t0
    import collections, re, subprocess
    txt = subprocess.run([str(Path(sys.executable).with_name("py-spy")), "dump", "--nonblocking", "-p", str(target.pid)],
                         capture_output=True, text=True).stdout
    pynames = {m.group(1): re.sub(r"[_-]?\d+$", "", m.group(2)) for m in
               re.finditer(r'Thread (?:0x[0-9A-Fa-f]+ )?\(?(\d+)\)? \((?:active|idle)[^)]*\): "([^"]+)"', txt)}
    split = collections.Counter()
    for tid, (name, v) in per_thread(target.pid).items():
        split[pynames.get(tid, "native:" + name)] += v - th0.get(tid, (name, 0))[1]
    if spy is not None:
        import signal
        spy.send_signal(signal.SIGINT)
        spy.wait(60)
    status = open(f"/proc/{target.pid}/status").read()
    rss = {k: int(v.split()[0]) // 1024 for k, v in (l.split(":", 1) for l in status.splitlines()) if k in ("VmHWM", "VmRSS")}
    text = httpx.get(target.url + "/-/metrics", timeout=60).text
    m = dict(line.split(" ", 1) for line in text.splitlines() if line.startswith("margay_ingest_group"))
    groups = float(m.get("margay_ingest_group_commits_total", "nan"))
    grouped = float(m.get("margay_ingest_grouped_batches_total", "nan"))
    print(json.dumps({"margay": str(Path(margay.__file__).parent), "env": {k: v for k, v in os.environ.items()
                                                                           if k.startswith("MARGAY_")},
                      "clusters": clusters, "senders": SENDERS, "records": sent, "batches": batches, "ingest_wall_s": round(wall, 1),
                      "ingest_cpu_s": round(cpu, 2), "cpu_s_per_million": round(cpu / sent * 1e6, 2),
                      "cpu_ms_per_batch": round(cpu * 1000 / batches, 2), "group_commits": groups,
                      "grouped_batches": grouped, "mean_group": round(grouped / groups, 1) if groups else None,
                      "alone": batches - grouped,
                      "threads_cpu_s": {k: round(v, 2) for k, v in split.most_common() if v > 0.01}, "rss_mib": rss, "preload": os.environ.get("LD_PRELOAD", ""), "load": os.getloadavg()[0]}), flush=True)
finally:
    target.stop()
    import shutil
    shutil.rmtree(target.work, ignore_errors=True)
