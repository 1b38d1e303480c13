"""``tcpdump`` output: what a capture saw, one record per packet.

Commands: ``tcpdump -n [-e] [-v] [-i IF] [expr]``, ``tcpdump -i any``, ``tcpdump -r
FILE``, without ``-n`` too (names instead of addresses and ports); also inside
``ip netns exec NS``.  Not matched: ``-D`` (interface list), ``-h``, ``--version``,
``-x``/``-X`` hex dumps are read and let go.  The header and trailer lines
(``tcpdump: WARNING: br100: no IPv4 address assigned``, ``tcpdump: verbose output
suppressed ...``, ``N packets captured``, ``N packets received by filter``, ``N packets
dropped by kernel``, ``^C``) are read, not problems.

Records::

    {"type": "capture", "line": 2, "iface": "br100", "link_type": "EN10MB"}
        # from "listening on br100, link-type EN10MB (Ethernet), capture size 65535 bytes"
        # ("reading from file F, ..." gives iface None)
    {"type": "packet", "line": 3,
     "iface": "br100",            # the line's own (-i any, tcpdump 4.99), else -i X of
                                  # the command, else the listening line's
     "direction": "In" | "Out" | "P" | "B" | "M" | None,   # -i any only
     "time": "10:13:31.513718" | None,    # as printed (-tttt adds the date; -t: None)
     "protocol": "icmp" | "icmp6" | "tcp" | "udp" | "arp" | "ip" | "ip6" | ...,
     "src": "10.20.4.5", "dst": "203.0.113.80",      # addresses or, without -n, names
     "sport": "45678" | "ssh" | None, "dport": ...,  # as printed
     "icmp_type": "echo request" | None,  # tcpdump's words up to the first comma:
                                          # "host 192.0.2.40 unreachable", ...
     "src_mac": "fa:16:3e:20:5f:65" | None, "dst_mac": ... | None,   # -e
     "length": 64 | None,         # the last "length N" of the decoded part (the -e
                                  # frame length is not it)
     "encapsulated": False,       # True for the inner packet of a VXLAN/Geneve frame,
                                  # printed on its own line after the outer one
     "detail": "ICMP echo request, id 56064, seq 90, length 64"}   # after "src > dst: "

ARP: ``Request who-has A tell B`` gives src B, dst A; ``Reply A is-at M`` gives src A.
The protocol comes from the decoded part: ``ICMP``/``ICMP6``, ``Flags [..]`` (tcp),
``UDP,``, other port-to-port text is udp (DNS, NTP, VXLAN...), a few named IP
protocols (vrrp, igmp, gre, esp, ospf, pim), else the network layer (ip, ip6); a
non-IP frame gives its first word (stp, lldp, llc).

A ``tcpdump:`` line that is not one of the informational ones above is an error:
``{"type": "capture_error", "line": 1, "message": "ens9: No such device exists"}``.

Worked example (-e, a capture of the namespace lab: tests/fixtures/tcpdump/net01_icmp_e.out)::

    13:22:39.236290 fa:16:3e:20:5f:65 > 52:54:00:4a:10:aa, ethertype IPv4 (0x0800), length 98: 203.0.113.5 > 203.0.113.1: ICMP echo request, id 17610, seq 1, length 64

with command ``tcpdump -i br-mgmt -n icmp -e`` gives ``{"type": "packet", "line": 1,
"iface": "br-mgmt", "direction": None, "time": "13:22:39.236290", "protocol": "icmp",
"src": "203.0.113.5", "dst": "203.0.113.1", "sport": None, "dport": None,
"icmp_type": "echo request", "src_mac": "fa:16:3e:20:5f:65", "dst_mac":
"52:54:00:4a:10:aa", "length": 64, "encapsulated": False, "detail": "ICMP echo request,
id 17610, seq 1, length 64"}``.

Packet lines come by the thousand, so the LALR parser transforms as it parses (no
tree) and the line's decoded part is one token.
"""
from __future__ import annotations

import ipaddress
import re
from itertools import islice
from pathlib import Path

from grammar.lark_runtime import LarkError, Transformer

from grammar.base import LazyLark, LineReadings, ParseResult, Problem, lark_cache, lark_problem

