"""Access control as a request sees it: who is asking, what a read may see (the ReadPlan and the Query's
Restriction), what a write may touch, and the access log. The server (app.Margay) offers these to every
API module as `request.app.state.margay.<seam>`."""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any

import orjson
from starlette.requests import Request

from ..logtypes import LogType
from ..logtypes import get as get_type
from ..query.model import Query
from ..query.restriction import Restriction, agg_fields, selector_keys
from ..query.selector import InSet, Node
from ..store.backend import Backend, Partition
from .guard import Access, ReadPlan, type_of_path
from .identity import NO_AUTH, Identity
from .reports import ReportRights

log = logging.getLogger("margay.access")


class RequestAccess:
    access: Access
    backend: Backend

    @staticmethod
    def caller(request: Request) -> Identity:
        """Who is asking (set by AuthMiddleware); the no-auth administrator when authentication is off."""
        who = getattr(request.state, "identity", None)
        return who if who is not None else NO_AUTH

    def write_cluster(self, request: Request, cluster: str, lt: LogType | None = None) -> str:
        """The cluster the caller may write `cluster`'s logs of `lt` into (Access.may_write). A route that knows
        its log type passes it: finding it from the path builds a URL object per request (~2 % of the event
        loop's samples under a fleet's many small batches)."""
        return self.access.may_write(self.caller(request), lt or type_of_path(request.url.path),
                                     request.headers.get("x-cluster-id"), cluster)

    def authorize_verb(self, request: Request, lt: LogType, cluster: str, verb: str) -> None:
        """Forbidden unless the caller holds `verb` on the log type in `cluster` (Access.may_act)."""
        self.access.may_act(self.caller(request), lt, cluster, verb)

    def authorize_read(self, request: Request, types: list[LogType], clusters: list[str], *,
                       named: bool = True) -> list[str]:
        plan = self.access.plan_read(self.caller(request), types, clusters, named=named)
        request.state.read_plan = plan
        return plan.clusters

    def restrict_query(self, request: Request, query: Query, body: dict[str, Any]) -> None:
        """After authorize_read: drop unreadable types, and filter namespace-scoped clusters in the query."""
        plan: ReadPlan | None = getattr(request.state, "read_plan", None)
        if plan is None:
            return
        if plan.types and [t.name for t in query.logtypes] != [t.name for t in plan.types]:
            query.logtype, query.also = plan.types[0], plan.types[1:]
        if any(t.name == "compliance_reports" for t in plan.types):
            self.restrict_reports(request, query)
        if plan.scoped:
            keys = selector_keys(query.selector) | {k.key for k in query.sort} | agg_fields(
                body.get("aggregations") or body.get("aggs"))
            if "field" in request.path_params:
                keys.add(request.path_params["field"])
            scoped = {c: ns for c, ns in plan.scoped.items() if c in query.clusters}
            query.restriction = Restriction(scoped, rows=query.restriction.rows).naming(query.logtype, keys)

    def restrict_reports(self, request: Request, query: Query) -> None:
        """Linseed's compliance report reads as Calico's report list guards them: `list globalreports`, and
        only the reports whose GlobalReport and GlobalReportType the caller may get (access/reports.py)."""
        ReportRights(self.access, self.caller(request)).require_list()
        rows = self.report_rows(request, query.clusters)
        if rows is not None:
            query.restriction = replace(query.restriction, rows=rows)

    def report_rows(self, request: Request, clusters: list[str]) -> Node | None:
        """The stored compliance reports of `clusters` the caller may read in full, as a row filter (None: all);
        nothing without `list globalreports`."""
        from ..reports.history import names

        rights = ReportRights(self.access, self.caller(request))
        if not rights.may_list():
            return InSet("reportName", ())
        if rights.may_view_all():
            return None
        return rights.rows(names(self.backend, clusters))

    def visible_partitions(self, request: Request, parts: list[Partition]) -> list[Partition]:
        who = self.caller(request)
        if self.access.reads_everything(who):
            return parts
        out = []
        granted = self.access.grants(who, [(get_type(p.log_type), p.cluster) for p in parts])
        for p in parts:
            g = granted[(get_type(p.log_type).name, p.cluster)]
            if g.full:
                out.append(p)
            elif g:
                out.append(replace(p, docs=None, bytes=None))  # type: ignore[arg-type]  # counts include withheld rows
        return out

    def access_log(self, request: Request, lt: LogType, query: Query, returned: int | None) -> None:
        who = self.caller(request)
        plan: ReadPlan | None = getattr(request.state, "read_plan", None)
        line: dict[str, Any] = {"event": "read", "user": who.describe(), "groups": list(who.groups),
                                "path": request.url.path, "types": [t.name for t in query.logtypes],
                                "clusters": query.clusters, "returned": returned}
        if plan is not None and plan.scoped:
            line["namespaces"] = {c: sorted(ns) for c, ns in plan.scoped.items()}
        log.info(orjson.dumps(line).decode())

