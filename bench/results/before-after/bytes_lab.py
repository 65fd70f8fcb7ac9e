"""Where the bytes of a settled peers store go, and what the settle after ingest costs (issue 21).

    python bytes_lab.py load WORK VARIANT [RECORDS]   # sim | highcard: ingest (4 clients), settle, keep the store
    python bytes_lab.py columns WORK                  # compressed bytes per column of the flows' shared files
    python bytes_lab.py ab BEFORE AFTER [PAIRS]       # server CPU-ms per question over two stores, interleaved
                                                      # (peers_ab.py: measure), this checkout's src/
    python bytes_lab.py variant WORK NEW CANDIDATE    # a copy of WORK's store whose shared data file is rewritten
                                                      # under CANDIDATE (same name, rows and roll-up), for `ab`
    python bytes_lab.py reads ROUNDS WORK...          # in-process CPU-ms per question (p25 of single calls), the
                                                      # stores interleaved round by round; median of the rounds
    python bytes_lab.py rewrite WORK [ROUNDS]         # the shared files rewritten in-process under each candidate
                                                      # layout: bytes per flow and CPU-s per million rows

`load` runs `margay serve` from the PYTHONPATH's margay (MargayPeer, as `margay bench --scenario peers` does) and
splits the server's CPU after the timed ingest into the idle wait before the day goes cold (the store merges a
day once it has had no write for a minute) and the settle proper (from then until the compactor is quiet and
the merged files are gone), with the compactor's merge and roll-up counts.
"""

from __future__ import annotations

import json
import resource
import shutil
import sys
import time
from pathlib import Path

import duckdb

from margay.bench.data import flow_batches, topology
from margay.bench.peers import SIZES, MargayPeer, high_cardinality
from margay.bench.settle import wait_idle


def load(work: Path, variant: str, records: int) -> dict[str, object]:
    peer = MargayPeer(work).start()
    target = peer.target
    try:
        batches = list(flow_batches(topology(), records))
        if variant == "highcard":
            batches = list(high_cardinality(iter(batches)))
        n, wall, cpu = peer.ingest(batches)
        c0, t0 = target.cpu(), time.monotonic()
        cold_at = target._last_write + target.COLD_AFTER  # no merge of the day can start before this
        while time.monotonic() < cold_at - 1:
            time.sleep(0.5)
        c1, t1 = target.cpu(), time.monotonic()
        before = target.compaction()
        ok = wait_idle(target.compaction, cold_at=cold_at + 10, quiet=10.0, timeout=3600,
                       settled=lambda s: not s[3])
        assert ok, "compactor still busy"
        c2, t2 = target.cpu(), time.monotonic()
        after = target.compaction()
        idle_rate = (c1 - c0) / (t1 - t0)
        out = {"variant": variant, "records": n, "stored": peer.count(), "ingest_cpu_s_per_million": round(cpu / n * 1e6, 2),
               "ingest_wall_s": round(wall, 1),
               "settle_cpu_s_per_million": round((c2 - c0) / n * 1e6, 2),
               "idle_wait_cpu_s": round(c1 - c0, 2), "idle_wait_s": round(t1 - t0, 1),
               "idle_cpu_per_s": round(idle_rate, 4),
               "after_cold_cpu_s": round(c2 - c1, 2), "after_cold_s": round(t2 - t1, 1),
               "after_cold_cpu_s_less_idle_rate": round(c2 - c1 - idle_rate * (t2 - t1), 2),
               "merges_before_cold": before[0], "rollups_before_cold": before[1],
               "merges_total": after[0], "rollups_total": after[1],
               "bytes_per_flow": round(peer.bytes_per_flow(), 3),
               "data_files": sorted(str(p.relative_to(work)) for p in (work / "data" / "store" / "flows").rglob("*.parquet"))}
        return out
    finally:
        peer.stop()


def _files(work: Path) -> tuple[list[str], list[str]]:
    paths = sorted((work / "data" / "store" / "flows").rglob("*.parquet"))
    data = [str(p) for p in paths if ".rollup" not in p.name]
    return data, [str(p) for p in paths if ".rollup" in p.name]


