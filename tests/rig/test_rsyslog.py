"""Smoke tests for the rsyslog peer: an RFC 5424 message over each transport arrives verbatim."""

from __future__ import annotations

import socket
import ssl
import time
import uuid

import pytest

from margay.rig.rsyslog import RsyslogServer

pytestmark = pytest.mark.rig


def rfc5424(transport: str) -> str:
    """A unique RFC 5424 message (PRI, version, timestamp, host, app, procid, msgid, SD, text)."""
    tag = uuid.uuid4().hex
    return (f'<134>1 2024-05-01T12:00:00.123456Z node-1.example margay 4242 FLOW '
            f'[margay@32473 transport="{transport}" id="{tag}"] allow tcp 10.0.0.1:443 -> 10.0.0.2:51512')


def octet_counted(message: str) -> bytes:
    data = message.encode()
    return str(len(data)).encode() + b" " + data


def test_tcp_octet_counting(rsyslog: RsyslogServer) -> None:
    first, second = rfc5424("tcp"), rfc5424("tcp")
    with socket.create_connection(("127.0.0.1", rsyslog.tcp_port), timeout=5) as sock:
        sock.sendall(octet_counted(first) + octet_counted(second))  # two frames, no delimiter
    assert rsyslog.wait_for_message(first) == first
    assert rsyslog.wait_for_message(second) == second


def test_udp(rsyslog: RsyslogServer) -> None:
    message = rfc5424("udp")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.sendto(message.encode(), ("127.0.0.1", rsyslog.udp_port))
    assert rsyslog.wait_for_message(message) == message


def test_tls(rsyslog: RsyslogServer) -> None:
    message = rfc5424("tls")
    context = ssl.create_default_context(cafile=str(rsyslog.ca_file))  # verifies chain and 127.0.0.1 SAN
    with socket.create_connection(("127.0.0.1", rsyslog.tls_port), timeout=5) as raw:
        with context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
            tls.sendall(octet_counted(message))
            assert rsyslog.wait_for_message(message) == message


def test_tls_rejects_untrusting_client(rsyslog: RsyslogServer) -> None:
    """The TLS port really speaks TLS with our own CA: a client trusting only the system CAs refuses it."""
    context = ssl.create_default_context()
    with socket.create_connection(("127.0.0.1", rsyslog.tls_port), timeout=5) as raw:
        with pytest.raises(ssl.SSLCertVerificationError):
            context.wrap_socket(raw, server_hostname="127.0.0.1")


def test_messages_in_arrival_order(rsyslog: RsyslogServer) -> None:
    sent = [rfc5424("tcp") for _ in range(50)]
    with socket.create_connection(("127.0.0.1", rsyslog.tcp_port), timeout=5) as sock:
        sock.sendall(b"".join(octet_counted(m) for m in sent))
    rsyslog.wait_for_message(sent[-1])
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        received = [line for line in rsyslog.read_messages() if line in set(sent)]
        if len(received) == len(sent):
            break
        time.sleep(0.05)
    assert received == sent
