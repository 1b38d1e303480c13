"""``iptables -L`` listings: chains and rules as records.

Reads the output of ``iptables -L [-t TABLE] [CHAIN] [-v] [-n] [-x] [--line-numbers]``
(any order, ``--list``, ``-nvL``, ``--table nat``), as printed by iptables 1.4 / legacy
(``all  --  any    ens4    10.20.4.0/22   anywhere   to:10.20.0.11``, host and service
names without ``-n``) and by 1.8 nf_tables (``0    --  *      ens4    10.20.4.0/22   0.0.0.0/0``).
The table comes from the command (``-t``/``--table``). Where the command names none (or
there is no command: a paste), the table is read from the chain names, the way a person
reads it: a listing starts a new table where a built-in chain comes again or comes after
the user chains (iptables prints them in hook order, then the user chains), and the
built-in chains it holds say which table it is (PREROUTING and
POSTROUTING without FORWARD: nat; with FORWARD: mangle; PREROUTING and OUTPUT alone: raw;
else filter), so ``iptables -L; iptables -t nat -L`` pasted without prompts is read as
two tables.

This module also owns the record schema shared with ``iptables_save`` so that later code
never needs to know which of the two formats a fact came from:

chain  ``{"type": "iptables_chain", "line", "table", "chain", "policy": "ACCEPT"|None,
          "references": int|None, "packets": int|None, "bytes": int|None}``
rule   ``{"type": "iptables_rule", "line", "table", "chain", "num", "packets", "bytes",
          "target", "protocol", "in", "in_negated", "out", "out_negated", "source",
          "source_negated", "destination", "destination_negated", "sport", "dport",
          "ctstate", "ctstate_negated", "to_address", "to_port", "reject_with",
          "icmp_type", "comment", "extra"}``

Normal forms: addresses are CIDR (``anywhere`` -> ``0.0.0.0/0``, ``10.20.4.5`` ->
``10.20.4.5/32``; a host name stays as printed); ``any``/``*`` interfaces are None;
protocol numbers become names (0 -> ``all``, 6 -> ``tcp``, 17 -> ``udp``, 1 -> ``icmp``...)
and a negated protocol reads ``!tcp``; ports are numbers as text (``dpt:http`` -> ``"80"``,
ranges ``"1024:65535"``, lists ``"22,80"``, negated ``"!22"``); ICMP types are numbers as
text (``echo-request`` -> ``"8"``, ``icmptype 3 code 4`` -> ``"3/4"``, ``255`` -> ``"any"``);
scaled counters are multiplied out (``15K`` -> 15000, as iptables rounds them). ``extra``
keeps, word by word, any match text that no field holds ("" when all was understood).

Worked example, ``iptables -L -t nat -v`` on a nova-network node::

    Chain nova-network-PREROUTING (1 references)
     pkts bytes target     prot opt in     out     source               destination
        8   480 DNAT       tcp  --  any    any     anywhere             169.254.169.254      tcp dpt:http to:10.0.0.7:8775

gives, for line 3::

    {"type": "iptables_rule", "line": 3, "table": "nat", "chain": "nova-network-PREROUTING",
     "num": None, "packets": 8, "bytes": 480, "target": "DNAT", "protocol": "tcp",
     "in": None, "in_negated": False, "out": None, "out_negated": False,
     "source": "0.0.0.0/0", "source_negated": False,
     "destination": "169.254.169.254/32", "destination_negated": False,
     "sport": None, "dport": "80", "ctstate": None, "ctstate_negated": False,
     "to_address": "10.0.0.7", "to_port": "8775", "reject_with": None,
     "icmp_type": None, "comment": None, "extra": ""}

Speed: lines are parsed one at a time by a multi-start LALR parser, and a shape cache
(``grammar/shapecache.py``) parses each line shape once; the other lines of that shape
are filled from a template.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import NamedTuple

from grammar.lark_runtime import LarkError, Token, Transformer, UnexpectedInput

from grammar.base import ParseResult, Problem, lark_problem, lark_cache, LazyLark
from grammar.shapecache import Derived, ShapeCache, SlotScanner, identity

KIND = "iptables_list"
# The facts this kind gives, each field in words (collected by kb/schema.py into
# rules/FACTS.md; node, type and prov are on every fact).
FACT_TYPES = {
    "iptables_chain": {
        "doc": "a chain of one of NODE's netfilter tables, with its policy",
        "fields": {
            "table": "filter, nat, mangle or raw",
            "chain": "the chain's name, e.g. FORWARD or nova-network-snat",
            "policy": "ACCEPT or DROP for a built-in chain, empty for a user chain",
            "references": "how many rules jump to a user chain, or empty",
            "packets": "the policy's packet counter (-v), or empty",
            "bytes": "the policy's byte counter (-v), or empty",
        },
    },
    "iptables_rule": {
        "doc": "a rule of one of NODE's netfilter chains, in order",
        "fields": {
            "table": "filter, nat, mangle or raw",
            "chain": "the chain it is in",
            "num": "its position in the chain, from 1",
            "packets": "its packet counter (-v), or empty",
            "bytes": "its byte counter (-v), or empty",
            "target": "ACCEPT, DROP, SNAT, MASQUERADE, a user chain ...",
            "protocol": "all, tcp, udp, icmp ... (!tcp when negated)",
            "in": "the input interface it requires, or empty for any",
            "in_negated": "true for ! -i",
            "out": "the output interface it requires, or empty for any",
            "out_negated": "true for ! -o",
            "source": "the source it requires, as CIDR",
            "source_negated": "true for ! -s",
            "destination": "the destination it requires, as CIDR",
            "destination_negated": "true for ! -d",
            "sport": "the source port(s) as text, or empty",
            "dport": "the destination port(s) as text, or empty",
            "ctstate": "the conntrack states it requires (-m conntrack --ctstate, or -m state --state: the kernel's same test), or empty",
            "ctstate_negated": "true for ! --ctstate or ! --state",
            "to_address": "where SNAT/DNAT translate to, or empty",
            "to_port": "the port DNAT/REDIRECT translate to, or empty",
            "reject_with": "the ICMP a REJECT answers with, or empty",
            "icmp_type": "the ICMP type it requires as a number (8, 3/4, any), or empty",
            "comment": "its comment (-m comment), or empty",
            "extra": "any other match options, as printed, or empty",
        },
    },
}
COMMANDS = re.compile(
    r"(?:^|[\s;|&(])(?:\S*/)?iptables(?:-legacy|-nft)?\s"
    r"(?:.*\s)?(?:-[a-zA-Z]*L[a-zA-Z]*|--list)(?=\s|=|$)"
)
FILES = None

# ---------------------------------------------------------------------------------------
# The record schema and the normal forms, shared with iptables_save.

CHAIN_KEYS = ("type", "line", "table", "chain", "policy", "references", "packets", "bytes")
RULE_KEYS = (
    "type", "line", "table", "chain", "num", "packets", "bytes", "target", "protocol",
    "in", "in_negated", "out", "out_negated", "source", "source_negated", "destination",
    "destination_negated", "sport", "dport", "ctstate", "ctstate_negated",
    "to_address", "to_port", "reject_with", "icmp_type", "comment", "extra",
)
ANYWHERE = "0.0.0.0/0"
# Every record of a type has exactly these fields, in this order (grammar/base.py):
# each starts from new_chain_fields() or new_rule_fields() and is given no other.
RECORD_FIELDS = {"iptables_chain": CHAIN_KEYS, "iptables_rule": RULE_KEYS}


def new_chain_fields() -> dict:
    fields = dict.fromkeys(CHAIN_KEYS)
    fields["type"] = "iptables_chain"
    return fields


def new_rule_fields() -> dict:
    """A rule with nothing matched: every key present, in schema order."""
    fields = dict.fromkeys(RULE_KEYS)
    fields.update(type="iptables_rule", protocol="all", source=ANYWHERE, destination=ANYWHERE,
                  in_negated=False, out_negated=False, source_negated=False,
                  destination_negated=False, ctstate_negated=False, extra="")
    return fields


# Names getservbyport() gives on Debian and RHEL hosts for the ports a lab firewall uses;
# a name not here is kept as printed.
SERVICE_PORTS = {
    "tcpmux": "1", "echo": "7", "discard": "9", "daytime": "13", "ftp-data": "20",
    "ftp": "21", "ssh": "22", "telnet": "23", "smtp": "25", "time": "37", "whois": "43",
    "tacacs": "49", "domain": "53", "bootps": "67", "bootpc": "68", "tftp": "69",
    "gopher": "70", "finger": "79", "http": "80", "www": "80", "kerberos": "88",
    "pop3": "110", "sunrpc": "111", "auth": "113", "ident": "113", "nntp": "119",
    "ntp": "123", "epmap": "135", "loc-srv": "135", "netbios-ns": "137",
    "netbios-dgm": "138", "netbios-ssn": "139", "imap2": "143", "imap": "143",
    "snmp": "161", "snmp-trap": "162", "bgp": "179", "ldap": "389", "https": "443",
    "microsoft-ds": "445", "kpasswd": "464", "submissions": "465", "urd": "465",
    "isakmp": "500", "exec": "512", "biff": "512", "login": "513", "who": "513",
    "shell": "514", "syslog": "514", "printer": "515", "route": "520", "router": "520",
    "dhcpv6-client": "546", "dhcpv6-server": "547", "submission": "587", "ipp": "631",
    "ldaps": "636", "domain-s": "853", "rsync": "873", "ftps-data": "989", "ftps": "990",
    "imaps": "993", "pop3s": "995", "socks": "1080", "openvpn": "1194",
    "ms-sql-s": "1433", "ms-sql-m": "1434", "radius": "1812", "radius-acct": "1813",
    "nfs": "2049", "etcd-client": "2379", "etcd-server": "2380", "iscsi-target": "3260",
    "iscsi": "3260", "mysql": "3306", "ms-wbt-server": "3389", "epmd": "4369",
    "ipsec-nat-t": "4500", "commplex-main": "5000", "commplex-link": "5001",
    "sip": "5060", "xmpp-client": "5222", "mdns": "5353", "postgresql": "5432",
    "postgres": "5432", "amqps": "5671", "amqp": "5672", "vnc-server": "5900",
    "x11": "6000", "redis": "6379", "ircd": "6667", "irdmi": "8000", "http-alt": "8080",
    "webcache": "8080", "pcsync-https": "8443", "armtechdaemon": "9292",
    "memcache": "11211", "openstack-id": "35357",
}

# ICMP type names iptables prints without -n, as "type" or "type/code".
ICMP_TYPES = {
    "any": "any", "echo-reply": "0", "pong": "0", "destination-unreachable": "3",
    "network-unreachable": "3/0", "host-unreachable": "3/1", "protocol-unreachable": "3/2",
    "port-unreachable": "3/3", "fragmentation-needed": "3/4", "source-route-failed": "3/5",
    "network-unknown": "3/6", "host-unknown": "3/7", "network-prohibited": "3/9",
    "host-prohibited": "3/10", "TOS-network-unreachable": "3/11",
    "TOS-host-unreachable": "3/12", "communication-prohibited": "3/13",
    "host-precedence-violation": "3/14", "precedence-cutoff": "3/15", "source-quench": "4",
    "redirect": "5", "network-redirect": "5/0", "host-redirect": "5/1",
    "TOS-network-redirect": "5/2", "TOS-host-redirect": "5/3", "echo-request": "8",
    "ping": "8", "router-advertisement": "9", "router-solicitation": "10",
    "time-exceeded": "11", "ttl-exceeded": "11", "ttl-zero-during-transit": "11/0",
    "ttl-zero-during-reassembly": "11/1", "parameter-problem": "12",
    "ip-header-bad": "12/0", "required-option-missing": "12/1", "timestamp-request": "13",
    "timestamp-reply": "14", "address-mask-request": "17", "address-mask-reply": "18",
}

# /etc/protocols numbers as iptables -n prints them, so -n and name listings agree.
PROTOCOL_NAMES = {
    "0": "all", "1": "icmp", "2": "igmp", "4": "ipencap", "6": "tcp", "17": "udp",
    "41": "ipv6", "47": "gre", "50": "esp", "51": "ah", "58": "ipv6-icmp", "112": "vrrp",
    "132": "sctp", "136": "udplite",
}

_BARE_IPV4 = re.compile(r"\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}")
_COUNTER_SCALE = {"K": 1000, "M": 1000 ** 2, "G": 1000 ** 3, "T": 1000 ** 4}


def normalise_address(text: str) -> str:
    if "/" in text:
        return text
    if text == "anywhere":
        return ANYWHERE
    if _BARE_IPV4.fullmatch(text):
        return text + "/32"
    return text


def _address_slot_as_cidr(text: str) -> str:
    """normalise_address of a shape's IPv4 slot: a dotted quad, with or without prefix."""
    return text if "/" in text else text + "/32"


