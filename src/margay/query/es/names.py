"""The index names Calico's own components use, mapped onto margay's (log type, cluster, day) partitions.

- Multi-index (one index family per cluster): margay's daily `tigera_secure_ee_flows.<cluster>.<yyyymmdd>`, the
  write alias `tigera_secure_ee_flows.<cluster>.` (trailing dot) and the ILM backing indices behind it,
  `tigera_secure_ee_flows.<cluster>.fluentd-<yyyymmdd>-<nnnnnn>` (also `linseed-…`): the cluster is the
  part between the type prefix and the alias dot, the day the one in the backing index name.
- Single-index (Calico's `calico_*` data types, e.g. `calico_flowlogs`, `calico_flowlogs_standard`,
  `calico_flowlogs.*`): one index for every cluster, each document naming its cluster in a `cluster` field;
  a read of such a name covers every cluster the caller may read.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ...logtypes import REGISTRY

_DAY = r"(?P<day>20\d{6})"
_SUFFIX = re.compile(r"^(?P<cluster>.+?)\.(?:" + _DAY + r"|[a-z][a-z0-9_]*-" + _DAY.replace("day", "iday")
                     + r"-\d{6})$")
# Calico's single-index base names per margay log type (`calico_L7logs` is how the operator spells one).
_SINGLE = {"flowlogs": ("flows",), "dnslogs": ("dns",), "auditlogs": ("audit_ee", "audit_kube"),
           "bgplogs": ("bgp",), "l7logs": ("l7",), "alerts": ("events",),
           "waf": ("waf",), "policy": ("policy_activity",), "runtime": ("runtime",)}
_SINGLE_NAME = re.compile(r"^calico_(?P<base>[a-z0-9]+?)(?:_[a-z0-9]+)?(?:\..*)?\*?$", re.IGNORECASE)


@dataclass(frozen=True)
class CalicoName:
    """What an index name means: log types, and the one cluster and day it names (None: any)."""

    types: tuple[str, ...]
    cluster: str | None = None
    day: str | None = None

    @property
    def single_index(self) -> bool:
        return self.cluster is None


def parse(name: str) -> CalicoName | None:
    """The partitions a concrete Calico index name (or a `calico_*` single-index pattern) stands for."""
    single = _SINGLE_NAME.match(name)
    if single:
        types = _SINGLE.get(single.group("base").lower())
        return CalicoName(types) if types else None
    for lt in REGISTRY.values():
        if not name.startswith(lt.index_prefix + "."):
            continue
        rest = name[len(lt.index_prefix) + 1:]
        if not rest or "*" in rest or "?" in rest or "," in rest:
            return None
        if rest.endswith("."):  # the write alias
            return CalicoName((lt.name,), rest[:-1] or None) if rest[:-1] else None
        m = _SUFFIX.match(rest)
        if m:
            return CalicoName((lt.name,), m.group("cluster"), m.group("day") or m.group("iday"))
        return CalicoName((lt.name,), rest)
    return None


def patterns(expr: str) -> list[str]:
    """An index expression in margay's own names (`<prefix>.<cluster>`, `<prefix>.<cluster>.<day>`,
    `<prefix>.*`): Calico's write aliases, ILM backing indices and single-index names translated; any other
    expression as it is."""
    if not expr.lower().startswith("calico_") and (expr.endswith("*") or "?" in expr):
        return [expr]  # margay's own wildcard patterns already match its partitions
    parsed = parse(expr)
    if parsed is None:
        return [expr]
    out = []
    for t in parsed.types:
        prefix = REGISTRY[t].index_prefix
        if parsed.cluster is None:
            out.append(prefix + ".*")
        elif parsed.day is None:
            out.append(f"{prefix}.{parsed.cluster}")
        else:
            out.append(f"{prefix}.{parsed.cluster}.{parsed.day}")
    return out


def translate(pattern: str) -> str:
    """A comma-separated index expression with Calico's names turned into margay's (exclusions kept)."""
    out: list[str] = []
    for i, e in enumerate(x.strip() for x in (pattern or "").split(",")):
        if not e:
            continue
        exclude = e.startswith("-") and i > 0
        out += [("-" if exclude else "") + p for p in patterns(e[1:] if exclude else e)]
    return ",".join(out)
