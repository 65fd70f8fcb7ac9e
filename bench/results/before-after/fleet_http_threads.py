"""Server CPU per ingest batch over HTTP split by thread (event loop, gunzip executor, ingest pool, compactor), and the
group commits' sizes read back from the store's journal (issue 25 item 2, branch s10-http).

The fleet's quick-sized batches at 1,000 clusters (cached by fleet_fixed_ab.py), sent by 32 senders in calls of
CHUNK batches as the fleet scenario sends them, into a fresh store; the threads are named by `py-spy dump`.
Usage: PYTHON bench/results/before-after/fleet_http_threads.py WORK_DIR [SENDERS] [CHUNK]
(PYTHON: the side's interpreter, e.g. one with PYTHONPATH at a checkout of the code to measure)."""
from pathlib import Path
from margay.bench.targets import MargayTarget
batches = pickle.load(open("/tmp/fleet-fixed-ab/batches-1000.pkl", "rb"))
clients = int(sys.argv[2]) if len(sys.argv) > 2 else 32
CH = int(sys.argv[3]) if len(sys.argv) > 3 else 100000
TICK = os.sysconf("SC_CLK_TCK")
import subprocess
NAMES = {}
def names(pid):
    txt = subprocess.run([str(Path(sys.executable).with_name("py-spy")), "dump", "--nonblocking", "-p", str(pid)], capture_output=True, text=True).stdout
    for m in re.finditer(r'Thread (?:0x[0-9A-Fa-f]+ )?\(?(\d+)\)? \((?:active|idle)[^)]*\): "([^"]+)"', txt):
        NAMES[m.group(1)] = m.group(2)
    return txt
def per_thread(pid):
    out = collections.Counter()
    for t in os.listdir(f"/proc/{pid}/task"):
        try:
            stat = open(f"/proc/{pid}/task/{t}/stat").read()
        except FileNotFoundError:
            continue
        comm = stat[stat.index("(")+1:stat.rindex(")")]
        f = stat[stat.rindex(")")+2:].split()
        out[t] += (int(f[11]) + int(f[12])) / TICK
    return out
t = MargayTarget(Path(sys.argv[1])).start()
try:
    a = per_thread(t.pid); c0 = t.cpu()
    n = w = 0
    for i in range(0, len(batches), CH):
        n1, w1 = t.ingest(batches[i:i + CH], clients); n += n1; w += w1
    cpu = t.cpu() - c0; txt = names(t.pid); b = per_thread(t.pid); a = collections.Counter({k: v for k, v in a.items()})
    agg = collections.Counter()
    for k in b: agg[re.sub(r"[_-]?\d+$", "", NAMES.get(k, "tid?"))] += b[k] - a.get(k, 0)
    d = {k: round(v * 1000 / len(batches), 2) for k, v in agg.most_common() if v > 0.005}
    print(json.dumps({"cpu_ms_per_batch": round(cpu * 1000 / len(batches), 2), "wall": round(w, 1), "threads_ms_per_batch": d, "folders_files": t.folders()}))
finally:
    t.stop()
journal = Path(sys.argv[1]) / "data" / "journal.ndjson"
commits = collections.Counter()
for line in open(journal):
    try:
        e = json.loads(line)
    except ValueError:
        continue
    if e.get("op") == "commit" and e["moves"]:
        lt = e["moves"][0][1].split("/store/")[1].split("/")[0]
        n = len(e.get("keys", [])) or 1
        commits[f"{lt} {'alone' if n == 1 else 'grouped'} batches"] += n
        commits[f"{lt} commits"] += 1
print(json.dumps({"journal": dict(sorted(commits.items()))}))
