"""A seeded multi-cluster workload: nodes, pods, services, peers, Calico policies and who talks to whom."""

from __future__ import annotations

import random
import zlib
from dataclasses import dataclass, field
from typing import Any

_SAFE = "bcdfghjklmnpqrstvwxz2456789"  # Kubernetes' SafeEncodeString alphabet (pod suffixes, template hashes)

EdgeKey = tuple[str, str, str, str, str]  # (src ns, src name_aggr, dst ns, dst name_aggr, action)
Trace = tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]  # (all, enforced, pending) policy traces
Step = tuple[str, str, str, int, bool]  # (tier, policy trace name, action, rule, staged)

# Per namespace: (workload, kind, container port, proto, service port name or None, service port, process).
_CATALOG: dict[str, list[tuple[str, str, int, str, str | None, int, str]]] = {
    "shop": [("web", "Deployment", 8080, "tcp", "http", 80, "/usr/local/bin/web"),
             ("cart", "Deployment", 8080, "tcp", "http", 80, "node"),
             ("catalog", "Deployment", 8080, "tcp", "http", 80, "java"),
             ("checkout", "Deployment", 8080, "tcp", "http", 80, "python3"),
             ("recommend", "Deployment", 8080, "tcp", "http", 80, "python3")],
    "payments": [("api", "Deployment", 8443, "tcp", "https", 443, "/app/payments-api"),
                 ("ledger", "Deployment", 50051, "tcp", "grpc", 50051, "/app/ledger"),
                 ("fraud", "Deployment", 8080, "tcp", "http", 80, "python3"),
                 ("notifier", "Deployment", 8080, "tcp", None, 0, "node")],
    "data": [("db", "StatefulSet", 5432, "tcp", "postgres", 5432, "postgres"),
             ("cache", "StatefulSet", 6379, "tcp", "redis", 6379, "redis-server"),
             ("kafka", "StatefulSet", 9092, "tcp", "kafka", 9092, "java"),
             ("exporter", "Deployment", 8080, "tcp", None, 0, "python3")],
    "kube-system": [("coredns", "Deployment", 53, "udp", "dns", 53, "/coredns"),
                    ("metrics-server", "Deployment", 10250, "tcp", "https", 443, "/metrics-server"),
                    ("calico-kube-controllers", "Deployment", 9094, "tcp", None, 0, "/usr/bin/kube-controllers"),
                    ("konnectivity-agent", "DaemonSet", 8093, "tcp", None, 0, "/proxy-agent")],
    "monitoring": [("prometheus", "StatefulSet", 9090, "tcp", "web", 9090, "/bin/prometheus"),
                   ("grafana", "Deployment", 3000, "tcp", "http", 80, "grafana"),
                   ("alertmanager", "StatefulSet", 9093, "tcp", "web", 9093, "/bin/alertmanager"),
                   ("fluent-bit", "DaemonSet", 2020, "tcp", None, 0, "/fluent-bit/bin/fluent-bit")],
    "ingress": [("ingress-nginx-controller", "Deployment", 443, "tcp", "https", 443, "/nginx-ingress-controller"),
                ("oauth2-proxy", "Deployment", 4180, "tcp", "http", 80, "/bin/oauth2-proxy"),
                ("external-dns", "Deployment", 7979, "tcp", None, 0, "/external-dns"),
                ("cert-manager", "Deployment", 9402, "tcp", None, 0, "/app/cmd/controller")],
}
_GENERIC = [("frontend", "Deployment", 8080, "tcp", "http", 80, "node"),
            ("backend", "Deployment", 8080, "tcp", "http", 80, "java"),
            ("worker", "Deployment", 8080, "tcp", None, 0, "python3"),
            ("cache", "StatefulSet", 6379, "tcp", "redis", 6379, "redis-server")]
_MORE_NAMESPACES = ["analytics", "auth", "search", "batch", "inventory", "reporting", "ml", "notifications"]
# How each namespace's workloads are protected; extra namespaces alternate between calico and knp.
_STYLE = {"shop": "calico", "payments": "calico", "ingress": "calico", "data": "knp", "kube-system": "profile",
          "monitoring": "profile"}
