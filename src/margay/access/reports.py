"""Who may read compliance reports, decided as Calico's compliance server decides it (its reportRbacHelper).

On top of the cluster's `lma.tigera.io` grant for `compliance_reports` (every read of a cluster's data needs
it), Calico asks about the GlobalReport resources themselves, in `projectcalico.org`:
- listing reports needs `list globalreports` (no name);
- a report's run appears in the list (its summary) when the caller may `get globalreports/<name>`;
- its downloads and full contents need `get globalreports/<name>` *and* `get globalreporttypes/<type>`.
Beyond Calico, running a report now needs `update globalreports/<name>` (the verb that would let the caller
change the report's schedule) besides viewing it. A rule restricted by resourceNames grants only the
reports it names: that is each report's own scope. Answers are cached for one request, like Calico's helper.
"""

from __future__ import annotations

from ..errors import Forbidden
from ..query.selector import And, Compare, InSet, Node, Or
from .guard import Access
from .identity import Identity

GROUP = "projectcalico.org"
REPORTS = "globalreports"
REPORT_TYPES = "globalreporttypes"


class ReportRights:
    """One caller's rights on GlobalReports and GlobalReportTypes, asked once per (verb, resource, name)."""

    def __init__(self, access: Access, who: Identity) -> None:
        self.access, self.who = access, who
        self._seen: dict[tuple[str, str, str], bool] = {}

    def _may(self, verb: str, resource: str, name: str = "") -> bool:
        key = (verb, resource, name)
        if key not in self._seen:
            if self.who.is_writer:
                self._seen[key] = False
            elif not self.access.enabled or (self.who.is_admin and self.access.mode != "kube"):
                self._seen[key] = True
            else:
                self._seen[key] = self.access.authorizer.allowed(self.who, resource, name, verb=verb, group=GROUP)
        return self._seen[key]

    def may_list(self) -> bool:
        return self._may("list", REPORTS)

    def may_summarize(self, name: str) -> bool:
        """The run's summary figures (Calico's CanViewReportSummary)."""
        return self._may("get", REPORTS, name)

    def may_view(self, rtype: str, name: str) -> bool:
        """Downloads and the full report (Calico's CanViewReport)."""
        return self._may("get", REPORTS, name) and self._may("get", REPORT_TYPES, rtype)

    def may_view_all(self) -> bool:
        """Every report, whatever its name and type (grants without resourceNames)."""
        return self._may("get", REPORTS) and self._may("get", REPORT_TYPES)

    def may_run(self, rtype: str, name: str) -> bool:
        return self.may_view(rtype, name) and self._may("update", REPORTS, name)

    def require_list(self) -> None:
        if not self.may_list():
            raise Forbidden(f"{self.who.describe()} may not list globalreports",
                            details={"apiGroup": GROUP, "resource": REPORTS, "verb": "list"})

    def require_view(self, rtype: str, name: str) -> None:
        if not self._may("get", REPORTS, name):
            raise Forbidden(f"{self.who.describe()} may not get globalreports/{name}",
                            details={"apiGroup": GROUP, "resource": REPORTS, "verb": "get", "name": name})
        if not self._may("get", REPORT_TYPES, rtype):
            raise Forbidden(f"{self.who.describe()} may not get globalreporttypes/{rtype} (needed to read "
                            f"reports of type {rtype})",
                            details={"apiGroup": GROUP, "resource": REPORT_TYPES, "verb": "get", "name": rtype})

    def require_run(self, rtype: str, name: str) -> None:
        self.require_view(rtype, name)
        if not self._may("update", REPORTS, name):
            raise Forbidden(f"{self.who.describe()} may not update globalreports/{name} (needed to run it now)",
                            details={"apiGroup": GROUP, "resource": REPORTS, "verb": "update", "name": name})

    def rows(self, pairs: list[tuple[str, str]]) -> Node | None:
        """The stored reports this caller may read in full, as a row filter over (reportName, reportTypeName)
        pairs that exist; None when every report is readable (a grant without resourceNames on both)."""
        if self.may_view_all():
            return None
        ok = [(n, t) for n, t in pairs if self.may_view(t, n)]
        if not ok:
            return InSet("reportName", ())
        parts: list[Node] = [And((Compare("reportName", "=", n), Compare("reportTypeName", "=", t))) for n, t in ok]
        return parts[0] if len(parts) == 1 else Or(tuple(parts))
