"""``ip addr`` output: interfaces and their addresses as iproute2 prints them.

Commands: ``ip addr``, ``ip a``, ``ip addr show [dev] X``, ``ip a s``, ``ip -4 a``,
``ip -6 addr``, ``ip -o addr`` (one line per address, iproute2 joins the lifetime line
with a backslash), ``ip -br addr`` (brief table), also inside ``ip netns exec NS``.
``ip addr add/del/flush`` print nothing and are not matched; ``-s``/``-d`` add lines
of their own and are not matched either.

Records, every key always present::

    {"type": "interface", "line": 1, "ifname": "eth0",   # "eth0@if5" -> "eth0"
     "index": 2,                  # None in -br output
     "flags": ["BROADCAST", "MULTICAST", "UP", "LOWER_UP"],
     "mtu": 1500, "state": "UP", "mac": "52:54:00:61:8e:f1" | None,
     "master": "br-int" | None}
    {"type": "address", "line": 3, "ifname": "eth0", "family": "inet" | "inet6",
     "address": "10.0.0.7", "prefixlen": 24, "cidr": "10.0.0.7/24",
     "broadcast": "10.0.0.255" | None, "scope": "global" | None,
     "label": "eth0" | "eth0:1" | None,   # printed for IPv4 only
     "peer": "192.0.2.2" | None,          # "inet A peer B/32": prefixlen is B's
     "secondary": False}

``Device "eth9" does not exist.`` is read as ``{"type": "interface_error", "line": 1,
"ifname": "eth9", "message": "Device \\"eth9\\" does not exist."}``.  In ``-o`` output
there are no interface lines, so only address records come out.

Worked example (the namespace lab's net01: a floating IP is added as a /32 without
broadcast, beside the public interface's own address)::

    4: ens4@if3: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 qdisc noqueue state UP group default qlen 1000
        link/ether 52:54:00:88:3f:d2 brd ff:ff:ff:ff:ff:ff link-netns sdlab-24448-c3b184-gateway
        inet 198.51.100.70/26 scope global ens4
           valid_lft forever preferred_lft forever
        inet 198.51.100.77/32 scope global ens4
           valid_lft forever preferred_lft forever

gives ``{"type": "interface", "line": 1, "ifname": "ens4", "index": 4, "flags":
["BROADCAST", "MULTICAST", "UP", "LOWER_UP"], "mtu": 1500, "state": "UP", "mac":
"52:54:00:88:3f:d2", "master": None}``, the address on line 3, and ``{"type": "address",
"line": 5, "ifname": "ens4", "family": "inet", "address": "198.51.100.77", "prefixlen": 32,
"cidr": "198.51.100.77/32", "broadcast": None, "scope": "global", "label": "ens4",
"peer": None, "secondary": False}``.
"""
from __future__ import annotations

import re
from pathlib import Path

from grammar.lark_runtime import LarkError, Transformer

from grammar.base import LineReadings, ParseResult, Problem, lark_problem, lark_cache, LazyLark

KIND = "ip_addr"
# The facts this kind gives, each field in words (collected by kb/schema.py into
# rules/FACTS.md; node, type and prov are on every fact).
FACT_TYPES = {
    "interface": {
        "doc": "a network interface of NODE, as ip addr or ifconfig prints it",
        "fields": {
            "ifname": "the interface's name (eth0@if5 -> eth0)",
            "index": "ip addr's interface number, or empty",
            "flags": "the flag words, e.g. UP, BROADCAST, LOWER_UP",
            "mtu": "the MTU, a number",
            "state": "the operational state (UP, DOWN, UNKNOWN), or empty",
            "mac": "the link-layer address, lower-case, or empty",
            "master": "the bridge or bond it is enslaved to, or empty",
        },
    },
    "address": {
        "doc": "an address held by an interface of NODE",
        "fields": {
            "ifname": "the interface holding it",
            "family": "inet or inet6",
            "address": "the address, e.g. 10.0.0.7",
            "prefixlen": "the prefix length, a number",
            "cidr": "address/prefixlen",
            "broadcast": "the broadcast address as printed, or empty",
            "scope": "global, link, host, or empty",
            "label": "the IPv4 label (eth0:1 for an alias), or empty",
            "peer": "the peer of a point-to-point address, or empty",
            "secondary": "true for a secondary address",
        },
    },
    "interface_error": {
        "doc": "NODE's tool said an interface does not exist",
        "fields": {"ifname": "the interface named", "message": "the message as printed"},
    },
}