# Traffic shape per connection: (request packets, response packets, request bytes/packet, response bytes/packet).
SHAPES: dict[str, tuple[int, int, int, int]] = {
    "http": (7, 9, 180, 1100), "https": (12, 16, 260, 1300), "grpc": (10, 10, 220, 480), "postgres": (20, 24, 150, 900),
    "redis": (4, 4, 90, 400), "kafka": (40, 20, 900, 120), "dns": (1, 1, 72, 140), "metrics": (6, 12, 140, 1400),
    "ssh": (200, 180, 300, 500), "tls": (14, 18, 300, 1400), "web": (7, 9, 200, 1500), "oracle": (30, 30, 200, 800),
}
PUB_PEERS = [("api.stripe.com", "203.0.113.10"), ("hooks.slack.com", "203.0.113.20"),
             ("registry-1.docker.io", "198.51.100.7"), ("s3.us-east-1.amazonaws.com", "203.0.113.45"),
             ("c2.badactor.example", "185.220.101.4")]
PVT_PEERS = [("onprem-client", "192.168.7.20"), ("legacy-oracle", "172.16.5.10")]
THREAT_FEED = {"name": "feodo", "ips": ("185.220.101.4",), "domains": ("c2.badactor.example",)}
STAGED_POLICIES = ("payments/staged:security.restrict-egress",  # the docs' form
                   "data/security.staged:db-lockdown",  # the Dec-2025 code's form
                   "data/staged:knp.default.db-open")


@dataclass(frozen=True)
class Node:
    name: str
    ip: str
    ip6: str


@dataclass(frozen=True)
class Member:
    """One address behind an endpoint: a pod, a host, a network-set address or an outside IP."""

    name: str  # pod / host endpoint / set name; '-' for outside peers
    ip: str
    node: str  # '' when not on a cluster node


@dataclass(frozen=True)
class Endpoint:
    """What flow logs aggregate by: a workload's pods, a host endpoint, a network set or an outside peer."""

    type: str  # wep, hep, ns, net
    namespace: str  # '-' when not namespaced
    name_aggr: str  # generateName + '*', host name, set name, pvt or pub
    name: str  # workload, host, set or peer name
    kind: str  # Deployment, StatefulSet, DaemonSet, HostEndpoint, NetworkSet, GlobalNetworkSet, Peer
    members: tuple[Member, ...]
    labels: tuple[tuple[str, str], ...] = ()
    domains: tuple[str, ...] = ()
    port: int = 0
    proto: str = "tcp"
    process: str = "-"

    @property
    def nodes(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(m.node for m in self.members if m.node))

    @property
    def label_list(self) -> list[str] | None:
        return [f"{k}={v}" for k, v in self.labels] if self.labels else None

    @property
    def generate_name(self) -> str:
        return self.name_aggr[:-1] if self.name_aggr.endswith("*") else ""


@dataclass(frozen=True)
class Service:
    namespace: str
    name: str
    port_name: str
    port: int
    target_port: int
    proto: str
    cluster_ip: str
    backend: str  # name_aggr of the backing workload

    @property
    def fqdn(self) -> str:
        return f"{self.name}.{self.namespace}.svc.cluster.local"


@dataclass(frozen=True)
class Policy:
    trace_name: str  # as in policy trace strings, e.g. security.block-egress, shop/default.allow-web
    tier: str
    kind: str  # GlobalNetworkPolicy, NetworkPolicy, KubernetesNetworkPolicy, Profile, Staged*
    namespace: str  # '' when global
    name: str  # the API object's name (tier-prefixed for Calico policies)


@dataclass(frozen=True)
class Edge:
    """One line of the traffic matrix, with the policy traces each reporting side records."""

    src: Endpoint
    dst: Endpoint
    port: int
    proto: str
    service: Service | None
    denied_by: str  # '' (allowed), 'src' (egress policy) or 'dst' (ingress policy)
    src_trace: Trace | None  # None when the source is not a cluster endpoint
    dst_trace: Trace | None
    weight: float  # connections per 300 s
    shape: str

    @property
    def action(self) -> str:
        return "deny" if self.denied_by else "allow"

    @property
    def key(self) -> EdgeKey:
        return (self.src.namespace, self.src.name_aggr, self.dst.namespace, self.dst.name_aggr, self.action)


