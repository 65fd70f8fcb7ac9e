"""Ingest over real HTTP: every log type, bad input, limits, idempotent retries, native formats."""

from __future__ import annotations

import gzip
import zlib

import httpx
import orjson
import pytest

from margay.client import Client
from margay.logtypes import SAMPLES
from margay.logtypes.audit import SAMPLE_EVENTLIST
from margay.testing.server import ServerThread

NDJSON = {"content-type": "application/x-ndjson"}
PATHS = {"flows": "/api/v1/flows/logs/bulk", "dns": "/api/v1/dns/logs/bulk",
         "audit_ee": "/api/v1/audit/logs/ee/bulk", "audit_kube": "/api/v1/audit/logs/kube/bulk",
         "events": "/api/v1/events/bulk", "l7": "/api/v1/l7/logs/bulk"}


def body(name: str) -> bytes:
    return "\n".join(SAMPLES[name]).encode()


@pytest.mark.parametrize("name", list(PATHS))
def test_bulk_accepts_every_type(server: ServerThread, name: str) -> None:
    r = httpx.post(server.url + PATHS[name], content=body(name), headers={**NDJSON, "x-cluster-id": "app-1"})
    assert r.status_code == 200, r.text
    n = len(SAMPLES[name])
    assert r.json() == {"total": n, "succeeded": n, "failed": 0, "errors": []}


def test_partial_batch_keeps_good_lines_and_names_bad_ones(server: ServerThread, client: Client) -> None:
    lines = [SAMPLES["flows"][0], '{"start_time":1,"end_time":2,"action":"permit","reporter":"src"}',
             SAMPLES["flows"][1]]
    r = httpx.post(server.url + PATHS["flows"], content="\n".join(lines).encode(), headers=NDJSON)
    assert r.status_code == 200  # Linseed: 200 with per-record errors once any record is stored
    assert r.json() == {"total": 3, "succeeded": 2, "failed": 1, "errors": [
        {"line": 2, "field": "action", "msg": "must be one of: allow, deny"}]}
    found = client.search("flows", {}, ["cluster"])
    assert found["total_hits"] == 2


def test_garbage_is_a_400_naming_the_line(server: ServerThread) -> None:
    r = httpx.post(server.url + PATHS["dns"], content=b"hello\nworld", headers=NDJSON)
    assert r.status_code == 400
    doc = r.json()
    assert doc["succeeded"] == 0 and doc["failed"] == 2
    assert [e["line"] for e in doc["errors"]] == [1, 2] and "invalid JSON" in doc["errors"][0]["msg"]


def test_empty_body_is_refused(server: ServerThread) -> None:
    r = httpx.post(server.url + PATHS["dns"], content=b"\n\n", headers=NDJSON)
    assert r.status_code == 400 and "no records" in r.json()["error"]["message"]


def test_an_encoded_body_of_no_records_is_refused_and_an_unknown_encoding_is_415(server: ServerThread) -> None:
    """An NDJSON body is inflated in the ingest thread, beside the store's call: its checks hold there too."""
    for encoded, encoding in ((gzip.compress(b" \n\n\t"), "gzip"), (zlib.compress(b""), "deflate"),
                              (b"\n", "identity")):
        r = httpx.post(server.url + PATHS["flows"], content=encoded,
                       headers={**NDJSON, "content-encoding": encoding, "x-cluster-id": "empty"})
        assert r.status_code == 400 and "no records" in r.json()["error"]["message"], (encoding, r.text)
    r = httpx.post(server.url + PATHS["flows"], content=body("flows"),
                   headers={**NDJSON, "content-encoding": "br", "x-cluster-id": "empty"})
    assert r.status_code == 415 and "Content-Encoding 'br'" in r.json()["error"]["message"]
    r = httpx.post(server.url + PATHS["flows"], content=body("flows"),
                   headers={**NDJSON, "content-encoding": "identity", "x-cluster-id": "empty"})
    assert r.status_code == 200 and r.json()["succeeded"] == 4


def test_wrong_content_type_is_415(server: ServerThread) -> None:
    r = httpx.post(server.url + PATHS["flows"], content=body("flows"), headers={"content-type": "text/csv"})
    assert r.status_code == 415
    assert "application/x-ndjson" in r.json()["error"]["message"]


def test_body_over_the_limit_is_413(data_dir) -> None:  # type: ignore[no-untyped-def]
    from margay.app import create_app
    from margay.config import Settings

    with ServerThread(create_app(Settings(data_dir=data_dir, max_body_bytes=1000))) as s:
        r = httpx.post(s.url + PATHS["flows"], content=body("flows"), headers=NDJSON)
        assert r.status_code == 413
        assert r.json()["error"]["type"] == "payload_too_large"
        bomb = gzip.compress(b"{}\n" * 10_000)
        r = httpx.post(s.url + PATHS["flows"], content=bomb, headers={**NDJSON, "content-encoding": "gzip"})
        assert r.status_code == 413


