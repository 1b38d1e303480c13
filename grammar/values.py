"""Addresses, prefixes and ports in parsed records: valid, or the record is bad input.

A grammar reads the shape of a line (``inet 10.0.0.7/33 brd ...`` has the shape of an
address line); whether ``10.0.0.7/33`` is an address at all is a question of values,
answered here once for every parser, so that nothing past grammar/ meets an address
the kernel itself would have refused (the network model would fail on it).

``invalid_value(record)`` names the first invalid value of a record, or None::

    >>> invalid_value({"type": "address", "cidr": "10.0.0.7/33"})
    "'10.0.0.7/33' is not an address with a prefix: the prefix is longer than 32"
    >>> invalid_value({"type": "rule", "source": "10.0.0.0/255.0.255.0", "dport": "22"}) is None
    True
    >>> invalid_value({"type": "rule", "dport": "70000"})
    "'70000' is not a port: a port is 0 to 65535"

Names stand where ``-n`` was not given (``iptables -L`` shows ``net-node``, ``dpt:http``,
``tcpdump`` without ``-n`` shows host names and ``ssh``): a value that is a name is
left to the reader of the name; a value shaped like a number or address must be one.
"""
from __future__ import annotations

import functools
import ipaddress
import re

# socket.py's own import costs more than all the checks it would speed up; its C half
# is enough
import _socket

# Fields holding one address (a host name where no -n was given).
ADDRESS_FIELDS = ("address", "via", "src", "dst", "broadcast", "peer", "to_address")
# Fields holding an address with a prefix (or, for iptables, a dotted mask).
NETWORK_FIELDS = ("cidr", "destination", "source")
PORT_FIELDS = ("dport", "sport", "to_port")

_NAME = re.compile(r"^[A-Za-z_][\w.\-]*$")
_DOTTED = re.compile(r"^\d+(?:\.\d+)*$")
_PORT_SEPARATORS = re.compile(r"[,:\-]")
# A dotted quad ipaddress accepts (no octet over 255, no leading zero): most values are
# one, and telling so here spares ipaddress's parse of each (a 20,000-rule listing holds
# 60,000 of them)
_OCTET = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
_IPV4 = re.compile(rf"^{_OCTET}(?:\.{_OCTET}){{3}}$")
# Valid beyond doubt, told before any other test: the dotted quad (four octets 0 to 255
# in ASCII digits, no leading zero), read by the C library's inet_pton, which accepts
# exactly those (glibc, musl and the BSDs alike) in less time than a match; and the
# same with a prefix of 0 to 32.
_PTON = _socket.inet_pton
_INET = _socket.AF_INET
_PREFIX_LENGTHS = frozenset(str(length) for length in range(33))


def _surely_address(value: str) -> bool:
    try:
        _PTON(_INET, value)
    except (OSError, ValueError):     # not a dotted quad; a NUL or an unencodable character
        return False
    return True


def _surely_network(value: str) -> bool:
    address, slash, prefix = value.partition("/")
    if slash and prefix not in _PREFIX_LENGTHS:
        return False
    try:
        _PTON(_INET, address)
    except (OSError, ValueError):
        return False
    return True


@functools.lru_cache(maxsize=65536)
def _address_problem(value: str) -> str | None:
    if _IPV4.match(value):
        return None
    if _NAME.match(value) and not _looks_numeric(value):
        return None
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return f"{value!r} is not an address"
    return None


def _looks_numeric(value: str) -> bool:
    # "fe80::1" and "dead::beef" start like names but are addresses.
    return ":" in value or bool(_DOTTED.match(value))


