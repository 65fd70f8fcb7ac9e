"""Smoke tests for the chromium peer: a local page loads, a click changes the DOM, a screenshot is real."""

from __future__ import annotations

import struct
import threading
import zlib
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = pytest.mark.rig

PAGE = b"""<!doctype html>
<html><head><meta charset="utf-8"><title>margay rig</title>
<style>body{font-family:sans-serif;margin:40px} #banner{background:#2a6f97;color:#fff;padding:30px}</style>
</head><body>
<div id="banner">margay rig smoke page</div>
<button id="go" onclick="document.getElementById('out').textContent = 'clicked ' + (++window.n)">Go</button>
<p id="out">waiting</p>
<script>window.n = 0;</script>
</body></html>
"""


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        if self.path != "/":
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(PAGE)))
        self.end_headers()
        self.wfile.write(PAGE)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - quiet
        pass


@pytest.fixture
def site() -> Iterator[str]:
    """A local http.server on a free loopback port serving PAGE at /."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def png_pixels(png: bytes) -> tuple[int, int, bytes]:
    """Width, height and the decompressed scanline bytes of a PNG."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat = 8, b""
    width = height = 0
    while pos < len(png):
        length, kind = struct.unpack(">I4s", png[pos:pos + 8])
        chunk = png[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            width, height = struct.unpack(">II", chunk[:8])
        elif kind == b"IDAT":
            idat += chunk
        pos += 12 + length
    return width, height, zlib.decompress(idat)


def test_page_loads_click_and_screenshot(page: Page, site: str) -> None:
    response = page.goto(site)
    assert response is not None and response.status == 200
    assert page.title() == "margay rig"
    assert page.text_content("#out") == "waiting"

    page.click("#go")
    assert page.text_content("#out") == "clicked 1"
    page.click("#go")
    assert page.text_content("#out") == "clicked 2"

    png = page.screenshot()
    width, height, raw = png_pixels(png)
    assert (width, height) == (1280, 800)
    assert len(png) > 2000
    assert len(set(raw)) > 10  # not a blank single-colour image: banner, text and button are drawn
