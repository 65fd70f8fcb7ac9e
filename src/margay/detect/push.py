"""Pushed threat-feed content (Linseed's /threatfeeds/{ipset,domainnameset} endpoints): the envelope on the
wire, tombstones for the bulk DELETE, and the newest document of each feed read back through the Backend."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson

from ..logtypes import REGISTRY, LogType
from ..query.selector import And, InSet
from ..store.backend import Backend
from .formats import Entries, normalise_domain, normalise_ip

IPSET, DOMAINS = REGISTRY["threatfeeds_ipset"], REGISTRY["threatfeeds_domainnameset"]
PAGE = 5000
WIRE_ONLY = ("cluster", "seq_number", "primary_term", "generated_time")


def unwrap(body: bytes, envelope: str) -> bytes:
    """`{"id": i, "<envelope>": {...}}` lines as flat documents; a line that is not such an object is left as
    it is, so the parser names it (line numbers are kept)."""
    out = []
    for line in body.split(b"\n"):
        try:
            doc = orjson.loads(line) if line.strip() else None
        except orjson.JSONDecodeError:
            doc = None
        if isinstance(doc, dict) and isinstance(doc.get(envelope), dict):
            data = {k: v for k, v in doc[envelope].items() if k not in WIRE_ONLY}
            flat = {**data, **({"id": doc["id"]} if "id" in doc else {})}
            line = orjson.dumps(flat)
        out.append(line)
    return b"\n".join(out)


def wrap(doc: dict[str, Any], envelope: str) -> dict[str, Any]:
    """A stored document as Linseed lists it: `{"id", "data": {...}}`."""
    data = {k: v for k, v in doc.items() if k not in ("id", "deleted", "generated_time") and not k.startswith("_")}
    data.setdefault("cluster", doc.get("cluster"))
    return {"id": doc.get("id"), envelope: data}


def tombstones(ids: list[str], now: datetime) -> bytes:
    when = now.isoformat().replace("+00:00", "Z")
    return b"\n".join(orjson.dumps({"id": i, "created_at": when, "deleted": True}) for i in ids)


def newest(backend: Backend, lt: LogType, clusters: list[str], ids: list[str] | None = None) -> list[dict[str, Any]]:
    """The newest document of each (cluster, id) in store order (a push, then its delete, then a push again),
    tombstoned ones left out. Read with the record feed up to the head: every push has one document, so this
    is the pushes of the feeds asked for, not a scan of logs."""
    if not clusters:
        return []
    where = And((InSet("cluster", tuple(clusters)), InSet("id", tuple(ids)))) if ids is not None else \
        InSet("cluster", tuple(clusters))
    latest: dict[tuple[str, str], dict[str, Any]] = {}
    pos, upto = 0, backend.head_seq()
    while True:
        page = backend.records_after(lt, pos, PAGE, upto=upto, where=where)
        for doc in page:
            latest[(str(doc.get("cluster")), str(doc.get("id")))] = doc
        if len(page) < PAGE:
            break
        pos = int(page[-1]["_seq"])
    return [d for _, d in sorted(latest.items()) if not d.get("deleted")]


def pushed_entries(backend: Backend, content: str, name: str) -> tuple[Entries, list[dict[str, Any]]]:
    """A push feed's set: its newest document in every cluster, the values normalised as a pulled body's are
    (invalid ones skipped and counted); and those documents."""
    lt, key = (IPSET, "ips") if content == "IPSet" else (DOMAINS, "domains")
    docs = newest(backend, lt, backend.clusters(lt), [name])
    norm = normalise_ip if content == "IPSet" else normalise_domain
    values: dict[str, None] = {}
    skipped = 0
    for doc in docs:
        for v in doc.get(key) or []:
            n = norm(v) if isinstance(v, str) else None
            if n is None:
                skipped += 1
            else:
                values.setdefault(n, None)
    return Entries(tuple(values), skipped), docs
