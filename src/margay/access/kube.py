"""TokenReview and SubjectAccessReview against a Kubernetes API server (kubeconfig or in-cluster)."""

from __future__ import annotations

import base64
import logging
import os
import secrets
import ssl
import tempfile
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml

from ..errors import BackendError, ConfigError
from .cache import TTLCache
from .identity import Identity, person
from .rules import NAMELESS_VERBS, UNKNOWN, Rules, impersonation, parse
from .tokens import digest

log = logging.getLogger("margay.access")

REVIEWERS = 16  # concurrent SubjectAccessReviews per margay server
RULES_PAUSE = 60.0  # after the API server refused impersonation: seconds before margay tries rules reviews again
SA_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")


@dataclass
class Connection:
    """Where the API server is and how margay proves who it is."""

    server: str
    verify: ssl.SSLContext | bool = True
    token: str | None = None
    token_file: Path | None = None  # re-read on every call: projected tokens rotate
    cert: tuple[str, str] | None = None
    basic: tuple[str, str] | None = None

    def bearer(self) -> str | None:
        if self.token_file is not None:
            return self.token_file.read_text().strip()
        return self.token


def _data_file(data: str, suffix: str) -> str:
    fd, name = tempfile.mkstemp(prefix="margay-kube-", suffix=suffix)
    with os.fdopen(fd, "wb") as fh:
        fh.write(base64.b64decode(data))
    return name