KIND = "tcpdump"
# The facts this kind gives, each field in words (collected by kb/schema.py into
# rules/FACTS.md; node, type and prov are on every fact).
FACT_TYPES = {
    "capture": {
        "doc": "a tcpdump capture run on NODE",
        "fields": {
            "iface": "the interface it listened on, or empty when reading a file",
            "link_type": "the link type, e.g. EN10MB",
        },
    },
    "packet": {
        "doc": "a packet a tcpdump capture on NODE saw",
        "fields": {
            "iface": "the interface it was seen on",
            "direction": "In, Out ... (tcpdump -i any), or empty",
            "time": "the time as printed, or empty",
            "protocol": "icmp, tcp, udp, arp, ip ...",
            "src": "the source address (a name without -n)",
            "dst": "the destination address",
            "sport": "the source port as printed, or empty",
            "dport": "the destination port as printed, or empty",
            "icmp_type": "tcpdump's words for the ICMP message (echo request ...), or empty",
            "src_mac": "the source MAC (tcpdump -e), or empty",
            "dst_mac": "the destination MAC (tcpdump -e), or empty",
            "length": "the length printed last, a number, or empty",
            "encapsulated": "true for a packet inside a tunnel",
            "detail": "the rest of the line, as printed",
        },
    },
    "capture_error": {
        "doc": "tcpdump on NODE could not capture",
        "fields": {"message": "the message as printed, e.g. ens9: No such device exists"},
    },
}

# Where a command starts: the line start, after a shell separator, or after a
# wrapper (sudo, watch -n 2, ip netns exec NS, docker exec CTR, timeout 5).
_COMMAND_START = (
    r"(?:^|[;&|(]\s*|\bexec\s+(?:-\S+\s+)*\S+\s+(?:--\s+)?"
    r"|\b(?:sudo|watch|time|nice|timeout(?:\s+-\S+)*\s+\S+)\s+(?:-\S+\s+(?:\d+\s+)?)*)"
)
COMMANDS = re.compile(
    _COMMAND_START + r"tcpdump(?=\s|$)"
    r"(?!.*\s(?:-D|--list-interfaces|-h|--help|--version|-J|--list-time-stamp-types|-L|--list-data-link-types)(?:\s|$))"
)
FILES = None

_TIMESTAMP_LINE = re.compile(r"^\d\d:\d\d:\d\d\.\d{6} ")
_LISTENING = re.compile(r"^(?:(?:tcpdump: )?listening on|reading from file) \S+, link-type ")
_HEADER = re.compile(r"^tcpdump: (?:verbose output suppressed|data link type|WARNING)")
_INFORMATIONAL = ("verbose output suppressed", "data link type", "WARNING")
# -i IF, -iIF, --interface=IF, or -i closing a cluster of flags (-ni eth0)
_COMMAND_IFACE = re.compile(r"(?:^|\s)(?:-[A-HJ-Za-hj-z]*i\s*|--interface[=\s])([^\s-]\S*)")
_ENCAPSULATIONS = ("VXLAN", "Geneve", "GENEVE")
_ETHERTYPE = re.compile(r"ethertype ([^\s,(]+)")
_MAC = re.compile(r"^[0-9a-fA-F]{2}(?::[0-9a-fA-F]{2}){5}$")
_DIRECTIONS = ("In", "Out", "M", "B", "P")
_ETHERTYPES = {"IPv4": "ip", "IPv6": "ip6", "ARP": "arp", "Reverse": "rarp"}
# Named IP protocols carried without ports.
_PORTLESS = {"VRRPv2": "vrrp", "VRRPv3": "vrrp", "igmp": "igmp", "IGMP": "igmp",
             "GREv0": "gre", "GREv1": "gre", "ESP": "esp", "AH": "ah", "OSPFv2": "ospf",
             "PIMv2": "pim", "CARPv2": "carp"}
_LENGTH = re.compile(r"\blength (\d+)")
_ARP_REQUEST = re.compile(r"who-has (\S+)(?: \([^)]*\))? tell (\S+?),?(?:\s|$)")
_ARP_REPLY = re.compile(r"Reply (\S+) is-at (\S+?),?(?:\s|$)")
_IPV4_WITH_PORT = re.compile(r"^(\d{1,3}(?:\.\d{1,3}){3})\.([\w-]+)$")


def looks_like(text: str) -> bool:
    """True when the text opens with tcpdump's banner or with timestamped packets."""
    lines = list(islice((line for line in text.split("\n") if line.strip()), 3))
    if not lines:
        return False
    if _HEADER.match(lines[0]) or _LISTENING.match(lines[0]):
        return True
    return all(_TIMESTAMP_LINE.match(line) and (" > " in line or " ARP, " in line) for line in lines)