def test_gzip_bodies(server: ServerThread, client: Client) -> None:
    r = httpx.post(server.url + PATHS["flows"], content=gzip.compress(body("flows")),
                   headers={**NDJSON, "content-encoding": "gzip"})
    assert r.status_code == 200 and r.json()["succeeded"] == 4
    r = httpx.post(server.url + PATHS["flows"], content=b"not gzip", headers={**NDJSON, "content-encoding": "gzip"})
    assert r.status_code == 400 and "gzip" in r.json()["error"]["message"]
    r = httpx.post(server.url + PATHS["flows"], content=zlib.compress(body("flows")),
                   headers={**NDJSON, "content-encoding": "deflate"})
    assert r.status_code == 200 and r.json()["succeeded"] == 4


def test_a_gzip_body_of_several_members_is_read_whole(server: ServerThread, client: Client) -> None:
    """A gzip body may be several members back to back (RFC 1952; what `cat a.gz b.gz`, pigz and many
    shippers' per-chunk compression send): only the first was read, the rest dropped under a 200 that
    counted only its lines. Every member is read; bytes after the last that are not gzip are a 400; the
    limit holds over all members together."""
    lines = body("flows").split(b"\n")
    two = gzip.compress(b"\n".join(lines[:2]) + b"\n") + gzip.compress(b"\n".join(lines[2:]))
    headers = {**NDJSON, "content-encoding": "gzip", "x-cluster-id": "members"}
    r = httpx.post(server.url + PATHS["flows"], content=two, headers=headers)
    assert r.status_code == 200 and (r.json()["total"], r.json()["succeeded"]) == (4, 4), r.text
    assert client.search("flows", {}, ["members"])["total_hits"] == 4
    r = httpx.post(server.url + PATHS["flows"], content=gzip.compress(body("flows")) + b"trailing junk",
                   headers=headers)
    assert r.status_code == 400 and "gzip" in r.json()["error"]["message"], r.text
    r = httpx.post(server.url + PATHS["flows"], content=zlib.compress(body("flows")) + b"junk",
                   headers={**headers, "content-encoding": "deflate"})
    assert r.status_code == 400 and "deflate" in r.json()["error"]["message"], r.text
    assert client.search("flows", {}, ["members"])["total_hits"] == 4


def test_the_limit_holds_over_every_gzip_member(data_dir) -> None:  # type: ignore[no-untyped-def]
    from margay.app import create_app
    from margay.config import Settings

    with ServerThread(create_app(Settings(data_dir=data_dir, max_body_bytes=2000))) as s:
        member = gzip.compress(b"{}\n" * 300)  # 900 bytes each inflated: three are over the limit
        r = httpx.post(s.url + PATHS["flows"], content=member * 3, headers={**NDJSON, "content-encoding": "gzip"})
        assert r.status_code == 413, r.text


def test_idempotency_key_stores_a_retried_batch_once(server: ServerThread, client: Client) -> None:
    headers = {**NDJSON, "idempotency-key": "batch-0001", "x-cluster-id": "c9"}
    first = httpx.post(server.url + PATHS["flows"], content=body("flows"), headers=headers)
    second = httpx.post(server.url + PATHS["flows"], content=body("flows"), headers=headers)
    assert first.json() == second.json()
    assert second.headers.get("idempotent-replayed") == "true"
    # The same key from another cluster is another batch.
    other = httpx.post(server.url + PATHS["flows"], content=body("flows"),
                       headers={**headers, "x-cluster-id": "c10"})
    assert other.headers.get("idempotent-replayed") is None
    assert client.search("flows", {}, ["c9"])["total_hits"] == 4
    assert client.search("flows", {}, ["c10"])["total_hits"] == 4


@pytest.mark.parametrize("path", ["flows", "dns"])
def test_an_idempotency_key_reused_for_another_batch_is_a_409_never_a_silent_replay(
        server: ServerThread, client: Client, path: str) -> None:
    """A key names one batch: its retry (in any Content-Encoding) replays the answer; another body under the same
    key was answered as a replay while none of its records were stored. Now a 409 says so."""
    headers = {**NDJSON, "idempotency-key": f"reuse-{path}", "x-cluster-id": f"reuse-{path}"}
    lines = body(path).splitlines()
    first = httpx.post(server.url + PATHS[path], content=body(path), headers=headers)
    assert first.status_code == 200 and "_batch" not in first.text, first.text
    again = httpx.post(server.url + PATHS[path], content=gzip.compress(body(path)),
                       headers={**headers, "content-encoding": "gzip"})
    assert again.headers.get("idempotent-replayed") == "true" and again.json() == first.json()
    other = httpx.post(server.url + PATHS[path], content=lines[0], headers=headers)
    assert other.status_code == 409 and "another batch" in other.json()["error"]["message"], other.text
    lt = "flows" if path == "flows" else "dns"
    assert client.search(lt, {}, [f"reuse-{path}"])["total_hits"] == len(lines)  # stored once, nothing lost


