"""The syslog store: RFC 5424 messages (app-name `tigera_secure`, hostname = the record's host, MSGID =
the log type, JSON body) over TCP or TLS with octet-counting framing (RFC 6587), or over UDP.

A message longer than `packetSize` bytes is truncated and counted (`margay_forward_truncated_total`).
Syslog has no application acknowledgement: a TCP batch counts as delivered once the peer's TCP stack
has acknowledged every byte (the socket's send queue is empty) and the connection is still open.
"""

from __future__ import annotations

import fcntl
import re
import select
import socket
import ssl
import struct
import time
from datetime import UTC, datetime
from typing import Any

import orjson

from ..logtypes import LogType
from ..metrics import Registry
from .config import StoreConfig
from .forwarder import DeliveryError

SIOCOUTQ = 0x5411  # Linux: bytes in the send queue not yet acknowledged by the peer
_HOST = re.compile(r"[^\x21-\x7e]")
SEVERITY_INFO = 6


def hostname(record: dict[str, Any]) -> str:
    host = record.get("host")
    if not isinstance(host, str) or not host:
        return "-"
    return _HOST.sub("_", host)[:255]


def message(lt: LogType, record: dict[str, Any], facility: int) -> bytes:
    """One RFC 5424 message (without framing)."""
    t = record.get("_time")
    stamp = datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ") if t is not None else "-"
    doc = {k: v for k, v in record.items() if k not in ("_seq", "_time")}
    head = f"<{facility * 8 + SEVERITY_INFO}>1 {stamp} {hostname(record)} tigera_secure - {lt.name} - "
    return head.encode() + orjson.dumps(doc)


class SyslogSink:
    def __init__(self, config: StoreConfig, metrics: Registry | None = None) -> None:
        self.opts = config.options
        self.name = config.name
        self.timeout = config.timeout
        self.metrics = metrics or Registry()
        self.sock: socket.socket | None = None

    def _connect(self) -> socket.socket:
        host, port = self.opts["host"], self.opts["port"]
        if self.opts["protocol"] == "udp":
            sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_DGRAM)
            sock.connect((host, port))
            return sock
        sock = socket.create_connection((host, port), timeout=self.timeout)
        if self.opts["tls"]:
            ctx = ssl.create_default_context(cafile=self.opts.get("ca_file"))
            sock = ctx.wrap_socket(sock, server_hostname=host)
        sock.settimeout(self.timeout)
        return sock

    def _closed_by_peer(self, sock: socket.socket) -> bool:
        readable, _, _ = select.select([sock], [], [], 0)
        if not readable:
            return False
        try:
            raw = sock if not isinstance(sock, ssl.SSLSocket) else socket.socket(fileno=sock.fileno())
            try:
                data = raw.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
            finally:
                if raw is not sock:
                    raw.detach()
            return data == b""
        except BlockingIOError:
            return False
        except OSError:
            return True

    def deliver(self, lt: LogType, records: list[dict[str, Any]]) -> int:
        size, facility = self.opts["packet_size"], self.opts["facility"]
        msgs = []
        truncated = 0
        for r in records:
            m = message(lt, r, facility)
            if len(m) > size:
                m = m[:size]
                truncated += 1
            msgs.append(m)
        if truncated:
            self.metrics.inc("margay_forward_truncated_total", truncated, store=self.name)
        try:
            if self.sock is None or (self.opts["protocol"] == "tcp" and self._closed_by_peer(self.sock)):
                self.close()
                self.sock = self._connect()
            if self.opts["protocol"] == "udp":
                for m in msgs:
                    self.sock.send(m)
                return 0
            self.sock.sendall(b"".join(b"%d " % len(m) + m for m in msgs))
            self._wait_acknowledged(self.sock)
        except (OSError, ssl.SSLError) as exc:
            self.close()
            raise DeliveryError(f"syslog {self.opts['host']}:{self.opts['port']}: {exc}") from exc
        return 0

    def _wait_acknowledged(self, sock: socket.socket) -> None:
        deadline = time.monotonic() + self.timeout
        buf = bytearray(4)
        while True:
            fcntl.ioctl(sock.fileno(), SIOCOUTQ, buf)
            if struct.unpack("i", buf)[0] == 0:
                break
            if time.monotonic() > deadline:
                raise OSError("the peer did not acknowledge the batch in time")
            time.sleep(0.002)
        if self._closed_by_peer(sock):
            raise OSError("the peer closed the connection")

    def close(self) -> None:
        if self.sock is not None:
            try:
                self.sock.close()
            except OSError:
                pass
            self.sock = None
