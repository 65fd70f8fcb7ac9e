"""Pulling threat feeds from a real HTTP server in every format, and failing in every way."""

from __future__ import annotations

import ipaddress
from datetime import UTC, datetime, timedelta

import orjson
import pytest

from margay.detect.feeds import FeedPuller, FeedStatus, guard_url
from margay.detect.formats import FeedError
from margay.detect.resources import parse_resource

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
    ((200, b"<html>nope</html>\n", 0), "none of the 1 entries"),
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
    with pytest.raises(FeedError, match="169.254.169.254"):
        FeedPuller(allowed=LOOPBACK).fetch(feed(feed_server.url + "/r"))
    # IPv6 forms that carry a blocked IPv4 address: compatible, 6to4, NAT64 and mapped
    for host in ("[::127.0.0.1]", "[2002:7f00:1::]", "[64:ff9b::7f00:1]", "[::ffff:169.254.169.254]",
                 "[64:ff9b::a9fe:a9fe]"):
        with pytest.raises(FeedError, match="loopback, link-local or metadata"):
            guard_url(f"http://{host}/f")
    guard_url("http://[2002:0808:0808::]/f")  # 6to4 of a public address: allowed