# written out in a template (grammar/shapecache.py): two per rule of a nat listing
_address_slot_as_cidr.inline = '({0} if "/" in {0} else {0} + "/32")'


normalise_address.for_slot_kind = {"...": _address_slot_as_cidr}


def normalise_interface(text: str) -> str | None:
    return None if text in ("any", "*") else text


def normalise_protocol(negation: str, text: str) -> str:
    text = text.lower()
    return negation + PROTOCOL_NAMES.get(text, text)


# Counters are mostly small (a lab's rules see few packets); looking one up costs a
# fraction of int() of its digits, and every rule of a -v listing has two.
_SMALL_NUMBERS = {str(number): number for number in range(1000)}


class _Counters(dict):
    """Small counters' texts and values, and counter() for any other text."""

    def __missing__(self, text: str) -> int:
        return counter(text)


def counter(text: str) -> int:
    """``4523`` -> 4523; ``15K`` -> 15000 (iptables divides by 1000 and rounds)."""
    small = _SMALL_NUMBERS.get(text)
    if small is not None:
        return small
    if text.isdigit():
        return int(text)
    return int(text[:-1]) * _COUNTER_SCALE[text[-1]]


# A shape's integer slot (digits only) read by a lookup in C where it is a small number:
# no call of Python for either counter of a -v listing's rule.
counter.for_slot_kind = {"": _Counters(_SMALL_NUMBERS).__getitem__}


