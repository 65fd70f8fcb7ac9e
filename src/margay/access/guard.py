"""The access guard: authenticates requests and decides, per (log type, cluster), what a caller may read."""

from __future__ import annotations

import base64
import binascii
import ipaddress
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ConfigError, Forbidden, Unauthorized
from ..logtypes import REGISTRY, LogType
from .authorizer import AllowAll, Authorizer, KubeAuthorizer, LocalAuthorizer
from .identity import NO_AUTH, Identity
from .indices import Pair, expand_pattern
from .kube import KubeClient, from_kubeconfig, in_cluster
from .rbac import PolicySource
from .tokens import TokenFile, admin_entry, admin_token

log = logging.getLogger("margay.access")

MODES = ("auto", "none", "tokens", "kube")
OPERATOR = "operator"  # the lma.tigera.io resource that guards operator endpoints


@dataclass(frozen=True)
class Grant:
    """What a caller may read of one log type of one cluster: all of it, some namespaces, or nothing."""

    full: bool = False
    namespaces: frozenset[str] = frozenset()

    def __bool__(self) -> bool:
        return self.full or bool(self.namespaces)

    def meet(self, other: Grant) -> Grant:
        """What both grants allow (for reads of two log types at once)."""
        if self.full:
            return other
        if other.full:
            return self
        return Grant(False, self.namespaces & other.namespaces)


FULL = Grant(True)
NONE = Grant()