# Where a command starts: the line start, after a shell separator, or after a
# wrapper (sudo, watch -n 2, ip netns exec NS, docker exec CTR).
_COMMAND_START = (
    r"(?:^|[;&|(]\s*|\bexec\s+(?:-\S+\s+)*\S+\s+(?:--\s+)?"
    r"|\b(?:sudo|watch|time|nice|timeout(?:\s+-\S+)*\s+\S+)\s+(?:-\S+\s+(?:\d+\s+)?)*)"
)
# Global `ip` options; -n/-netns/-f/-family/-rc take an argument.  -j (JSON),
# -s (statistics lines), -d (detail lines) and -b (batch) change the output.
_IP_OPTIONS = (
    r"(?:-(?:n|netns|f|family|rc|rcvbuf)\s+\S+\s+"
    r"|-(?!j(?:son)?\b|s(?:tat(?:istic)?s?)?\b|d(?:etails)?\b|b(?:atch)?\b)[\w-]+\s+)*"
)
# `ip a`, `ip ad`, ... `ip address`; then nothing or a prefix of show / list, or lst.
COMMANDS = re.compile(
    _COMMAND_START + r"ip\s+" + _IP_OPTIONS + r"a(?:d(?:d(?:r(?:e(?:ss?)?)?)?)?)?"
    r"(?:\s*$|\s*[|;&>)]|\s+(?:s(?:h(?:ow?)?)?|l(?:i(?:st?)?)?|lst)(?:\s|$))"
)
FILES = None

_PARSER = LazyLark(
    (Path(__file__).with_suffix(".lark")).read_text(),
    parser="lalr",
    cache=lark_cache(__file__),
    start=["line", "brief_line"],
    maybe_placeholders=True,
)

_HEADER_LINE = re.compile(r"^\d+:\s+[^\s:]+(?:@[^\s:]+)?:\s+<[A-Za-z0-9_,-]*>")
_ONELINE = re.compile(r"^\d+:\s+[^\s:]+\s+inet6?\s")
_BRIEF_STATES = r"(?:UP|DOWN|UNKNOWN|LOWERLAYERDOWN|DORMANT|NOTPRESENT|TESTING)"
_BRIEF_ADDRESS = re.compile(r"\s[0-9a-fA-F.:]+(?: peer [0-9a-fA-F.:]+)?/\d{1,3}\b")
_BRIEF_LINE = re.compile(r"^[^\s:/]+\s+" + _BRIEF_STATES
                         + r"(?:\s+[0-9a-fA-F.:]+(?: peer [0-9a-fA-F.:]+)?/\d{1,3})*\s*$")
_BRIEF_OPTION = re.compile(r"(?:^|\s)-br(?:ief)?\b")
_MAC = re.compile(r"^[0-9a-fA-F]{2}(?::[0-9a-fA-F]{2}){5,19}$")
# iproute2 prints a backslash where `-o` joins what would be separate lines.
_ONELINE_JOIN = re.compile(r"\\\s+")


def looks_like(text: str) -> bool:
    """True when the text opens with an `ip addr`/`ip -o addr` interface line, or is
    an `ip -br addr` table (every line a name, a state and addresses, one address
    at least)."""
    lines = [line for line in text.split("\n") if line.strip()]
    if not lines:
        return False
    if _HEADER_LINE.match(lines[0]) or _ONELINE.match(lines[0]):
        return True
    head = lines[:8]
    return (all(_BRIEF_LINE.match(line) for line in head)
            and any(_BRIEF_ADDRESS.search(line) for line in head))


def new_interface(line: int, ifname: str, *, index: int | None = None,
                  flags: list[str] | None = None, mtu: int | None = None,
                  state: str | None = None, mac: str | None = None,
                  master: str | None = None) -> dict:
    """The interface record (shared with the ifconfig kind)."""
    return {"type": "interface", "line": line, "ifname": ifname, "index": index,
            "flags": list(flags or []), "mtu": mtu, "state": state,
            "mac": mac.lower() if mac else None, "master": master}


def new_address(line: int, ifname: str | None, address: str, prefixlen: int, *,
                broadcast: str | None = None, scope: str | None = None,
                label: str | None = None, peer: str | None = None,
                secondary: bool = False) -> dict:
    """The address record (shared with the ifconfig kind)."""
    return {"type": "address", "line": line, "ifname": ifname,
            "family": "inet6" if ":" in address else "inet", "address": address,
            "prefixlen": prefixlen, "cidr": f"{address}/{prefixlen}",
            "broadcast": broadcast, "scope": scope, "label": label, "peer": peer,
            "secondary": secondary}


def _split_prefix(text: str) -> tuple[str, int]:
    address, _, length = text.partition("/")
    return address, int(length)


