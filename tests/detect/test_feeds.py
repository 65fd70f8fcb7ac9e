"""Pulling threat feeds from a real HTTP server in every format, and failing in every way."""

from __future__ import annotations

import ipaddress
import ssl
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest

from margay.detect.feeds import FeedPuller, FeedStatus, guard_url
from margay.detect.formats import FeedError
from margay.detect.resources import parse_resource
from margay.rig.tls import make_certificates

from .conftest import FeedServer

LOOPBACK = [ipaddress.ip_network("127.0.0.0/8")]
NOW = datetime(2026, 12, 5, 12, tzinfo=UTC)


def feed(url: str, fmt: dict | None = None, content: str = "IPSet", headers: list | None = None):
    http = {"url": url, **({"format": fmt} if fmt else {}), **({"headers": headers} if headers else {})}
    return parse_resource({"apiVersion": "projectcalico.org/v3", "kind": "GlobalThreatFeed",
                           "metadata": {"name": "bad-ips"},
                           "spec": {"content": content, "pull": {"period": "10m", "http": http}}})


CASES = [
    ({}, b"# comment\n10.1.1.1\n\n192.168.0.0/16\n2001:db8::/32\n10.1.1.1\nnot-an-ip\n",
     ("10.1.1.1", "192.168.0.0/16", "2001:db8::/32"), 1),
    ({"json": {"path": "$.items[*].ip"}}, orjson.dumps({"items": [{"ip": "1.2.3.4"}, {"ip": "5.6.7.0/24"}]}),
     ("1.2.3.4", "5.6.7.0/24"), 0),
    ({"json": {"path": "{.data[*]}"}}, orjson.dumps({"data": ["9.9.9.9", 7]}), ("9.9.9.9",), 1),
    ({"csv": {"fieldNum": 1}}, b"x,1.1.1.1,y\nx,2.2.2.2,y\n", ("1.1.1.1", "2.2.2.2"), 0),
    ({"csv": {"fieldName": "ip", "header": True, "columnDelimiter": ";", "commentDelimiter": "#"}},
     b"name;ip\n# skipped\na;3.3.3.3\nb;4.4.4.4/32\n", ("3.3.3.3", "4.4.4.4"), 0),
    ({"csv": {"fieldNum": 0, "header": True, "recordSize": 2}}, b"ip,n\n8.8.8.8,1\n", ("8.8.8.8",), 0),
    ({"csv": {"fieldNum": 0, "disableRecordSizeValidation": True}}, b"8.8.4.4,1\n1.0.0.1\n",
     ("8.8.4.4", "1.0.0.1"), 0),
]


@pytest.mark.parametrize(("fmt", "body", "expected", "skipped"), CASES)
def test_formats_over_http(feed_server, fmt, body, expected, skipped):
    feed_server.routes["/f"] = (200, body, 0)
    status = FeedStatus()
    assert FeedPuller(allowed=LOOPBACK).sync(feed(feed_server.url + "/f", fmt), status, NOW)
    assert status.entries == expected and status.skipped == skipped
    assert status.as_status()["lastSuccessfulSync"] == "2026-12-05T12:00:00Z"
    assert status.as_status()["errorConditions"] == []


def test_domains_are_idn_normalised(feed_server):
    feed_server.routes["/d"] = (200, "Bücher.Example.\n*.evil.com\nxn--bcher-kva.example\n".encode(), 0)
    status = FeedStatus()
    assert FeedPuller(allowed=LOOPBACK).sync(feed(feed_server.url + "/d", content="DomainNameSet"), status, NOW)
    assert status.entries == ("xn--bcher-kva.example", "*.evil.com")