def columns(work: Path) -> dict[str, object]:
    data, rolls = _files(work)
    con = duckdb.connect()
    rows = con.execute("SELECT sum(num_rows) FROM parquet_file_metadata(?)", [data]).fetchone()[0]
    cols = con.execute(
        "SELECT path_in_schema, sum(total_compressed_size) b, sum(total_uncompressed_size) u, "
        "string_agg(DISTINCT encodings, ' | ') e, count(DISTINCT dictionary_page_offset) d "
        "FROM parquet_metadata(?) GROUP BY 1 ORDER BY 2 DESC", [data]).fetchall()
    roll_bytes = sum(Path(p).stat().st_size for p in rolls)
    data_bytes = sum(Path(p).stat().st_size for p in data)
    total_cols = sum(c[1] for c in cols)
    return {"rows": rows, "data_bytes_per_row": round(data_bytes / rows, 3),
            "rollup_bytes_per_row": round(roll_bytes / rows, 3),
            "footer_and_other_per_row": round((data_bytes - total_cols) / rows, 3),
            "columns": [{"column": c[0], "bytes_per_row": round(c[1] / rows, 3), "ratio": round(c[2] / max(c[1], 1), 1),
                         "encodings": c[3], "dict_pages": c[4]} for c in cols]}


SORT_NOW = ["cluster", "source_namespace", "dest_namespace", "action", "end_time", "_seq"]
PAIR = ["cluster", "source_namespace", "dest_namespace", "action", "source_name_aggr", "dest_name_aggr",
        "source_name", "dest_name", "dest_port", "reporter"]
V2 = "COMPRESSION zstd, COMPRESSION_LEVEL 9, ROW_GROUP_SIZE 32768, PARQUET_VERSION V2"
AGGR = ["cluster", "source_namespace", "dest_namespace", "action", "source_name_aggr", "dest_name_aggr"]
AGGR_T = AGGR + ["end_time", "_seq"]
CHOSEN = V2 + ", BLOOM_FILTER_FALSE_POSITIVE_RATIO 0.01, DICTIONARY_SIZE_LIMIT 256"
CANDIDATES: dict[str, tuple[list[str], str]] = {  # the last round's; earlier rounds' candidates: the README
    "now": (SORT_NOW, V2 + ", BLOOM_FILTER_FALSE_POSITIVE_RATIO 0.01"),
    "chosen": (AGGR_T, CHOSEN),
    "old_sort_new_options": (SORT_NOW, CHOSEN),
    "new_sort_old_options": (AGGR_T, V2 + ", BLOOM_FILTER_FALSE_POSITIVE_RATIO 0.01"),
    "chosen_rg64k": (AGGR_T, CHOSEN.replace("32768", "65536")),
    "chosen_zstd12": (AGGR_T, CHOSEN.replace("LEVEL 9", "LEVEL 12")),
    "chosen_pair": (PAIR + ["end_time", "_seq"], CHOSEN),
    "sort_bloom0.5": (AGGR_T, V2 + ", BLOOM_FILTER_FALSE_POSITIVE_RATIO 0.5"),
    "sort_dict1k": (AGGR_T, V2 + ", BLOOM_FILTER_FALSE_POSITIVE_RATIO 0.01, DICTIONARY_SIZE_LIMIT 1024"),
    "sort_dict2k": (AGGR_T, V2 + ", BLOOM_FILTER_FALSE_POSITIVE_RATIO 0.01, DICTIONARY_SIZE_LIMIT 2048"),
    "sort_dict2k_bloom0.5": (AGGR_T, V2 + ", BLOOM_FILTER_FALSE_POSITIVE_RATIO 0.5, DICTIONARY_SIZE_LIMIT 2048"),
}