def port_value(text: str) -> str:
    """``http`` -> ``80``; ``ssh,http:90`` -> ``22,80:90``; numbers stay."""
    if text.isdigit():
        return text
    return ",".join(":".join(SERVICE_PORTS.get(port, port) for port in item.split(":"))
                    for item in text.split(","))


def negatable_port(negation: str, text: str) -> str:
    return negation + port_value(text)


def negatable_port_range(negation: str, first: str, last: str) -> str:
    return f"{negation}{port_value(first)}:{port_value(last)}"


def icmp_number(negation: str, icmp_type: str, code: str) -> str:
    if icmp_type == "255" and not code:
        return negation + "any"        # iptables stores "any" as type 255
    return negation + (f"{icmp_type}/{code}" if code else icmp_type)


def icmp_name(negation: str, text: str) -> str:
    return negation + ICMP_TYPES.get(text, text)


def state_list(text: str) -> list[str]:
    return text.split(",")


def listed_comment(text: str) -> str:
    """``/* lab gateway */`` -> ``lab gateway`` (iptables prints "/* %s */")."""
    inner = text[2:-2]
    if inner.startswith(" ") and inner.endswith(" ") and len(inner) >= 2:
        inner = inner[1:-1]
    return inner


def joined(*texts: str) -> str:
    return "".join(texts)


