"""IPv4 addresses and networks as the kernel sees them: plain integers, and nothing a
parser can hand over (``/33``, a host name, ``None``) raises.

>>> address_int("10.0.0.7")
167772167
>>> network_ints("10.0.0.0/24")
(167772160, 4294967040, 24)
>>> network_ints("10.0.0.1/33") is None
True
>>> covers("10.0.0.0/24", "10.0.0.7"), covers("10.0.0.0/24", "not an address")
(True, False)
>>> is_private("10.20.4.5"), is_private("100.64.1.1"), is_private("198.51.100.7")
(True, True, False)
"""
from __future__ import annotations

from functools import lru_cache

# socket.py's own import costs a twentieth of a short diagnosis; its C half is enough
import _socket

ALL_ONES = 0xFFFFFFFF

# What no upstream routes back to: RFC 1918, RFC 6598 shared space, link-local and
# loopback. The documentation ranges (192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24)
# are NOT here: a lab uses them as its public side, and is walked as such.
_PRIVATE = ((0x0A000000, 8), (0xAC100000, 12), (0xC0A80000, 16), (0x64400000, 10),
            (0xA9FE0000, 16), (0x7F000000, 8))
# the same as (mask, network) pairs: asked once per floating IP of a node
_PRIVATE_MASKED = tuple(((ALL_ONES << (32 - length)) & ALL_ONES, prefix) for prefix, length in _PRIVATE)


# The C library reads a dotted quad exactly as address_int means it (four octets 0 to
# 255 in ASCII digits, none with a leading zero: glibc, musl and the BSDs alike), in a
# fraction of the time Python takes over its digits; each of a large nat table's 10,000
# addresses is asked about once.
_PTON = _socket.inet_pton
_INET = _socket.AF_INET
_FROM_BYTES = int.from_bytes


@lru_cache(maxsize=262144)
def address_int(text) -> int | None:
    """An IPv4 address as an int; None for anything else (IPv6, a host name, a CIDR)."""
    if not isinstance(text, str):
        return None
    try:
        return _FROM_BYTES(_PTON(_INET, text), "big")
    except (OSError, ValueError):      # not a dotted quad; a NUL or an unencodable character
        return None


@lru_cache(maxsize=262144)
def network_ints(text) -> tuple[int, int, int] | None:
    """(network, mask, prefix length) of an IPv4 CIDR or address; None otherwise."""
    if not isinstance(text, str):
        return None
    if text in ("default", "0.0.0.0/0"):
        return 0, 0, 0
    address, slash, length = text.partition("/")
    value = address_int(address)
    if value is None:
        return None
    if not slash:
        prefixlen = 32
    elif length.isdigit() and int(length) <= 32:
        prefixlen = int(length)
    else:
        dotted = address_int(length)          # a netmask: 255.255.255.0
        if dotted is None:
            return None
        prefixlen = bin(dotted).count("1")
        if dotted != (ALL_ONES << (32 - prefixlen)) & ALL_ONES:
            return None
    mask = (ALL_ONES << (32 - prefixlen)) & ALL_ONES
    return value & mask, mask, prefixlen


def int_address(value: int) -> str:
    return ".".join(str((value >> shift) & 0xFF) for shift in (24, 16, 8, 0))


def cidr(network: int, prefixlen: int) -> str:
    return f"{int_address(network)}/{prefixlen}"


def covers(outer, inner) -> bool:
    """Whether the network ``outer`` holds all of ``inner`` (an address or a network)."""
    a, b = network_ints(outer), network_ints(inner)
    return a is not None and b is not None and b[2] >= a[2] and (b[0] & a[1]) == a[0]


def is_private(address) -> bool:
    """Whether no upstream routes a reply back to this address (see _PRIVATE)."""
    value = address_int(address)
    if value is None:
        net = network_ints(address)
        value = net[0] if net else None
    return value is not None and is_private_int(value)


def is_private_int(value: int) -> bool:
    """``is_private`` of an address given as its number (asked once per floating IP)."""
    for mask, network in _PRIVATE_MASKED:
        if value & mask == network:
            return True
    return False


def is_global(address) -> bool:
    """An address the Internet routes replies to: an IPv4 address that is not private."""
    return address_int(address) is not None and not is_private(address)
