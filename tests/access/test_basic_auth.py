"""Basic auth for collectors that speak nothing else: the password is a margay token, confined the same way;
and a real rsyslogd's omelasticsearch shipping Felix flow lines into /es/_bulk with it."""

from __future__ import annotations

import base64
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest
import yaml

from margay.app import create_app
from margay.config import Settings
from margay.logtypes import SAMPLES
from margay.rig.process import spawn, stop_process, wait_until
from margay.testing.server import ServerThread

from .conftest import RBAC, TOKENS, token_of, write_tokens

RSYSLOGD = "/usr/sbin/rsyslogd"
OMELASTICSEARCH = Path("/usr/lib/x86_64-linux-gnu/rsyslog/omelasticsearch.so")
NDJSON = {"content-type": "application/x-ndjson"}


def basic(user: str, password: str) -> dict[str, str]:
    return {"authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


ADMIN: dict[str, str] = {}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    base = tmp_path_factory.mktemp("basic")
    write_tokens(base / "tokens.yaml", TOKENS)
    (base / "rbac.yaml").write_text(yaml.safe_dump_all(RBAC))
    app = create_app(Settings(data_dir=base / "data", tokens=base / "tokens.yaml", rbac=base / "rbac.yaml",
                              admin_token=True))
    ADMIN["authorization"] = f"Bearer {app.state.margay.access.admin_token}"
    with ServerThread(app) as s:
        yield s.url


def test_basic_auth_is_the_token_with_the_same_confinement(server: str) -> None:
    body = "\n".join(SAMPLES["flows"]).encode()
    ok = httpx.post(server + "/api/v1/flows/logs/bulk", content=body,
                    headers={**NDJSON, **basic("east", token_of("writer-east")), "x-cluster-id": "east"})
    assert ok.status_code == 200, ok.text
    other = httpx.post(server + "/api/v1/flows/logs/bulk", content=body,
                       headers={**NDJSON, **basic("west", token_of("writer-east")), "x-cluster-id": "west"})
    assert other.status_code == 403  # the user name is not a way out of the token's cluster
    read = httpx.post(server + "/api/v1/flows/logs", json={}, headers={**basic("x", token_of("writer-east")),
                                                                       "x-cluster-id": "east"})
    assert read.status_code == 403  # a writer token cannot read, whatever the scheme
    for headers in (basic("east", "not-a-token"), {"authorization": "Basic %%%"},
                    {"authorization": "Basic " + base64.b64encode(b"no-colon").decode()}):
        r = httpx.post(server + "/api/v1/flows/logs/bulk", content=body, headers={**NDJSON, **headers})
        assert r.status_code == 401, headers
        assert r.json()["error"]["type"] == "unauthorized"
        # Only the Bearer challenge: a Basic one would make browsers (the UI's fetches) pop up a password
        # dialog; collectors send Basic credentials without being challenged.
        assert r.headers.get_list("www-authenticate") == ['Bearer realm="margay"']


def test_rsyslog_omelasticsearch_ships_felix_flow_lines(server: str, tmp_path: Path) -> None:
    if not OMELASTICSEARCH.exists():
        pytest.fail(f"{OMELASTICSEARCH} is missing: run `make rig` (installs rsyslog-elasticsearch)")
    felix = tmp_path / "flows.log"
    lines = [orjson.loads(s) for s in SAMPLES["flows"]]
    felix.write_bytes(b"".join(orjson.dumps(d) + b"\n" for d in lines))
    port = server.rsplit(":", 1)[1]
    work = tmp_path / "rsyslog"
    work.mkdir()
    conf = work / "rsyslog.conf"
    conf.write_text(f"""
global(workDirectory="{work}" maxMessageSize="64k" processInternalMessages="on")
module(load="imfile")
module(load="omelasticsearch")
template(name="felix" type="string" string="%rawmsg%")
ruleset(name="ship") {{
  action(type="omelasticsearch" server="http://127.0.0.1:{port}/es" uid="east"
         pwd="{token_of('writer-east')}" searchIndex="tigera_secure_ee_flows.east." template="felix"
         bulkmode="on" errorFile="{work}/es-errors.json")
}}
input(type="imfile" File="{felix}" Tag="felix" ruleset="ship" freshStartTail="off")
syslog.* action(type="omfile" file="{work}/internal.log")
""")
    check = subprocess.run([RSYSLOGD, "-N1", "-f", str(conf)], capture_output=True, text=True, check=False)
    assert check.returncode == 0, check.stdout + check.stderr
    admin = dict(ADMIN)

    def stored() -> int:
        r = httpx.post(server + "/api/v1/flows/logs", json={"time_range": {"from": 0, "to": "now"}},
                       headers={**admin, "x-cluster-id": "east"})
        return int(r.json()["total_hits"]) if r.status_code == 200 else -1

    before = stored()
    proc = spawn([RSYSLOGD, "-n", "-f", str(conf), "-i", str(work / "rsyslogd.pid")], log=work / "rsyslogd.log",
                 cwd=work)
    try:
        wait_until(lambda: stored() >= before + len(lines), timeout=30, proc=proc, what="rsyslogd",
                   log=work / "rsyslogd.log")
    finally:
        stop_process(proc)
    assert stored() == before + len(lines)
    indices = httpx.get(server + "/api/v1/indices", headers=admin).json()["items"]
    assert {i["cluster"] for i in indices if i["log_type"] == "flows"} == {"east"}  # the write alias's cluster
    assert not (work / "es-errors.json").exists() or not (work / "es-errors.json").read_text().strip()
    shutil.rmtree(work, ignore_errors=True)