def test_headers_come_from_values_files_and_environment(feed_server, tmp_path, monkeypatch):
    (tmp_path / "globalthreatfeed-bad-ips-auth").mkdir()
    (tmp_path / "globalthreatfeed-bad-ips-auth" / "token").write_text("s3cret\n")
    monkeypatch.setenv("MARGAY_FEED_GLOBALTHREATFEED_BAD_IPS_CM_ACCOUNT", "acct-7")
    feed_server.routes["/h"] = (200, b"1.2.3.4\n", 0)
    headers = [{"name": "X-Plain", "value": "v"},
               {"name": "Authorization", "valueFrom": {"secretKeyRef": {"name": "globalthreatfeed-bad-ips-auth",
                                                                        "key": "token"}}},
               {"name": "X-Account", "valueFrom": {"configMapKeyRef": {"name": "globalthreatfeed-bad-ips-cm",
                                                                       "key": "account"}}},
               {"name": "X-Optional", "valueFrom": {"secretKeyRef": {"name": "nope", "key": "k", "optional": True}}}]
    assert FeedPuller(allowed=LOOPBACK, secrets_dir=tmp_path).sync(
        feed(feed_server.url + "/h", headers=headers), FeedStatus(), NOW)
    sent = {k.lower(): v for k, v in feed_server.seen[-1].items()}
    assert (sent["x-plain"], sent["authorization"], sent["x-account"]) == ("v", "s3cret", "acct-7")
    assert "x-optional" not in sent


@pytest.mark.parametrize(("route", "message"), [
    ((500, b"boom", 0), "HTTP 500"),
    ((200, b"\x00\xff\xfe garbage", 0), "not UTF-8"),
    ((200, b"<html>nope</html>\n", 0), "none of the 1 entries is an IP or CIDR (the first at line 1)"),
    ((200, b"{not json", 0), "not JSON"),
    ((200, b"x", 2.0), "timed out"),
])
def test_failures_keep_the_last_good_set(feed_server, route, message):
    fmt = {"json": {"path": "$[*]"}} if message == "not JSON" else None
    puller = FeedPuller(allowed=LOOPBACK, timeout=0.5)
    status = FeedStatus()
    feed_server.routes["/f"] = (200, b'["1.2.3.4"]' if fmt else b"1.2.3.4\n", 0)
    assert puller.sync(feed(feed_server.url + "/f", fmt), status, NOW)
    feed_server.routes["/f"] = route
    assert not puller.sync(feed(feed_server.url + "/f", fmt), status, NOW + timedelta(minutes=10))
    assert status.entries == ("1.2.3.4",)
    assert status.last_successful_sync == NOW
    [cond] = status.error_conditions
    assert cond["type"] == "PullFailed" and message in cond["message"]
    feed_server.routes["/f"] = (200, b'["5.5.5.5"]' if fmt else b"5.5.5.5\n", 0)
    assert puller.sync(feed(feed_server.url + "/f", fmt), status, NOW + timedelta(minutes=20))
    assert status.entries == ("5.5.5.5",) and status.error_conditions == []


def test_ssrf_guard_refuses_loopback_and_metadata_unless_allowed(feed_server):
    feed_server.routes["/f"] = (200, b"1.2.3.4\n", 0)
    status = FeedStatus()
    assert not FeedPuller().sync(feed(feed_server.url + "/f"), status, NOW)
    assert "loopback, link-local or metadata" in status.error_conditions[-1]["message"]
    assert not feed_server.seen  # refused before any request
    with pytest.raises(FeedError, match="169.254.169.254"):
        FeedPuller(timeout=0.2).fetch(feed("http://169.254.169.254/latest/meta-data/"))
    # a redirect to a blocked address is checked hop by hop
    feed_server.routes["/r"] = (302, b"http://169.254.169.254/x", 0)
    with pytest.raises(FeedError, match="redirect 1 leads to a host that is a loopback, link-local or metadata"):
        FeedPuller(allowed=LOOPBACK).fetch(feed(feed_server.url + "/r"))
    # IPv6 forms that carry a blocked IPv4 address: compatible, 6to4, NAT64 and mapped
    for host in ("[::127.0.0.1]", "[2002:7f00:1::]", "[64:ff9b::7f00:1]", "[::ffff:169.254.169.254]",
                 "[64:ff9b::a9fe:a9fe]"):
        with pytest.raises(FeedError, match="loopback, link-local or metadata"):
            guard_url(f"http://{host}/f")
    guard_url("http://[2002:0808:0808::]/f")  # 6to4 of a public address: allowed


