"""One reply's worth of reasoning over a conversation's state: the state machine.

The tutor follows the symptom's route (rules/symptoms/*.yaml): it asks for one piece of
evidence at a time, says in plain words what each paste shows, and once the evidence
establishes a cause it asks the cause's question (from the cause's rule file) instead of
announcing it. A cause is *revealed* (and listed in ``findings``) only when the student
names it, answers its question, reaches the bottom of its hint ladder, or asks for the
solution.
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field

from grammar import kinds
from grammar.transcript import Block, Evidence, read_block, split_blocks
from kb.diagnose import Diagnosis, Finding
from tutor import intent
from tutor.cache import forget, session_diagnosis
from tutor.diagram import packet_path_svg
from tutor.plain import known_facts
from tutor.roles import ROLES, context, fill, known, role_from_name, roles_from_facts
from tutor.grading import judge
from tutor.state import DONE, GATHER, QUESTION, SYMPTOM, WHICH, Held, State
from tutor.symptoms import Step, Symptom
from tutor.words import code, evidence_lines, fence, join, md

_LOG = logging.getLogger(__name__)
MAX_EVIDENCE_SUMMARY = 8
MAX_COMMANDS_KEPT = 200
# What a single line with no prompt must parse into to count as evidence rather than prose.
_ONE_LINE_EVIDENCE = {"log_entry", "packet", "route", "iptables_rule", "address", "capture",
                      "sysctl", "config_option"}


@dataclass
class _Read:
    evidence: Evidence | None = None
    commands: list = field(default_factory=list)
    unattributed: bool = False


class Turn:
    """What one reply is made of while it is being built."""

    def __init__(self):
        self.parts: list[str] = []
        self.figures: list[str] = []

    def say(self, text: str) -> None:
        if text:
            self.parts.append(text)


class Conversation:
    """One reply's worth of reasoning over a session's state."""

    def __init__(self, tutor, session_id: str, state: State, seq: int, turn: Turn):
        self.tutor, self.session_id, self.state, self.seq, self.turn = tutor, session_id, state, seq, turn
        self._diagnosis: Diagnosis | None = None
        self._roles: dict[str, str] | None = None
        self._memo: dict[str, object] = {}

    def _forget(self) -> None:
        """New evidence or a new role: what was worked out from the old ones is stale."""
        self._diagnosis, self._roles, self._memo = None, None, {}

    # --- what the evidence says ---------------------------------------------------------

    @property
    def symptom(self) -> Symptom | None:
        return self.tutor.symptoms.get(self.state.symptom or "")

    def diagnosis(self) -> Diagnosis:
        if self._diagnosis is None:
            self._diagnosis = session_diagnosis(self.tutor.store, self.session_id, self.tutor.rulebook)
        return self._diagnosis

    def roles(self) -> dict[str, str]:
        if self._roles is None:
            table = self.diagnosis().table
            roles = dict(self.state.roles)          # given by answering what was asked
            roles.update(roles_from_facts(table))              # what the facts say wins
            nodes = {f.get("node") for f in table.facts if f.get("node")}
            nodes |= {node for node, _ in self.state.commands if node}
            for node in sorted(nodes):
                if node not in roles:
                    guess = role_from_name(node)
                    if guess:
                        roles[node] = guess
            self._roles = roles
        return self._roles

    def text(self, template: str) -> str:
        """A symptom file's text (Markdown, written by an instructor) in the lab's own
        values; the values come from pasted evidence, so they are shown literally."""
        return fill(template, {k: md(v) for k, v in self.values().items()})

    def values(self) -> dict[str, str]:
        if "values" not in self._memo or self._roles is None:
            self._memo["values"] = context(self.diagnosis().table, self.roles())
        return self._memo["values"]

    def findings(self, status: str = "established") -> list[Finding]:
        return [f for f in self.diagnosis().findings if f.status == status]

    def finding(self, cause: str | None) -> Finding | None:
        return next((f for f in self.diagnosis().findings if f.cause == cause), None)

    def unrevealed(self) -> list[Finding]:
        order = self.symptom.cause_ids() if self.symptom else []
        found = [f for f in self.findings() if f.cause not in self.state.revealed]
        return sorted(found, key=lambda f: order.index(f.cause) if f.cause in order else len(order))

    def gathered(self) -> set[str]:
        symptom = self.symptom
        if symptom is None:
            return set()
        table, roles, values = self.diagnosis().table, self.roles(), self.values()
        key = ("gathered", symptom.id, id(table), tuple(sorted(roles.items())), len(self.state.commands))
        if self._memo.get("gathered_key") == key:
            return set(self._memo["gathered"])
        done, used = set(), set()
        # in route order; a fact answers one step only, so a capture on the bridge is not
        # also taken for the capture on the uplink while the uplink is still unknown
        for step in symptom.route() + [s for s in symptom.steps.values() if s not in symptom.route()]:
            nodes = {node for node, role in roles.items() if role == step.role}
            if nodes and _step_gathered(step, table, nodes, values, self.state.commands, used):
                done.add(step.id)
        # a packet seen further along the path went through the hops before: their
        # captures would only show it again
        captures = [s for s in symptom.route() if s.gathered and all(g.fact in ("packet", "capture")
                                                                    for g in s.gathered)]
        seen = [s for s in captures if s.id in done and any(
            f.get("node") in {n for n, r in roles.items() if r == s.role} for f in table.of("packet"))]
        moot = set()
        if seen:
            last = max(captures.index(s) for s in seen)
            moot = {s.id for s in captures[:last]} - done
            done |= moot
        self._memo["gathered_key"], self._memo["gathered"], self._memo["moot"] = key, set(done), moot
        return done

    def next_step(self) -> Step | None:
        symptom = self.symptom
        if symptom is None:
            return None
        done = self.gathered() | set(self.state.skipped)
        for step in symptom.route():
            if step.id not in done:
                return step
        return None

    # --- the turn -----------------------------------------------------------------------

    def handle(self, text: str) -> None:
        if self.state.held is not None and self.state.stage == WHICH:
            if self.take_held(text):
                return
        found = intent.read_intent(text)
        if found is not None and found.name != intent.CORRECTION:
            return self.on_intent(found)
        if found is not None and self.correct(found.groups.get("node", "")):
            return
        read = self.read(text)
        if read.unattributed:
            return self.ask_which_node(text)
        if read.evidence is not None:
            return self.take_evidence(read.evidence, read.commands)
        if self.state.symptom is not None and self.concept(text):
            return
        if self.state.stage == QUESTION and self.answer(text):
            return
        if self.names_a_cause(text):
            return
        if self.state.symptom is None or self.state.stage == SYMPTOM:
            return self.recognise(text)
        if self.hypothesis(text):
            return
        if self.unknown_cause(text):
            return
        other = self.tutor.index.best(text)
        if other and other != self.state.symptom and not self.has_evidence() \
                and len(text) < 300 and _describes_a_problem(text):
            return self.recognise(text)
        if self.state.stage == DONE:
            return self.edge()
        self.turn.say("I read that as a comment, not as evidence or an answer.")
        self.ask_next(again=True)

    def on_intent(self, found) -> None:
        if found.name == intent.HINT:
            return self.hint()
        if found.name == intent.WHY:
            return self.why()
        if found.name == intent.HOW:
            focus = self.finding(self.state.focus) if self.state.focus else None
            return self.turn.say(self.how(focus)) if focus is not None else self.why()
        if found.name == intent.SOLUTION:
            return self.solution()
        if found.name == intent.DONT_KNOW:
            return self.dont_know()
        if found.name == intent.ALREADY_FIXED:
            return self.already_fixed(found.groups.get("what", ""))

    def has_evidence(self) -> bool:
        return bool(self.diagnosis().table.facts) or bool(self.state.commands)

    # --- reading a message ------------------------------------------------------------

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
            if block.node is None and not block.command:
                continued = self.continued_listing(block)
                if continued is not None:
                    block.node, block.command = continued
            read = read_block(block)
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
        nodes = [f.get("node") for f in self.diagnosis().table.facts if f.get("node")]
        nodes += [node for node, _ in self.state.commands if node]
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
        node = self.node_named(text) or _bare_node_name(text)
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
        node = self.node_named(said) or self.node_named(f"on {said}") or _bare_node_name(said)
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

    # --- evidence -------------------------------------------------------------------------

    def take_evidence(self, evidence: Evidence, commands: list) -> None:
        asked_id = self.state.asked_step
        before = self.gathered() if self.symptom else set()
        revealed_before = {f["cause"]: f for f in self.tutor.store.revealed(self.session_id)}
        established_before = {f.cause for f in self.findings()}
        runs = {(f.get("node"), " ".join(str(f["prov"].get("command") or "").split()))
                 for f in evidence.facts if f.get("node") and isinstance(f.get("prov"), dict)
                 and f["prov"].get("command") and f.get("type") != "state_change"}
        if self.tutor.store.supersede(self.session_id, runs, self.seq):
            forget(self.tutor.store, self.session_id)
        self.tutor.store.add_evidence(self.session_id, self.seq, evidence.facts,
                                      [u for u in evidence.unparsed if u.get("command")])
        self._forget()
        try:
            self.diagnosis()
        except Exception as error:       # this paste's problem only: it is not kept
            self.tutor.store.remove_evidence(self.session_id, self.seq)
            forget(self.tutor.store, self.session_id)
            self._forget()
            _LOG.warning("a paste could not be diagnosed: %s: %s", type(error).__name__, error)
            self.turn.say(f"I could not use that paste ({_failure(error)}), so I have kept nothing "
                          "from it; everything before it still holds.")
            return self.ask_next(again=True)
        self.state.commands = (self.state.commands + commands)[-MAX_COMMANDS_KEPT:]
        pasted_nodes = _nodes_in(evidence, commands)

        symptom = self.symptom
        asked = symptom.steps.get(asked_id or "") if symptom else None
        elsewhere = []
        if asked:
            for node in pasted_nodes:
                role = self.roles().get(node)
                if role is None:
                    # the node plays the asked role only if its paste is what was asked
                    self.state.roles[node] = asked.role
                    self._roles, self._memo = None, {}
                    if asked.id not in self.gathered():
                        del self.state.roles[node]
                        self._roles, self._memo = None, {}
                elif role != asked.role:
                    elsewhere.append((node, role))

        if symptom is None:
            self.guess_symptom_from_findings()
            symptom = self.symptom

        table = self.diagnosis().table
        new_ids = {f["fact_id"] for f in table.facts if f.get("chat_message") == self.seq}
        said = known_facts(table, new_ids)
        self.state.known = known_facts(table)
        if said:
            lines = [f"- {md(item['text'])}" for item in said[:MAX_EVIDENCE_SUMMARY]]
            if len(said) > MAX_EVIDENCE_SUMMARY:
                lines.append(f"- … and {len(said) - MAX_EVIDENCE_SUMMARY} more (see *What we know*)")
            self.turn.say("**What this shows:**\n\n" + "\n".join(lines))
        elif evidence.parsed_count:
            self.turn.say(f"I read {evidence.parsed_count} lines of evidence.")
        unread = [u for u in evidence.unparsed if u.get("command")]
        if unread:
            programs = sorted({str(u["command"]).split()[0] for u in unread})
            self.turn.say("I could not read the output of " + ", ".join(f"`{code(p)}`" for p in programs)
                          + " (the rest is used).")
        missing = self.incomplete(evidence)
        if missing:
            self.turn.say(missing)
        if asked and any(self.roles().get(node) == asked.role for node in pasted_nodes):
            elsewhere = []      # what was asked came too; the rest is simply more evidence
        later = "" if symptom and self.gathered() - before else " I've kept it for later."
        for node, role in elsewhere:
            self.turn.say(f"That is from **{md(node)}**, which I take for the {ROLES[role]['name']} "
                          f"({ROLES[role]['about']}), not the {ROLES[asked.role]['name']} I asked about."
                          + later)
        self.acknowledge_fixes(revealed_before, established_before, pasted_nodes, said)

        if symptom:
            after = self.gathered()
            new_steps = [s for s in symptom.route() if s.id in after - before]
            moot = set(self._memo.get("moot") or ())
            if asked and asked.id in moot and asked.id not in before:
                self.turn.say(f"The ping got further than {self.text(asked.title)}, so I won't need that.")
                new_steps = [s for s in new_steps if s.id not in moot]
                if new_steps:
                    self.turn.say(f"You gave me {join([self.text(s.title) for s in new_steps])}.")
            elif asked and asked.id in after - before:
                early = [self.text(s.title) for s in new_steps if s.id != asked.id]
                self.turn.say("That's what I asked for." + (
                    f" You also gave me {join(early)}, which I'd have asked for later." if early else ""))
            elif new_steps:
                self.turn.say(f"You gave me {join([self.text(s.title) for s in new_steps])}"
                              + (" before I asked for it; noted." if asked else "."))
            elif asked and asked.id not in after:
                self.turn.say(f"It doesn't give me {self.text(asked.title)} yet.")
            if symptom.diagram:
                self.turn.figures.append(self.diagram())
            elsewhere_error = self.error_off_route(evidence)
            if elsewhere_error and not self.findings() and not self.findings("possible"):
                self.turn.say(elsewhere_error)
                self.state.stage, self.state.asked_step, self.state.off_route = DONE, None, True
                return self.edge()
        self.advance()

    def error_off_route(self, evidence: Evidence) -> str | None:
        """A pasted log whose errors come from a file none of the symptom's steps reads:
        the problem is not the one the tutor took it for, and no rule knows it."""
        symptom = self.symptom
        if symptom is None:
            return None
        on_route = " ".join(step.command for step in symptom.steps.values())
        for fact in evidence.facts:
            if fact.get("type") != "log_entry" or fact.get("level") not in ("WARNING", "ERROR", "CRITICAL"):
                continue
            command = str((fact.get("prov") or {}).get("command") or "")
            path = fact.get("path") or next((w for w in command.split() if w.startswith("/")), None)
            if not path or path in on_route:
                continue
            message = " ".join(str(fact.get("message") or "").split())[:160]
            return (f"That log (`{code(path)}`) is not on the route I know for "
                    f"*{self.text(symptom.title)}*, and what it says is not an error any of my "
                    f"rules knows: \"{md(message)}\". So your problem is probably not the one I "
                    "took it for.")
        return None

    def acknowledge_fixes(self, revealed_before: dict, established_before: set, pasted_nodes,
                          said: list[dict]) -> None:
        """A revealed cause the new evidence no longer establishes has been fixed: say so
        in the lab's values and mark it resolved."""
        now = {f.cause for f in self.findings()}
        for cause, finding in revealed_before.items():
            if cause in self.state.resolved or cause in now or cause not in established_before:
                continue
            if finding.get("node") and finding["node"] not in pasted_nodes:
                continue
            self.state.resolved.append(cause)
            shown = [item["text"] for item in said if item.get("node") == finding.get("node")]
            shown = [t for t in shown if t.startswith("tcpdump")][:1] or shown[:1]
            values = (": " + "; ".join(md(s) for s in shown)) if shown else ""
            self.turn.say(f"**Your fix worked.** The evidence from {md(finding.get('node') or 'the lab')} "
                          f"no longer shows that {md(finding['title'])}{values}.")
            if self.state.focus == cause:
                self.state.focus = None

    def diagram(self) -> str:
        return packet_path_svg(self.diagnosis().table, self.roles(), self.values())

    def guess_symptom_from_findings(self) -> None:
        for finding in self.diagnosis().findings:
            for symptom in self.tutor.symptoms.values():
                if finding.cause in symptom.cause_ids():
                    self.state.symptom = symptom.id
                    self.state.stage = GATHER
                    return

    # --- what comes next ----------------------------------------------------------------

    def advance(self) -> None:
        """Ask about an established cause, else for the next evidence on the route."""
        pending = self.unrevealed()
        if pending:
            return self.ask_question(pending[0])
        if self.symptom is None:
            self.turn.say("What problem are you seeing? Tell me in a sentence, for example "
                          "*my VM can't ping google*.")
            self.state.stage = SYMPTOM
            return
        if self.undecidable():
            self.state.stage, self.state.asked_step = DONE, None
            return self.edge()
        self.ask_next()

    def remaining_checks(self, finding: Finding) -> list[str]:
        return [c for c in finding.decide_by if not _check_done(c, self.state.commands)]

    def undecidable(self) -> bool:
        """Evidence fits a cause only as possible, and every check that would decide it
        has been run: what is wrong is outside what the rules know."""
        possible = self.findings("possible")
        return bool(possible) and not any(self.remaining_checks(f) for f in possible)

    def ask_question(self, finding: Finding, again: bool = False) -> None:
        self.state.stage = QUESTION
        self.state.question_cause = finding.cause
        self.state.asked_step = None
        question = finding.questions[0]["ask"] if finding.questions else \
            "What do you think is wrong, and on which node?"
        lead = "" if again else "The evidence now holds enough to tell what is wrong. "
        self.turn.say(f"{lead}**Question:** {md(question)}")

    def ask_next(self, again: bool = False) -> None:
        if self.state.stage == QUESTION and self.state.question_cause:
            finding = self.finding(self.state.question_cause)
            if finding is not None:
                return self.ask_question(finding, again=True)
        step = self.next_step()
        if step is None:
            self.state.asked_step = None
            self.state.stage = DONE if self.symptom else SYMPTOM
            return self.nothing_left()
        self.state.stage = GATHER
        self.state.asked_step = step.id
        self.turn.say(self.step_request(step, again))

    def step_request(self, step: Step, again: bool = False) -> str:
        node = next((n for n, r in self.roles().items() if r == step.role), None)
        where = f"the {ROLES[step.role]['name']}" + (f" (**{md(node)}**)" if node else "")
        prefix = "Still needed" if again else "Next"
        return (f"**{prefix}: {self.text(step.title)}.** On {where}, run:\n\n"
                f"{fence(fill(step.command, self.values()))}\n\n"
                f"It will show {self.text(step.shows)}. {self.text(step.why)}\n\n"
                "Paste what it prints, prompt included.")

    def nothing_left(self) -> None:
        self.edge()

    def edge(self, route_checks: bool = True) -> None:
        """The route is used up: say so plainly, what the evidence rules out, which
        checks would come next (only those not done yet), and suggest the instructor."""
        possible = self.findings("possible")
        checks = [step for finding in possible for step in self.remaining_checks(finding)]
        if self.state.revealed and not possible and not self.unresolved_revealed():
            done = [self.finding_title(c) for c in self.state.resolved]
            if done:
                self.turn.say("Everything I found is fixed (" + "; ".join(md(t) for t in done) + "). "
                              "If it still fails, paste what your commands print now: I'll look again.")
                return
        if self.state.revealed and not possible:
            self.turn.say("We've found what the evidence shows. Apply the fix and paste what your "
                          "commands print afterwards: I'll tell you whether it worked, and go on if "
                          "something else is still in the way.")
            return
        ruled_out = self.ruled_out()
        undecided = [f for f in possible if not self.remaining_checks(f)]
        lines = ["This is as far as my knowledge goes: none of the causes I know explains what "
                 "your evidence shows, so I cannot name the cause."]
        if ruled_out:
            lines.append("What the evidence rules out:\n\n" + "\n".join(f"- {md(r)}" for r in ruled_out))
        if undecided:
            lines.append("What it fits only in part, with every check I know to decide it already run:\n\n"
                         + "\n".join(f"- {md(f.title)}" for f in undecided))
        if route_checks and not self.state.off_route:
            checks += [f"On the {ROLES[step.role]['name']}: {fill(step.command, self.values())} "
                       f"({self.text(step.title)})" for step in self.open_steps()]
        if checks:
            lines.append("The checks I would run next:\n\n" + "\n".join(f"- {md(c)}" for c in checks))
        elif possible:
            lines.append("You have already run every check I know to tell these apart.")
        lines.append("Show this conversation (the transcript on the right) to your instructor: it "
                     "holds everything we have looked at.")
        text = "\n\n".join(lines)
        if self.state.edge_said and self.state.last_feedback == text:
            text = ("Still nothing I know explains it; I'd rather say so than guess. Your instructor "
                    "can take it from here with the transcript.")
        self.state.edge_said = True
        self.state.last_feedback = text
        self.turn.say(text)

    def open_steps(self) -> list[Step]:
        done = self.gathered() | set(self.state.skipped)
        return [step for step in self.symptom.route() if step.id not in done] if self.symptom else []

    def unresolved_revealed(self) -> list[str]:
        return [c for c in self.state.revealed if c not in self.state.resolved]

    def finding_title(self, cause: str) -> str:
        for finding in self.tutor.store.revealed(self.session_id):
            if finding.get("cause") == cause:
                return str(finding.get("title"))
        return cause

    def ruled_out(self) -> list[str]:
        """The symptom's causes the evidence gathered for them does not establish."""
        symptom = self.symptom
        if symptom is None:
            return []
        done = self.gathered()
        established = {f.cause for f in self.findings()}
        undecided = {f.cause for f in self.findings("possible")}
        out = []
        for route in symptom.causes:
            if route.route and all(step in done for step in route.route) \
                    and route.cause not in established | undecided:
                cause = next((c for c in self.tutor.rulebook.causes if c.cause == route.cause), None)
                title = _plain_title(cause) if cause is not None else route.cause
                out.append(f"not {title}: the evidence for it is in, and it does not hold")
        return out

    def incomplete(self, evidence: Evidence) -> str | None:
        """What an incomplete paste still lacks: the chains a listing jumps to that it
        does not show; a log tail with no error in it."""
        table = self.diagnosis().table
        shown = {(f.get("node"), f.get("table"), f.get("chain")) for f in table.of("iptables_chain")}
        shown |= {(f.get("node"), f.get("table"), f.get("chain")) for f in table.of("iptables_rule")}
        missing = []
        for rule in evidence.facts:
            if rule.get("type") != "iptables_rule":
                continue
            target = str(rule.get("target") or "")
            if target.startswith("nova-") and (rule.get("node"), rule.get("table"), target) not in shown \
                    and target not in missing:
                missing.append(target)
        if missing:
            return ("The listing jumps to " + join([f"`{code(m)}`" for m in missing[:4]])
                    + " but does not show " + ("them" if len(missing) > 1 else "it")
                    + ": the rules that decide are in there. Paste the rest of the listing.")
        logs = [f for f in evidence.facts if f.get("type") == "log_entry"]
        if logs and not any(f.get("level") in ("WARNING", "ERROR", "CRITICAL") or f.get("type") == "traceback"
                            for f in evidence.facts):
            asked = self.symptom.steps.get(self.state.asked_step or "") if self.symptom else None
            if asked and any(g.fact == "log_entry" for g in asked.gathered):
                return ("These log lines hold no error or warning. Paste the lines around the failure: "
                        "`grep -B 5 -A 30 ERROR` on the same log file finds them.")
        return None

    # --- symptom -------------------------------------------------------------------------

    def recognise(self, text: str) -> None:
        chosen = _pick_offered(text, self.state.offered)
        symptom_id = chosen or self.tutor.index.best(text)
        if symptom_id is None:
            self.state.unknown_problem += 1
            options = sorted(self.tutor.symptoms.values(), key=lambda s: s.title)
            self.state.offered = [s.id for s in options]
            self.state.stage = SYMPTOM
            listing = "\n".join(f"{i}. {self.text(s.title)}" for i, s in enumerate(options, 1))
            if self.state.unknown_problem >= 2 or re.search(r"\bnone\b|\bneither\b|not (any|one) of",
                                                            text, re.IGNORECASE):
                self.turn.say("That is not something I can diagnose yet: what I know covers only "
                              "these problems:\n\n" + listing + "\n\nIf yours is one of them, type "
                              "its number. If not, show what you tried and what it printed to your "
                              "instructor; I'd only be guessing.")
                return
            self.turn.say("I'm not sure which problem you mean. What did you try, and what happened? "
                          "Or pick the closest (type its number):\n\n" + listing)
            return
        symptom = self.tutor.symptoms[symptom_id]
        self.state.symptom, self.state.stage, self.state.offered, self.state.asked_step = symptom.id, GATHER, [], None
        self.state.off_route, self.state.edge_said = False, False
        self.turn.say(f"It sounds like this problem: **{self.text(symptom.title)}**. {self.text(symptom.start)}")
        self.advance()

    # --- answers ---------------------------------------------------------------------------

    def answer(self, text: str) -> bool:
        finding = self.finding(self.state.question_cause)
        if finding is None or not finding.questions:
            return False
        question = finding.questions[0]
        verdict = judge(text, question)
        self.state.attempts[finding.cause] = self.state.attempts.get(finding.cause, 0) + 1
        if verdict.right:
            self.state.misses = 0
            self.reveal(finding, "answered", "**Right.**")
            return True
        if not verdict.swapped and self.names_a_cause(text):
            return True
        if verdict.swapped:
            feedback = ("You name " + join([f"`{code(v)}`" for v in verdict.named])
                        + ", but not each where the evidence puts it: that contradicts what it shows. "
                        + md(question.get("wrong") or ""))
        else:
            pointers = [t for value, t in zip(question["expect"], question.get("missing") or [])
                        if value and t and value not in verdict.named]
            if verdict.named and pointers:
                feedback = " ".join(md(t) for t in pointers)
            elif verdict.named and question.get("partial"):
                feedback = md(question["partial"])
            elif verdict.named:
                feedback = "Part of it. " + md(question["ask"])
            else:
                feedback = md(question.get("wrong") or "Not quite. Look again at the evidence lines; "
                              "type **hint** if you'd like a nudge.")
        self.miss(finding, feedback, progress=bool(verdict.named) and not verdict.swapped)
        return True

    def miss(self, finding: Finding, feedback: str | None, progress: bool = False) -> None:
        """A wrong answer, or "I don't know": the feedback, then, as misses repeat, the
        next hint rung, then the offer of the solution; never the same text twice in a row."""
        self.state.misses += 1
        if feedback and feedback != self.state.last_feedback and (self.state.misses < 3 or progress):
            self.state.last_feedback = feedback
            return self.turn.say(feedback)
        levels = self.state.hint_levels
        level = int(levels.get(finding.cause, 0))
        if finding.hints and level < len(finding.hints) - 1:
            levels[finding.cause] = level + 1
            text = f"**Hint {level + 1} of {len(finding.hints)}:** {md(finding.hints[level])}"
            self.state.last_feedback = text
            self.turn.say(text)
            if level + 1 == len(finding.hints) - 1:
                self.turn.say("If you'd rather see the answer, say **solution** (or *I give up*).")
            return
        text = ("That's not it either. You can look once more at the lines under **why**, or say "
                "**solution** (or *I give up*) and I'll show you the answer and how it follows.")
        if text == self.state.last_feedback:
            text = "Say **solution** when you'd like the answer; the evidence is all there already."
        self.state.last_feedback = text
        self.turn.say(text)

    def dont_know(self) -> None:
        finding = self.focus() if self.state.stage == QUESTION else None
        if finding is not None:
            return self.miss(finding, None)
        self.hint()

    def already_fixed(self, what: str) -> None:
        """"I already fixed the network node": the steps on that node, or those of the
        cause named, are not asked for again; a cause whose evidence is shown still
        needs evidence from after the fix to be called fixed."""
        symptom = self.symptom
        if symptom is None:
            self.turn.say("Good. Tell me what goes wrong now, in a sentence.")
            return
        node = self.node_named(what) if what else None
        role = self.roles().get(node) if node else next(
            (r for r, info in ROLES.items() if re.search(info["name"], what or "", re.IGNORECASE)), None)
        causes = [r.cause for r in symptom.causes if r.named_by and intent.named_by(what or "", [
            [t for t in g if t != "{expected}"] for g in r.named_by if any(t != "{expected}" for t in g)], [])]
        skipped = []
        for route in symptom.causes:
            if route.cause in causes or role is not None:
                for step_id in route.route:
                    step = symptom.steps[step_id]
                    if (role is None or step.role == role) and step_id not in self.state.skipped:
                        skipped.append(step_id)
        unconfirmed = [c for c in causes if c in self.state.revealed and c not in self.state.resolved]
        self.state.skipped.extend(s for s in dict.fromkeys(skipped) if s not in self.state.skipped)
        if self.state.stage == QUESTION:
            finding = self.finding(self.state.question_cause)
            if finding is not None and (finding.cause in causes or (node and finding.node == node)):
                self.state.stage = GATHER
                self.state.question_cause = None
                self.turn.say("Then what I was asking about is from before your fix. Paste what "
                              f"{md(finding.node or 'that node')} shows now, and we'll see whether it holds.")
                return
        if unconfirmed:
            # a fix is called done when the evidence shows it, not when it is said
            self.turn.say("Good. Paste what the commands show now, and I'll tell you whether it "
                          "worked.")
        if skipped:
            self.turn.say("Good: I won't ask for " + join([self.text(symptom.steps[s].title) for s in
                                                          dict.fromkeys(skipped)]) + " again.")
        else:
            self.turn.say("Good. I'll take that into account.")
        self.ask_next()

    def unknown_cause(self, text: str) -> bool:
        """A student who names a cause the rules don't know: say we cannot confirm it."""
        if not re.search(r"\b(i think|maybe|perhaps|probably|could it be|is it|it'?s because|the (cause|problem|issue) is"
                         r"|(that|this)('?s| is) (the|my) (cause|problem|issue)|is the (cause|problem|issue))\b",
                         text, re.IGNORECASE):
            return False
        self.turn.say("I cannot confirm that: it is not among the causes I know for this problem, "
                      "and none of my rules can check it against the evidence. Your instructor can.")
        if self.state.stage != DONE:
            self.turn.say("Meanwhile, the evidence I can judge:")
            self.ask_next(again=True)
        return True

    def names_a_cause(self, text: str) -> bool:
        for finding in self.unrevealed():
            groups = self.named_by(finding.cause)
            expected = finding.questions[0]["expect"] if finding.questions else []
            if groups and intent.named_by(text, groups, expected):
                self.reveal(finding, "named", "**Yes, that's it.**")
                return True
        return False

    def hypothesis(self, text: str) -> bool:
        """A student who names a cause the evidence does not show yet: a hypothesis to
        test, not an answer to confirm (the tutor must not say whether it is right)."""
        for route in self.symptom.causes if self.symptom else []:
            groups = [g for g in route.named_by if "{expected}" not in g]
            if groups and intent.named_by(text, groups, []):
                self.turn.say("That's a hypothesis worth testing, and the evidence will tell. "
                              "Let's get it.")
                self.ask_next(again=True)
                return True
        return False

    def concept(self, text: str) -> bool:
        """A side question about an idea on the way (the seed's bonus question is one):
        answered in place, then the thread goes on where it was."""
        for concept in self.symptom.concepts if self.symptom else []:
            if intent.named_by(text, [concept.when], []):
                self.turn.say(self.text(concept.answer))
                if self.state.stage == QUESTION and self.state.question_cause:
                    finding = self.finding(self.state.question_cause)
                    if finding is not None:
                        self.turn.say("Back to where we were.")
                        self.ask_question(finding, again=True)
                    return True
                step = self.symptom.steps.get(self.state.asked_step or "")
                if step is not None and self.state.stage == GATHER:
                    self.turn.say(self.step_request(step, again=True))
                return True
        return False

    def named_by(self, cause: str) -> list[list[str]]:
        symptoms = [self.symptom] if self.symptom else []
        symptoms += [s for s in self.tutor.symptoms.values() if s is not self.symptom]
        for symptom in symptoms:
            for route in symptom.causes:
                if route.cause == cause and route.named_by:
                    return route.named_by
        return []

    def reveal(self, finding: Finding, how: str, lead: str, then: str = "") -> None:
        if finding.cause not in self.state.revealed:
            self.state.revealed.append(finding.cause)
            self.tutor.store.add_revealed(self.session_id, finding.cause, how, finding.as_json())
        self.state.focus = finding.cause
        self.state.question_cause = None
        self.state.stage = GATHER
        self.turn.say(f"{lead} {md(finding.title)}.\n\n{md(finding.explanation)}")
        self.turn.say("**Fix:**\n\n" + fence("\n".join(self.fix_steps(finding))))
        self.turn.say(then)
        self.state.misses, self.state.last_feedback = 0, ""
        pending = self.unrevealed()
        if pending:
            self.turn.say("There is more in the evidence.")
            return self.ask_question(pending[0])
        step = self.next_step()
        if step is not None and self.symptom:
            self.state.asked_step = step.id
            self.turn.say("Apply the fix and try again. If it still fails, the next place to look:\n\n"
                          + self.step_request(step))
        else:
            self.state.asked_step = None
            self.turn.say("Apply the fix and try again. If it still fails, paste what your commands print now.")

    def fix_steps(self, finding: Finding) -> list[str]:
        """The fix, without steps that ask for what the evidence already shows (setting a
        sysctl to the value it was shown to have)."""
        table = self.diagnosis().table
        steps = []
        for step in finding.fix:
            wanted = re.search(r"sysctl -w ([\w.]+)=(\S+)", step)
            if wanted and any(f.get("key") == wanted.group(1) and str(f.get("value")) == wanted.group(2)
                              and (finding.node is None or f.get("node") == finding.node)
                              for f in table.of("sysctl")):
                continue
            steps.append(step)
        return steps or finding.fix

    # --- hint, why, solution ------------------------------------------------------------------

    def focus(self) -> Finding | None:
        cause = self.state.question_cause
        finding = self.finding(cause) if cause else None
        if finding is None:
            pending = self.unrevealed()
            finding = pending[0] if pending else None
        return finding

    def hint(self) -> None:
        finding = self.focus()
        self.state.hints_used = self.state.hints_used + 1
        if finding is not None and finding.hints:
            levels = self.state.hint_levels
            level = min(int(levels.get(finding.cause, 0)) + 1, len(finding.hints))
            levels[finding.cause] = level
            self.state.question_cause = finding.cause
            self.state.stage = QUESTION
            self.turn.say(f"**Hint {level} of {len(finding.hints)}:** {md(finding.hints[level - 1])}")
            if level == len(finding.hints):
                self.reveal(finding, "hint", "That was the last hint, so here is the whole of it:")
            return
        step = self.symptom.steps.get(self.state.asked_step or "") if self.symptom else None
        if step is not None:
            self.state.step_hints = self.state.step_hints + 1
            self.turn.say(f"**Hint:** {self.text(step.hint)}")
            self.turn.say(self.step_request(step, again=True))
            return
        if self.symptom is None:
            self.turn.say("**Hint:** start by telling me what goes wrong, e.g. *my VM can't ping google* "
                          "or *creating a volume fails*.")
            return
        self.edge()

    def why(self) -> None:
        stage = self.state.stage
        if stage == QUESTION and self.state.question_cause:
            finding = self.finding(self.state.question_cause)
            if finding is not None:
                self.turn.say("I ask because the evidence you've pasted is now enough to decide what is "
                              "wrong, and you'll remember it better if you see it yourself. The answer is "
                              "in these lines:\n\n" + fence(self.evidence_of(finding)))
                return
        step = self.symptom.steps.get(self.state.asked_step or "") if self.symptom else None
        if step is not None:
            self.turn.say(f"I'm asking for {self.text(step.title)} to test one hypothesis: "
                          f"*{self.text(step.hypothesis)}*. {self.text(step.why)} "
                          f"Whatever it shows, it rules out part of the path, so the next question "
                          "gets narrower.")
            return
        focus = self.finding(self.state.focus) if self.state.focus else None
        if focus is not None:
            self.turn.say(self.how(focus))
            return
        self.turn.say("I need to know what goes wrong before I can ask for evidence: each problem "
                      "has its own path to follow. Tell me what you tried and what happened.")

    def how(self, finding: Finding) -> str:
        reasoning = self.cut(finding, finding.reasoning)
        steps = "\n".join(f"{i}. {md(step)}" for i, step in enumerate(reasoning, 1))
        return (f"How we know that {md(finding.title)}:\n\n{steps}\n\n"
                f"The evidence it stands on:\n\n{fence(self.evidence_of(finding))}")

    def evidence_of(self, finding: Finding) -> str:
        kept = set(self.cut(finding, [str(line.get("text")) for line in finding.evidence]))
        shown = Finding(**{**finding.__dict__, "evidence": [line for line in finding.evidence
                                                           if str(line.get("text")) in kept]})
        return evidence_lines(shown)

    def cut(self, finding: Finding, lines: list[str]) -> list[str]:
        """Lines about ``finding`` without what would give away a cause not yet asked
        about: a line naming what only another established, unrevealed cause's title
        names (the FORWARD policy, under the return-route question) is left out."""
        own = set(_words(finding.title)) | set(_words(finding.explanation))
        giveaways = set()
        for other in self.findings():
            if other.cause != finding.cause and other.cause not in self.state.revealed:
                giveaways |= set(_words(other.title)) - own
        if not giveaways:
            return list(lines)
        return [line for line in lines if not set(_words(line)) & giveaways]

    def solution(self) -> None:
        finding = self.focus()
        if finding is not None:
            self.turn.say(f"**The answer:** {md(finding.hints[-1]) if finding.hints else ''}")
            self.reveal(finding, "solution", "**The cause:**", then=self.how(finding))
            if self.symptom and self.symptom.diagram:
                self.turn.figures.append(packet_path_svg(self.diagnosis().table, self.roles(), self.values()))
            return
        if self.state.revealed:
            last = self.finding(self.state.revealed[-1])
            if last is not None:
                self.turn.say(f"We found it already: {md(last.title)}.\n\n**Fix:**\n\n" + fence("\n".join(self.fix_steps(last))))
                return
        if self.state.stage == DONE or self.undecidable():
            self.state.stage = DONE
            return self.edge()
        self.turn.say("I can't give you the answer yet: nothing you've shown establishes a cause. "
                      "The quickest way there:")
        possible = self.findings("possible")
        checks = [step for f in possible for step in self.remaining_checks(f)]
        if checks:
            self.turn.say("What would decide:\n\n" + "\n".join(f"- {md(step)}" for step in checks))
        step = self.next_step()
        if step is not None:
            self.state.asked_step = step.id
            self.state.stage = GATHER
            self.turn.say(self.step_request(step))
        elif self.symptom is None:
            self.turn.say("tell me what goes wrong first, e.g. *my VM can't ping google*.")


