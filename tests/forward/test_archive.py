"""Round trip: archive to S3, drop the partitions, `margay archive import` them back, same query answers."""

from __future__ import annotations

from collections import Counter

import orjson
from typer.testing import CliRunner

from margay.app import create_app
from margay.cli import app as cli
from margay.client import Client
from margay.config import Settings
from margay.forward.archive import list_archive
from margay.testing.server import ServerThread

from .conftest import END, START, caught_up, feed, s3_store, wait_for, write_config

TYPES = ("flows", "dns", "audit_ee", "audit_kube", "bgp", "events")
STORED = ("generated_time", "id")  # set when a record is stored: a re-ingested record gets new ones


def _answers(client: Client, clusters: list[str]) -> dict[str, list[dict]]:
    out = {}
    for t in TYPES:
        body = {"max_page_size": 5000, "time_range": {"from": START.isoformat(), "to": END.isoformat()}}
        items = client.search(t, body, clusters)["items"]
        keep = t == "events"  # events carry their own id
        out[t] = sorted((({k: v for k, v in r.items() if k not in STORED or (keep and k == "id")}) for r in items),
                        key=lambda r: repr(sorted(r.items())))
    return out


def test_archive_drop_import_round_trip(s3, s3_bucket, tmp_path):
    store = s3_store(s3, s3_bucket, tmp_path, logTypes=["Flows", "DNS", "Audit", "IDSEvents", "BGP"])
    app = create_app(Settings(data_dir=tmp_path / "data", config=write_config(tmp_path / "m.yaml", {"s3": store})))
    with ServerThread(app) as server, Client(server.url) as client:
        feed(server.url)
        wait_for(lambda: caught_up(app), timeout=60)
        clusters = ["cluster", "app-cluster-1"]
        before = _answers(client, clusters)
        assert all(before[t] for t in TYPES)
        backend = app.state.margay.backend
        parts = backend.partitions()
        for p in parts:
            backend.drop(p)
        assert not any(_answers(client, clusters)[t] for t in TYPES)

        objects = list_archive(s3.client(), s3_bucket, "archive/margay", START, END)
        runner = CliRunner(env={"AWS_ACCESS_KEY_ID": s3.access_key, "AWS_SECRET_ACCESS_KEY": s3.secret_key})
        result = runner.invoke(cli, ["archive", "import", "--bucket", s3_bucket, "--prefix", "archive/margay",
                                     "--s3-endpoint", s3.endpoint, "--path-style", "--region", s3.region,
                                     "--from", START.isoformat(), "--to", END.isoformat(), "--server", server.url])
        assert result.exit_code == 0, result.output
        assert '"failed":0' in result.output and len(objects) > 0
        after = _answers(client, clusters)
        for t in TYPES:
            assert len(after[t]) == len(before[t]), t
            a = Counter(orjson.dumps(r, option=orjson.OPT_SORT_KEYS) for r in after[t])
            b = Counter(orjson.dumps(r, option=orjson.OPT_SORT_KEYS) for r in before[t])
            if a != b:
                x, y = orjson.loads(next((a - b).elements())), orjson.loads(next((b - a).elements()))
                raise AssertionError((t, {k: (x.get(k), y.get(k)) for k in set(x) | set(y) if x.get(k) != y.get(k)}))
        assert {(p.log_type, p.cluster, p.day, p.docs) for p in backend.partitions()} == \
               {(p.log_type, p.cluster, p.day, p.docs) for p in parts}
