"""Felix policy trace strings `<order>|<tier>|<policy>|<action>|<rule>` (spec §1.3), both staged forms."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class PolicyHit:
    order: int
    tier: str
    namespace: str
    name: str
    action: str
    rule_id: int
    is_staged: bool
    is_kubernetes: bool
    is_profile: bool
    raw: str

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("raw")
        return d


def parse_policy(raw: str) -> PolicyHit | None:
    """One trace string, or None when it is not of the five-part form."""
    parts = raw.split("|")
    if len(parts) != 5:
        return None
    order_s, tier, policy, action, rule_s = parts
    try:
        order = int(order_s)
    except ValueError:
        order = -1
    try:
        rule = int(rule_s)
    except ValueError:
        rule = -2
    namespace = ""
    name = policy
    if "/" in policy:
        namespace, name = policy.split("/", 1)
    staged = False
    # Docs put `staged:` before the tier (ns/staged:tier.name); the 2025 code before the name
    # (ns/tier.staged:name, ns/staged:knp.default.x): accept both.
    if name.startswith("staged:"):
        staged, name = True, name[len("staged:"):]
    elif ".staged:" in name:
        staged = True
        name = name.replace(".staged:", ".", 1)
    is_profile = tier == "__PROFILE__" or name.startswith("__PROFILE__")
    is_k8s = name.startswith("knp.default.")
    if is_k8s:
        name = name[len("knp.default."):]
    elif not is_profile and name.startswith(tier + "."):
        name = name[len(tier) + 1:]
    elif is_profile and name.startswith("__PROFILE__."):
        name = name[len("__PROFILE__."):]
    return PolicyHit(order, tier, namespace, name, action, rule, staged, is_k8s, is_profile, raw)


def readable(raw: str) -> str:
    """`tier › policy › action › rule N` for people (the UI's detail drawer). A Kubernetes NetworkPolicy
    reads `k8s › ns/name` and a profile `profile › name`: neither is a Calico policy of its tier."""
    hit = parse_policy(raw)
    if hit is None:
        return raw
    where = f"{hit.namespace}/" if hit.namespace else ""
    staged = " (staged)" if hit.is_staged else ""
    rule = {-1: "no rule matched (tier default)", -2: "unknown rule"}.get(hit.rule_id, f"rule {hit.rule_id}")
    kind = "k8s" if hit.is_kubernetes else "profile" if hit.is_profile else hit.tier
    return f"{kind} › {where}{hit.name}{staged} › {hit.action} › {rule}"


def verdict(enforced: list[str]) -> str:
    """The enforced policy that decided a flow, in one cell: `deny k8s shop/db-ingress`, `allow
    shop/default.web-egress rule 0`, `deny security.block-egress (end of tier)`, `allow profile kns.shop`;
    '' when no enforced policy allowed or denied."""
    hits = sorted((h for h in map(parse_policy, enforced) if h is not None), key=lambda h: h.order)
    final = [h for h in hits if h.action in ("allow", "deny")]
    if not final:
        return ""
    hit = final[-1]
    where = f"{hit.namespace}/" if hit.namespace else ""
    if hit.is_profile:
        what = f"profile {hit.name}"
    elif hit.is_kubernetes:
        what = f"k8s {where}{hit.name}"
    else:
        what = f"{where}{hit.tier}.{hit.name}"
    staged = " (staged)" if hit.is_staged else ""
    rule = (" (end of tier)" if hit.rule_id == -1 else f" rule {hit.rule_id}" if hit.rule_id >= 0 and
            not hit.is_profile else "")
    return f"{hit.action} {what}{staged}{rule}"