@dataclass
class ClusterTopology:
    name: str
    index: int
    nodes: list[Node] = field(default_factory=list)
    namespaces: list[str] = field(default_factory=list)
    workloads: list[Endpoint] = field(default_factory=list)
    services: list[Service] = field(default_factory=list)
    host_endpoints: list[Endpoint] = field(default_factory=list)
    network_sets: list[Endpoint] = field(default_factory=list)
    peers: list[Endpoint] = field(default_factory=list)
    policies: dict[str, Policy] = field(default_factory=dict)
    edges: list[Edge] = field(default_factory=list)

    def workload(self, namespace: str, name: str) -> Endpoint | None:
        return next((w for w in self.workloads if w.namespace == namespace and w.name == name), None)

    def service_for(self, ep: Endpoint) -> Service | None:
        return next((s for s in self.services if s.backend == ep.name_aggr and s.namespace == ep.namespace), None)


def rng_for(seed: int, *parts: object) -> random.Random:
    """An RNG that depends only on the seed and the parts (never on Python's per-process str hash)."""
    return random.Random(zlib.crc32("/".join(map(str, parts)).encode()) * 1_000_003 + seed)


@dataclass
class Topology:
    """The whole simulated estate; `edges(cluster)` is the expected service graph."""

    seed: int
    clusters: list[str]
    by_cluster: dict[str, ClusterTopology]
    cache: dict[Any, Any] = field(default_factory=dict, repr=False)  # generators' precomputed templates

    @classmethod
    def build(cls, seed: int = 0, clusters: list[str] | tuple[str, ...] = ("cluster", "app-cluster-1"),
              namespaces_per_cluster: int = 6, deployments_per_namespace: int = 4,
              nodes_per_cluster: int = 3) -> Topology:
        built = {c: _build_cluster(seed, c, i, namespaces_per_cluster, deployments_per_namespace, nodes_per_cluster)
                 for i, c in enumerate(clusters)}
        return cls(seed, list(clusters), built)

    def cluster(self, name: str) -> ClusterTopology:
        return self.by_cluster[name]

    def nodes(self, cluster: str) -> list[Node]:
        return self.by_cluster[cluster].nodes

    def flow_edges(self, cluster: str) -> list[Edge]:
        return self.by_cluster[cluster].edges

    def edges(self, cluster: str) -> list[EdgeKey]:
        """(src ns, src aggr, dst ns, dst aggr, action) of every edge, once each, in build order."""
        return list(dict.fromkeys(e.key for e in self.by_cluster[cluster].edges))

    def denied(self, cluster: str) -> list[EdgeKey]:
        return [k for k in self.edges(cluster) if k[4] == "deny"]

    def policies(self, cluster: str) -> list[Policy]:
        return list(self.by_cluster[cluster].policies.values())


def _build_cluster(seed: int, name: str, ci: int, n_ns: int, n_dep: int, n_nodes: int) -> ClusterTopology:
    rng = rng_for(seed, "topology", name)
    ct = ClusterTopology(name, ci)
    ct.nodes = [Node(f"worker-{i + 1}", f"10.0.{ci}.{11 + i}", f"fd00:{ci}::{11 + i:x}") for i in range(n_nodes)]
    names = list(_CATALOG) + _MORE_NAMESPACES + [f"team-{k}" for k in range(max(0, n_ns - 14))]
    ct.namespaces = names[:n_ns]
    next_ip, svc_ip = [2] * n_nodes + [0], 10  # each node's next host number, then the cluster's past them
    for ns in ct.namespaces:
        catalog = _CATALOG.get(ns, _GENERIC)
        extra = [(f"svc-{k}", "Deployment", 8080, "tcp", "http", 80, "java") for k in range(len(catalog), n_dep)]
        for spec in (catalog + extra)[:n_dep]:
            wl = _workload(rng, ct, ns, spec, next_ip)
            ct.workloads.append(wl)
            if spec[4] is None:
                continue
            if wl.name == "coredns":
                svc_name, ip = "kube-dns", "10.96.0.10"
            else:
                svc_name, ip, svc_ip = wl.name, f"10.96.{1 + svc_ip // 250}.{svc_ip % 250}", svc_ip + 1
            ct.services.append(Service(ns, svc_name, spec[4], spec[5], wl.port, wl.proto, ip, wl.name_aggr))
    ct.host_endpoints = [Endpoint("hep", "-", n.name, n.name, "HostEndpoint", (Member(f"{n.name}-auto-hep", n.ip, n.name),),
                                  (("kubernetes.io/hostname", n.name),), port=9100) for n in ct.nodes]
    ct.network_sets = [
        Endpoint("ns", "-", "office-vpn", "office-vpn", "GlobalNetworkSet",
                 (Member("office-vpn", "192.168.100.23", ""), Member("office-vpn", "192.168.100.57", "")),
                 (("role", "office"),)),
        Endpoint("ns", "data", "partner-sftp", "partner-sftp", "NetworkSet",
                 (Member("partner-sftp", "198.51.100.66", ""),), (("partner", "acme"),), port=22)]
    ct.peers = ([Endpoint("net", "-", "pub", d, "Peer", (Member("-", ip, ""),), domains=(d,), port=443) for d, ip in PUB_PEERS]
                + [Endpoint("net", "-", "pvt", n, "Peer", (Member("-", ip, ""),)) for n, ip in PVT_PEERS])
    _matrix(rng, ct)
    return ct


