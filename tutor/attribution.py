"""Whose evidence is it: reading a message and attributing what it pastes to a node.

Output blocks are found anywhere in a message, with prose around them, by the parsers'
own recognition (grammar/transcript.py, grammar/kinds.py). A block with a prompt names
its node. A block without one is attributed only when the evidence says whose it is:
the student names the node in the same message, its addresses (or every one of its
interfaces) belong to one node already seen, or it goes on with the listing the last
paste ended with. Otherwise it is held and the student is asked which node it is from.
A correction ("that was net01") moves the last paste's facts to the node named.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from grammar import kinds
from grammar.transcript import Block, Evidence, read_block, split_blocks
from tutor import intent
from tutor.cache import forget
from tutor.plain import known_facts
from tutor.roles import ROLES
from tutor.state import GATHER, SYMPTOM, WHICH, Held
from tutor.words import md

# What a single line with no prompt must parse into to count as evidence rather than prose.
_ONE_LINE_EVIDENCE = {"log_entry", "packet", "route", "iptables_rule", "address", "capture",
                      "sysctl", "config_option"}


@dataclass
class _Read:
    evidence: Evidence | None = None
    commands: list = field(default_factory=list)
    unattributed: bool = False


class Attribution:
    """Reading a message: its evidence and whose it is. A part of dialogue.Conversation."""

    def read(self, text: str) -> "_Read":
        """The evidence in a message, wherever it is in it, and whose it is.

        Blocks with a prompt name their node. A block without one is attributed only
        when the evidence says whose it is: the student names the node in the same
        message, its addresses (or all its interfaces) belong to one node already seen,
        or it goes on with the listing the last paste ended with. Otherwise the message
        is held (``unattributed``) and the student is asked."""
        if "\x00" in text:
            return _Read()
        source = f"message {self.seq}"
        blocks = _peel_prose(split_blocks(text, source, None))
        prose = "\n".join("\n".join(b.lines) for b in blocks if not b.command and b.kind is None)
        named = self.node_named(prose) if prose.strip() else None
        if "\n" not in text.strip() and not any(b.command for b in blocks):
            types = {f.get("type") for b in blocks if b.kind is not None for f in read_block(b).facts}
            if not types & _ONE_LINE_EVIDENCE:
                return _Read()   # one line of prose that happens to parse ("X is not installed")
        evidence = Evidence()
        commands = []
        unattributed = False
        for block in blocks:
            if block.command:
                commands.append([block.node, block.command])
            if not block.command and block.kind is None:
                continue
            continued = None
            if block.node is None and not block.command:
                continued = self.continued_listing(block)
                if continued is not None:
                    block.node, block.command = continued
            read = read_block(block)
            for fact in read.facts if continued else []:
                fact["continues"] = True      # the rest of an earlier paste, not a new run of it
            if block.node is None and read.facts:
                node = named or self.node_by_evidence(read.facts)
                if node is None:
                    unattributed = True
                    continue
                for fact in read.facts:
                    fact["node"] = node
                    if isinstance(fact.get("prov"), dict):
                        fact["prov"]["node"] = node
            evidence.extend(read)
        if evidence.parsed_count == 0 and not commands:
            return _Read(unattributed=unattributed)
        if unattributed and not evidence.facts:
            return _Read(unattributed=True)
        for fact in evidence.facts:
            fact["chat_message"] = self.seq
        return _Read(evidence, commands, unattributed)

    def known_nodes(self) -> list[str]:
        # in the order the student pasted them, whatever order the diagnosis keeps
        nodes = [node for node, _ in self.state.commands if node]
        nodes += [f.get("node") for f in self.diagnosis().table.facts if f.get("node")]
        nodes += list(self.state.roles)
        return list(dict.fromkeys(nodes))

    def node_named(self, text: str) -> str | None:
        """A node the student names: one already seen, or a role whose node is known,
        or the name after "on"/"from" ("on net01:")."""
        for node in sorted(self.known_nodes(), key=len, reverse=True):
            if intent.mentions(text, node):
                return node
        for role, info in ROLES.items():
            if re.search(r"\b" + re.escape(info["name"]) + r"\b", text, re.IGNORECASE):
                node = next((n for n, r in self.roles().items() if r == role), None)
                if node:
                    return node
        match = re.search(r"\b(?:on|from|at)\s+(?:the\s+)?(?:node\s+|host\s+)?([A-Za-z][\w.-]*\d[\w.-]*)\b",
                          text)
        return match.group(1) if match else None

    def node_by_evidence(self, facts: list[dict]) -> str | None:
        """The one node already seen that holds the block's own addresses, or every one
        of its interfaces (two at least: one interface name is shared by many nodes)."""
        addresses, interfaces = _addresses_and_interfaces(facts)
        known: dict[str, tuple[set, set]] = {}
        for fact in self.diagnosis().table.facts:
            node = fact.get("node")
            if node:
                own = known.setdefault(node, (set(), set()))
                a, i = _addresses_and_interfaces([fact])
                own[0].update(a)
                own[1].update(i)
        by_address = [n for n, (a, _) in known.items() if addresses & a]
        if len(by_address) == 1:
            return by_address[0]
        if len(interfaces) >= 2:
            by_interface = [n for n, (_, i) in known.items() if interfaces <= i]
            if len(by_interface) == 1:
                return by_interface[0]
        return None

    def continued_listing(self, block) -> tuple[str, str] | None:
        """A listing split over two messages: a bare iptables listing right after a
        paste that ended with one goes on with it (same node, same command)."""
        if block.kind not in ("iptables_list", "iptables_save"):
            return None
        last = self.state.commands[-1] if self.state.commands else None
        if last and last[0] and re.match(r"\s*(sudo\s+)?iptables", str(last[1])):
            return last[0], last[1]
        return None

    def ask_which_node(self, text: str) -> None:
        self.state.held = Held(text, self.seq)
        self.state.stage = WHICH
        nodes = self.known_nodes()
        choices = f" ({', '.join(md(n) for n in nodes)}, or another)" if nodes else ""
        self.turn.say(f"Which node is this from{choices}? It has no prompt, and I won't guess.")

    def take_held(self, text: str) -> bool:
        held = self.state.held
        node = self.node_named(text) or _bare_node_name(text, self.tutor.intents_file)
        if node is None:
            if self.read(text).evidence is not None:
                self.state.held = None           # a new paste instead: the held one is dropped
                self.state.stage = GATHER if self.symptom else SYMPTOM
                return False
            self.turn.say("Which node is that output from? Its name is enough (the part after "
                          "`@` in its prompt).")
            return True
        self.state.held = None
        self.state.stage = GATHER if self.symptom else SYMPTOM
        evidence = Evidence()
        commands = []
        for block in _peel_prose(split_blocks(held.text, f"message {held.seq}", node)):
            if block.command:
                commands.append([block.node, block.command])
            if block.command or block.kind is not None:
                evidence.extend(read_block(block))
        for fact in evidence.facts:
            fact["chat_message"] = self.seq
        self.turn.say(f"Thanks: I read it as from **{md(node)}**.")
        self.take_evidence(evidence, commands)
        return True

    def correct(self, said: str) -> bool:
        """"That was net01": the last paste's facts move to the node named."""
        said = said.strip()
        if not said:
            return False
        node = self.node_named(said) or self.node_named(f"on {said}") or _bare_node_name(said, self.tutor.intents_file)
        role = next((r for r, info in ROLES.items() if said.lower().removeprefix("the ") in
                     (r, info["name"], r + " node")), None)
        if node is None and role is not None:
            node = next((n for n, r in self.roles().items() if r == role), None)
            if node is None and self.last_evidence_message() is not None:
                self.turn.say(f"Which node is the {ROLES[role]['name']}? Say \"that was\" and its name "
                              "(the part after `@` in its prompt), and I'll move what that paste "
                              "showed there.")
                return True
        if node is None:
            return False
        last = self.last_evidence_message()
        if last is None:
            return False
        moved = self.tutor.store.move_evidence(self.session_id, [last], node)
        if not moved:
            return False
        forget(self.tutor.store, self.session_id)
        self.state.commands = [[node if i >= len(self.state.commands) - 1 else n, c]
                               for i, (n, c) in enumerate(self.state.commands)]
        for n in list(self.state.roles):
            if n not in self.known_nodes():
                del self.state.roles[n]
        if role is not None:
            self.state.roles[node] = role
        self._forget()
        self.state.known = known_facts(self.diagnosis().table)
        self.turn.say(f"Got it: I've moved what that paste showed to **{md(node)}** "
                      f"({moved} facts).")
        self.advance()
        return True

    def last_evidence_message(self) -> int | None:
        messages = [f.get("chat_message") for f in self.diagnosis().table.facts if f.get("chat_message")]
        return max(messages) if messages else None


