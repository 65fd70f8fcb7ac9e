"""An IP set as the engines match it (Backend.records_with_ips): exact addresses, IPv4 CIDRs by prefix length,
IPv6 CIDRs; and the IP keys a log type may be matched on."""

from __future__ import annotations

import functools
import ipaddress
import socket
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from ..errors import QueryError
from ..logtypes import Kind, LogType
from ..logtypes.base import QueryKey


@dataclass
class IPSet:
    exact: list[str] = field(default_factory=list)  # canonical text, IPv4 and IPv6
    exact4: list[int] = field(default_factory=list)  # the IPv4 ones as numbers
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
            if family == socket.AF_INET:
                out.exact4.append(number)
        elif family == socket.AF_INET:
            out.net4.setdefault(plen, []).append(number >> (32 - plen))
        else:
            out.net6.append(ipaddress.IPv6Network(canon))
    _sorted(out)  # the lookup form too, once per set (a feed's set is synced, then matched run after run)
    return out


Numbers = npt.NDArray[np.int64]


@dataclass(frozen=True)
class _Sorted:
    """The set as sorted number arrays (binary search, nothing hashed per lookup) and its members' text."""

    exact4: Numbers
    net4: dict[int, Numbers]  # prefix length -> network numbers >> (32 - length)
    text: frozenset[str]


def _sorted(ipset: IPSet) -> _Sorted:
    got = ipset.cache.get("sorted")
    if not isinstance(got, _Sorted):
        got = ipset.cache["sorted"] = _Sorted(
            np.unique(np.array(ipset.exact4, dtype=np.int64)),
            {p: np.unique(np.array(nets, dtype=np.int64)) for p, nets in ipset.net4.items()},
            frozenset(ipset.exact))
    return got


def _member(values: Numbers, members: Numbers) -> npt.NDArray[np.bool_]:
    if not len(members):
        return np.zeros(len(values), dtype=bool)
    at = np.minimum(np.searchsorted(members, values), len(members) - 1)
    return np.asarray(members[at] == values, dtype=bool)


# A dotted-quad IPv4 address as Felix writes it (no leading zeros, each octet <= 255).
_V4 = r"^(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])(\.(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])){3}$"
_OCTETS = np.array([1 << 24, 1 << 16, 1 << 8, 1], dtype=np.int64)


def lookup(ipset: IPSet, values: pa.Array) -> list[str]:
    """Which of the distinct IP texts `values` are members of the set. Vectorised (Arrow kernels, then binary
    searches in the set's sorted numbers): dotted IPv4 values by number, against exact members and each
    CIDR prefix length present; only the values that are not IPv4 (usually few) meet Python, against the
    members' text and the IPv6 CIDRs."""
    import pyarrow.compute as pc  # here: ~9 MiB of RSS that a server without threat feeds never needs

    s = _sorted(ipset)
    values = pc.drop_null(values)
    is4 = pc.fill_null(pc.match_substring_regex(values, _V4), False)
    v4 = values.filter(is4)
    octets = pc.cast(pc.list_flatten(pc.split_pattern(v4, ".")), pa.int64()).to_numpy()
    nums = octets.reshape(-1, 4) @ _OCTETS
    in_net = np.zeros(len(nums), dtype=bool)
    for plen, nets in s.net4.items():
        in_net |= _member(nums >> (32 - plen), nets)
    texts = v4.to_numpy(zero_copy_only=False)
    # an exact member by its number, confirmed by its canonical text (exact members match by text)
    out = [str(v) for v in texts[in_net]] + [str(v) for v in texts[_member(nums, s.exact4) & ~in_net] if v in s.text]
    for v in values.filter(pc.invert(is4)).to_pylist():
        if v in s.text or (ipset.net6 and _in_v6(v, ipset.net6)):
            out.append(str(v))
    return out


def _in_v6(ip: Any, nets: list[ipaddress.IPv6Network]) -> bool:
    try:
        addr = ipaddress.ip_address(str(ip))
    except ValueError:
        return False
    return isinstance(addr, ipaddress.IPv6Address) and any(addr in n for n in nets)


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


def doc_fields(lt: LogType, names: Iterable[str] | None) -> tuple[str, ...] | None:
    """The document fields a matcher asked for (records_with_ips' `returning`), each a declared field of the
    log type or one of the document's own (id, cluster, generated_time, @timestamp); None: the whole document."""
    if names is None:
        return None
    own = {"id", "cluster", "generated_time"} | ({"@timestamp"} if lt.epoch_timestamp else set())
    out = tuple(dict.fromkeys(names))
    declared = lt.field_map  # built per access
    unknown = [n for n in out if n not in declared and n not in own]
    if unknown:
        raise QueryError(f"returning: {', '.join(map(repr, unknown))} {'is' if len(unknown) == 1 else 'are'} not "
                         f"a field of {lt.name} documents")
    if not out:
        raise QueryError("returning: name at least one field, or leave it out for whole documents")
    return out