def rewrite(work: Path, candidates: dict[str, tuple[list[str], str]], rounds: int = 1) -> dict[str, object]:
    data, _ = _files(work)
    con = duckdb.connect(config={"threads": 1})
    rows = con.execute("SELECT sum(num_rows) FROM parquet_file_metadata(?)", [data]).fetchone()[0]
    out: dict[str, object] = {}
    for name, (order, opts) in candidates.items():
        cpus = []
        size = 0
        for _ in range(rounds):
            tmp = work / f"lab-{name}.parquet"
            r0 = resource.getrusage(resource.RUSAGE_SELF)
            con.execute(f"COPY (SELECT * FROM read_parquet(?, union_by_name = true) ORDER BY {', '.join(chr(34) + c + chr(34) for c in order)}) "  # noqa: S608 - the lab's constants
                        f"TO '{tmp}' (FORMAT parquet, {opts})", [data])
            r1 = resource.getrusage(resource.RUSAGE_SELF)
            cpus.append((r1.ru_utime + r1.ru_stime - r0.ru_utime - r0.ru_stime) / rows * 1e6)
            size = tmp.stat().st_size
            blooms = con.execute("SELECT coalesce(sum(bloom_filter_length), 0) FROM parquet_metadata(?)", [str(tmp)]).fetchone()[0]
            top = {c: round(b / rows, 3) for c, b in con.execute(
                "SELECT path_in_schema, sum(total_compressed_size) b FROM parquet_metadata(?) GROUP BY 1 ORDER BY 2 DESC "
                "LIMIT 14", [str(tmp)]).fetchall()}
            tmp.unlink()
        out[name] = {"bytes_per_row": round(size / rows, 3), "cpu_s_per_million": round(min(cpus), 2),
                     "bloom_per_row": round(blooms / rows, 3), "top": top}
        print(name, out[name], file=sys.stderr, flush=True)
    return out


ROLLUP_DIMS = ["cluster", "source_namespace", "dest_namespace", "action", "reporter", "proto", "source_type",
               "source_name_aggr", "dest_type", "dest_name_aggr", "dest_service_namespace", "dest_service_name",
               "dest_port", "dest_domain"]
R = "COMPRESSION zstd, COMPRESSION_LEVEL 9, ROW_GROUP_SIZE 122880, PARQUET_VERSION V2"
ROLLUPS: dict[str, tuple[list[str], str]] = {
    "now": (["end_time"], R),
    "nobloom": (["end_time"], R + ", BLOOM_FILTER_FALSE_POSITIVE_RATIO 0.5"),
    "dict512": (["end_time"], R + ", DICTIONARY_SIZE_LIMIT 512"),
    "dict256": (["end_time"], R + ", DICTIONARY_SIZE_LIMIT 256"),
    "sorted": (["end_time", *ROLLUP_DIMS], R),
    "dims_time": ([*ROLLUP_DIMS, "end_time"], R),
    "dims_time_d256": ([*ROLLUP_DIMS, "end_time"], R + ", DICTIONARY_SIZE_LIMIT 256"),
    "dims_time_d256_z19": ([*ROLLUP_DIMS, "end_time"], R.replace("LEVEL 9", "LEVEL 19") + ", DICTIONARY_SIZE_LIMIT 256"),
    "dims_time_v1": ([*ROLLUP_DIMS, "end_time"], R.replace("V2", "V1")),
}


def rewrite_rollups(work: Path) -> dict[str, object]:
    data, rolls = _files(work)
    con = duckdb.connect(config={"threads": 1})
    rows = con.execute("SELECT sum(num_rows) FROM parquet_file_metadata(?)", [data]).fetchone()[0]
    out: dict[str, object] = {}
    for name, (order, opts) in ROLLUPS.items():
        tmp = work / f"lab-r-{name}.parquet"
        con.execute(f"COPY (SELECT * FROM read_parquet(?) ORDER BY {', '.join(chr(34) + c + chr(34) for c in order)}) "  # noqa: S608 - the lab's constants
                    f"TO '{tmp}' (FORMAT parquet, {opts})", [rolls])
        out[name] = round(tmp.stat().st_size / rows, 3)
        tmp.unlink()
    return out


def variant(work: Path, new: Path, name: str) -> dict[str, object]:
    shutil.rmtree(new, ignore_errors=True)
    shutil.copytree(work, new)
    data, _ = _files(new)
    order, opts = CANDIDATES[name]
    con = duckdb.connect(config={"threads": 1})
    for path in data:
        tmp = Path(path + ".lab")
        con.execute(f"COPY (SELECT * FROM read_parquet(?) ORDER BY {', '.join(chr(34) + c + chr(34) for c in order)}) "  # noqa: S608
                    f"TO '{tmp}' (FORMAT parquet, {opts})", [path])
        tmp.replace(path)
    return {"store": str(new), "candidate": name, "bytes": sum(Path(p).stat().st_size for p in data)}


