"""The peers scenario's answer check: each system's answer format reduced to the same terms, and a difference
(or an empty reference) reported by system and question."""

from __future__ import annotations

import orjson

from margay.bench.peers_check import disagreements, reduce


def _os_graph(edges: dict[tuple[str, str, str], tuple[int, int]]) -> dict[str, object]:
    src: dict[str, dict[str, list[dict[str, object]]]] = {}
    for (s, d, a), (b, f) in edges.items():
        src.setdefault(s, {}).setdefault(d, []).append({"key": a, "bytes": {"value": float(b)},
                                                        "flows": {"value": float(f)}})
    return {"aggregations": {"src": {"buckets": [
        {"key": s, "dst": {"buckets": [{"key": d, "action": {"buckets": acts}} for d, acts in ds.items()]}}
        for s, ds in src.items()]}}}


def test_every_format_reduces_to_the_same_terms() -> None:
    edges = {("shop", "db", "allow"): (12_345_678_901, 40), ("shop", "db", "deny"): (0, 3), ("-", "shop", "allow"): (7, 1)}
    top = {"api": 900, "db": 800}
    ch = {
        "search": ["\n".join('{"end_time": 1}' for _ in range(100))] * 2 + ['{"end_time": 1}\n'],
        "denied": '{"a": 1}\n{"a": 2}\n',
        "topdest": "\n".join(orjson.dumps({"dest_name_aggr": k, "b": str(v)}).decode() for k, v in top.items()),
        "flowgraph": "\n".join(orjson.dumps({"source_namespace": s, "dest_namespace": d, "action": a,
                                             "sum(bytes_in)": str(b), "sum(num_flows)": str(f)}).decode()
                               for (s, d, a), (b, f) in edges.items()),
    }
    vl = {"search": [[{}] * 100, [{}] * 100, [{}]], "denied": [{}, {}],
          "topdest": [{"dest_name_aggr": k, "b": f"{v}.0"} for k, v in top.items()],
          "flowgraph": [{"source_namespace": s, "dest_namespace": d, "action": a, "bytes": str(b), "flows": str(f)}
                        for (s, d, a), (b, f) in edges.items()]}
    os_ = {"search": [{"hits": {"hits": [{}] * n}} for n in (100, 100, 1)], "denied": {"hits": {"hits": [{}, {}]}},
           "topdest": {"aggregations": {"dest": {"buckets": [{"key": k, "bytes": {"value": float(v)}}
                                                              for k, v in top.items()]}}},
           "flowgraph": _os_graph(edges)}
    margay = {"search": [100, 100, 1], "denied": {"items": [{}, {}]},
              "topdest": {"dest": {"buckets": [{"key": k, "bytes": {"value": v}} for k, v in top.items()]}},
              "flowgraph": {"edges": []}}
    reduced = {name: {q: reduce(name, q, a) for q, a in asked.items()}
               for name, asked in (("margay", margay), ("clickhouse", ch), ("victorialogs", vl), ("opensearch", os_))}
    assert reduced["margay"]["flowgraph"] is None  # not comparable: margay folds reporters into edges
    assert reduced["opensearch"] == {"search": [100, 100, 1], "denied": 2, "topdest": top, "flowgraph": edges}
    assert disagreements(reduced) == []


def test_a_differing_answer_is_named_by_system_and_question() -> None:
    answers = {"margay": {"denied": 2, "topdest": {"api": 900}, "flowgraph": None},
               "clickhouse": {"denied": 2, "topdest": {"api": 900}, "flowgraph": {("a", "b", "allow"): (1, 1)}},
               "opensearch": {"denied": 3, "topdest": {"api": 899}, "flowgraph": {("a", "b", "allow"): (1, 2)}}}
    wrong = disagreements(answers)
    assert len(wrong) == 3
    assert all(line.split(":")[0] in {"denied", "topdest", "flowgraph"} and "opensearch answered" in line
               for line in wrong)
    assert any("flowgraph" in line and "clickhouse" in line for line in wrong)  # compared with the first graph


def test_an_empty_reference_fails_the_check() -> None:
    assert disagreements({"margay": {"search": [0, 0, 0]}, "opensearch": {"search": [0, 0, 0]}}) == [
        "search: margay answered nothing ([0, 0, 0]): nothing to compare"]
    assert disagreements({"margay": {"topdest": {}}})
