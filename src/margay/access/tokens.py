"""The tokens file: bearer tokens of people ({token, user, groups}) and writers ({token, cluster}).

Tokens are kept only as SHA-256 digests and compared in constant time; a file given as `sha256:<hex>`
never holds the secret at all. The file is re-read when it changes, so removing a line revokes a token.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import secrets
from pathlib import Path

import yaml

from ..errors import ConfigError
from ..names import CLUSTER_RULE, is_cluster_name
from .identity import ADMIN_NAME, MASTERS, Identity, person, writer

log = logging.getLogger("margay.access")

ADMIN_TOKEN_FILE = "admin-token"


def digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def hashed(token: str) -> str:
    """The `sha256:<hex>` form of a token, for writing tokens files without secrets in them."""
    return "sha256:" + digest(token).hex()


def parse_tokens(text: str, source: str = "tokens file") -> list[tuple[bytes, Identity]]:
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: not valid YAML: {exc}") from None
    if doc is None:
        return []
    if isinstance(doc, dict) and "tokens" in doc:
        doc = doc["tokens"]
    if not isinstance(doc, list):
        raise ConfigError(f"{source}: expected a list of {{token, user, groups}} or {{token, cluster}} entries")
    out: list[tuple[bytes, Identity]] = []
    for i, entry in enumerate(doc):
        where = f"{source}: entry {i + 1}"
        if not isinstance(entry, dict) or not isinstance(entry.get("token"), str) or not entry["token"]:
            raise ConfigError(f"{where}: needs a non-empty string `token`")
        raw: str = entry["token"]
        if raw.startswith("sha256:"):
            try:
                d = bytes.fromhex(raw[len("sha256:"):])
            except ValueError:
                d = b""
            if len(d) != 32:
                raise ConfigError(f"{where}: `sha256:` must be followed by 64 hex digits")
        else:
            if len(raw) < 16:
                log.warning("%s: token is shorter than 16 characters; use a long random string", where)
            d = digest(raw)
        has_user, has_cluster = "user" in entry, "cluster" in entry
        if has_user == has_cluster:
            raise ConfigError(f"{where}: give exactly one of `user` (a person) or `cluster` (a writer)")
        if has_cluster:
            if not is_cluster_name(entry["cluster"]):
                raise ConfigError(f"{where}: `cluster`: {CLUSTER_RULE}")
            out.append((d, writer(entry["cluster"])))
            continue
        groups = entry.get("groups") or []
        if not isinstance(entry["user"], str) or not entry["user"] or not isinstance(groups, list) or \
                not all(isinstance(g, str) for g in groups):
            raise ConfigError(f"{where}: `user` must be a string and `groups` a list of strings")
        out.append((d, person(entry["user"], groups)))
    return out


class TokenFile:
    """Looks up bearer tokens; re-reads the file when its size or modification time changes."""

    def __init__(self, path: Path | None, extra: list[tuple[bytes, Identity]] | None = None) -> None:
        self.path = path
        self.extra = list(extra or [])
        self._stamp: tuple[int, int, int] | None = None
        self._entries: list[tuple[bytes, Identity]] = []
        if path is not None:
            self._entries = parse_tokens(self._read(), str(path))
            self._stamp = self._stat()

    def _read(self) -> str:
        assert self.path is not None
        try:
            return self.path.read_text()
        except OSError as exc:
            raise ConfigError(f"tokens file {self.path}: {exc.strerror}") from None

    def _stat(self) -> tuple[int, int, int] | None:
        assert self.path is not None
        try:
            st = os.stat(self.path)
        except OSError:
            return None
        return (st.st_mtime_ns, st.st_size, st.st_ino)

    def _maybe_reload(self) -> None:
        if self.path is None:
            return
        stamp = self._stat()
        if stamp == self._stamp:
            return
        self._stamp = stamp
        try:
            self._entries = parse_tokens(self._read(), str(self.path))
            log.info("tokens file %s reloaded: %d tokens", self.path, len(self._entries))
        except ConfigError as exc:
            # Fail closed: a broken file must not keep revoked tokens alive.
            self._entries = []
            log.error("%s; no token from the file is accepted until it is fixed", exc.message)

    def lookup(self, token: str) -> Identity | None:
        self._maybe_reload()
        d = digest(token)
        found: Identity | None = None
        for candidate, identity in [*self.extra, *self._entries]:
            # Every entry is compared, in constant time, whatever matched before.
            if hmac.compare_digest(candidate, d) and found is None:
                found = identity
        return found

    def __len__(self) -> int:
        return len(self.extra) + len(self._entries)


def admin_token(data_dir: Path) -> tuple[str, bool]:
    """The generated admin token of a data directory (created with mode 0600 when missing), and if it is new."""
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / ADMIN_TOKEN_FILE
    try:
        token = path.read_text().strip()
        if token:
            if path.stat().st_mode & 0o077:
                os.chmod(path, 0o600)
            return token, False
    except FileNotFoundError:
        pass
    token = "mgy_" + secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(token + "\n")
    os.chmod(path, 0o600)
    return token, True


def admin_entry(token: str) -> tuple[bytes, Identity]:
    return digest(token), person(ADMIN_NAME, [MASTERS])
