"""What a feed's errors may say (counts, positions, the feed's own settings: never the body's text, which may
come from a service the feed's author cannot read otherwise), and the bounds on what one body may cost."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from margay.detect import formats
from margay.detect.feeds import FeedPuller, FeedStatus
from margay.detect.formats import FeedError, parse_body

from .conftest import FeedServer
from .test_feeds import LOOPBACK, feed

NOW = datetime(2026, 12, 5, 12, tzinfo=UTC)
SECRET = b'{"kind":"Secret","data":{"password":"c3VwZXJzZWNyZXQ="}}'
FORMATS = {"csv": {"csv": {"header": True, "fieldName": "nope", "columnDelimiter": "\t"}}, "lines": None,
           "json": {"json": {"path": "$.data"}}}


@pytest.fixture
def raw_server() -> Iterator[tuple[str, list[bytes]]]:
    """A TCP server that answers each connection with the next of `answers` verbatim (not necessarily HTTP)."""
    listener = socket.create_server(("127.0.0.1", 0))
    answers: list[bytes] = []

    def serve() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            with conn:
                conn.recv(65536)
                conn.sendall(answers.pop(0) if answers else b"")

    threading.Thread(target=serve, daemon=True).start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}", answers
    listener.close()


def messages(url: str, fmt: dict | None) -> str:
    status = FeedStatus()
    assert not FeedPuller(allowed=LOOPBACK, timeout=5).sync(feed(url, fmt), status, NOW)
    return " ".join(c["message"] for c in status.error_conditions)


@pytest.mark.parametrize(("body", "fmt", "said"), [
    (SECRET + b"\nmore\n", "csv", "csv header (line 1) has no column 'nope' (the header has 1 column)"),
    (SECRET + b"\nmore\n", "lines", "none of the 2 entries is an IP or CIDR (the first at line 1)"),
    (SECRET + b"\n", "json", "none of the 1 entries is an IP or CIDR (the first at item 1)"),
    (SECRET[:-3], "json", "body is not JSON (line 1, column 54)"),
    (b"a,b\n" + SECRET + b"\n", {"csv": {"fieldNum": 0}}, "csv line 2: ',' expected after '\"'"),
    (b"a,b\nSecret password=c3VwZXJ,x,y\n", {"csv": {"fieldNum": 0}}, "csv line 2: 3 fields, expected 2"),
])
def test_body_errors_say_positions_and_counts_not_the_body(feed_server: FeedServer, body, fmt, said):
    feed_server.routes["/f"] = (200, body, 0)
    text = messages(feed_server.url + "/f", FORMATS.get(fmt) if isinstance(fmt, str) else fmt)
    assert said in text and "password" not in text and "c3VwZXJ" not in text and "Secret" not in text, text


def test_transport_errors_do_not_quote_the_peer(feed_server: FeedServer, raw_server):
    url, answers = raw_server
    # Something that is not an HTTP server (h11 quotes the status or header line it could not read).
    answers += [SECRET + b"\r\n\r\n", b"HTTP/1.1 200 OK\r\nX " + SECRET + b"\r\n\r\n"]
    for _ in range(2):
        text = messages(url + "/f", None)
        assert "RemoteProtocolError: the answer is not valid HTTP" in text and "password" not in text, text
    # A Location header is the server's words too: a redirect is named by its number.
    for location in (b"http://169.254.169.254/latest/meta-data/iam/secret-role", b"gopher://secret-host/x"):
        feed_server.routes["/r"] = (302, location, 0)
        text = messages(feed_server.url + "/r", None)
        assert "redirect 1 " in text and "secret" not in text and "169.254" not in text, text


def test_entries_are_capped(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(formats, "MAX_ENTRIES", 5)
    lines = b"".join(b"10.0.0.%d\n" % i for i in range(5))
    assert len(parse_body(lines, feed("http://x/").format, "IPSet").values) == 5
    for fmt, body in ((None, lines + b"10.0.0.9\n"), ({"json": {"path": "$[*]"}}, b'["1.1.1.1",1,2,3,4,5]'),
                      ({"csv": {"fieldNum": 0}}, lines.replace(b"\n", b",x\n") + b"1.1.1.1,y\n")):
        with pytest.raises(FeedError, match=r"body holds more than 5 entries \((line|item) 6 is entry 6\); "
                                            "a feed may have at most 5"):
            parse_body(body, feed("http://x/", fmt).format, "IPSet")


def test_invalid_entries_stop_the_read_early():
    body = b"1.2.3.4\n" + b"\n# a comment\n\r\n".join(b"x" for _ in range(formats.MAX_INVALID + 50))
    with pytest.raises(FeedError, match=r"more than 100,000 entries are not an IP or CIDR \(the first at line 2, "
                                        r"reading stopped at line 300002\)"):
        parse_body(body, feed("http://x/").format, "IPSet")
    few = b"1.2.3.4\n" + b"x\n" * 1000  # below the bound: skipped and counted, as before
    assert parse_body(few, feed("http://x/").format, "IPSet").skipped == 1000


def test_a_maximal_hostile_body_is_refused_before_it_is_read():
    """The review's bodies: 64 MiB of invalid lines (158 CPU-s, 655 MiB before) and a JSON array of 33 M zeros
    (975 MiB peak before): refused by counting, before a line is split or a value parsed."""
    n = 64 * 1024 * 1024 - 16
    for fmt, body, said in ((None, b"1\n" * (n // 2), "body has 33,554,424 lines, more than the 4,000,000"),
                            ({"csv": {"fieldNum": 0}}, b"1\r\n" * (n // 3), "more than the 4,000,000 read"),
                            ({"json": {"path": "$[*]"}}, b"[" + b"0," * (n // 2 - 1) + b"0]",
                             "body holds more than 4,000,000 JSON values; refused before parsing"),
                            # strings that never close (escaped quotes): still one linear pass
                            ({"json": {"path": "$[*]"}}, b'["' + b'\\"' * (n // 4) + b"," * (n // 4) + b"]",
                             "more than 4,000,000 JSON values")):
        t = time.process_time()
        with pytest.raises(FeedError, match=said):
            parse_body(body, feed("http://x/", fmt).format, "IPSet")
        assert time.process_time() - t < 5


def test_json_bound_counts_values_not_commas_in_strings(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(formats, "MAX_JSON_VALUES", 5)
    body = b'{"ips": ["1.2.3.4", "5.6.7.8"], "note": "a, \\"b, c\\", d, [e], {f} \\\\"}'
    assert parse_body(body, feed("http://x/", {"json": {"path": "$.ips"}}).format, "IPSet").values == \
        ("1.2.3.4", "5.6.7.8")
    with pytest.raises(FeedError, match="more than 5 JSON values"):
        parse_body(b'["1.2.3.4", 1, 2, 3, 4, 5]', feed("http://x/", {"json": {"path": "$[*]"}}).format, "IPSet")


def test_line_numbers_count_every_kind_of_line_break():
    body = b"# head\r\n\r\n\n1.2.3.4\rnope\r\n\n  \nbad too\n"
    with pytest.raises(FeedError, match=r"none of the 3 entries is an IP or CIDR \(the first at line 4\)"):
        parse_body(body.replace(b"1.2.3.4", b"x"), feed("http://x/").format, "IPSet")
    entries = parse_body(body, feed("http://x/").format, "IPSet")
    assert entries.values == ("1.2.3.4",) and entries.skipped == 2
    csv = b"ip,n\r\n# c\r\n\r\n1.1.1.1,1\n" + b"2.2.2.2,1,3\n"
    with pytest.raises(FeedError, match="csv line 5: 3 fields, expected 2"):
        parse_body(csv, feed("http://x/", {"csv": {"fieldNum": 0, "header": True,
                                                   "commentDelimiter": "#"}}).format, "IPSet")
