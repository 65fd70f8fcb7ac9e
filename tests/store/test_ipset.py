"""The IP set's vectorised lookup (what the embedded engine's records_with_ips matches new records' IPs with):
the same members as a plain `ipaddress` check, for addresses, CIDRs of every length, IPv6 and junk."""

from __future__ import annotations

import ipaddress

import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from margay.store.ipset import lookup, parse_ipset

SET = ("10.0.0.1", "10.0.1.0/24", "172.16.0.0/12", "0.0.0.0/32", "255.255.255.255", "203.0.113.128/25",
       "198.51.100.7/32", "2001:db8::17", "2001:db8:1::/48", "192.0.2.0/31")


def reference(members: tuple[str, ...], value: str) -> bool:
    """Member test the slow, obvious way: an exact member by its canonical text, a CIDR by the address."""
    if value in {m for m in members if "/" not in m}:
        return True
    try:
        addr = ipaddress.ip_address(value)
    except ValueError:
        return False
    if addr.version == 4 and value != str(addr):  # IPv4 on the wire is dotted-quad, no leading zeros
        return False
    return any(addr in ipaddress.ip_network(m, strict=False) for m in members if "/" in m)


def test_lookup_finds_exact_members_and_cidrs_of_both_families() -> None:
    ipset = parse_ipset(SET)
    values = ["10.0.0.1", "10.0.0.2", "10.0.1.77", "172.31.255.255", "172.32.0.0", "0.0.0.0", "255.255.255.255",
              "203.0.113.127", "203.0.113.200", "198.51.100.7", "2001:db8::17", "2001:db8:0:0:0:0:0:17",
              "2001:db8:1:ffff::1", "2001:db8:2::1", "192.0.2.1", "192.0.2.2", "010.0.0.1", "10.0.1.256",
              "not-an-ip", "", None]
    got = lookup(ipset, pa.array(values, pa.string()))
    # 2001:db8:0:0:0:0:0:17 is not the exact member's text; an IPv6 CIDR holds any spelling
    assert sorted(got) == sorted(["10.0.0.1", "10.0.1.77", "172.31.255.255", "0.0.0.0", "255.255.255.255",
                                  "203.0.113.200", "198.51.100.7", "2001:db8::17", "2001:db8:1:ffff::1",
                                  "192.0.2.1"])
    assert lookup(ipset, pa.array([], pa.string())) == []
    assert lookup(parse_ipset(()), pa.array(["10.0.0.1"], pa.string())) == []


octet = st.integers(0, 255)
v4 = st.tuples(octet, octet, octet, octet).map(lambda o: ".".join(map(str, o)))
cidr = st.tuples(v4, st.integers(0, 32)).map(lambda t: str(ipaddress.ip_network(f"{t[0]}/{t[1]}", strict=False)))


@settings(max_examples=60, deadline=None)
@given(members=st.lists(st.one_of(v4, cidr), min_size=1, max_size=40, unique=True),
       values=st.lists(st.one_of(v4, st.sampled_from(["10.0.0.1", "::1", "1.2.3", "x"])), max_size=60, unique=True))
def test_lookup_agrees_with_ipaddress(members: list[str], values: list[str]) -> None:
    # values near the members too: each member's own address and its neighbours
    near = [str(ipaddress.ip_network(m).network_address + d) for m in members for d in (0, 1)
            if int(ipaddress.ip_network(m).network_address) + d < 2**32]
    pool = sorted(set(values) | set(near))
    got = lookup(parse_ipset(tuple(members)), pa.array(pool, pa.string()))
    assert sorted(got) == [v for v in pool if reference(tuple(members), v)]