@functools.lru_cache(maxsize=65536)
def _network_problem(value: str) -> str | None:
    value = value.lstrip("!")
    if "/" not in value:
        return _address_problem(value)
    address, _, mask = value.partition("/")
    if _IPV4.match(address) and mask.isdigit() and int(mask) <= 32:
        return None
    if _NAME.match(address) and not _looks_numeric(address):
        return None
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return f"{value!r} is not an address with a prefix: {address!r} is not an address"
    if _DOTTED.match(mask) and "." in mask:
        # iptables prints a mask that is no prefix as dotted quad (10.0.0.0/255.0.255.0)
        octets = mask.split(".")
        if parsed.version != 4 or len(octets) != 4 or any(int(octet) > 255 for octet in octets):
            return f"{value!r} is not an address with a mask: the mask is not four numbers to 255"
        return None
    if not mask.isdigit():
        return f"{value!r} is not an address with a prefix: {mask!r} is not a number"
    if int(mask) > parsed.max_prefixlen:
        return (f"{value!r} is not an address with a prefix: the prefix is longer than "
                f"{parsed.max_prefixlen}")
    return None


def _port_problem(value) -> str | None:
    if isinstance(value, str):
        return _port_text_problem(value)
    if isinstance(value, bool):
        return f"{value!r} is not a port"
    if isinstance(value, int):
        return None if 0 <= value <= 65535 else f"{value!r} is not a port: a port is 0 to 65535"
    return _port_text_problem(str(value))


@functools.lru_cache(maxsize=4096)
def _port_text_problem(value: str) -> str | None:
    for part in _PORT_SEPARATORS.split(value.lstrip("!")):
        if part.isdigit() and int(part) > 65535:
            return f"{value!r} is not a port: a port is 0 to 65535"
    return None


def _prefixlen_problem(record: dict) -> str | None:
    length = record.get("prefixlen")
    if not isinstance(length, int) or isinstance(length, bool):
        return None
    limit = 128 if record.get("family") == "inet6" else 32
    if not 0 <= length <= limit:
        return f"prefix length {length} is not 0 to {limit}"
    return None


@functools.lru_cache(maxsize=4096)
def _address_or_range_problem(value: str) -> str | None:
    # DNAT/SNAT targets may be ranges (10.0.0.7-10.0.0.9)
    for part in value.split("-"):
        problem = _address_problem(part)
        if problem:
            return problem
    return None


@functools.lru_cache(maxsize=4096)
def _network_value_problem(value: str) -> str | None:
    return None if value in ("default", "any") else _network_problem(value)


# Fields holding one address, but the NAT target (an address or a range), which comes last.
_PLAIN_ADDRESS_FIELDS = tuple(field for field in ADDRESS_FIELDS if field != "to_address")
_NOT_PORTS = frozenset(("icmp", "icmp6"))


# Values already found valid: an address or network comes back in many records (each
# of nova's floating IPs in two rules, 0.0.0.0/0 in most), and a value known costs a
# set lookup instead of a match. Each starts afresh when full, like the caches above.
_VALID_ADDRESSES: set[str] = set()
_VALID_NETWORKS: set[str] = set()
_MAX_REMEMBERED = 65536


def _new_nat_target_problem(value: str) -> str | None:
    """What is wrong with a NAT target not seen before, or None (then remembered)."""
    if not _surely_address(value):
        return _address_or_range_problem(value)
    return _remembered(_VALID_ADDRESSES, value)


def _new_network_problem(value: str) -> str | None:
    """What is wrong with a network not seen before, or None (then remembered)."""
    if not _surely_network(value):
        return _network_value_problem(value)
    return _remembered(_VALID_NETWORKS, value)


def _remembered(valid: set[str], value: str) -> None:
    """``value`` kept among the ``valid`` ones (a bounded set: it starts afresh when full)."""
    if len(valid) >= _MAX_REMEMBERED:
        valid.clear()
    valid.add(value)