def from_kubeconfig(path: Path, context: str | None = None) -> Connection:
    try:
        cfg = yaml.safe_load(path.read_text()) or {}
    except OSError as exc:
        raise ConfigError(f"kubeconfig {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"kubeconfig {path}: not valid YAML: {exc}") from None

    def named(section: str, name: str | None) -> dict[str, Any]:
        for item in cfg.get(section) or []:
            if item.get("name") == name:
                return dict(item.get(section[:-1]) or {})
        raise ConfigError(f"kubeconfig {path}: no {section[:-1]} named {name!r}")

    ctx = named("contexts", context or cfg.get("current-context"))
    cluster = named("clusters", ctx.get("cluster"))
    user = named("users", ctx.get("user"))
    base = path.parent

    def rel(p: str) -> str:
        return str(base / p) if not os.path.isabs(p) else p

    server = cluster.get("server")
    if not isinstance(server, str) or not server:
        raise ConfigError(f"kubeconfig {path}: the cluster has no server URL")
    verify: ssl.SSLContext | bool = True
    if cluster.get("insecure-skip-tls-verify"):
        verify = False
    elif cluster.get("certificate-authority-data"):
        verify = ssl.create_default_context(cadata=base64.b64decode(cluster["certificate-authority-data"]).decode())
    elif cluster.get("certificate-authority"):
        verify = ssl.create_default_context(cafile=rel(cluster["certificate-authority"]))
    conn = Connection(server=server.rstrip("/"), verify=verify)
    if user.get("token"):
        conn.token = user["token"]
    elif user.get("tokenFile"):
        conn.token_file = Path(rel(user["tokenFile"]))
    if user.get("client-certificate-data") and user.get("client-key-data"):
        conn.cert = (_data_file(user["client-certificate-data"], ".crt"), _data_file(user["client-key-data"], ".key"))
    elif user.get("client-certificate") and user.get("client-key"):
        conn.cert = (rel(user["client-certificate"]), rel(user["client-key"]))
    if user.get("username") and user.get("password"):
        conn.basic = (user["username"], user["password"])
    return conn


def in_cluster(sa_dir: Path = SA_DIR, environ: dict[str, str] | None = None) -> Connection:
    env = os.environ if environ is None else environ
    host, port = env.get("KUBERNETES_SERVICE_HOST"), env.get("KUBERNETES_SERVICE_PORT", "443")
    if not host or not (sa_dir / "token").exists():
        raise ConfigError("not running in a Kubernetes pod (no KUBERNETES_SERVICE_HOST or service account "
                          "token): give --kubeconfig FILE")
    if ":" in host:
        host = f"[{host}]"
    ca = sa_dir / "ca.crt"
    verify: ssl.SSLContext | bool = ssl.create_default_context(cafile=str(ca)) if ca.exists() else True
    return Connection(server=f"https://{host}:{port}", verify=verify, token_file=sa_dir / "token")


class KubeClient:
    """The review calls margay makes (TokenReview, SubjectAccessReview and, impersonating the caller,
    SelfSubjectRulesReview), each answer cached briefly in a bounded cache. Rules are cached per (caller,
    namespace), at most maxsize // 4 of them; "" is the cluster-wide scope."""

    def __init__(self, conn: Connection, *, timeout: float = 5.0, ttl: float = 10.0, maxsize: int = 10_000,
                 audiences: list[str] | None = None, clock: Callable[[], float] | None = None,
                 transport: httpx.BaseTransport | None = None) -> None:
        self.conn = conn
        self.audiences = audiences
        kw: dict[str, Any] = {"clock": clock} if clock else {}
        self.tokens: TTLCache[Identity | bool] = TTLCache(maxsize, ttl, **kw)
        self.decisions: TTLCache[bool] = TTLCache(maxsize, ttl, **kw)
        self.rules: TTLCache[Rules] = TTLCache(max(maxsize // 4, 16), ttl, **kw)
        self.clock = clock or self.rules.clock
        self.http = httpx.Client(base_url=conn.server, verify=conn.verify, cert=conn.cert, timeout=timeout,
                                 auth=conn.basic, transport=transport,
                                 limits=httpx.Limits(max_connections=REVIEWERS, max_keepalive_connections=REVIEWERS))
        self.reviews = 0  # SubjectAccessReviews sent (for metrics and tests)
        self.rules_reviews = 0  # SelfSubjectRulesReviews sent
        self._rules_paused_until = 0.0
        self._count = threading.Lock()
        self._pool = ThreadPoolExecutor(REVIEWERS, thread_name_prefix="margay-sar")

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        self.http.close()

    def _send(self, method: str, path: str, body: dict[str, Any] | None = None,
              extra: list[tuple[str, str]] | None = None) -> httpx.Response:
        headers = [("accept", "application/json")]
        bearer = self.conn.bearer()
        if bearer:
            headers.append(("authorization", f"Bearer {bearer}"))
        for attempt in (1, 2):
            try:
                return self.http.request(method, path, json=body, headers=headers + (extra or []))
            except httpx.TimeoutException as exc:  # once: a second try would double the wait
                raise BackendError(f"Kubernetes API server {self.conn.server} unreachable: {exc}") from None
            except httpx.TransportError as exc:
                # A pooled keep-alive connection the server closed as the request went out (or one that broke
                # under it) fails before any answer: every call here is a review or a read that changes nothing,
                # so it is sent once more, on a new connection, before the caller is told the server is gone.
                if attempt == 2:
                    raise BackendError(f"Kubernetes API server {self.conn.server} unreachable: {exc}") from None
            except httpx.HTTPError as exc:
                raise BackendError(f"Kubernetes API server {self.conn.server} unreachable: {exc}") from None
        raise AssertionError("unreachable")

    def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        r = self._send("POST", path, body)
        if r.status_code != 201 and r.status_code != 200:
            raise BackendError(f"Kubernetes API server answered {r.status_code} to {path}: {r.text[:300]}")
        try:
            doc = r.json()
        except ValueError:
            raise BackendError(f"Kubernetes API server sent a non-JSON answer to {path}") from None
        return doc if isinstance(doc, dict) else {}

    def review_token(self, token: str) -> Identity | None:
        """TokenReview (authentication.k8s.io/v1): who the token belongs to, or None."""
        key = digest(token)
        hit = self.tokens.get(key)
        if hit is not None:
            return hit if isinstance(hit, Identity) else None
        spec: dict[str, Any] = {"token": token}
        if self.audiences:
            spec["audiences"] = self.audiences
        doc = self._post("/apis/authentication.k8s.io/v1/tokenreviews",
                         {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": spec})
        status = doc.get("status") or {}
        user = status.get("user") or {}
        who: Identity | None = None
        if status.get("authenticated") is True and isinstance(user.get("username"), str):
            # The API server already added the system groups; keep its answer as it is.
            who = person(user["username"], [str(g) for g in user.get("groups") or []], uid=str(user.get("uid") or ""),
                         extra={str(k): [str(x) for x in v] for k, v in (user.get("extra") or {}).items()},
                         add_system_groups=False)
        self.tokens.put(key, who if who is not None else False)
        return who

    def cached(self, who: Identity, verb: str, group: str, resource: str, name: str,
               namespace: str = "") -> bool | None:
        """The cached answer for one request, or None. A cached "yes" to a wider request answers it too:
        under Kubernetes RBAC, `resource: *` (any resource) or "every name" (asked as a fresh random name, see
        `access`) is only allowed by a rule that covers every narrower request. Cached rules of the caller
        answer it where they are exact."""
        rules = self.rules.get((who, namespace))
        if rules is not None and (decided := rules.decide(verb, group, resource, name)) is not None:
            return decided
        wider = [(resource, name), ("*", name), (resource, ""), ("*", "")]
        for r, n in wider if resource != "*" or name else wider[-1:]:
            hit = self.decisions.get((who, verb, group, r, n, namespace))
            if hit is True or (hit is False and (r, n) == (resource, name)):
                return hit
        return None

    def access(self, who: Identity, verb: str, group: str, resource: str, name: str, namespace: str = "") -> bool:
        """SubjectAccessReview (authorization.k8s.io/v1) for one resource request (cached). An empty `name`
        with a verb whose requests are named (get, update, ...) asks about every name: the review names a
        fresh random resource, which only a rule without `resourceNames` allows (a review of the empty name is
        also allowed by `resourceNames: [""]`, a rule that grants no other name). For list, watch, create and
        deletecollection the empty name is the API server's own question and is asked as it is."""
        hit = self.cached(who, verb, group, resource, name, namespace)
        if hit is not None:
            return hit
        asked = name if name or verb in NAMELESS_VERBS else f"margay-any-{secrets.token_hex(8)}"
        allowed, _ = self.review_access(who, verb, group, resource, asked, namespace)
        self.decisions.put((who, verb, group, resource, name, namespace), allowed)
        return allowed

    def access_many(self, who: Identity, verb: str, group: str,
                    requests: Iterable[tuple[str, str, str]]) -> dict[tuple[str, str, str], bool]:
        """Many (resource, name, namespace) requests at once: cached answers first, the rest as concurrent
        SubjectAccessReviews (REVIEWERS at a time)."""
        out: dict[tuple[str, str, str], bool] = {}
        ask: list[tuple[str, str, str]] = []
        for req in dict.fromkeys(requests):
            hit = self.cached(who, verb, group, *req)
            if hit is None:
                ask.append(req)
            else:
                out[req] = hit
        if len(ask) == 1:
            out[ask[0]] = self.access(who, verb, group, *ask[0])
        elif ask:
            for req, allowed in zip(ask, self._pool.map(lambda r: self.access(who, verb, group, *r), ask),
                                    strict=True):
                out[req] = allowed
        return out

    def prefetch(self, who: Identity, verb: str, group: str, resources: list[str], names: list[str]) -> None:
        """Answer every (resource, name) pair with as few reviews as the caller's grants allow: a wildcard
        review first (`*` resource, any name), then each name on every resource, then each resource with every
        name, and only then the pairs still open — each stage concurrently. A caller granted everything costs
        one review whatever the number of clusters; the answers stay in the bounded decision cache. (Kubernetes
        RBAC allows `*` or an empty name only through a rule that covers every narrower request; an authorizer
        webhook with other rules would need `--auth` tokens instead.)"""
        if len(resources) * len(names) <= len(names) + 1:  # one cluster: the pairs themselves are cheapest
            self.access_many(who, verb, group, [(r, n, "") for r in resources for n in names])
            return
        if self.access(who, verb, group, "*", ""):
            return
        rules = self.rules_for(who, "")
        if rules.complete and rules.proven:
            return  # the caller's cluster-wide rules answer every pair (cached with them)
        wide = self.access_many(who, verb, group, [("*", n, "") for n in names])
        names = [n for n in names if not wide[("*", n, "")]]
        if not names:
            return
        if len(names) > 2:  # a review per resource pays off only when it can save several
            whole = self.access_many(who, verb, group, [(r, "", "") for r in resources])
            resources = [r for r in resources if not whole[(r, "", "")]]
        self.access_many(who, verb, group, [(r, n, "") for r in resources for n in names])

    def rules_for(self, who: Identity, namespace: str) -> Rules:
        """The caller's rules in `namespace` ("": cluster-wide), cached; UNKNOWN when there is no exact way to
        ask (see rules.py): then SubjectAccessReviews decide."""
        hit = self.rules.get((who, namespace))
        if hit is not None:
            return hit
        rules = self.review_rules(who, namespace)
        self.rules.put((who, namespace), rules)
        return rules

    def review_rules(self, who: Identity, namespace: str) -> Rules:
        """One uncached SelfSubjectRulesReview made as `who` (impersonated). The cluster-wide scope asks about
        a namespace of a fresh random name and counts its allows only once that namespace is known not to
        exist (so no RoleBinding can have added to them)."""
        headers = impersonation(who)
        if headers is None or self.clock() < self._rules_paused_until:
            return UNKNOWN
        probe = namespace or f"margay-rules-{secrets.token_hex(8)}"
        with self._count:
            self.rules_reviews += 1
        r = self._send("POST", "/apis/authorization.k8s.io/v1/selfsubjectrulesreviews",
                       {"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectRulesReview",
                        "spec": {"namespace": probe}}, headers)
        if r.status_code == 403:  # margay may not impersonate (deploy/server.yaml does not grant it by default)
            self._rules_paused_until = self.clock() + RULES_PAUSE
            log.warning("the API server refused margay's SelfSubjectRulesReview as %s (%s): access is decided by "
                        "SubjectAccessReviews alone for %.0f s (grant margay `impersonate` on users, groups and "
                        "serviceaccounts for one rules review per caller: docs/access.md)",
                        who.name, r.text[:200], RULES_PAUSE)
            return UNKNOWN
        if r.status_code not in (200, 201):
            raise BackendError(f"Kubernetes API server answered {r.status_code} to a rules review: {r.text[:300]}")
        try:
            doc = r.json()
        except ValueError:
            raise BackendError("Kubernetes API server sent a non-JSON answer to a rules review") from None
        proven = bool(namespace) or self._send("GET", f"/api/v1/namespaces/{probe}").status_code == 404
        return parse(doc if isinstance(doc, dict) else {}, proven=proven)

    def namespaces_allowed(self, who: Identity, verb: str, group: str, resource: str, name: str,
                           namespaces: list[str]) -> frozenset[str]:
        """The namespaces in which a namespaced SubjectAccessReview would allow the request: the caller's
        rules in each namespace (one rules review per namespace, concurrently, then cached for every
        cluster and name), and a review each where the rules are not exact. With more namespaces than a
        quarter of the rules cache holds, reviews alone (the rules would evict each other)."""
        scoped: dict[str, Rules | None] = dict.fromkeys(namespaces)
        if len(namespaces) <= self.rules.maxsize // 4:
            scoped = {ns: self.rules.get((who, ns)) for ns in namespaces}
            missing = [ns for ns, rules in scoped.items() if rules is None]
            if len(missing) == 1:
                scoped[missing[0]] = self.rules_for(who, missing[0])
            elif missing:
                scoped.update(zip(missing, self._pool.map(lambda ns: self.rules_for(who, ns), missing), strict=True))
        decided = {ns: rules.decide(verb, group, resource, name) if rules is not None else None
                   for ns, rules in scoped.items()}
        if undecided := [ns for ns, d in decided.items() if d is None]:
            for (_, _, ns), allowed in self.access_many(who, verb, group, [(resource, name, ns) for ns in undecided]
                                                        ).items():
                decided[ns] = allowed
        return frozenset(ns for ns, allowed in decided.items() if allowed)

    def review_access(self, who: Identity, verb: str, group: str, resource: str, name: str,
                      namespace: str = "") -> tuple[bool, str]:
        """One uncached SubjectAccessReview: (allowed, the API server's reason or evaluation error)."""
        attrs = {"group": group, "resource": resource, "name": name, "verb": verb}
        if namespace:
            attrs["namespace"] = namespace
        spec: dict[str, Any] = {"resourceAttributes": attrs, "user": who.name, "groups": list(who.groups)}
        if who.uid:
            spec["uid"] = who.uid
        if who.extra:
            spec["extra"] = {k: list(v) for k, v in who.extra}
        with self._count:
            self.reviews += 1
        doc = self._post("/apis/authorization.k8s.io/v1/subjectaccessreviews",
                         {"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview", "spec": spec})
        status = doc.get("status") or {}
        return status.get("allowed") is True, str(status.get("reason") or status.get("evaluationError") or "")