@dataclass
class ReadPlan:
    """The outcome of a read check: the log types and clusters read, and clusters read only in part."""

    types: list[LogType]
    clusters: list[str]
    scoped: dict[str, frozenset[str]] = field(default_factory=dict)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class Access:
    """Authentication (tokens file and/or TokenReview) plus authorization (local RBAC or SubjectAccessReview)."""

    def __init__(self, mode: str, *, tokens: TokenFile | None = None, kube: KubeClient | None = None,
                 authorizer: Authorizer | None = None) -> None:
        self.mode = mode
        self.tokens = tokens
        self.kube = kube
        self.authorizer: Authorizer = authorizer or AllowAll()
        self.admin_token: str | None = None
        self.admin_token_new = False
        self.watcher: Any = None  # kube mode: the Namespace watcher behind namespace-scoped grants

    @property
    def enabled(self) -> bool:
        return self.mode != "none"

    @classmethod
    def from_settings(cls, settings: Any) -> Access:
        mode = resolve_mode(settings)
        if mode == "none":
            if not is_loopback(settings.host):
                raise ConfigError(f"authentication is off (--no-auth) but the server binds {settings.host}; "
                                  "--no-auth is only allowed on a loopback address (127.0.0.1, ::1)")
            return cls("none")
        extra = []
        admin: tuple[str, bool] | None = None
        if settings.admin_token:
            admin = admin_token(Path(settings.data_dir))
            extra.append(admin_entry(admin[0]))
        tokens = TokenFile(settings.tokens, extra) if (settings.tokens or extra) else None
        if mode == "tokens" and tokens is None:
            raise ConfigError("authentication by tokens needs --tokens FILE (or an admin token)")
        source = PolicySource(settings.rbac) if settings.rbac else None
        kube = None
        watcher = None
        authorizer: Authorizer
        if mode == "kube":
            from ..kube.watch import ResourceWatcher

            conn = from_kubeconfig(settings.kubeconfig) if settings.kubeconfig else in_cluster()
            kube = KubeClient(conn)
            # Namespace-scoped grants: the namespaces of margay's own cluster (where RoleBindings live), each
            # asked with a namespaced SubjectAccessReview. Needs list/watch on namespaces; without, none.
            watcher = ResourceWatcher(conn, ("Namespace",), retry_interval=30.0).start()
            watcher.wait_synced(5.0)
            authorizer = KubeAuthorizer(kube, namespaces=lambda: [
                str(o["metadata"]["name"]) for o in watcher.objects("Namespace")])
        else:
            authorizer = LocalAuthorizer(source)
        access = cls(mode, tokens=tokens, kube=kube, authorizer=authorizer)
        access.watcher = watcher
        if admin:
            access.admin_token, access.admin_token_new = admin
        return access

    def close(self) -> None:
        if self.watcher is not None:
            self.watcher.stop()
        if self.kube is not None:
            self.kube.close()

    # -- who -------------------------------------------------------------------------------------
    def authenticate(self, authorization: str | None) -> Identity:
        """The caller behind an Authorization header; Unauthorized (401) when there is none or it is unknown."""
        if not self.enabled:
            return NO_AUTH
        if not authorization:
            raise Unauthorized("this endpoint needs a bearer token: send `Authorization: Bearer <token>`")
        scheme, _, token = authorization.strip().partition(" ")
        token = token.strip()
        if scheme.lower() == "basic" and token:
            token = basic_password(token)
        elif scheme.lower() != "bearer" or not token:
            raise Unauthorized("expected `Authorization: Bearer <token>` (or Basic auth with the token as password)")
        who = self.tokens.lookup(token) if self.tokens is not None else None
        if who is None and self.kube is not None:
            who = self.kube.review_token(token)
        if who is None:
            raise Unauthorized("the bearer token is not valid (unknown, revoked or expired)")
        return who

    # -- what ------------------------------------------------------------------------------------
    def reads_everything(self, who: Identity) -> bool:
        """Whether `grant` is FULL for every log type of every cluster, whatever its name (authentication off,
        or the administrator outside Kubernetes mode): a read of such a caller is planned without asking per
        cluster."""
        return not who.is_writer and (not self.enabled or (who.is_admin and self.mode != "kube"))

    def grant(self, who: Identity, lt: LogType, cluster: str) -> Grant:
        if who.is_writer:
            return NONE
        if self.reads_everything(who):
            return FULL
        if any(self.authorizer.allowed(who, cluster, name) for name in lt.rbac):
            return FULL
        if lt.scopable:
            ns: frozenset[str] = frozenset()
            for name in lt.rbac:
                ns |= self.authorizer.namespaces(who, cluster, name)
            if ns:
                return Grant(False, ns)
        return NONE

    def grants(self, who: Identity, pairs: Iterable[tuple[LogType, str]]) -> dict[tuple[str, str], Grant]:
        """`grant` for many (type, cluster) pairs at once, keyed by (type name, cluster): the authorizer
        answers the whole set first (with Kubernetes: wildcard reviews, then concurrent ones)."""
        unique = {(lt.name, c): (lt, c) for lt, c in pairs}  # log types are not hashable
        if self.enabled and not who.is_writer and len(unique) > 1:
            clusters = list(dict.fromkeys(c for _, c in unique))
            names = list(dict.fromkeys(n for lt, _ in unique.values() for n in lt.rbac))
            self.authorizer.prefetch(who, clusters, names)
        return {key: self.grant(who, lt, c) for key, (lt, c) in unique.items()}

    def unreadable_everywhere(self, who: Identity, types: Iterable[LogType]) -> list[LogType]:
        """The types `who` may not read in full in every cluster, present and future: a GlobalAlert reads its
        data set in all of them. Only a grant without a cluster name gives that (lma.tigera.io, resource `*`,
        cluster-wide: a ClusterRoleBinding); grants of named clusters or of namespaces do not."""
        if who.is_writer:
            return list(types)
        if self.reads_everything(who):
            return []
        return [lt for lt in types if not any(self.authorizer.allowed(who, "*", name) for name in lt.rbac)]

    def may_operate(self, who: Identity) -> bool:
        """Operator endpoints (/-/metrics: every cluster's names and counts): the administrator, or `get` on
        lma.tigera.io resource `operator`, resourceName `metrics` (a ClusterRole rule like any other)."""
        if who.is_writer:
            return False
        if not self.enabled or (who.is_admin and self.mode != "kube"):
            return True
        return self.authorizer.allowed(who, OPERATOR, "metrics")

    def plan_read(self, who: Identity, types: list[LogType], clusters: list[str], *, named: bool = True) -> ReadPlan:
        """Narrow a read to what `who` may see; Forbidden (403) when that is nothing.

        `named`: the caller named the clusters (x-cluster-id, `clusters`); when not (`all_clusters`), the 403
        names none of them: a caller who may read nothing would learn the name of a one-cluster fleet.

        Types readable on none of the asked clusters are dropped (audit `any` with only one audit type);
        a cluster is kept when every remaining type is readable there.
        """
        if who.is_writer:
            raise Forbidden("cluster (writer) tokens may write logs but not read them")
        if not clusters or self.reads_everything(who):
            return ReadPlan(list(types), list(clusters))  # every pair FULL: what the loop below would find
        grants = self.grants(who, [(lt, c) for lt in types for c in clusters])
        kept = [lt for lt in types if any(grants[(lt.name, c)] for c in clusters)]
        plan = ReadPlan(kept, [])
        for c in clusters if kept else []:
            g = FULL
            for lt in kept:
                g = g.meet(grants[(lt.name, c)])
            if not g:
                continue
            plan.clusters.append(c)
            if not g.full:
                plan.scoped[c] = g.namespaces
        if not plan.clusters:
            names = "/".join(dict.fromkeys(n for lt in types for n in lt.rbac[:1]))
            where = clusters[0] if len(clusters) == 1 and named else \
                "any of the requested clusters" if named else "any cluster"
            raise Forbidden(f"{who.describe()} may not read {names} logs of {where}",
                            details={"apiGroup": "lma.tigera.io", "verb": "get"})
        return plan

    def may_act(self, who: Identity, lt: LogType, cluster: str, verb: str) -> None:
        """Forbidden (403) unless `who` holds `verb` (e.g. Linseed's `delete` of events) on lma.tigera.io
        for the log type in `cluster`, cluster-wide or in some namespace (a read's restriction then limits
        the records it touches to the namespaces it may read)."""
        if who.is_writer:
            raise Forbidden(f"cluster (writer) tokens may write logs but not {verb} them")
        if not self.enabled or (who.is_admin and self.mode != "kube"):
            return
        if any(self.authorizer.allowed(who, cluster, n, verb=verb) for n in lt.rbac):
            return
        if lt.scopable and any(self.authorizer.namespaces(who, cluster, n, verb=verb) for n in lt.rbac):
            return
        raise Forbidden(f"{who.describe()} may not {verb} {lt.rbac[0]} of {cluster}",
                        details={"apiGroup": "lma.tigera.io", "verb": verb})

    def may_write(self, who: Identity, lt: LogType | None, header: str | None, default: str) -> str:
        """The cluster a write lands in: a writer token's own cluster (another x-cluster-id is refused);
        people write the cluster they name when admin or granted `create` on lma.tigera.io."""
        named = (header or "").strip()
        if who.is_writer:
            assert who.cluster is not None
            if named and named != who.cluster:
                raise Forbidden(f"this token writes for cluster {who.cluster!r} only; "
                                f"x-cluster-id {named!r} names another cluster")
            return who.cluster
        cluster = named or default
        if not self.enabled or (who.is_admin and self.mode != "kube"):
            return cluster
        names = lt.rbac if lt is not None else ("*",)
        if any(self.authorizer.allowed(who, cluster, n, verb="create") for n in names):
            return cluster
        raise Forbidden(f"{who.describe()} may not write logs of cluster {cluster!r} "
                        "(needs verb create on lma.tigera.io, or a cluster token)")

    def may_manage(self, who: Identity, verb: str, resource: str, name: str = "") -> None:
        """Forbidden (403) unless `who` may `verb` the projectcalico.org `resource` (e.g. globalalerts)."""
        if not self.enabled or (who.is_admin and self.mode != "kube"):
            return
        if not who.is_writer and self.authorizer.allowed(who, resource, name, verb=verb, group="projectcalico.org"):
            return
        raise Forbidden(f"{who.describe()} may not {verb} {resource}{'/' + name if name else ''}",
                        details={"apiGroup": "projectcalico.org", "resource": resource, "verb": verb})

    def expand(self, who: Identity, pattern: str, existing: Iterable[tuple[str, str, str | None]]
               ) -> list[tuple[LogType, str, Grant]]:
        """For the ES-compatible API: the readable (type, cluster) pairs an index pattern names.

        Forbidden when the pattern names stored pairs but none is readable; [] when it names nothing.
        """
        pairs: list[Pair] = expand_pattern(pattern, existing)
        grants = self.grants(who, pairs)
        out = [(lt, c, g) for lt, c in pairs if (g := grants[(lt.name, c)])]
        if pairs and not out:
            raise Forbidden(f"{who.describe()} may not read any index matching {pattern!r}")
        return out