def reads(rounds: int, works: list[Path]) -> dict[str, object]:
    from dataclasses import replace
    from datetime import timedelta

    from margay.bench.data import END
    from margay.logtypes import REGISTRY
    from margay.query.graph import GraphSpec
    from margay.query.model import Query, SortKey
    from margay.query.selector import parse_selector
    from margay.store.duckdb import DuckDBBackend

    def flows(sel: str) -> Query:
        return Query(REGISTRY["flows"], ["cluster"], start=END - timedelta(hours=24), end=END, size=100,
                     selector=parse_selector(sel), sort=[SortKey("end_time", True)], now=END)

    def three(s: DuckDBBackend) -> None:
        q = flows('source_namespace = "shop" AND action = "allow"')
        r = s.search(q)
        r = s.search(replace(q, after_key=r.after_key))
        s.search(replace(q, after_key=r.after_key))

    week = Query(REGISTRY["flows"], ["cluster"], start=END - timedelta(days=7), end=END, now=END)
    day = Query(REGISTRY["flows"], ["cluster"], start=END - timedelta(hours=24), end=END, now=END)
    top = {"dest": {"terms": {"field": "dest_name_aggr", "size": 10, "order": {"bytes": "desc"}},
                    "aggs": {"bytes": {"sum": {"field": "bytes_in"}}}}}
    stores = {str(w): DuckDBBackend(w / "data", compact_interval=3600) for w in works}
    questions = {"denied": lambda s: s.search(flows('source_namespace = "shop" AND action = "deny"')),
                 "search3": three, "topdest": lambda s: s.aggregate(week, top),
                 "flowgraph": lambda s: s.flow_graph(day, GraphSpec())}
    got: dict[str, dict[str, list[float]]] = {w: {q: [] for q in questions} for w in stores}

    def cpu() -> float:
        r = resource.getrusage(resource.RUSAGE_SELF)
        return r.ru_utime + r.ru_stime

    for _ in range(rounds):
        for w, s in stores.items():
            for name, q in questions.items():
                for _ in range(3):
                    q(s)
                xs = []
                for _ in range(15):
                    c0 = cpu()
                    q(s)
                    xs.append((cpu() - c0) * 1000)
                got[w][name].append(sorted(xs)[len(xs) // 4])
    for s in stores.values():
        s.close()
    return {w: {q: round(sorted(v)[len(v) // 2], 2) for q, v in qs.items()} | {"rounds": qs}
            for w, qs in got.items()}


def ab(before: Path, after: Path, pairs: int) -> dict[str, object]:
    """The median over `pairs` interleaved runs (before, after, before, ...) of peers_ab.measure's figures."""
    from peers_ab import measure  # beside this file

    src = Path(__file__).resolve().parents[3] / "src"
    runs: dict[str, list[dict[str, object]]] = {"before": [], "after": []}
    for _ in range(pairs):
        for name, work in (("before", before), ("after", after)):
            runs[name].append(measure(work, src, 1, 20))
    out: dict[str, object] = {}
    for name, rs in runs.items():
        for q in ("search", "denied", "topdest", "flowgraph"):
            vals = sorted(float(r[f"cpu_ms_{q}"]) for r in rs)  # type: ignore[arg-type]
            out[f"{name}_cpu_ms_{q}"] = vals[len(vals) // 2]
            out[f"{name}_cpu_ms_{q}_runs"] = vals
    return out


if __name__ == "__main__":
    cmd, work = sys.argv[1], Path(sys.argv[2])
    if cmd == "load":
        res: object = load(work, sys.argv[3], int(sys.argv[4]) if len(sys.argv) > 4 else SIZES["quick"])
    elif cmd == "columns":
        res = columns(work)
    elif cmd == "ab":
        res = ab(work, Path(sys.argv[3]), int(sys.argv[4]) if len(sys.argv) > 4 else 3)
    elif cmd == "variant":
        res = variant(work, Path(sys.argv[3]), sys.argv[4])
    elif cmd == "reads":
        res = reads(int(sys.argv[2]), [Path(a) for a in sys.argv[3:]])
    elif cmd == "rollups":
        res = rewrite_rollups(work)
    else:
        res = rewrite(work, CANDIDATES, int(sys.argv[3]) if len(sys.argv) > 3 else 1)
    print(json.dumps(res, indent=1))