def _workload(rng: random.Random, ct: ClusterTopology, ns: str, spec: tuple[str, str, int, str, str | None, int, str],
              next_ip: list[int]) -> Endpoint:
    name, kind, port, proto, _, _, process = spec
    n_nodes = len(ct.nodes)
    labels: list[tuple[str, str]] = [("app", name)]
    if name == "coredns":
        labels = [("k8s-app", "kube-dns")]
    if kind == "DaemonSet":
        prefix, count = f"{name}-", n_nodes
        pods = [f"{prefix}{''.join(rng.choices(_SAFE, k=5))}" for _ in range(count)]
    elif kind == "StatefulSet":
        prefix, count = f"{name}-", rng.choice((1, 2, 3))
        pods = [f"{prefix}{i}" for i in range(count)]
    else:
        tmpl_hash = "".join(rng.choices(_SAFE, k=rng.choice((5, 9, 10))))
        prefix, count = f"{name}-{tmpl_hash}-", rng.choice((2, 2, 3))
        pods = [f"{prefix}{''.join(rng.choices(_SAFE, k=5))}" for _ in range(count)]
        labels.append(("pod-template-hash", tmpl_hash))
    first = rng.randrange(n_nodes)
    members = []
    for i, pod in enumerate(pods):
        node = i if kind == "DaemonSet" else (first + i) % n_nodes
        members.append(Member(pod, _pod_ip(ct.index, node, next_ip), ct.nodes[node].name))
    return Endpoint("wep", ns, prefix + "*", name, kind, tuple(members), tuple(labels), port=port, proto=proto,
                    process=process)


def _pod_ip(ci: int, node: int, next_ip: list[int]) -> str:
    """The next pod address on `node`: 10.<244 + cluster>.<node + 1>.<n> (Calico's IPAM block per node,
    simplified) while those are octets. Past them (a node's 254th pod, a cluster past the 12th) the cluster's next
    address of 100.<64 + cluster>.0.0/16, then of fd00:a:<cluster>::/64: an IP field takes only addresses
    (ingest/ips.py), and 10.244.1.300 is none."""
    n = next_ip[node]
    next_ip[node] += 1
    if ci <= 11 and node <= 254 and n <= 255:
        return f"10.{244 + ci}.{node + 1}.{n}"
    k = next_ip[-1]
    next_ip[-1] += 1
    if ci < 64 and k < 65536:
        return f"100.{64 + ci}.{k >> 8}.{k & 255}"
    return f"fd00:a:{ci:x}::{k >> 16:x}:{k & 0xFFFF:x}"