def _step_gathered(step: Step, table, nodes: set[str], values: dict, commands: list,
                   used: set[int]) -> bool:
    for want in step.gathered:
        if want.command is not None and want.fact is None:
            if any(node in nodes and want.command.search(command) for node, command in commands):
                return True
            continue
        # the lab's value for each condition; an unknown one matches anything
        wanted = {name: known(template, values) for name, template in want.where.items()}
        wanted = {name: value for name, value in wanted.items() if value is not None}
        matched = [fact for fact in table.of(want.fact)
                   if fact.get("node") in nodes and fact["fact_id"] not in used
                   and (want.command is None
                        or want.command.search(str(fact.get("prov", {}).get("command") or "")))
                   and all(str(fact.get(name)) == value for name, value in wanted.items())]
        if matched:
            # the whole output block that answered this step is spoken for
            blocks = {(f.get("prov") or {}).get("source") for f in matched[:1]}
            commands_of = {(f.get("prov") or {}).get("command") for f in matched[:1]}
            used.update(f["fact_id"] for f in table.facts if f.get("prov")
                        and f["prov"].get("source") in blocks and f["prov"].get("command") in commands_of
                        and f.get("node") in nodes)
            return True
    return False


def _nodes_in(evidence: Evidence, commands: list) -> list[str]:
    nodes = []
    for fact in evidence.facts:
        if fact.get("node") and fact["node"] not in nodes:
            nodes.append(fact["node"])
    for node, _ in commands:
        if node and node not in nodes:
            nodes.append(node)
    return nodes


