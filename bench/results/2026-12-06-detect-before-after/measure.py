"""Threat-feed matching CPU before and after, same data, interleaved: `python measure.py BEFORE_SRC OUT.json`.

BEFORE_SRC is the `src` folder of the older commit (`git archive <commit> src | tar -x -C DIR`). Each run is a
fresh process (PYTHONPATH at that code or this checkout's) that ingests the detect bench's 102,097 simulated
flows through Backend.ingest and searches a 100,000-entry IP feed (the bench's, with hits) with the detector's
search_feed after every N records - N = 10,000, and N = all of them (one search: the detector's minute at this
machine's ingest rate holds more records than that) - measuring ingest's and each search's process CPU apart
(detect.bench.sequential_matching, the same function in both commits), after one untimed search on a
throwaway store: DuckDB's and the Arrow kernels' first use, which a running server pays once.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

RUN = """
import json, statistics, sys
from pathlib import Path
from margay.bench.data import END, flow_batches, topology
from margay.detect.bench import feed_entries, sequential_matching
from margay.detect.feeds import FeedStatus
from margay.store.ipset import parse_ipset
batches = list(flow_batches(topology(), 100_000, end=END))
every = int(sys.argv[1]) or sum(b.records for b in batches)
status = FeedStatus(entries=feed_entries(100_000))
parse_ipset(status.entries)  # the set is parsed at sync, before any search
sequential_matching(batches[:2], END, status, every=every, work_dir=Path(sys.argv[2]))  # the process's first use
ingest, searches, hits = sequential_matching(batches, END, status, every=every, work_dir=Path(sys.argv[2]))
steady = statistics.median(searches[1:]) if len(searches) > 2 else None
print(json.dumps({"every": every, "ingest_cpu_s": ingest, "searches": len(searches), "search_cpu_s": sum(searches),
                  "search_cpu_ms_p50_steady": steady and 1000 * steady, "hits": hits,
                  "pct": 100 * sum(searches) / ingest, "pct_steady": steady and 100 * steady * len(searches) / ingest}))
"""


def main() -> None:
    before, out = sys.argv[1], Path(sys.argv[2])
    after = str(Path(__file__).resolve().parents[3] / "src")
    work = Path(os.environ.get("WORK", ".bench")).resolve()
    work.mkdir(parents=True, exist_ok=True)
    runs = []
    for rep in range(int(os.environ.get("REPS", "3"))):
        order = (("before", before), ("after", after)) if rep % 2 == 0 else (("after", after), ("before", before))
        for every in (10_000, 0):
            for label, src in order:
                env = {**os.environ, "PYTHONPATH": src}
                res = subprocess.run([sys.executable, "-c", RUN, str(every), str(work)], env=env, check=True,
                                     capture_output=True, text=True)
                row = {"code": label, "rep": rep, **json.loads(res.stdout.strip().splitlines()[-1])}
                print(json.dumps(row), flush=True)
                runs.append(row)
    out.write_text(json.dumps(runs, indent=1))


if __name__ == "__main__":
    main()
