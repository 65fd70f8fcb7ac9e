"""The flow graph's node ranking and capping, done in Python (store/duckdb/graph.py: fold_edges), gives what
the SQL tail it replaced gave: the same folded edges, order and hidden-node count, NULL nodes included."""

from __future__ import annotations

from typing import Any

import duckdb
from hypothesis import given, settings
from hypothesis import strategies as st

from margay.query.graph import MORE
from margay.store.duckdb.graph import fold_edges

# The statement's tail before the fold moved to Python (margay c952543, store/duckdb/graph.py), over `e`.
_SQL_TAIL = f"""
WITH n AS (
  SELECT node, sum(b) AS w, sum(f) AS wf FROM (SELECT s AS node, b, f FROM e UNION ALL
                                               SELECT d, b, f FROM e WHERE d <> s) GROUP BY node
), k AS (
  SELECT node, row_number() OVER (ORDER BY w DESC, wf DESC, node) AS rk FROM n
)
SELECT CASE WHEN ks.rk < ? THEN e.s ELSE '{MORE}' END AS s2, CASE WHEN kd.rk < ? THEN e.d ELSE '{MORE}' END AS d2,
       sum(e.f), sum(least(e.df, e.f)), sum(e.b), sum(e.logs), count(*),
       (SELECT count(*) FROM k WHERE rk >= ?) AS hidden
FROM e JOIN k ks ON ks.node = e.s JOIN k kd ON kd.node = e.d
GROUP BY ALL ORDER BY 5 DESC, 1, 2"""  # noqa: S608 - constants only

NODES = st.one_of(st.none(), st.sampled_from(["ns|a", "ns|b", "wl|a|x", "net|pub", "dom|z.example", "ns|é"]))
SMALL = st.integers(0, 5)
EDGES = st.lists(st.tuples(NODES, NODES, SMALL, SMALL, SMALL, st.integers(1, 5)), max_size=30,
                 unique_by=lambda e: (e[0], e[1]))


def _sql_fold(rows: list[tuple[Any, ...]], cap: int) -> list[tuple[Any, ...]]:
    con = duckdb.connect()
    try:
        con.execute("CREATE TABLE e (s VARCHAR, d VARCHAR, f HUGEINT, df HUGEINT, b HUGEINT, logs HUGEINT)")
        if rows:
            con.executemany("INSERT INTO e VALUES (?, ?, ?, ?, ?, ?)", rows)
        return [tuple(int(x) if isinstance(x, int) else x for x in r) for r in con.execute(_SQL_TAIL, [cap, cap, cap]).fetchall()]
    finally:
        con.close()


@settings(max_examples=200, deadline=None)
@given(rows=EDGES, cap=st.integers(1, 8))
def test_python_fold_equals_the_sql_tail(rows: list[tuple[Any, ...]], cap: int) -> None:
    assert fold_edges(rows, cap) == _sql_fold(rows, cap)


def test_ties_rank_by_node_id_and_nulls_rank_last() -> None:
    rows = [("ns|b", "ns|a", 1, 0, 10, 1), (None, "ns|c", 1, 0, 10, 1)]
    # ns|b, ns|a and the NULL node weigh 10 bytes and 1 flow each (ns|c is never a source: unweighed): ranked
    # ns|a, ns|b, then NULL. The NULL node's edge is drawn by neither; the NULL node is counted hidden.
    assert fold_edges(rows, 3) == [("ns|b", "ns|a", 1, 0, 10, 1, 1, 1)] == _sql_fold(rows, 3)
    assert fold_edges(rows, 2) == [(MORE, "ns|a", 1, 0, 10, 1, 1, 2)] == _sql_fold(rows, 2)