def _pick_offered(text: str, offered: list[str]) -> str | None:
    match = re.fullmatch(r"\s*(?:#|number |option )?(\d{1,2})\s*[.)]?\s*", text)
    if match and offered:
        index = int(match.group(1)) - 1
        if 0 <= index < len(offered):
            return offered[index]
    return None


def _describes_a_problem(text: str) -> bool:
    return re.search(r"\b(can'?t|cannot|fails?|failing|error|doesn'?t|not working|broken|won'?t|unable)\b",
                     text, re.IGNORECASE) is not None


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


def _bare_node_name(text: str) -> str | None:
    """A reply that is just a host name ("net01", "it's gw01")."""
    match = re.fullmatch(r"\s*(?:it'?s |it is |that'?s |from |on )?(?:the )?([A-Za-z][\w.-]{0,62})\s*[.!]?\s*",
                         text)
    # a host name the tutor has not seen must look like one (net01, gw-2, node.lab)
    if match and not intent.read_intent(text) and re.search(r"[\d.-]", match.group(1)):
        return match.group(1)
    return None


def _failure(error: Exception) -> str:
    words = " ".join(str(error).split())[:160]
    return f"{type(error).__name__}: {words}" if words else type(error).__name__


def _check_done(check: str, commands: list) -> bool:
    """Has a decide_by check ("On X: service glance-api status. If ...") been run?"""
    match = re.match(r"\s*on [^:]+:\s*(.+?)(?:\.\s|;|$)", check, re.IGNORECASE)
    if not match:
        return False
    wanted = match.group(1).split()[:2]        # the program and what it is asked about
    return any(str(command).split()[:len(wanted)] == wanted for _, command in commands)


def _plain_title(cause) -> str:
    """A cause's name for "ruled out" lists: its id in words (its title needs values)."""
    return cause.cause.replace("-", " ")


def _words(text: str) -> list[str]:
    """The words of a text that can tell one cause from another: no addresses, numbers
    or short words."""
    return [w.lower() for w in re.findall(r"[A-Za-z][A-Za-z_-]{4,}", str(text))]
