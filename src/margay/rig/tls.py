"""Test certificates made with the `openssl` CLI: a CA and a server certificate for 127.0.0.1/localhost."""

from __future__ import annotations

import subprocess
from pathlib import Path

from margay.rig.process import PeerError

_SERVER_EXT = """\
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1, DNS:localhost
"""


def openssl(*args: str, cwd: Path) -> None:
    res = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True, check=False)
    if res.returncode != 0:
        raise PeerError(f"openssl {' '.join(args)} failed: {res.stderr.strip()}")


def make_certificates(directory: Path) -> tuple[Path, Path, Path]:
    """Create a CA and a server certificate for 127.0.0.1/localhost; return (ca, cert, key) paths."""
    directory.mkdir(parents=True, exist_ok=True)
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-sha256", "-days", "7",
             "-subj", "/CN=margay test CA", "-keyout", "ca-key.pem", "-out", "ca.pem",
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=directory)
    openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-sha256", "-subj", "/CN=localhost",
             "-keyout", "server-key.pem", "-out", "server.csr", cwd=directory)
    (directory / "server.ext").write_text(_SERVER_EXT)
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca-key.pem",
             "-CAcreateserial", "-days", "7", "-sha256", "-extfile", "server.ext",
             "-out", "server.pem", cwd=directory)
    return directory / "ca.pem", directory / "server.pem", directory / "server-key.pem"
