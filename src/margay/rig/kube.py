"""A real kube-apiserver (k8s.io/kubernetes v1.36) over a real etcd (v3.6) as a test peer.

Both binaries are built from the Go module proxy by scripts/rig/kube.sh into $MARGAY_RIG_DIR/kube/bin. Everything
listens on 127.0.0.1 with free ports and lives in one work directory: etcd's data, certificates (a CA and a
serving certificate for 127.0.0.1 from `openssl`, service-account signing keys), the static token file, the
audit policy, the audit log (`audit.log`, JSON lines) and, when asked, an audit webhook kubeconfig.

Authentication is by static tokens (`users`: token -> (user, groups)); `admin` is in `system:masters`.
Authorization is RBAC only. The Calico CRDs of tests/rig/kube/crds are installed once the server is ready,
so Calico objects are real. `client(token)` is an httpx client that trusts the server's CA.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import ssl
import subprocess
import tempfile
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx
import yaml

from margay.rig.process import (
    REPO_ROOT,
    RIG_DIR,
    PeerError,
    free_port,
    spawn,
    stop_process,
    wait_until,
)
from margay.rig.tls import make_certificates, openssl

BIN_DIR = RIG_DIR / "kube" / "bin"
CRD_DIR = REPO_ROOT / "tests" / "rig" / "kube" / "crds"
SA_ISSUER = "https://kubernetes.default.svc.cluster.local"

# One event per request (ResponseComplete, or Panic); health probes and the server's own loopback calls are
# left out so the log holds what tests do. Calico and RBAC objects are logged with their bodies.
AUDIT_POLICY: dict[str, Any] = {
    "apiVersion": "audit.k8s.io/v1", "kind": "Policy", "omitStages": ["RequestReceived"],
    "rules": [
        {"level": "None", "nonResourceURLs": ["/healthz*", "/readyz*", "/livez*", "/version", "/openapi*"]},
        {"level": "None", "users": ["system:apiserver", "system:kube-proxy"]},
        {"level": "Metadata", "resources": [{"group": "", "resources": ["secrets", "configmaps"]},
                                            {"group": "authentication.k8s.io", "resources": ["tokenreviews"]}]},
        {"level": "RequestResponse", "resources": [{"group": "crd.projectcalico.org"},
                                                   {"group": "projectcalico.org"},
                                                   {"group": "networking.k8s.io"},
                                                   {"group": "rbac.authorization.k8s.io"}]},
        {"level": "Request"},
    ],
}


@dataclass(frozen=True)
class Webhook:
    """Where the audit webhook posts: an https URL, the bearer token it sends, the CA that signed the server."""

    url: str
    token: str
    ca_file: Path


class KubeAPIServer:
    """etcd + kube-apiserver on free loopback ports. Use as a context manager or call start() / stop().

    `users` maps static bearer tokens to (user name, groups); an `admin` (system:masters) is always added.
    """

    def __init__(self, workdir: Path | None = None, *, users: Mapping[str, tuple[str, Iterable[str]]] | None = None,
                 webhook: Webhook | None = None, startup_timeout: float = 120.0, crds: bool = True) -> None:
        self.workdir = workdir
        self.webhook = webhook
        self.startup_timeout = startup_timeout
        self.install_crds = crds
        self.admin_token = "admin-" + secrets.token_hex(16)
        self.users: dict[str, tuple[str, tuple[str, ...]]] = {
            self.admin_token: ("kube-admin", ("system:masters",))}
        for token, (name, groups) in (users or {}).items():
            self.users[token] = (name, tuple(groups))
        self.etcd: subprocess.Popen[bytes] | None = None
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 0
        self.etcd_port = 0
        self.url = ""
        self.startup_seconds = 0.0  # start() as a whole: certificates, etcd, API server ready, CRDs established
        self.ready_seconds = 0.0  # from spawning kube-apiserver until /readyz answers ok

    # -- paths -----------------------------------------------------------------------------------------
    @property
    def _dir(self) -> Path:
        if self.workdir is None:
            raise PeerError("KubeAPIServer has no work directory yet: call start()")
        return self.workdir

    @property
    def ca_file(self) -> Path:
        return self._dir / "tls" / "ca.pem"

    @property
    def cert_file(self) -> Path:
        """The serving certificate (for 127.0.0.1 and localhost, signed by ca_file); reusable by other servers."""
        return self._dir / "tls" / "server.pem"

    @property
    def key_file(self) -> Path:
        return self._dir / "tls" / "server-key.pem"

    @property
    def audit_log(self) -> Path:
        return self._dir / "audit.log"

    @property
    def log_file(self) -> Path:
        return self._dir / "kube-apiserver.log"

    def token_of(self, user: str) -> str:
        """The static token of a user name given in `users`."""
        for token, (name, _) in self.users.items():
            if name == user:
                return token
        raise KeyError(user)

    # -- lifecycle --------------------------------------------------------------------------------------
    def start(self, workdir: Path | None = None) -> KubeAPIServer:
        if self.proc is not None:
            raise PeerError("KubeAPIServer already started")
        for binary in ("kube-apiserver", "etcd"):
            if not os.access(BIN_DIR / binary, os.X_OK):
                raise PeerError(f"{BIN_DIR / binary} not found: run scripts/rig/kube.sh (or make rig)")
        if shutil.which("openssl") is None:
            raise PeerError("openssl not found: run scripts/rig/install.sh")
        if workdir is not None:
            self.workdir = workdir
        if self.workdir is None:
            (RIG_DIR / "kube").mkdir(parents=True, exist_ok=True)
            self.workdir = Path(tempfile.mkdtemp(prefix="run-", dir=RIG_DIR / "kube"))
        self.workdir = Path(self.workdir).resolve()
        t0 = time.monotonic()
        try:
            self._start_etcd()
            self._start_apiserver()
            if self.install_crds:
                self.apply_crds(CRD_DIR)
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.monotonic() - t0
        return self

    def _start_etcd(self) -> None:
        d = self._dir
        self.etcd_port, peer_port = free_port(), free_port()
        client = f"http://127.0.0.1:{self.etcd_port}"
        peer = f"http://127.0.0.1:{peer_port}"
        self.etcd = spawn([str(BIN_DIR / "etcd"), "--name", "rig", "--data-dir", str(d / "etcd"),
                           "--listen-client-urls", client, "--advertise-client-urls", client,
                           "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
                           "--initial-cluster", f"rig={peer}", "--log-level", "warn", "--unsafe-no-fsync"],
                          log=d / "etcd.log", cwd=d)
        wait_until(lambda: httpx.get(client + "/health", timeout=1).json().get("health") == "true",
                   timeout=30, proc=self.etcd, what="etcd", log=d / "etcd.log", interval=0.1)

    def _start_apiserver(self) -> None:
        d = self._dir
        if not (self.ca_file.exists() and self.cert_file.exists() and self.key_file.exists()):
            make_certificates(d / "tls")  # else: made beforehand (e.g. shared with the webhook's receiver)
        openssl("genrsa", "-out", "sa.key", "2048", cwd=d / "tls")
        openssl("rsa", "-in", "sa.key", "-pubout", "-out", "sa.pub", cwd=d / "tls")
        lines = [f'{token},{name},uid-{name}' + (f',"{",".join(groups)}"' if groups else "")
                 for token, (name, groups) in self.users.items()]
        (d / "tokens.csv").write_text("\n".join(lines) + "\n")
        (d / "tokens.csv").chmod(0o600)
        (d / "audit-policy.yaml").write_text(yaml.safe_dump(AUDIT_POLICY))
        self.port = free_port()
        self.url = f"https://127.0.0.1:{self.port}"
        args = [str(BIN_DIR / "kube-apiserver"),
                f"--etcd-servers=http://127.0.0.1:{self.etcd_port}",
                "--bind-address=127.0.0.1", "--advertise-address=127.0.0.1", f"--secure-port={self.port}",
                f"--cert-dir={d / 'certs'}", f"--tls-cert-file={self.cert_file}",
                f"--tls-private-key-file={self.key_file}", f"--client-ca-file={self.ca_file}",
                f"--service-account-key-file={d / 'tls' / 'sa.pub'}",
                f"--service-account-signing-key-file={d / 'tls' / 'sa.key'}",
                f"--service-account-issuer={SA_ISSUER}",
                f"--token-auth-file={d / 'tokens.csv'}", "--authorization-mode=RBAC",
                "--service-cluster-ip-range=10.96.0.0/16", "--endpoint-reconciler-type=none",
                "--disable-admission-plugins=ServiceAccount", "--profiling=false",
                f"--audit-policy-file={d / 'audit-policy.yaml'}", f"--audit-log-path={self.audit_log}",
                "--audit-log-format=json", "--audit-log-maxsize=0"]
        if self.webhook is not None:
            cfg = {"apiVersion": "v1", "kind": "Config", "current-context": "margay",
                   "clusters": [{"name": "margay", "cluster": {"server": self.webhook.url,
                                                               "certificate-authority": str(self.webhook.ca_file)}}],
                   "users": [{"name": "kube-apiserver", "user": {"token": self.webhook.token}}],
                   "contexts": [{"name": "margay", "context": {"cluster": "margay", "user": "kube-apiserver"}}]}
            (d / "audit-webhook.kubeconfig").write_text(yaml.safe_dump(cfg))
            (d / "audit-webhook.kubeconfig").chmod(0o600)
            args += [f"--audit-webhook-config-file={d / 'audit-webhook.kubeconfig'}",
                     "--audit-webhook-batch-max-wait=1s", "--audit-webhook-initial-backoff=1s"]
        t0 = time.monotonic()
        self.proc = spawn(args, log=self.log_file, cwd=d)
        with self.client() as http:
            wait_until(lambda: http.get("/readyz", timeout=2).status_code == 200, timeout=self.startup_timeout,
                       proc=self.proc, what="kube-apiserver", log=self.log_file, interval=0.2)
        self.ready_seconds = time.monotonic() - t0

    def stop(self) -> None:
        if self.proc is not None:  # a graceful stop waits for open watches; the data is disposable
            stop_process(self.proc, timeout=5)
            self.proc = None
        if self.etcd is not None:
            stop_process(self.etcd, timeout=20)
            self.etcd = None

    def __enter__(self) -> KubeAPIServer:
        return self.start() if self.proc is None else self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    # -- talking to it ----------------------------------------------------------------------------------
    def client(self, token: str | None = None, *, timeout: float = 30.0) -> httpx.Client:
        """An httpx client for the API server with `token` (default: the admin's) that trusts its CA."""
        token = self.admin_token if token is None else token
        return httpx.Client(base_url=self.url, verify=self.ssl_context(), timeout=timeout,
                            headers={"authorization": f"Bearer {token}", "accept": "application/json"})

    def ssl_context(self) -> ssl.SSLContext:
        """A client TLS context trusting the rig's CA (which also signed `cert_file`)."""
        return ssl.create_default_context(cafile=str(self.ca_file))

    def kubeconfig(self, path: Path, token: str | None = None) -> Path:
        """Write a kubeconfig for this server and `token` (default: the admin's) to `path`."""
        cfg = {"apiVersion": "v1", "kind": "Config", "current-context": "rig",
               "clusters": [{"name": "rig", "cluster": {"server": self.url, "certificate-authority": str(self.ca_file)}}],
               "users": [{"name": "rig-user", "user": {"token": token or self.admin_token}}],
               "contexts": [{"name": "rig", "context": {"cluster": "rig", "user": "rig-user"}}]}
        path.write_text(yaml.safe_dump(cfg))
        path.chmod(0o600)
        return path

    def apply(self, objects: Iterable[dict[str, Any]], *, dry_run: bool = False,
              token: str | None = None) -> list[httpx.Response]:
        """Server-side apply of each object (as `kubectl apply --server-side [--dry-run=server]` does).

        The patch is sent as JSON (valid apply YAML): kube-apiserver cannot JSON-encode a YAML request body
        into an audit event, and then loses the event from the log and its whole batch from the webhook."""
        out = []
        with self.client(token) as http:
            for obj in objects:
                r = http.patch(self.object_path(obj), content=json.dumps(obj).encode(),
                               params={"fieldManager": "margay-rig", "force": "true",
                                       **({"dryRun": "All"} if dry_run else {})},
                               headers={"content-type": "application/apply-patch+yaml"})
                out.append(r)
        return out

    def object_path(self, obj: dict[str, Any], *, collection: bool = False) -> str:
        """The REST path of an object (or, with collection=True, of its kind), found by API discovery."""
        api = str(obj.get("apiVersion", ""))
        kind = str(obj.get("kind", ""))
        meta = obj.get("metadata") or {}
        resource, namespaced = self.resource_of(api, kind)
        base = f"/api/{api}" if "/" not in api else f"/apis/{api}"
        ns = meta.get("namespace") or ("default" if namespaced else "")
        path = base + (f"/namespaces/{ns}" if namespaced else "") + f"/{resource}"
        return path if collection else f"{path}/{meta.get('name', '')}"

    def resource_of(self, api_version: str, kind: str) -> tuple[str, bool]:
        """(plural resource name, namespaced) of a kind, from the server's discovery document."""
        base = f"/api/{api_version}" if "/" not in api_version else f"/apis/{api_version}"
        with self.client() as http:
            r = http.get(base)
        if r.status_code != 200:
            raise PeerError(f"API server does not serve {api_version}: {r.status_code}")
        for res in r.json().get("resources", []):
            if res.get("kind") == kind and "/" not in res.get("name", ""):
                return str(res["name"]), bool(res.get("namespaced"))
        raise PeerError(f"API server serves no kind {kind} in {api_version}")

    def apply_crds(self, directory: Path, *, timeout: float = 60.0) -> None:
        """Create every CRD in `directory` and wait until each is Established."""
        docs = [d for f in sorted(directory.glob("*.yaml")) for d in yaml.safe_load_all(f.read_text()) if d]
        with self.client() as http:
            for doc in docs:
                r = http.patch(f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{doc['metadata']['name']}",
                               content=json.dumps(doc).encode(),
                               params={"fieldManager": "margay-rig", "force": "true"},
                               headers={"content-type": "application/apply-patch+yaml"})
                if r.status_code not in (200, 201):
                    raise PeerError(f"CRD {doc['metadata']['name']}: {r.status_code} {r.text[:300]}")

            def established() -> bool:
                for doc in docs:
                    got = http.get(f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{doc['metadata']['name']}")
                    conds = {c["type"]: c["status"] for c in got.json().get("status", {}).get("conditions", [])}
                    if conds.get("Established") != "True":
                        return False
                # discovery lists the new group once the CRDs are served
                groups = {g["name"] for g in http.get("/apis").json().get("groups", [])}
                return all(doc["spec"]["group"] in groups for doc in docs)

            wait_until(established, timeout=timeout, proc=self.proc, what="CRDs", log=self.log_file, interval=0.2)

    def aggregate_cluster_roles(self) -> int:
        """Fill the rules of every ClusterRole with an aggregationRule, as kube-controller-manager's
        clusterrole-aggregation controller does (the rig runs no controller manager). Returns how many."""
        with self.client() as http:
            roles = http.get("/apis/rbac.authorization.k8s.io/v1/clusterroles").json()["items"]
            done = 0
            for role in roles:
                selectors = (role.get("aggregationRule") or {}).get("clusterRoleSelectors") or []
                if not selectors:
                    continue
                rules: list[dict[str, Any]] = []
                for other in roles:
                    if other is role or not any(_selects(sel, (other["metadata"].get("labels") or {}))
                                                for sel in selectors):
                        continue
                    rules += [r for r in other.get("rules") or [] if r not in rules]
                r = http.patch(f"/apis/rbac.authorization.k8s.io/v1/clusterroles/{role['metadata']['name']}",
                               json={"rules": rules}, headers={"content-type": "application/merge-patch+json"})
                if r.status_code != 200:
                    raise PeerError(f"aggregating ClusterRole {role['metadata']['name']}: {r.status_code} {r.text}")
                done += 1
        return done

    def service_account_token(self, namespace: str, name: str, *, audience: str | None = None,
                              seconds: int = 3600) -> str:
        """Create the namespace and service account if needed and return a TokenRequest token for it."""
        with self.client() as http:
            http.post("/api/v1/namespaces", json={"apiVersion": "v1", "kind": "Namespace",
                                                  "metadata": {"name": namespace}})
            http.post(f"/api/v1/namespaces/{namespace}/serviceaccounts",
                      json={"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name}})
            spec: dict[str, Any] = {"expirationSeconds": seconds}
            if audience:
                spec["audiences"] = [audience]
            r = http.post(f"/api/v1/namespaces/{namespace}/serviceaccounts/{name}/token",
                          json={"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": spec})
        if r.status_code != 201:
            raise PeerError(f"TokenRequest for {namespace}/{name}: {r.status_code} {r.text[:300]}")
        return str(r.json()["status"]["token"])

    def audit_events(self) -> list[dict[str, Any]]:
        """Every audit event written to the audit log so far (complete lines only)."""
        import orjson

        data = self.audit_log.read_bytes() if self.audit_log.exists() else b""
        return [orjson.loads(line) for line in data.split(b"\n")[:-1] if line.strip()]


def _selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    """A metav1.LabelSelector (matchLabels and matchExpressions) against an object's labels."""
    if any(labels.get(k) != v for k, v in (selector.get("matchLabels") or {}).items()):
        return False
    for e in selector.get("matchExpressions") or []:
        key, op, values = e["key"], e["operator"], e.get("values") or []
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and key in labels and labels[key] in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True
