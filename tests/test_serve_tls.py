"""`margay serve --tls-cert-file --tls-key-file`: HTTPS only, the audit webhook's token path, clear flag errors."""

from __future__ import annotations

import ssl
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import yaml

from margay.logtypes.audit import SAMPLE_EVENTLIST
from margay.rig.tls import make_certificates
from margay.testing.server import ServerProcess


def test_serves_https_and_takes_a_webhook_eventlist_with_a_token(tmp_path: Path) -> None:
    ca, cert, key = make_certificates(tmp_path / "tls")
    tokens = tmp_path / "tokens.yaml"
    tokens.write_text(yaml.safe_dump([{"token": "webhook-token-0123456789abcdef", "cluster": "prod"}]))
    server = ServerProcess(tmp_path / "data", "--tokens", str(tokens), "--tls-cert-file", str(cert),
                           "--tls-key-file", str(key), auth=True, ca_file=ca)
    with server:
        assert server.url.startswith("https://127.0.0.1:")
        verify = ssl.create_default_context(cafile=str(ca))
        r = httpx.post(server.url + "/api/v1/audit/logs/kube/bulk", content=SAMPLE_EVENTLIST.encode(), verify=verify,
                       headers={"content-type": "application/json",
                                "authorization": "Bearer webhook-token-0123456789abcdef"})
        assert r.status_code == 200 and r.json()["succeeded"] == 2, r.text
        with pytest.raises(httpx.ConnectError):  # the server's certificate is not trusted by default
            httpx.get(server.url + "/-/health")
        plain = "http://" + server.url.removeprefix("https://")
        with pytest.raises(httpx.HTTPError):  # no plain HTTP on the TLS port
            httpx.get(plain + "/-/health", timeout=5)


def _serve(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "margay", "serve", "--port", "0", "--data-dir", str(cwd / "d"),
                           *args], capture_output=True, text=True, timeout=60, check=False, cwd=cwd)


def test_bad_tls_flags_are_one_line_errors(tmp_path: Path) -> None:
    ca, cert, key = make_certificates(tmp_path / "tls")
    cases = [(("--tls-cert-file", str(cert)), "go together"),
             (("--tls-cert-file", str(tmp_path / "no.pem"), "--tls-key-file", str(key)), "no such file"),
             (("--tls-cert-file", str(cert), "--tls-key-file", str(ca)), "cannot use --tls-cert-file")]
    for args, text in cases:
        r = _serve(*args, cwd=tmp_path)
        message = " ".join(r.stderr.split())  # the console wraps long lines
        assert r.returncode == 2 and text in message and "Traceback" not in message, r.stderr
