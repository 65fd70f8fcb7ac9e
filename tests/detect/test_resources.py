"""Resources are read as Calico writes them; bad ones are refused with the field at fault."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from margay.detect.load import load_resources
from margay.detect.resources import ResourceError, parse_resource

FEED = {"apiVersion": "projectcalico.org/v3", "kind": "GlobalThreatFeed", "metadata": {"name": "f"},
        "spec": {"content": "IPSet", "pull": {"period": "12h", "http": {"url": "https://feeds.example/ips"}}}}
ALERT = {"apiVersion": "projectcalico.org/v3", "kind": "GlobalAlert", "metadata": {"name": "a"},
         "spec": {"description": "d", "severity": 50, "dataSet": "flows", "query": "action = deny",
                  "aggregateBy": ["source_namespace"], "metric": "count", "condition": "gt", "threshold": 3,
                  "period": "1m", "lookback": "90s"}}


def with_spec(doc: dict, **changes) -> dict:
    spec = {**doc["spec"], **changes}
    return {**doc, "spec": {k: v for k, v in spec.items() if v is not None}}


def test_calico_yaml_as_is():
    a = parse_resource(ALERT)
    assert (a.period, a.lookback, a.aggregate_by, a.metric, a.threshold) == (
        timedelta(minutes=1), timedelta(seconds=90), ("source_namespace",), "count", 3.0)
    f = parse_resource(FEED)
    assert (f.period, f.url, f.format.kind, f.enabled) == (timedelta(hours=12), "https://feeds.example/ips",
                                                          "newlineDelimited", True)


@pytest.mark.parametrize(("doc", "field"), [
    (with_spec(ALERT, colour="red"), "spec.colour"),
    (with_spec(ALERT, query="action = = deny"), "spec.query"),
    (with_spec(ALERT, query="no_such_key = 1"), "spec.query"),
    (with_spec(ALERT, query="source_namespace IN ${x}"), "spec.query"),
    (with_spec(ALERT, metric=None, condition=None), "spec.threshold"),
    (with_spec(ALERT, period="30s"), "spec.period"),
    (with_spec(ALERT, period="5 minutes"), "spec.period"),
    (with_spec(ALERT, severity=0), "spec.severity"),
    (with_spec(ALERT, description=None), "spec.description"),
    (with_spec(ALERT, dataSet="bgp"), "spec.dataSet"),
    (with_spec(ALERT, metric="sum"), "spec.field"),
    (with_spec(ALERT, metric="sum", field="source_namespace"), "spec.field"),
    (with_spec(ALERT, aggregateBy=["nope"]), "spec.aggregateBy[0]"),
    (with_spec(ALERT, condition="bigger"), "spec.condition"),
    ({**ALERT, "metadata": {"name": "Bad_Name"}}, "metadata.name"),
    ({**ALERT, "apiVersion": "v1"}, "apiVersion"),
    (with_spec(FEED, pull={"period": "1m", "http": {"url": "https://x"}}), "spec.pull.period"),
    (with_spec(FEED, pull={"http": {"url": "ftp://x"}}), "spec.pull.http.url"),
    (with_spec(FEED, content="Hashes"), "spec.content"),
    (with_spec(FEED, description="x" * 257), "spec.description"),
    (with_spec(FEED, pull={"http": {"url": "https://x", "format": {"csv": {"fieldName": "ip"}}}}),
     "spec.pull.http.format.csv.fieldName"),
    (with_spec(FEED, pull={"http": {"url": "https://x", "format": {"json": {"path": "$..ip"}}}}),
     "spec.pull.http.format.json.path"),
    (with_spec(FEED, pull={"http": {"url": "https://x", "headers": [{"name": "A", "valueFrom": {}}]}}),
     "spec.pull.http.headers[0].valueFrom"),
])
def test_bad_resources_name_the_field(doc, field):
    with pytest.raises(ResourceError) as err:
        parse_resource(doc)
    assert str(err.value).startswith(field + ":"), str(err.value)
    assert err.value.status == 400


def test_folder_loading_names_file_and_document(tmp_path: Path):
    (tmp_path / "a.yaml").write_text("apiVersion: projectcalico.org/v3\nkind: GlobalAlert\nmetadata: {name: a}\n"
                                     "spec: {description: d, severity: 5, dataSet: dns}\n---\n"
                                     "apiVersion: projectcalico.org/v3\nkind: GlobalThreatFeed\n"
                                     "metadata: {name: f}\nspec: {content: DomainNameSet}\n")
    assert [r.name for r in load_resources(tmp_path)] == ["a", "f"]
    (tmp_path / "b.yml").write_text("apiVersion: projectcalico.org/v3\nkind: GlobalAlert\nmetadata: {name: b}\n"
                                    "spec: {description: d, severity: 5, dataSet: dns, period: 10s}\n")
    with pytest.raises(ResourceError, match=r"b.yml document 1: spec.period: must be at least 1m"):
        load_resources(tmp_path)