def extra_text(tokens: list) -> Derived | str:
    """The words no field holds, as one string: adjacent tokens stay glued
    (``52:54:00:...``), others are separated by one space."""
    if not tokens:
        return ""
    parts: list = [tokens[0]]
    for previous, token in zip(tokens, tokens[1:]):
        parts.append("" if previous.end_pos == token.start_pos else " ")
        parts.append(token)
    return Derived(joined, *parts)


def command_table(command: str) -> str:
    """The table a command names with ``-t``/``--table``; ``filter`` when none."""
    found = _TABLE_OPTION.search(command or "")
    return found.group(1) if found else "filter"


_BUILTIN_CHAINS = ("PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING")


def table_of_chains(builtins: set[str], default: str) -> str:
    """The table a listing is of, from the built-in chains it shows.

    >>> table_of_chains({"PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"}, "filter")
    'nat'
    >>> table_of_chains({"FORWARD"}, "filter"), table_of_chains({"PREROUTING", "OUTPUT"}, "filter")
    ('filter', 'raw')
    """
    if "FORWARD" in builtins:
        return "mangle" if builtins & {"PREROUTING", "POSTROUTING"} else "filter"
    if "POSTROUTING" in builtins:
        return "nat"
    if "PREROUTING" in builtins:
        return "raw" if builtins <= {"PREROUTING", "OUTPUT"} else "nat"
    return default


