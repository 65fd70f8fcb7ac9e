"""margay query's cells: the verdict of a policy trace and times in UTC, for every trace form of spec §1.3."""

from __future__ import annotations

import pytest

from margay.cli_query import QueryUsageError, check_type, human_time
from margay.logtypes.policy import verdict

VERDICTS = [
    (["0|default|shop/default.web-egress|allow|0"], "allow shop/default.web-egress rule 0"),
    (["0|security|security.block-egress|deny|2"], "deny security.block-egress rule 2"),
    (["0|default|data/knp.default.db-ingress|deny|-1"], "deny k8s data/db-ingress (end of tier)"),
    (["0|__PROFILE__|__PROFILE__.kns.kube-system|allow|0"], "allow profile kns.kube-system"),
    # a pass in an earlier tier does not decide; the last allow/deny in evaluation order does
    (["1|default|shop/default.allow-web|allow|3", "0|security|security.pass-all|pass|0"],
     "allow shop/default.allow-web rule 3"),
    (["0|default|shop/staged:default.try|deny|1"], "deny shop/default.try (staged) rule 1"),
    (["0|default|shop/knp.default.staged:x|allow|-2"], "allow k8s shop/x (staged)"),
    (["0|security|security.pass-all|pass|0"], ""),
    (["not a trace"], ""),
    ([], ""),
]


@pytest.mark.parametrize(("trace", "expected"), VERDICTS)
def test_verdict_names_the_deciding_policy(trace: list[str], expected: str) -> None:
    assert verdict(trace) == expected


@pytest.mark.parametrize(("value", "expected"), [
    (1700000300, "2023-11-14 22:18:20"),
    (1700000300123, "2023-11-14 22:18:20"),  # milliseconds
    ("2023-11-14T22:18:20.5Z", "2023-11-14 22:18:20"),
    ("2023-11-14T23:18:20+01:00", "2023-11-14 22:18:20"),
    ("yesterday", "yesterday"),
    (None, ""),
])
def test_times_print_in_utc(value: object, expected: str) -> None:
    assert human_time(value) == expected


def test_unknown_type_suggests_the_near_one() -> None:
    assert check_type("dns") == "dns"
    with pytest.raises(QueryUsageError, match="did you mean 'events'"):
        check_type("event")
    with pytest.raises(QueryUsageError, match="use one of flows, dns"):
        check_type("xyz")
