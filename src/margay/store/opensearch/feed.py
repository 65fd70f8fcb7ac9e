"""The forwarders' feed on OpenSearch: documents after a `margay_seq` position, in order."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from ...logtypes import LogType
from ...query.selector import Node
from ..ipset import doc_fields, ip_keys, parse_ipset
from ..mapping import ID_FIELD, SEQ_FIELD
from .client import _SEQ_SHIFT, FEED_GRACE_MS, Client

log = logging.getLogger(__name__)
TERMS_CHUNK = 50_000  # members per `terms` query: below OpenSearch's default index.max_terms_count (65,536)


class Feed(Client):
    """Backend.records_after / backlog over `margay_seq`."""

    def head_seq(self) -> int:
        return (time.time_ns() // 1_000_000) << _SEQ_SHIFT

    def safe_seq(self) -> int:
        """Below every write in flight in this process, and FEED_GRACE_MS behind the clock for the writes
        of other replicas (a write reserves its position before converting and bulk-writing)."""
        with self._inflight_lock:
            low = min(self._inflight, default=None)
        now = ((time.time_ns() // 1_000_000) - FEED_GRACE_MS) << _SEQ_SHIFT
        return min(now, low - 1) if low is not None else now

    def _feed_query(self, lt: LogType, after_seq: int, upto: int, where: Node | None) -> dict[str, Any]:
        filters: list[dict[str, Any]] = [{"range": {SEQ_FIELD: {"gt": after_seq, "lte": upto}}}]
        if where is not None:
            from ...query.sql import compile_to_es

            filters.append(compile_to_es(where, lt))
        return {"bool": {"filter": filters}}

    def records_after(self, lt: LogType, after_seq: int, limit: int, *, upto: int | None = None,
                      where: Node | None = None) -> list[dict[str, Any]]:
        upto = self.safe_seq() if upto is None else upto
        if upto <= after_seq or limit <= 0:
            return []
        return self._records(lt, self._feed_query(lt, after_seq, upto, where), limit)

    def _records(self, lt: LogType, query: dict[str, Any], limit: int,
                 only: tuple[str, ...] | None = None) -> list[dict[str, Any]]:
        """Up to `limit` documents the query matches, in `_seq` order, each with `_seq` and `_time`; with
        `only`, just those fields of each (source filtering: the rest never leaves the node)."""
        self.ensure_ready()
        body: dict[str, Any] = {"query": query, "size": limit, "sort": [{SEQ_FIELD: "asc"}], "track_total_hits": False}
        if only is not None:
            body["_source"] = {"includes": [*only, SEQ_FIELD, lt.time_field]}
        result = self.request("POST", f"/{self.prefix}{lt.index_prefix}.*/_search",
                              params={"ignore_unavailable": "true", "allow_no_indices": "true"}, body=body)
        out = []
        for h in result["hits"]["hits"]:
            doc = h["_source"]
            seq = doc.pop(SEQ_FIELD)
            doc.pop(ID_FIELD, None)
            doc["_seq"], doc["_time"] = seq, _epoch_of(doc.get(lt.time_field))
            if only is not None and lt.time_field not in only:
                doc.pop(lt.time_field, None)
            out.append(doc)
        return out

    def records_with_ips(self, lt: LogType, after_seq: int, fields: Sequence[str], ips: Sequence[str], limit: int,
                         *, upto: int | None = None, returning: Sequence[str] | None = None) -> list[dict[str, Any]]:
        """`terms` queries on the `ip`-mapped fields (they take CIDRs, IPv4 and IPv6), the set chunked below
        `index.max_terms_count`; only the hits come back (with `returning`, only those fields of them)."""
        keys = ip_keys(lt, fields)
        only = doc_fields(lt, returning)
        ipset = parse_ipset(ips)
        upto = self.safe_seq() if upto is None else upto
        if upto <= after_seq or limit <= 0 or not ipset.entries:
            return []
        members = ipset.entries
        should = [{"terms": {k.es_field: members[i:i + TERMS_CHUNK]}}
                  for k in keys for i in range(0, len(members), TERMS_CHUNK)]
        query = {"bool": {"filter": [{"range": {SEQ_FIELD: {"gt": after_seq, "lte": upto}}},
                                     {"bool": {"should": should, "minimum_should_match": 1}}]}}
        return self._records(lt, query, limit, only)

    def backlog(self, lt: LogType, after_seq: int, *, where: Node | None = None) -> tuple[int, float | None]:
        self.ensure_ready()
        result = self.request("POST", f"/{self.prefix}{lt.index_prefix}.*/_search",
                              params={"ignore_unavailable": "true", "allow_no_indices": "true"},
                              body={"query": self._feed_query(lt, after_seq, 1 << 62, where), "size": 0,
                                    "track_total_hits": True, "aggs": {"t": {"min": {"field": "generated_time"}}}})
        oldest = result.get("aggregations", {}).get("t", {}).get("value")  # absent when no index exists yet
        return int(result["hits"]["total"]["value"]), (oldest / 1000 if oldest is not None else None)


def _epoch_of(value: Any) -> float | None:
    """A stored time value (epoch seconds or RFC 3339 text) as epoch seconds."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        try:
            at = datetime.fromisoformat(value.replace("Z", "+00:00"))
            return (at if at.tzinfo else at.replace(tzinfo=UTC)).timestamp()  # no zone: UTC, as stored
        except ValueError:
            return None
    return None