def _tables_by_chain_names(records: list[dict], default: str) -> None:
    """Give each table of a listing that named none its table (see the module's doc)."""
    sections: list[list[dict]] = [[]]
    last_hook = -1            # iptables prints the built-in chains in hook order
    after_user_chain = False
    for record in records:
        if record["type"] == "iptables_chain":
            name = record.get("chain")
            if name in _BUILTIN_CHAINS:
                hook = _BUILTIN_CHAINS.index(name)
                if hook <= last_hook or after_user_chain:
                    sections.append([])
                    after_user_chain = False
                last_hook = hook
            else:
                after_user_chain = True
        sections[-1].append(record)
    for section in sections:
        builtins = {r.get("chain") for r in section
                    if r["type"] == "iptables_chain" and r.get("chain") in _BUILTIN_CHAINS}
        table = table_of_chains(builtins, default)
        for record in section:
            record["table"] = table


_TABLE_OPTION = re.compile(r"(?:^|\s)(?:-[a-zA-Z]*t\s*|--table(?:\s+|=))([A-Za-z_][\w-]*)")

# ---------------------------------------------------------------------------------------
# The transformer: one method per grammar rule.


class Clause(NamedTuple):
    """One match/target phrase of a rule: the fields it sets and the tokens it spans."""

    fields: dict
    tokens: list
    understood: bool = True


class Column(NamedTuple):
    """One of the fixed columns of a rule line."""

    name: str
    value: object
    negated: bool = False


def _tokens_of(children) -> list:
    """Every token under these children, in text order (for ``extra``)."""
    found = []
    for child in children:
        if isinstance(child, Token):
            found.append(child)
        elif isinstance(child, Clause):
            found.extend(child.tokens)
        elif hasattr(child, "children"):
            found.extend(_tokens_of(child.children))
    return found


def _typed(children, *types: str) -> list:
    return [child for child in children if isinstance(child, Token) and child.type in types]


def _negation(children) -> Token | str:
    """The ``!`` token when present (a constant part of a Derived value), else ""."""
    found = _typed(children, "NEGATION")
    return found[0] if found else ""


def assemble_rule(children) -> dict:
    """Columns and clauses of one rule line -> rule fields (without line/table/chain)."""
    fields = new_rule_fields()
    extra: list = []
    set_by_clauses: set = set()
    for child in children:
        if isinstance(child, Column):
            fields[child.name] = child.value
            if child.negated:
                fields[child.name + "_negated"] = True
        elif isinstance(child, Clause):
            # A field already set by an earlier phrase is not overwritten: the later
            # phrase is kept word for word in extra instead, so nothing is silently lost.
            if not child.understood or set_by_clauses.intersection(child.fields):
                extra.extend(child.tokens)
                continue
            fields.update(child.fields)
            set_by_clauses.update(child.fields)
    fields["extra"] = extra_text(extra)
    return fields