def test_dns_rebinding_cannot_reach_what_the_guard_refused(feed_server, fake_dns):
    # The name answers an allowed address (127.0.0.2 plays the public one), then loopback: the connection goes to
    # the address checked, never to one a second lookup returns.
    feed_server.routes["/f"] = (200, b"6.6.6.6\n", 0)  # 127.0.0.1: must never be reached
    try:
        decoy = FeedServer("127.0.0.2", feed_server.port)
    except OSError as exc:
        pytest.skip(f"cannot listen on 127.0.0.2:{feed_server.port}: {exc}")
    try:
        decoy.routes["/f"] = (200, b"1.2.3.4\n", 0)
        fake_dns["feed.test"] = [["127.0.0.2"], ["127.0.0.1"]]
        puller = FeedPuller(allowed=[ipaddress.ip_network("127.0.0.2/32")], timeout=2)
        url = f"http://feed.test:{feed_server.port}/f"
        status = FeedStatus()
        assert puller.sync(feed(url), status, NOW)
        assert status.entries == ("1.2.3.4",) and len(decoy.seen) == 1
        assert not puller.sync(feed(url), status, NOW + timedelta(minutes=10))  # the next pull: loopback now
        assert "feed.test is 127.0.0.1, a loopback, link-local or metadata address" in \
            status.error_conditions[-1]["message"]
        # a redirect to a name that answers loopback is refused at that hop
        decoy.routes["/r"] = (302, f"http://hop.test:{feed_server.port}/f".encode(), 0)
        fake_dns["hop.test"] = [["127.0.0.1"]]
        with pytest.raises(FeedError, match="redirect 1 leads to a host that is a loopback"):
            FeedPuller(allowed=[ipaddress.ip_network("127.0.0.2/32")], timeout=2).fetch(
                feed(f"http://127.0.0.2:{feed_server.port}/r"))
        # one answer with a refused address among allowed ones is refused whole
        fake_dns["mixed.test"] = [["127.0.0.2", "127.0.0.1"]]
        with pytest.raises(FeedError, match="mixed.test is 127.0.0.1"):
            puller.fetch(feed(f"http://mixed.test:{feed_server.port}/f"))
        assert feed_server.seen == []
    finally:
        decoy.close()


def test_allowed_names_are_fetched_over_ipv4_and_ipv6(feed_server, fake_dns, monkeypatch):
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):  # not used: a proxy would resolve names past the guard
        monkeypatch.setenv(name, "http://proxy.invalid:3128")
    feed_server.routes["/f"] = (200, b"1.2.3.4\n", 0)
    fake_dns["feed.test"] = [["127.0.0.1"]]
    assert FeedPuller(allowed=LOOPBACK).fetch(feed(f"http://feed.test:{feed_server.port}/f")).values == ("1.2.3.4",)
    assert feed_server.seen[-1]["Host"] == f"feed.test:{feed_server.port}"
    try:
        v6 = FeedServer("::1")
    except OSError as exc:
        pytest.skip(f"no IPv6 loopback: {exc}")
    try:
        v6.routes["/f"] = (200, b"2001:db8::1\n", 0)
        fake_dns["v6.test"] = [["::1"]]
        url = f"http://v6.test:{v6.port}/f"
        assert FeedPuller(allowed=[ipaddress.ip_network("::1/128")]).fetch(feed(url)).values == ("2001:db8::1",)
        with pytest.raises(FeedError, match="v6.test is ::1, a loopback"):
            FeedPuller(allowed=LOOPBACK).fetch(feed(url))
        assert len(v6.seen) == 1
    finally:
        v6.close()


def test_https_verifies_the_certificate_for_the_name_not_the_address(tmp_path: Path, fake_dns):
    # The server's certificate names localhost and 127.0.0.1: a name that resolves to 127.0.0.1 but is not on the
    # certificate must fail, so the check is on the name (also sent as SNI), not on the address connected to.
    ca, cert, key = make_certificates(tmp_path / "tls")
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(cert, key)
    server = FeedServer(tls=tls)
    try:
        server.routes["/f"] = (200, b"1.2.3.4\n", 0)
        fake_dns["localhost"] = [["127.0.0.1"]]
        fake_dns["feed.test"] = [["127.0.0.1"]]
        puller = FeedPuller(allowed=LOOPBACK, verify=ssl.create_default_context(cafile=str(ca)), timeout=5)
        assert puller.fetch(feed(f"https://localhost:{server.port}/f")).values == ("1.2.3.4",)
        assert server.server_names == ["localhost"]
        with pytest.raises(FeedError, match="CERTIFICATE_VERIFY_FAILED.*feed.test"):
            puller.fetch(feed(f"https://feed.test:{server.port}/f"))
        assert server.server_names[-1] == "feed.test" and len(server.seen) == 1
    finally:
        server.close()