def _matrix(rng: random.Random, ct: ClusterTopology) -> None:
    """Who talks to whom: the shop/payments/data story, platform traffic, and a chain per extra namespace."""
    w, peer = ct.workload, {p.name: p for p in ct.peers + ct.network_sets}

    def add(src: Endpoint | None, dst: Endpoint | None, weight: float, *, deny: str = "", port: int | None = None,
            shape: str | None = None, service: bool = True) -> None:
        if src is None or dst is None or src is dst:
            return
        svc = ct.service_for(dst) if service and dst.type == "wep" else None
        shape = shape or (svc.port_name if svc else "http")
        ct.edges.append(Edge(src, dst, port or dst.port, "udp" if shape == "dns" else "tcp", svc, deny,
                             _trace(ct, src, dst, deny, shape, egress=True),
                             _trace(ct, src, dst, deny, shape, egress=False), weight, shape))

    add(w("ingress", "ingress-nginx-controller"), w("shop", "web"), 600)
    add(peer["onprem-client"], w("ingress", "ingress-nginx-controller"), 300)
    add(w("ingress", "ingress-nginx-controller"), w("ingress", "oauth2-proxy"), 120)
    add(w("shop", "web"), w("shop", "cart"), 250)
    add(w("shop", "web"), w("shop", "catalog"), 300)
    add(w("shop", "cart"), w("shop", "checkout"), 80)
    add(w("shop", "checkout"), w("payments", "api"), 60)
    add(w("shop", "catalog"), w("data", "cache"), 400)
    add(w("shop", "catalog"), w("data", "db"), 120)
    add(w("payments", "api"), w("payments", "ledger"), 60)
    add(w("payments", "api"), w("payments", "fraud"), 60)
    add(w("payments", "api"), w("data", "db"), 50)
    add(w("payments", "api"), peer["api.stripe.com"], 40, shape="tls")
    add(w("payments", "notifier"), peer["hooks.slack.com"], 10, shape="tls")
    add(w("payments", "fraud"), w("data", "kafka"), 100)
    add(w("data", "exporter"), w("data", "kafka"), 60)
    add(w("data", "exporter"), peer["partner-sftp"], 2, shape="ssh")
    add(w("data", "exporter"), peer["legacy-oracle"], 5, port=1521, shape="oracle")
    add(peer["office-vpn"], w("monitoring", "grafana"), 30)
    add(w("monitoring", "grafana"), w("monitoring", "prometheus"), 40)
    add(w("monitoring", "alertmanager"), peer["hooks.slack.com"], 3, shape="tls")
    add(w("kube-system", "metrics-server"), ct.host_endpoints[0], 20, port=10250, shape="https")
    # The known denied pairs.
    add(w("data", "exporter"), peer["c2.badactor.example"], 6, deny="src", shape="tls")
    add(w("shop", "web"), w("data", "db"), 12, deny="dst")
    add(w("shop", "cart"), w("payments", "ledger"), 6, deny="src")
    add(peer["onprem-client"], w("data", "db"), 4, deny="dst")
    # Extra namespaces: a small chain each, one allowed cross-namespace call and one denied one.
    for ns in ct.namespaces[len(_CATALOG):]:
        add(w(ns, "frontend"), w(ns, "backend"), 150)
        add(w(ns, "backend"), w(ns, "cache"), 200)
        add(w(ns, "worker"), w(ns, "backend"), 40)
        add(w(ns, "backend"), w("shop", "catalog"), 30)
        add(w(ns, "worker"), w("data", "db"), 5, deny="dst")
    # Platform traffic: every pod resolves names, Prometheus scrapes every workload and every node.
    coredns, prom = w("kube-system", "coredns"), w("monitoring", "prometheus")
    for wl in ct.workloads:
        if wl is not coredns:
            add(wl, coredns, 40 + rng.randrange(80), shape="dns")
        if wl is not prom and wl.kind != "DaemonSet":
            add(prom, wl, 20.0 * len(wl.members), port=9102 if wl.port != 9102 else 9103, shape="metrics",
                service=False)
    for hep in ct.host_endpoints:
        add(prom, hep, 20, port=9100, shape="metrics")
        add(hep, coredns, 30, shape="dns")
        add(hep, peer["registry-1.docker.io"], 2, shape="tls")