class ListingTransformer(Transformer):
    # -- chain and column headers

    def chain_header(self, children):
        fields = new_chain_fields()
        fields["chain"] = Derived(identity, _typed(children, "CHAIN_NAME")[0])
        for child in children:
            if isinstance(child, dict):
                fields.update(child)
        return fields

    def policy_summary(self, children):
        counters = _typed(children, "COUNTER")
        return {"policy": Derived(identity, _typed(children, "POLICY")[0]),
                "packets": Derived(counter, counters[0]) if counters else None,
                "bytes": Derived(counter, counters[1]) if counters else None}

    def references_summary(self, children):
        return {"references": Derived(int, _typed(children, "REFERENCE_COUNT")[0])}

    def column_header(self, children):
        numbered = bool(_typed(children, "NUMBER_HEADING"))
        counted = bool(_typed(children, "PACKETS_HEADING"))
        layout = ("numbered_" if numbered else "") + ("counted_rule" if counted else "rule")
        return {"layout": layout}

    # -- rule lines

    def rule(self, children):
        return children[0]

    def loose_rule(self, children):
        return children[0]

    def numbered_rule(self, children):
        fields = children[1]
        fields["num"] = Derived(int, children[0])
        return fields

    loose_numbered_rule = numbered_rule

    def counted_rule(self, children):
        fields = children[2]
        fields["packets"] = Derived(counter, children[0])
        fields["bytes"] = Derived(counter, children[1])
        return fields

    loose_counted_rule = counted_rule

    def numbered_counted_rule(self, children):
        fields = children[3]
        fields["num"] = Derived(int, children[0])
        fields["packets"] = Derived(counter, children[1])
        fields["bytes"] = Derived(counter, children[2])
        return fields

    loose_numbered_counted_rule = numbered_counted_rule

    def rule_columns(self, children):
        return assemble_rule(children)

    counted_columns = loose_rule_columns = loose_counted_columns = rule_columns

    def target(self, children):
        return Column("target", Derived(identity, children[0]))

    def protocol(self, children):
        name = _typed(children, "PROTOCOL")[0]
        return Column("protocol", Derived(normalise_protocol, _negation(children), name))

    def in_interface(self, children):
        name = _typed(children, "INTERFACE")[0]
        return Column("in", Derived(normalise_interface, name), bool(_negation(children)))

    def out_interface(self, children):
        name = _typed(children, "INTERFACE")[0]
        return Column("out", Derived(normalise_interface, name), bool(_negation(children)))

    def source(self, children):
        name = _typed(children, "ADDRESS")[0]
        return Column("source", Derived(normalise_address, name), bool(_negation(children)))

    def destination(self, children):
        name = _typed(children, "ADDRESS")[0]
        return Column("destination", Derived(normalise_address, name), bool(_negation(children)))

    # -- match and target phrases

    def port_match(self, children):
        fields: dict = {}
        for child in children:
            if isinstance(child, Clause):
                fields.update(child.fields)
        return Clause(fields, _tokens_of(children))

    def _port(self, field, children):
        port = _typed(children, "PORT")[0]
        return Clause({field: Derived(negatable_port, _negation(children), port)}, _tokens_of(children))

    def _port_range(self, field, children):
        first, last = _typed(children, "PORT")
        value = Derived(negatable_port_range, _negation(children), first, last)
        return Clause({field: value}, _tokens_of(children))

    def source_port(self, children):
        return self._port("sport", children)

    def destination_port(self, children):
        return self._port("dport", children)

    def source_port_range(self, children):
        return self._port_range("sport", children)

    def destination_port_range(self, children):
        return self._port_range("dport", children)

    def tcp_flags(self, children):
        return Clause({}, _tokens_of(children))

    def icmp_type_match(self, children):
        numbers = _typed(children, "ICMP_NUMBER")
        code = numbers[1] if len(numbers) > 1 else ""
        value = Derived(icmp_number, _negation(children), numbers[0], code)
        return Clause({"icmp_type": value}, _tokens_of(children))

    def icmp_match(self, children):
        names = _typed(children, "ICMP_NAME")
        if names:
            value = Derived(icmp_name, _negation(children), names[0])
        else:
            numbers = _typed(children, "ICMP_NUMBER")
            code = numbers[1] if len(numbers) > 1 else ""
            value = Derived(icmp_number, _negation(children), numbers[0], code)
        return Clause({"icmp_type": value}, _tokens_of(children))

    # "-m state --state" is the kernel's conntrack state test under its older name: one
    # field says either (and a rule's fields stay few enough to be held compactly)
    def ctstate_match(self, children):
        states = _typed(children, "STATE_LIST")[0]
        return Clause({"ctstate": Derived(state_list, states),
                       "ctstate_negated": bool(_negation(children))}, _tokens_of(children))

    state_match = ctstate_match

    def multiport_match(self, children):
        direction = str(_typed(children, "MULTIPORT_DIRECTION")[0])
        ports = Derived(negatable_port, _negation(children), _typed(children, "PORT_LIST")[0])
        if direction == "dports":
            return Clause({"dport": ports}, _tokens_of(children))
        if direction == "sports":
            return Clause({"sport": ports}, _tokens_of(children))
        # "ports" matches either direction: no single field says that.
        return Clause({}, _tokens_of(children), understood=False)

    def comment(self, children):
        return Clause({"comment": Derived(listed_comment, children[0])}, _tokens_of(children))

    def reject_match(self, children):
        reject_type = _typed(children, "REJECT_TYPE")[0]
        return Clause({"reject_with": Derived(identity, reject_type)}, _tokens_of(children))

    def _understood(self, children):
        return Clause({}, _tokens_of(children))

    log_target = log_flags = log_level = log_prefix = log_switch = _understood
    limit_rate = mark_match = mark_target = _understood
    tcpmss_target = checksum_target = _understood

    def limit_match(self, children):
        # "limit: avg" is the limit module; "limit: up to"/"above" is hashlimit, whose
        # buckets and modes no field holds: keep it whole in extra.
        tokens = _tokens_of(children)
        return Clause({}, tokens, understood=any(str(t) == "avg" for t in tokens))

    def masquerade_ports(self, children):
        ports = _typed(children, "NAT_PORTS")[0]
        return Clause({"to_port": Derived(identity, ports)}, _tokens_of(children))

    redirect_ports = masquerade_ports

    def nat_destination(self, children):
        address = _typed(children, "NAT_ADDRESS")[0]
        ports = _typed(children, "NAT_PORTS")
        fields = {"to_address": Derived(identity, address),
                  "to_port": Derived(identity, ports[0]) if ports else None}
        return Clause(fields, _tokens_of(children))

    def unknown_piece(self, children):
        return Clause({}, _tokens_of(children), understood=False)