def basic_password(credentials: str) -> str:
    """Basic auth for collectors that speak nothing else (rsyslog's omelasticsearch, fluent-bit's and
    fluentd's Elasticsearch outputs): the password is a margay token, the user name is not looked at (use the
    cluster's name). The token then confines the caller exactly as a bearer token does."""
    try:
        decoded = base64.b64decode(credentials, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise Unauthorized("Basic auth: the credentials are not base64 of user:password") from None
    _, sep, password = decoded.partition(":")
    if not sep or not password:
        raise Unauthorized("Basic auth: send the margay token as the password (user:token)")
    return password


def resolve_mode(settings: Any) -> str:
    mode = getattr(settings, "auth", "auto") or "auto"
    if mode not in MODES:
        raise ConfigError(f"auth: expected one of {', '.join(MODES)}, got {mode!r}")
    if mode == "auto":
        if settings.kubeconfig:
            return "kube"
        if settings.tokens or settings.rbac or settings.admin_token:
            return "tokens"
        return "none"
    return mode


def type_of_path(path: str) -> LogType | None:
    if path.startswith("/ingestion/api/v1/"):  # Calico's fluent-bit output's prefix for the same bulk paths
        path = path.removeprefix("/ingestion")
    for lt in REGISTRY.values():
        if path == "/api/v1" + lt.bulk_path:
            return lt
    return None