def invalid_value(record: dict) -> str | None:
    """Why the record holds a value no kernel would print, or None. Problems are told
    in the order of the fields: addresses (ADDRESS_FIELDS), networks, ports."""
    # Runs once per record read (20,000 times for a large nat table), so it is written
    # out: each Python operation here costs about as much as checking a value, and a
    # loop or a C-level set operation over the field names costs more than testing each.
    get = record.get
    if "address" in record or "via" in record or "src" in record or "dst" in record \
            or "broadcast" in record or "peer" in record:        # _PLAIN_ADDRESS_FIELDS
        for field in _PLAIN_ADDRESS_FIELDS:
            value = get(field)
            if value and isinstance(value, str) and not _surely_address(value):
                problem = _address_problem(value)
                if problem:
                    return problem
    # a value known valid costs one set lookup here; only a new one calls out
    value = get("to_address")
    if value and isinstance(value, str) and value not in _VALID_ADDRESSES:
        problem = _new_nat_target_problem(value)
        if problem:
            return problem
    value = get("cidr")                                              # NETWORK_FIELDS
    if value and isinstance(value, str) and value not in _VALID_NETWORKS:
        problem = _new_network_problem(value)
        if problem:
            return problem
    value = get("destination")
    if value and isinstance(value, str) and value not in _VALID_NETWORKS:
        problem = _new_network_problem(value)
        if problem:
            return problem
    value = get("source")
    if value and isinstance(value, str) and value not in _VALID_NETWORKS:
        problem = _new_network_problem(value)
        if problem:
            return problem
    if get("dport") is None and get("sport") is None and get("to_port") is None:   # PORT_FIELDS
        return _prefixlen_problem(record) if "prefixlen" in record else None
    return _port_or_prefixlen_problem(record)


def _port_or_prefixlen_problem(record: dict) -> str | None:
    """invalid_value's last tests, for a record with a port field that is not None."""
    get = record.get
    # for icmp, nova's security group rules carry the icmp type and code in the port
    # columns, -1 meaning any: not ports
    for field in PORT_FIELDS:
        value = get(field)
        if value is not None and value != "":
            if str(get("protocol", "")).lower() in _NOT_PORTS:
                break
            problem = _port_problem(value)
            if problem:
                return problem
    return _prefixlen_problem(record) if "prefixlen" in record else None


# field names -> their compiled checker; bounded
_CHECKERS: dict[tuple, object] = {}


def checker(names: tuple):
    """``check(record)``: ``invalid_value`` for records of exactly these field names,
    compiled: the same tests in the same order, on the fields the records have and no
    other (for a parser's fixed layouts, grammar/base.py's RECORD_FIELDS: a listing's
    20,000 rules are each checked in half the time)."""
    check = _CHECKERS.get(names)
    if check is not None:
        return check
    present = set(names)
    lines = ["def check(record):"]

    def test(field: str, accept: str, problem_of: str) -> None:
        lines.extend([f"    value = record[{field!r}]",
                      f"    if value and isinstance(value, str) and {accept}:",
                      f"        problem = {problem_of}(value)",
                      "        if problem:",
                      "            return problem"])

    for field in _PLAIN_ADDRESS_FIELDS:
        if field in present:
            test(field, "not surely_address(value)", "address_problem")
    if "to_address" in present:
        test("to_address", "value not in VALID_ADDRESSES", "new_nat_target_problem")
    for field in NETWORK_FIELDS:
        if field in present:
            test(field, "value not in VALID_NETWORKS", "new_network_problem")
    ports = [field for field in ("dport", "sport", "to_port") if field in present]
    if ports:
        lines.append("    if " + " or ".join(f"record[{field!r}] is not None" for field in ports) + ":")
        lines.append("        return port_or_prefixlen_problem(record)")
    lines.append("    return prefixlen_problem(record)" if "prefixlen" in present else "    return None")
    namespace = {"surely_address": _surely_address, "address_problem": _address_problem,
                 "VALID_ADDRESSES": _VALID_ADDRESSES, "VALID_NETWORKS": _VALID_NETWORKS,
                 "new_nat_target_problem": _new_nat_target_problem,
                 "new_network_problem": _new_network_problem,
                 "port_or_prefixlen_problem": _port_or_prefixlen_problem,
                 "prefixlen_problem": _prefixlen_problem}
    exec(compile("\n".join(lines), "<value checker>", "exec"), namespace)
    if len(_CHECKERS) >= 1024:
        _CHECKERS.clear()
    _CHECKERS[names] = check = namespace["check"]
    return check


# invalid_value names the fields one by one: they must be these.
assert _PLAIN_ADDRESS_FIELDS == ("address", "via", "src", "dst", "broadcast", "peer")
assert NETWORK_FIELDS == ("cidr", "destination", "source") and set(PORT_FIELDS) == {"dport", "sport", "to_port"}
