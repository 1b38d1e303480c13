"""``ifconfig`` output (net-tools), old and new layout, as ``ip_addr`` records.

Commands: ``ifconfig``, ``ifconfig -a``, ``ifconfig br1``, ``ifconfig br1:0`` (also
inside ``ip netns exec NS``).  A command that sets something (``ifconfig br1:0
172.16.0.1/16``, ``ifconfig eth0 up``, ``ifconfig eth0 mtu 1400``) prints nothing and
is not matched; nor is ``ifconfig -s`` (a table).

Both layouts are read: net-tools 1.60 (Ubuntu 14.04, CentOS 6: ``Link encap:...
HWaddr``, ``inet addr:``, ``Bcast:``, ``Mask:``, a flags line with ``MTU:``) and 2.x
(``flags=4163<UP,...>  mtu 1500``, ``inet ... netmask ... broadcast``, ``ether``).
Records are the ``ip_addr`` ones, every key always present::

    {"type": "interface", "line": 1, "ifname": "br1", "index": None,  # not printed
     "flags": ["UP", "BROADCAST", "RUNNING", "MULTICAST"], "mtu": 1500,
     "state": None,                       # ifconfig has no operational state
     "mac": "00:30:48:d4:5f:99" | None,   # lower-cased; None for loopback/tun
     "master": None}
    {"type": "address", "line": 2, "ifname": "br1", "family": "inet",
     "address": "10.0.0.1", "prefixlen": 24, "cidr": "10.0.0.1/24",
     "broadcast": "10.0.0.255" | None,    # as printed, 0.0.0.0 included
     "scope": None | "link" | "global" | "host",   # IPv6 only
     "label": "br1" | "br1:0" | None,     # the block's name, IPv4 only
     "peer": "192.0.2.10" | None,         # P-t-P: / destination
     "secondary": False}                  # ifconfig shows one address per label

An alias block (``br1:0``) gives its address with ``ifname`` "br1" and ``label``
"br1:0", and no interface record (the interface is ``br1``'s block).  1.60 cuts names
to 9 characters (``tap1b2c3d``); the cut name is what is given.  ``eth9: error
fetching interface information: Device not found`` gives ``{"type":
"interface_error", "line": 1, "ifname": "eth9", "message": "Device not found"}``.

Worked example (1.60)::

    br1:0     Link encap:Ethernet  HWaddr 00:30:48:D4:5F:99
              inet addr:172.16.0.1  Bcast:172.16.255.255  Mask:255.255.0.0
              UP BROADCAST RUNNING MULTICAST  MTU:1500  Metric:1

gives ``{"type": "address", "line": 2, "ifname": "br1", "family": "inet", "address":
"172.16.0.1", "prefixlen": 16, "cidr": "172.16.0.1/16", "broadcast":
"172.16.255.255", "scope": None, "label": "br1:0", "peer": None, "secondary": False}``.
"""
from __future__ import annotations

import re
from pathlib import Path

from grammar.lark_runtime import LarkError, Transformer

from grammar.base import LazyLark, LineReadings, ParseResult, Problem, lark_cache, lark_problem
from grammar.ip_addr import new_address, new_interface

KIND = "ifconfig"
# The facts this kind gives: the same records as ip_addr's, declared there (kb/schema.py).
FACT_TYPES = {"interface": "grammar.ip_addr", "address": "grammar.ip_addr",
              "interface_error": "grammar.ip_addr"}

# Where a command starts: the line start, after a shell separator, or after a
# wrapper (sudo, watch -n 2, ip netns exec NS, docker exec CTR).
_COMMAND_START = (
    r"(?:^|[;&|(]\s*|\bexec\s+(?:-\S+\s+)*\S+\s+(?:--\s+)?"
    r"|\b(?:sudo|watch|time|nice|timeout(?:\s+-\S+)*\s+\S+)\s+(?:-\S+\s+(?:\d+\s+)?)*)"
)
# `ifconfig`, `ifconfig -a`, `ifconfig -v br1`, `ifconfig br1:0` and nothing after the
# name: anything more (an address, up, mtu 1400) makes it a command that sets.
COMMANDS = re.compile(
    _COMMAND_START + r"ifconfig(?:\s+-[av]+)*(?:\s+[^\s|;&>()-][^\s|;&>()]*)?\s*(?:$|[|;&>)])"
)
FILES = None

_PARSER = LazyLark(
    (Path(__file__).with_suffix(".lark")).read_text(),
    parser="lalr",
    cache=lark_cache(__file__),
    start=["header", "detail"],
    maybe_placeholders=True,
)

_NEW_HEADER = re.compile(r"^\S+: flags=\d+<[A-Za-z0-9_,-]*>\s+mtu \d+")
_OLD_HEADER = re.compile(r"^\S+\s+Link encap:")
_HEADER_ATTEMPT = re.compile(r"^\S+(?::\s+flags=|\s+Link\b)")
_MAC = re.compile(r"^[0-9A-Fa-f]{2}(?::[0-9A-Fa-f]{2}){5,19}$")
_SCOPES = {"0x0": "global", "0x10": "host", "0x20": "link", "0x40": "site", "0x80": "compat"}