@pytest.mark.parametrize("cluster", ["*", "a,b", "-x", "a/b", "..", "a b"])
def test_invalid_cluster_names_are_refused(server: ServerThread, cluster: str) -> None:
    r = httpx.post(server.url + PATHS["flows"], content=body("flows"), headers={**NDJSON, "x-cluster-id": cluster})
    assert r.status_code == 400
    assert "invalid cluster name" in r.json()["error"]["message"]


def test_record_cannot_claim_another_cluster(server: ServerThread, client: Client) -> None:
    rec = orjson.loads(SAMPLES["flows"][0])
    rec["cluster"] = "victim"
    r = httpx.post(server.url + PATHS["flows"], content=orjson.dumps(rec), headers={**NDJSON, "x-cluster-id": "me"})
    assert r.status_code == 200
    assert client.search("flows", {}, ["victim"])["total_hits"] == 0
    assert client.search("flows", {}, ["me"])["items"][0]["cluster"] == "me"


def test_audit_webhook_eventlist(server: ServerThread, client: Client) -> None:
    r = httpx.post(server.url + PATHS["audit_kube"], content=SAMPLE_EVENTLIST.encode(),
                   headers={"content-type": "application/json"})
    assert r.status_code == 200 and r.json()["succeeded"] == 2
    found = client.search("audit_kube", {"sort": [{"field": "requestReceivedTimestamp"}]}, ["cluster"])
    assert [i["verb"] for i in found["items"]] == ["create", "update"]
    assert found["items"][0]["name"] == "web-5d8c9-abcde"


def test_audit_webhook_items_get_the_lists_kind_and_api_version(server: ServerThread, client: Client) -> None:
    # kube-apiserver's webhook sends items without kind/apiVersion (they are the EventList's).
    doc = orjson.loads(SAMPLE_EVENTLIST)
    for item in doc["items"]:
        item.pop("kind", None)
        item.pop("apiVersion", None)
    r = httpx.post(server.url + PATHS["audit_kube"], content=orjson.dumps(doc),
                   headers={"content-type": "application/json", "x-cluster-id": "webhook-kinds"})
    assert r.status_code == 200 and r.json()["succeeded"] == len(doc["items"])
    found = client.search("audit_kube", {}, ["webhook-kinds"])
    assert found["total_hits"] == len(doc["items"])
    assert {(i["kind"], i["apiVersion"]) for i in found["items"]} == {("Event", "audit.k8s.io/v1")}


def test_an_eventlist_nested_too_deep_names_the_item(server: ServerThread) -> None:
    doc = orjson.loads(SAMPLE_EVENTLIST)
    first, second = doc["items"][:2]
    # deeper than a stored record may nest (64) but readable: that item is a line error, the other is stored
    doc["items"] = [first, {**second, "requestObject": {"spec": orjson.loads(b"[" * 80 + b"]" * 80)}}]
    r = httpx.post(server.url + PATHS["audit_kube"], content=orjson.dumps(doc),
                   headers={"content-type": "application/json", "x-cluster-id": "deep-items"})
    assert r.status_code == 200 and r.json()["succeeded"] == 1
    [error] = r.json()["errors"]
    assert error["line"] == 2 and "nests deeper than 64 levels" in error["msg"]
    # too deep to read the list at all (past the JSON parser's 1024 levels): a 400 naming the item
    deep = orjson.dumps({**doc, "items": [first, {**second, "requestObject": None}]})
    deep = deep.replace(b'"requestObject":null', b'"requestObject":' + b"[" * 1100 + b"]" * 1100)
    r = httpx.post(server.url + PATHS["audit_kube"], content=deep,
                   headers={"content-type": "application/json", "x-cluster-id": "deep-items"})
    assert r.status_code == 400, r.text
    assert r.json()["error"]["message"] == ("EventList item 2 nests deeper than 64 levels of objects and arrays, "
                                            "too deep to read the list: none of its events were stored")


def test_bird_lines_natively(server: ServerThread, client: Client) -> None:
    text = "\n".join(SAMPLES["bgp"]).encode()
    r = httpx.post(server.url + "/api/v1/bgp/logs/bulk?host=node-7", content=text,
                   headers={"content-type": "text/plain"})
    assert r.status_code == 200
    assert r.json()["succeeded"] == 3 and r.json()["dropped_noise"] == 1
    found = client.search("bgp", {"time_range": {"from": "2023-11-14T00:00:00Z", "to": "2023-11-15T00:00:00Z"}},
                          ["cluster"])
    assert [i["message"] for i in found["items"]][0] == "Mesh_10_0_0_12: State changed to up"
    assert found["items"][0]["logtime"] == "2023-11-14T22:13:20"  # seconds kept, fraction dropped, as Calico
    assert {i["host"] for i in found["items"]} == {"node-7"} and found["items"][0]["ip_version"] == "IPv4"
