"""Writes of a `latest_of` type on OpenSearch (Linseed's policy activity): one document per identity, the
newest by the type's time field, as Linseed keeps it.

The document id is Linseed's deterministic id (store/sql.py: latest_key_sql) and the document is indexed
with `version_type: external`, its version the time field in epoch microseconds, so OpenSearch itself keeps
the newer of two writes to one index (an older or equal one is refused with 409, which counts as stored:
Linseed answers a report that is not newer as succeeded). The daily index follows the time field, so a newer
report may land in a later day's index than the document it replaces: the identity's documents in the
cluster's other indices are looked up first (an `ids` query, with versions), a report older than one of them
is not written, and the older ones are deleted after the write (a `delete` with the new version, which a
document written meanwhile with a newer one refuses). Writes of these types are serialised in a replica.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

import orjson

from ...ingest.parse import Converted
from ...logtypes import LogType, quote_ident
from ..sql import latest_key_sql

log = logging.getLogger(__name__)

_IDS_PER_LOOKUP = 500
_LOCK = threading.Lock()

Bulk = Callable[[list[tuple[int, bytes]]], dict[int, str]]


def _candidates(con: Any, lt: LogType, conv: Converted, base: int, doc_sql: str
                ) -> dict[str, tuple[int, int, str, str]]:
    """{identity: (time µs, ordinal, day, document)} of the batch's answering records (the newest of each
    identity, the first among equals), rendered by DuckDB."""
    best: dict[str, tuple[int, int, str, str]] = {}
    cur = con.cursor()
    try:
        for day, path, _rows in conv.files:
            rows = cur.execute(
                f"SELECT _seq - ?, epoch_us({quote_ident(lt.time_field)}), _docid, {doc_sql} "  # noqa: S608
                f"FROM (SELECT *, {latest_key_sql(lt)} AS _docid FROM read_parquet(?))",
                [base, str(path)]).fetchall()
            for n, us, ident, doc in rows:
                have = best.get(ident)
                if have is None or us > have[0] or (us == have[0] and n < have[1]):
                    best[ident] = (int(us), int(n), day, doc)
    finally:
        cur.close()
    return best


def _stored(request: Callable[..., Any], pattern: str, cluster: str, idents: list[str]
            ) -> dict[str, list[tuple[str, int]]]:
    """{identity: [(index, version)]} of the cluster's documents stored under these ids in its indices.

    Only documents whose `cluster` is the writer's: the pattern `<prefix>.<cluster>.*` also matches the
    indices of a cluster named `<cluster>.<more>`, and what is found here is what gets deleted."""
    out: dict[str, list[tuple[str, int]]] = {}
    for i in range(0, len(idents), _IDS_PER_LOOKUP):
        chunk = idents[i:i + _IDS_PER_LOOKUP]
        res = request("POST", f"/{pattern}/_search",
                      params={"ignore_unavailable": "true", "allow_no_indices": "true"},
                      body={"query": {"bool": {"filter": [{"ids": {"values": chunk}},
                                                           {"term": {"cluster": cluster}}]}},
                            "version": True, "_source": False,
                            "size": 10_000})
        for hit in res.get("hits", {}).get("hits", []):
            out.setdefault(hit["_id"], []).append((hit["_index"], int(hit.get("_version", 0))))
    return out


def write_latest(request: Callable[..., Any], bulk: Bulk, index_of: Callable[[str], str], con: Any,
                 lt: LogType, cluster: str, conv: Converted, base: int, doc_sql: str) -> dict[int, str]:
    """Write a converted batch of a `latest_of` type; returns {ordinal: reason} of refused documents."""
    with _LOCK:
        best = _candidates(con, lt, conv, base, doc_sql)
        if not best:
            return {}
        stored = _stored(request, index_of("*"), cluster, sorted(best))
        writes: list[tuple[int, bytes]] = []
        stale: dict[int, list[bytes]] = {}
        for ident, (us, n, day, doc) in best.items():
            version = max(us, 1)  # OpenSearch's external versions start at 1
            have = stored.get(ident, [])
            if any(v >= version for _, v in have):
                continue  # not newer than what is stored: Linseed counts it as stored and writes nothing
            target = index_of(day)
            action = {"index": {"_index": target, "_id": ident, "version": version, "version_type": "external"}}
            writes.append((n, orjson.dumps(action) + b"\n" + doc.encode() + b"\n"))
            stale[n] = [orjson.dumps({"delete": {"_index": idx, "_id": ident, "version": version,
                                                 "version_type": "external"}}) + b"\n"
                        for idx, _ in have if idx != target]
        failures = bulk(writes) if writes else {}
        deletes = [(n, a) for n, actions in stale.items() if n not in failures for a in actions]
        if deletes:
            left = bulk(deletes)
            if left:  # an older copy stays readable until the identity is written again
                log.warning("%s: %d superseded documents not deleted: %s", lt.name, len(left),
                            next(iter(left.values())))
        return failures
