"""An IP set as the engines match it (Backend.records_with_ips): exact addresses, IPv4 CIDRs by prefix length,
IPv6 CIDRs; and the IP keys a log type may be matched on."""

from __future__ import annotations

import functools
import ipaddress
import socket
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..errors import QueryError
from ..logtypes import Kind, LogType
from ..logtypes.base import QueryKey


@dataclass
class IPSet:
    exact: list[str] = field(default_factory=list)  # canonical text, IPv4 and IPv6
    net4: dict[int, list[int]] = field(default_factory=dict)  # prefix length -> network numbers >> (32 - length)
    net6: list[ipaddress.IPv6Network] = field(default_factory=list)
    entries: list[str] = field(default_factory=list)  # every member, canonical (addresses and CIDRs)
    cache: dict[str, Any] = field(default_factory=dict, compare=False)  # an engine's own form of the set

    def __len__(self) -> int:
        return len(self.entries)


def parse_ipset(ips: Sequence[str]) -> IPSet:
    """Members as canonical text; a member that is neither an address nor a CIDR is refused, named. Parsed
    once per set: a threat feed's set is matched again on every run, and parsing 100,000 members costs more
    than matching them in the engine."""
    if isinstance(ips, tuple):  # the same set object again (a feed's, run after run): no re-hash of its members
        hit = _PARSED.get(id(ips))
        if hit is not None and hit[0] is ips:
            return hit[1]
    key = ips if isinstance(ips, tuple) else tuple(ips)
    parsed = _parse(key)
    if isinstance(ips, tuple):
        if len(_PARSED) >= 16:
            _PARSED.clear()
        _PARSED[id(ips)] = (ips, parsed)
    return parsed


_PARSED: dict[int, tuple[tuple[str, ...], IPSet]] = {}


@functools.lru_cache(maxsize=16)
def _parse(ips: tuple[str, ...]) -> IPSet:
    out = IPSet()
    seen: set[str] = set()
    for raw in ips:
        text = str(raw).strip()
        addr, _, plen_text = text.partition("/")
        try:  # inet_pton/ntop: the C parser, a tenth of ipaddress's cost per member
            family = socket.AF_INET6 if ":" in addr else socket.AF_INET
            packed = socket.inet_pton(family, addr)
            bits = len(packed) * 8
            plen = int(plen_text) if plen_text else bits
            if not 0 <= plen <= bits or (plen_text and not plen_text.isdigit()):
                raise ValueError(text)
        except (OSError, ValueError):
            raise QueryError(f"IP set member {text!r} is not an IP address or CIDR") from None
        number = int.from_bytes(packed, "big") >> (bits - plen) << (bits - plen)
        canon = socket.inet_ntop(family, number.to_bytes(len(packed), "big"))
        if plen < bits:
            canon = f"{canon}/{plen}"
        if canon in seen:
            continue
        seen.add(canon)
        out.entries.append(canon)
        if plen == bits:
            out.exact.append(canon)
        elif family == socket.AF_INET:
            out.net4.setdefault(plen, []).append(number >> (32 - plen))
        else:
            out.net6.append(ipaddress.IPv6Network(canon))
    return out


def ip_keys(lt: LogType, fields: Iterable[str]) -> list[QueryKey]:
    """Each named key; each must be a single-valued IP key of the log type."""
    keys = lt.query_keys()
    out = []
    for name in fields:
        qk = keys.get(name)
        if qk is None or qk.kind is not Kind.IP:
            ips = sorted(k for k, v in keys.items() if v.kind is Kind.IP)
            raise QueryError(f"{name!r} is not an IP key of {lt.name} logs (IP keys: {', '.join(ips) or 'none'})")
        out.append(qk)
    if not out:
        raise QueryError("name at least one IP key to match")
    return out