def looks_like(text: str) -> bool:
    """True when the text opens with an ifconfig block header (either layout)."""
    for line in text.split("\n"):
        if line.strip():
            return bool(_NEW_HEADER.match(line) or _OLD_HEADER.match(line))
    return False


def _prefix_length(netmask: str) -> int | None:
    """255.255.252.0 -> 22; None for a mask whose ones are not contiguous."""
    value = 0
    for octet in netmask.split("."):
        value = value * 256 + int(octet)
    length = bin(value).count("1")
    return length if value == (0xFFFFFFFF << (32 - length)) & 0xFFFFFFFF else None


class _Line(Transformer):
    """One line -> (what it is, data)."""

    def header(self, children):
        return children[0]

    def detail(self, children):
        return children[0]

    def new_header(self, children):
        name, _flag_bits, flags, mtu, _keepalive = children
        return "header", {"name": str(name), "mtu": int(mtu),
                          "flags": [f for f in str(flags).strip("<>").split(",") if f],
                          "mac": None}

    def keepalive(self, children):
        return None

    def old_header(self, children):
        name, _encapsulation, hwaddr, _media = children
        mac = str(hwaddr) if hwaddr and _MAC.match(str(hwaddr)) else None
        # flags and MTU come later, on the flags line
        return "header", {"name": str(name), "mtu": None, "flags": None, "mac": mac}

    def error_message(self, children):
        name, _, message = str(children[0]).partition(": error fetching interface information:")
        return "error", {"ifname": name, "message": message.strip()}

    def new_inet(self, children):
        address, netmask, broadcast, destination = (str(c) if c else None for c in children)
        return "inet", {"address": address, "netmask": netmask, "broadcast": broadcast,
                        "peer": destination}

    def old_inet(self, children):
        address, peer, broadcast, netmask = (str(c) if c else None for c in children)
        return "inet", {"address": address, "netmask": netmask, "broadcast": broadcast,
                        "peer": peer}

    def new_inet6(self, children):
        address, prefixlen, scope_id = (str(c) for c in children)
        # "0x20<link>" names its scope; a bare "0x20" is looked up
        scope = scope_id.partition("<")[2].rstrip(">").split(",")[-1] or _SCOPES.get(scope_id)
        return "inet6", {"address": address, "prefixlen": int(prefixlen), "scope": scope}

    def old_inet6(self, children):
        prefix, scope = (str(c) for c in children)
        address, _, prefixlen = prefix.partition("/")
        return "inet6", {"address": address, "prefixlen": int(prefixlen), "scope": scope.lower()}

    def new_link(self, children):
        _hardware_type, hwaddr, _txqueuelen, _title = children
        mac = str(hwaddr) if hwaddr and _MAC.match(str(hwaddr)) else None
        return "link", {"mac": mac}

    def old_flags(self, children):
        flags = [str(c) for c in children if c is not None and c.type == "FLAG_WORD"]
        mtu = next(int(c) for c in children if c is not None and c.type == "INT")
        return "flags", {"flags": flags, "mtu": mtu}

    def statistics(self, children):
        return "statistics", None


_TRANSFORMER = _Line()

# Each distinct line read by lark once per process (base.LineReadings).
_READ = LineReadings(lambda line, start: _TRANSFORMER.transform(_PARSER.parse(line, start=start)))


def parse(text: str, command: str = "") -> ParseResult:
    result = ParseResult()
    block: dict | None = None       # the current block: its name and interface record
    # Numbered by "\n" alone, as the transcript reader counts lines.
    for number, raw in enumerate(text.split("\n"), start=1):
        line = raw.rstrip("\r")
        if not line.strip():
            continue
        start = "detail" if line[0] in " \t" else "header"
        try:
            kind, data = _READ(line, start)
        except LarkError as error:
            result.problems.append(lark_problem(error, number - 1, number))
            if start == "header" and _HEADER_ATTEMPT.match(line):
                # a broken block header: the lines below it belong to an interface
                # we cannot name, not to the block above
                block = None
            continue
        if kind == "header":
            name = data["name"]
            ifname, _, alias = name.partition(":")
            interface = None
            if not alias:
                interface = new_interface(number, ifname, flags=data["flags"],
                                          mtu=data["mtu"], mac=data["mac"])
                result.records.append(interface)
            block = {"name": name, "ifname": ifname, "interface": interface}
        elif kind == "error":
            block = None
            result.records.append({"type": "interface_error", "line": number, **data})
        elif kind == "statistics":
            continue
        elif block is None:
            result.problems.append(Problem(number, "an indented line with no interface above it"))
        elif kind == "inet":
            length = _prefix_length(data["netmask"])
            if length is None:
                result.problems.append(Problem(number, f"netmask {data['netmask']!r} is not a prefix"))
                continue
            result.records.append(new_address(number, block["ifname"], data["address"], length,
                                              broadcast=data["broadcast"], label=block["name"],
                                              peer=data["peer"]))
        elif kind == "inet6":
            result.records.append(new_address(number, block["ifname"], data["address"],
                                              data["prefixlen"], scope=data["scope"]))
        elif block["interface"] is not None:
            interface = block["interface"]
            if kind == "link" and data["mac"]:
                interface["mac"] = data["mac"].lower()
            elif kind == "flags":
                interface["flags"], interface["mtu"] = list(data["flags"]), data["mtu"]
    return result
