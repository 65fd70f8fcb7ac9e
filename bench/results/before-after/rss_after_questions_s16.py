# session 16: the server's RSS after the query scenario's questions (3 rounds of 5 each) and 12 s idle, over a stored copy. Usage: python rss_after_questions_s16.py SRC [MARGAY_MALLOC]
import sys, time, json, os
from pathlib import Path
import httpx
from margay.bench.targets import MargayTarget
from margay.rig.children import ServerProcess
work = Path("/tmp/s16/large-work/query-margay")
env = {"PYTHONPATH": sys.argv[1]}
if len(sys.argv) > 2: env["MARGAY_MALLOC"] = sys.argv[2]
server = ServerProcess(work / "data", "--config", str(work / "margay.yaml"), env=env, log=Path(f"/tmp/s16/rss50-{len(sys.argv)}.log"))
server.start()
t = MargayTarget.__new__(MargayTarget); t.server = server
def rss(pid): return int(open(f"/proc/{pid}/statm").read().split()[1]) * 4096 >> 20
try:
    time.sleep(3)
    http = httpx.Client(base_url=server.url, timeout=600)
    qs = t.queries(); pid = server.proc.pid
    print("start rss", rss(pid))
    for r in range(3):
        for name, q in qs.items():
            for _ in range(5): q(http)
        print("round", r, "rss", rss(pid), flush=True)
    time.sleep(12)
    print("after 12 s idle", rss(pid))
finally:
    server.stop()