class _Line(Transformer):
    """One line -> (what it is, data)."""

    def link_header(self, children):
        index, name, flags, *attributes = children
        return "link", {"index": int(index), "ifname": name,
                        "flags": [f for f in str(flags).strip("<>").split(",") if f],
                        **dict(attributes)}

    def interface_name(self, children):
        return str(children[0])  # the "@peer" half names the other end, not this one

    def mtu(self, children):
        return "mtu", int(children[0])

    def master(self, children):
        return "master", str(children[0])

    def state(self, children):
        return "state", str(children[0])

    def link_option(self, children):
        return str(children[0]), str(children[1])

    def link_layer(self, children):
        link_type, address, *_attributes = children
        mac = str(address) if address and _MAC.match(str(address)) else None
        return "link_layer", {"link_type": str(link_type), "mac": mac}

    def link_broadcast(self, children):
        return "brd", str(children[0])

    def link_peer(self, children):
        return "peer", str(children[0])

    def inet_address(self, children):
        return self._address("inet", children)

    def inet6_address(self, children):
        return self._address("inet6", children)

    @staticmethod
    def _address(family, children):
        (address, prefixlen, peer), *rest = children
        values, flags, label = {}, [], None
        for item in rest:
            if isinstance(item, tuple):  # ("brd" | "any" | "metric" | ..., value)
                values[item[0]] = item[1]
            elif item is None:           # no label
                continue
            elif item.type == "SCOPE":
                values["scope"] = str(item)
            elif item.type == "ADDRESS_FLAG":
                flags.append(str(item))
            else:
                label = str(item)
        return "address", {"family": family, "address": address, "prefixlen": prefixlen,
                           "peer": peer, "broadcast": values.get("brd"),
                           "scope": values.get("scope"), "label": label,
                           "secondary": "secondary" in flags}

    def plain_address(self, children):
        address, prefixlen = _split_prefix(str(children[0]))
        return address, prefixlen, None

    def peer_address(self, children):
        peer, prefixlen = _split_prefix(str(children[1]))
        return str(children[0]), prefixlen, peer

    def broadcast(self, children):
        return "brd", str(children[0])

    def address_metric(self, children):
        return "metric", int(children[0])

    def multicast(self, children):
        return "mcast", str(children[0])

    def unnamed_flags(self, children):
        return "flags", str(children[0])

    def address_protocol(self, children):
        return "proto", str(children[0])

    def brief_address(self, children):
        return children[0]  # (address, prefixlen, peer); the route metric is not kept

    def anycast(self, children):
        return "any", str(children[0])

    def oneline_address(self, children):
        index, name, (_, address) = children
        return "oneline", {"index": int(index), "ifname": name, **address}

    def lifetime(self, children):
        return "lifetime", None

    def altname(self, children):
        return "altname", None

    def alias(self, children):
        return "alias", None

    def error_message(self, children):
        text = str(children[0])
        return "error", {"message": text, "ifname": text.split('"')[1]}

    def brief_line(self, children):
        name, state, *addresses = children
        return "brief", {"ifname": str(name).split("@")[0], "state": str(state),
                         "addresses": addresses}


_TRANSFORMER = _Line()
# (kind, data) of each distinct line; data is only read below, never changed
_READ_LINE = LineReadings(lambda line, start: _TRANSFORMER.transform(_PARSER.parse(line, start=start)))


def _address_record(line: int, ifname: str | None, data: dict) -> dict:
    family_is_inet6 = data["family"] == "inet6"
    record = new_address(line, ifname, data["address"], data["prefixlen"],
                         broadcast=data["broadcast"], scope=data["scope"],
                         label=None if family_is_inet6 else data["label"],
                         peer=data["peer"], secondary=data["secondary"])
    record["family"] = data["family"]  # as printed, even for an odd address
    return record


def parse(text: str, command: str = "") -> ParseResult:
    result = ParseResult()
    lines = text.split("\n")  # numbered by "\n" alone, as the transcript reader counts
    first = next((line for line in lines if line.strip()), "")
    brief = bool(_BRIEF_OPTION.search(command)) or (
        not command and bool(first) and not first[0].isspace()
        and not _HEADER_LINE.match(first) and not _ONELINE.match(first)
        and not first.startswith("Device ")
    )
    current: dict | None = None  # the interface whose lines follow
    for number, raw in enumerate(lines, start=1):
        line = raw.rstrip("\r")
        if not line.strip():
            continue
        segments = [line] if brief else _ONELINE_JOIN.split(line)
        for position, segment in enumerate(segments):
            if not segment.strip():
                continue
            try:
                kind, data = _READ_LINE(segment, "brief_line" if brief else "line")
            except LarkError as error:
                problem = lark_problem(error, number - 1, number)
                if position:  # a column within a later -o segment is not the line's
                    problem = Problem(problem.line, problem.reason, None)
                result.problems.append(problem)
                break
            if kind == "link":
                current = new_interface(number, data["ifname"], index=data["index"],
                                        flags=data["flags"], mtu=data.get("mtu"),
                                        state=data.get("state"), master=data.get("master"))
                result.records.append(current)
            elif kind == "link_layer":
                if current is not None and current["mac"] is None and data["mac"]:
                    current["mac"] = data["mac"].lower()
            elif kind == "address":
                # An address before any interface line (a cut transcript): its IPv4
                # label still names the interface.
                ifname = current["ifname"] if current else (
                    data["label"].split(":")[0] if data["label"] else None)
                result.records.append(_address_record(number, ifname, data))
            elif kind == "oneline":
                result.records.append(_address_record(number, data["ifname"], data))
            elif kind == "brief":
                result.records.append(new_interface(number, data["ifname"], state=data["state"]))
                for address, prefixlen, peer in data["addresses"]:
                    result.records.append(new_address(number, data["ifname"], address,
                                                      prefixlen, peer=peer))
            elif kind == "error":
                current = None
                result.records.append({"type": "interface_error", "line": number,
                                       "ifname": data["ifname"], "message": data["message"]})
            # lifetime, altname and alias lines are read and let go
    return result