# ---------------------------------------------------------------------------------------
# Line-by-line driver.

RULE_LAYOUTS = ("numbered_counted_rule", "counted_rule", "numbered_rule", "rule")
_STARTS = ["chain_header", "column_header", *RULE_LAYOUTS, *(f"loose_{s}" for s in RULE_LAYOUTS)]

PARSER = LazyLark(
    (Path(__file__).with_suffix(".lark")).read_text(),
    parser="lalr",
    cache=lark_cache(__file__),
    start=_STARTS,
    keep_all_tokens=True,
    transformer=ListingTransformer(),
)

_CHAIN_WORD = ("Chain ", "Chain\t")
_HEADING_WORDS = ("num", "pkts", "target")
_COLUMN_HEADER = re.compile(r"(?:num\s+)?(?:pkts\s+bytes\s+)?target\s+prot\s+opt\s")
_LOOKS_LIKE = re.compile(
    r"\s*(?:Chain\s+\S+\s+\((?:policy\s+[A-Z]+|\d+\s+references)"
    r"|(?:num\s+)?(?:pkts\s+bytes\s+)?target\s+prot\s+opt\s)"
)


def parse_line_fields(line: str, start: str) -> dict:
    """Fields (with Derived values) of one line read from ``start``. A rule whose match
    text the strict grammar does not know is read again by its loose twin, which keeps
    that text in ``extra``; when both fail the strict error is the one reported."""
    try:
        return PARSER.parse(line, start=start)
    except UnexpectedInput as strict_error:
        if start not in RULE_LAYOUTS:
            raise
        try:
            return PARSER.parse(line, start="loose_" + start)
        except UnexpectedInput:
            raise strict_error from None