def _peel_prose(blocks: list) -> list:
    """A line of prose stuck to a paste ("on net01:" then the output, no blank line):
    the prose is cut off so the output is recognised by its own kind."""
    out = []
    for block in blocks:
        if block.command or block.kind is not None or len(block.lines) < 2:
            out.append(block)
            continue
        for cut in range(1, min(4, len(block.lines))):
            rest = block.lines[cut:]
            kind = kinds.kind_for_text("\n".join(rest))
            if kind is not None:
                out.append(Block(block.source, block.node, None, None, block.first_line,
                                 block.lines[:cut], kind=None, judged=True))
                out.append(Block(block.source, block.node, None, None, block.first_line + cut,
                                 rest, kind=kind, judged=True))
                break
        else:
            out.append(block)
    return out


def _addresses_and_interfaces(facts: list[dict]) -> tuple[set[str], set[str]]:
    addresses, interfaces = set(), set()
    for fact in facts:
        kind = fact.get("type")
        if kind == "address" and fact.get("address") and fact.get("scope") != "host":
            addresses.add(str(fact["address"]))
        if kind == "route" and fact.get("src"):
            addresses.add(str(fact["src"]))
        for key in ("ifname", "dev", "iface"):
            if kind in ("address", "route", "capture", "packet", "interface") and fact.get(key) \
                    and fact[key] != "lo":
                interfaces.add(str(fact[key]))
    return addresses, interfaces


def _bare_node_name(text: str, intents_file: str) -> str | None:
    """A reply that is just a host name ("net01", "it's gw01")."""
    match = re.fullmatch(r"\s*(?:it'?s |it is |that'?s |from |on )?(?:the )?([A-Za-z][\w.-]{0,62})\s*[.!]?\s*",
                         text)
    # a host name the tutor has not seen must look like one (net01, gw-2, node.lab)
    if match and not intent.read_intent(text, intents_file) and re.search(r"[\d.-]", match.group(1)):
        return match.group(1)
    return None