class _Line(Transformer):
    """One line -> (what it is, data); applied while parsing (no parse tree)."""

    def packet(self, children):
        timestamp, interface, link, payload = children
        data = dict(payload)
        data["time"] = str(timestamp) if timestamp else None
        data["iface"], data["direction"] = str(interface).split() if interface else (None, None)
        data["src_mac"] = data["dst_mac"] = None
        if link:
            data["src_mac"], data["dst_mac"] = link["src_mac"], link["dst_mac"]
            data["direction"] = data["direction"] or link["direction"]
            if data["network"] is None:  # the ethertype says what the frame carries
                data["network"] = link["network"]
        return "packet", data

    def ethernet_header(self, children):
        header, vlan = (str(c) if c else None for c in children)
        source, _, rest = header.partition(" > ")
        return {"src_mac": source.lower(), "dst_mac": rest.partition(",")[0].lower(),
                "direction": None, "network": _ethertype(vlan or header)}

    def cooked_header(self, children):
        header, vlan = (str(c) if c else None for c in children)
        words = header.split()
        return {"src_mac": next(w for w in words if _MAC.match(w)).lower(), "dst_mac": None,
                "direction": words[0] if words[0] in _DIRECTIONS else None,
                "network": _ethertype(vlan or header)}

    def network_packet(self, children):
        network, _options, endpoints = children
        data = {"network": str(network).lower(), "src": None, "dst": None, "detail": None}
        if endpoints:
            data.update(endpoints)
        else:
            data["awaiting_endpoints"] = True  # -v: they come on the next line
        return data

    def framed_network_packet(self, children):
        return {"network": None, **children[0]}

    def arp_packet(self, children):
        return {"network": "arp", "src": None, "dst": None, "detail": str(children[0])}

    def framed_arp_packet(self, children):
        return {"network": "arp", "src": None, "dst": None, "detail": str(children[0])}

    def other_packet(self, children):
        word, detail = children
        return {"network": str(word).rstrip(",").lower(), "src": None, "dst": None,
                "detail": str(detail) if detail else None}

    def endpoints(self, children):
        addresses, detail = children
        src, _, dst = str(addresses)[:-1].partition(" > ")
        return {"src": src, "dst": dst, "detail": str(detail).rstrip() if detail else None}

    def capture_start(self, children):
        source, name, link_type, _title, _snapshot = children
        iface = str(name) if str(source).endswith("listening on") else None
        return "capture", {"iface": iface, "link_type": str(link_type)}

    def message(self, children):
        return "message", str(children[0])

    def statistics(self, children):
        return "statistics", None

    def interrupt(self, children):
        return "statistics", None


def _ethertype(text: str) -> str | None:
    """"... ethertype IPv4 (0x0800), ..." -> "ip"; "802.3" (LLC) -> None: the payload says.
    For a VLAN tag the inner ethertype is the one that counts."""
    match = _ETHERTYPE.search(text)
    if not match:
        return None
    return _ETHERTYPES.get(match.group(1), match.group(1).lower())


_PARSER = LazyLark(
    (Path(__file__).with_suffix(".lark")).read_text(),
    parser="lalr",
    cache=lark_cache(__file__),
    start=["line", "continuation"],
    maybe_placeholders=True,
    transformer=_Line(),
)

# Each distinct line read by lark once per process (base.LineReadings).
_READ = LineReadings(lambda line, start: _PARSER.parse(line, start=start))


def _split_port(endpoint: str) -> tuple[str, str] | None:
    """"10.0.0.1.45678" -> ("10.0.0.1", "45678"); "fe80::1.546" -> ("fe80::1", "546");
    None when the endpoint carries no port."""
    match = _IPV4_WITH_PORT.match(endpoint)
    if match:
        return match.group(1), match.group(2)
    host, dot, port = endpoint.rpartition(".")
    if not dot or not port:
        return None
    if ":" in host:
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            return None
        return host, port
    if re.fullmatch(r"\d{1,3}(?:\.\d{1,3}){2}", host):
        return None  # a bare IPv4 address, read wrongly as host.port
    return host, port