def _command_layout(command: str) -> str | None:
    """The rule layout the command asks for, used until a column header says otherwise."""
    if not command:
        return None
    words = command.split()
    verbose = any(w == "--verbose" or (re.fullmatch(r"-[a-zA-Z]+", w) and "v" in w) for w in words)
    numbered = "--line-numbers" in words
    return ("numbered_" if numbered else "") + ("counted_rule" if verbose else "rule")


def _guess_layout(cache: ShapeCache, line: str) -> tuple[str, dict]:
    """With no column header and no command: the first layout that reads this rule."""
    error = None
    for layout in RULE_LAYOUTS:
        try:
            return layout, cache.fields(line, layout)
        except UnexpectedInput as failed:
            error = error or failed
    raise error


def looks_like(text: str) -> bool:
    for line in text.splitlines()[:5]:
        if line.strip():
            return bool(_LOOKS_LIKE.match(line))
    return False


# Scaled counters ("15K") are slots too, so busy counters do not multiply shapes.
_CACHE = ShapeCache(parse_line_fields, SlotScanner(scaled_counters=True))


def parse(text: str, command: str = "") -> ParseResult:
    result = ParseResult()
    result.records.extend(each_record(text.split("\n"), command, result.problems))
    return result


def each_record(lines: list[str], command: str = "", problems: list[Problem] | None = None):
    """``parse``'s records one at a time, each as soon as its line is read (``lines``:
    the text's lines, a list or any iterable; a problem is appended to ``problems`` as
    it is met). A reader that makes each record a fact before it asks for the next
    never holds them all: a 20,000-rule listing's records would take 16 MB at once.
    Where the command names no table, the chains tell it (``_tables_by_chain_names``)
    once all are read, and the records come then."""
    if problems is None:
        problems = []
    records = _records(lines, command, problems)
    if _TABLE_OPTION.search(command or "") is not None:
        return records
    return _told_by_chains(records, command_table(command))


def _told_by_chains(records, default: str):
    held = list(records)
    _tables_by_chain_names(held, default)
    yield from held


def _records(lines: list[str], command: str, problems: list[Problem]):
    """Each line's record, its table the one the command names (or filter)."""
    table = command_table(command)
    layout = _command_layout(command)
    cache = _CACHE
    fields_of = cache.fields
    chain = None
    for number, line in enumerate(lines, 1):
        stripped = line.lstrip()
        if not stripped:
            continue
        try:
            if stripped.startswith(_CHAIN_WORD):
                fields = cache.fields(line, "chain_header")
                chain = fields["chain"]
            elif stripped.startswith(_HEADING_WORDS) and _COLUMN_HEADER.match(stripped):
                layout = cache.fields(line, "column_header")["layout"]
                continue
            elif layout is None:
                layout, fields = _guess_layout(cache, line)
            else:
                fields = fields_of(line, layout)
            fields["line"] = number
            fields["table"] = table
            if fields["type"] == "iptables_rule":
                fields["chain"] = chain
        except LarkError as error:
            problems.append(lark_problem(error, line_offset=number - 1))
            continue
        except Exception as error:  # a defect must not lose the rest of the listing
            problems.append(Problem(number, f"internal error: {error!r}"))
            continue
        yield fields