def _trace(ct: ClusterTopology, src: Endpoint, dst: Endpoint, deny: str, shape: str, *, egress: bool) -> Trace | None:
    """The policy traces the source (egress) or destination (ingress) side records for this edge."""
    ep = src if egress else dst
    if ep.type not in ("wep", "hep") or (not egress and deny == "src"):
        return None
    denies = deny == ("src" if egress else "dst")
    steps: list[Step] = []
    if ep.type == "hep":
        steps += [("security", "security.host-protection", "pass", 0, False),
                  ("default", "default.allow-cluster-hosts", "allow", 0, False)]
        return _compose(ct, steps)
    ns, style = ep.namespace, _STYLE.get(ep.namespace, "calico" if ct.namespaces.index(ep.namespace) % 2 == 0 else "knp")
    external = (dst.type == "net" and dst.name_aggr == "pub") or dst.kind == "NetworkSet"
    if egress:
        if ns == "payments" and dst.name_aggr == "pub":
            ok = dst.name == "api.stripe.com"
            steps.append(("security", STAGED_POLICIES[0], "allow" if ok else "deny", 0 if ok else -1, True))
        threat = dst.type == "net" and dst.name in THREAT_FEED["domains"]
        steps.append(("security", "security.block-egress", "deny" if threat else "pass", 2 if threat else int(external), False))
        if shape == "dns":
            steps.append(("platform", "platform.allow-dns", "allow", 0, False))
        elif style == "calico":
            steps.append(("default", f"{ns}/default.{ns}-egress", "deny" if denies else "allow",
                          -1 if denies else int(external), False))
        elif denies:
            steps.append(("default", f"{ns}/default.default-deny", "deny", -1, False))
        steps.append(("__PROFILE__", f"__PROFILE__.kns.{ns}", "allow", 0, False))
        return _compose(ct, steps)
    if ns == "data" and ep.name == "db":  # staged lock-down: would deny the pods that are denied today
        act, rule = ("pass", 0) if src.name_aggr == "pvt" else ("deny", -1) if denies else ("allow", 0)
        steps.append(("security", STAGED_POLICIES[1], act, rule, True))
    steps.append(("security", "security.quarantine", "pass", 0, False))
    if shape == "metrics":
        steps.append(("platform", "platform.allow-monitoring", "allow", 0, False))
    elif style == "knp":
        if ns == "data" and ep.name == "db" and src.name_aggr == "pvt":
            steps.append(("default", STAGED_POLICIES[2], "allow", 0, True))
        steps.append(("default", f"{ns}/knp.default.{ep.name}-ingress", "deny" if denies else "allow",
                      -1 if denies else 0, False))
    elif style == "calico":
        steps.append(("default", f"{ns}/default.allow-{ep.name}", "deny" if denies else "allow", -1 if denies else 0, False))
    elif denies:
        steps.append(("default", f"{ns}/default.default-deny", "deny", -1, False))
    steps.append(("__PROFILE__", f"__PROFILE__.kns.{ns}", "allow", 0, False))
    return _compose(ct, steps)


def _compose(ct: ClusterTopology, steps: list[Step]) -> Trace:
    """Number the steps into the three traces: all (staged too), enforced, and pending (staged enforced)."""
    all_: list[str] = []
    enforced: list[str] = []
    pending: list[str] = []
    pending_done = False
    for tier, policy, action, rule, staged in steps:
        _register(ct, tier, policy, staged)
        if not pending_done:
            pending.append(f"{len(pending)}|{tier}|{policy}|{action}|{rule}")
            pending_done = action != "pass"
        all_.append(f"{len(all_)}|{tier}|{policy}|{action}|{rule}")
        if not staged:
            enforced.append(f"{len(enforced)}|{tier}|{policy}|{action}|{rule}")
            if action != "pass":
                break
    return tuple(all_), tuple(enforced), tuple(pending)


def _register(ct: ClusterTopology, tier: str, trace_name: str, staged: bool) -> None:
    if trace_name in ct.policies:
        return
    ns, _, rest = trace_name.rpartition("/")
    bare = rest.replace("staged:", "")
    if tier == "__PROFILE__":
        kind = "Profile"
    elif bare.startswith("knp.default."):
        kind, bare = "KubernetesNetworkPolicy", bare.removeprefix("knp.default.")
    else:
        kind = "NetworkPolicy" if ns else "GlobalNetworkPolicy"
    ct.policies[trace_name] = Policy(trace_name, tier, ("Staged" + kind) if staged else kind, ns, bare)