def _transport(network: str | None, src, dst, detail: str | None) -> dict:
    """What the decoded part says: protocol, ports, ICMP type, length."""
    detail = detail or ""
    facts = {"protocol": network or "unknown", "src": src, "dst": dst, "sport": None,
             "dport": None, "icmp_type": None, "length": None}
    lengths = _LENGTH.findall(detail)
    if lengths:
        facts["length"] = int(lengths[-1])
    if network == "arp":
        request, reply = _ARP_REQUEST.search(detail), _ARP_REPLY.search(detail)
        if request:
            facts["dst"], facts["src"] = request.group(1), request.group(2)
        elif reply:
            facts["src"] = reply.group(1)
        return facts
    if network not in ("ip", "ip6") or src is None:
        return facts
    while detail.startswith("["):  # -v checksum notes: "[icmp6 sum ok] ICMP6, ..."
        detail = detail.partition("] ")[2]
    if detail.startswith("HBH "):  # an IPv6 hop-by-hop header before MLD: "HBH ICMP6, ..."
        detail = detail[len("HBH "):]
    if detail.startswith("ICMP6"):
        facts["protocol"] = "icmp6"
        facts["icmp_type"] = detail[len("ICMP6"):].lstrip(", ").split(",")[0] or None
        return facts
    if detail.startswith("ICMP "):
        facts["protocol"] = "icmp"
        facts["icmp_type"] = detail[len("ICMP "):].split(",")[0]
        return facts
    first_word = detail.split(",")[0].split(" ")[0]
    if first_word in _PORTLESS:
        facts["protocol"] = _PORTLESS[first_word]
        return facts
    source, destination = _split_port(src), _split_port(dst)
    if source and destination:
        facts["src"], facts["sport"] = source
        facts["dst"], facts["dport"] = destination
        if detail.startswith("Flags ["):
            facts["protocol"] = "tcp"
        elif first_word.lower() in ("sctp", "dccp"):
            facts["protocol"] = first_word.lower()
        else:
            facts["protocol"] = "udp"  # "UDP, length 3", or what a UDP port decoder printed
    return facts


def parse(text: str, command: str = "") -> ParseResult:
    result = ParseResult()
    iface_match = _COMMAND_IFACE.search(command)
    capture_iface = iface_match.group(1) if iface_match else None
    last_packet: dict | None = None   # for -v continuations and encapsulated packets
    awaiting: tuple | None = None     # a -v header (record, network) whose endpoints come next
    # Numbered by "\n" alone, as the transcript reader counts lines.
    for number, raw in enumerate(text.split("\n"), start=1):
        line = raw.rstrip("\r")
        if not line.strip():
            continue
        indented = line[0] in " \t"
        try:
            if indented:
                kind, data = "endpoints", _READ(line, "continuation")
            else:
                kind, data = _READ(line, "line")
        except LarkError as error:
            if indented and last_packet is not None:
                continue  # -v decode lines and -x hex dumps below a packet: read, let go
            result.problems.append(lark_problem(error, number - 1, number))
            last_packet = awaiting = None
            continue
        if kind == "endpoints":
            if awaiting is None:
                if last_packet is not None:
                    continue  # a further -vv decode line that happens to read as addresses
                result.problems.append(Problem(number, "addresses with no packet line above them"))
                continue
            record, network = awaiting
            record.update(_transport(network, data["src"], data["dst"], data["detail"]))
            record["detail"] = data["detail"]
            awaiting = None
        elif kind == "packet":
            encapsulated = (data["time"] is None and last_packet is not None
                            and (last_packet["detail"] or "").startswith(_ENCAPSULATIONS))
            if data["time"] is None and data["src"] is None and data["src_mac"] is None \
                    and not data.get("awaiting_endpoints") and not encapsulated:
                # With neither time nor endpoints, "word rest-of-line" is any text at all
                # ("default via 10.0.0.1 dev eth0"), not a packet.
                result.problems.append(Problem(number, "not a packet line: no time and no endpoints"))
                last_packet = awaiting = None
                continue
            record = {"type": "packet", "line": number,
                      "iface": data["iface"] or capture_iface, "direction": data["direction"],
                      "time": last_packet["time"] if encapsulated else data["time"]}
            record.update(_transport(data["network"], data["src"], data["dst"], data["detail"]))
            record.update({"src_mac": data["src_mac"], "dst_mac": data["dst_mac"],
                           "encapsulated": encapsulated, "detail": data["detail"]})
            if encapsulated:
                record["iface"], record["direction"] = last_packet["iface"], last_packet["direction"]
            result.records.append(_ordered(record))
            last_packet = result.records[-1]
            awaiting = (last_packet, data["network"]) if data.get("awaiting_endpoints") else None
        elif kind == "capture":
            if data["iface"] and not capture_iface:
                capture_iface = data["iface"]
            result.records.append({"type": "capture", "line": number, **data})
            last_packet = awaiting = None
        elif kind == "message":
            message = data[len("tcpdump: "):] if data.startswith("tcpdump: ") else None
            if message is not None and not message.startswith(_INFORMATIONAL):
                result.records.append({"type": "capture_error", "line": number, "message": message})
            last_packet = awaiting = None
        else:  # statistics, ^C
            last_packet = awaiting = None
    return result


_KEYS = ("type", "line", "iface", "direction", "time", "protocol", "src", "dst", "sport",
         "dport", "icmp_type", "src_mac", "dst_mac", "length", "encapsulated", "detail")


def _ordered(record: dict) -> dict:
    return {key: record[key] for key in _KEYS}
