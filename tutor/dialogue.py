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

from grammar.transcript import Evidence
from kb.diagnose import Diagnosis, Finding
from tutor import intent
from tutor.answers import Answers
from tutor.attribution import Attribution
from tutor.cache import forget, session_diagnosis
from tutor.diagram import packet_path_svg
from tutor.edge import Edge
from tutor.observations import overruled
from tutor.plain import known_facts
from tutor.roles import ROLES, context, fill, known, role_from_name, roles_from_facts
from tutor.state import DONE, GATHER, QUESTION, SYMPTOM, WHICH, State
from tutor.symptoms import Step, Symptom
from tutor.words import code, fence, join, md

_LOG = logging.getLogger(__name__)
MAX_EVIDENCE_SUMMARY = 8
MAX_COMMANDS_KEPT = 200


class Turn:
    """What one reply is made of while it is being built."""

    def __init__(self):
        self.parts: list[str] = []
        self.figures: list[str] = []

    def say(self, text: str) -> None:
        if text:
            self.parts.append(text)


class Conversation(Attribution, Answers, Edge):
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
        # the causes of the problem at hand first; then any other the evidence shows,
        # unless it belongs only to a problem the student has moved away from
        left = {c for s in self.state.left if s in self.tutor.symptoms
                for c in self.tutor.symptoms[s].cause_ids()}
        found = [f for f in self.findings() if f.cause not in self.state.revealed
                 and (f.cause in order or f.cause not in left)]
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
        found = intent.read_intent(text, self.tutor.intents_file)
        if found is not None and found.name != intent.CORRECTION:
            return self.on_intent(found, text)
        if found is not None and self.correct(found.groups.get("node", "")):
            return
        read = self.read(text)
        if read.unattributed:
            return self.ask_which_node(text)
        if read.evidence is not None:
            return self.take_evidence(read.evidence, read.commands)
        if self.state.symptom is not None and intent.starts_new_problem(text, self.tutor.intents_file):
            other = self.tutor.index.best(text)
            if other and other != self.state.symptom:
                return self.recognise(text)
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
        if other and other != self.state.symptom and len(text) < 300 and _describes_a_problem(text) \
                and (not self.has_evidence() or intent.starts_new_problem(text, self.tutor.intents_file)):
            return self.recognise(text)
        if self.state.stage == DONE:
            return self.edge()
        self.turn.say("I read that as a comment, not as evidence or an answer.")
        self.ask_next(again=True)

    def on_intent(self, found, text: str = "") -> None:
        if found.name == intent.HINT:
            return self.hint()
        if found.name == intent.WHY:
            return self.why(text)
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

    # --- evidence -------------------------------------------------------------------------

    def take_evidence(self, evidence: Evidence, commands: list) -> None:
        asked_id = self.state.asked_step
        before = self.gathered() if self.symptom else set()
        revealed_before = {f["cause"]: f for f in self.tutor.store.revealed(self.session_id)}
        established_before = {f.cause for f in self.findings()}
        runs = {(f.get("node"), " ".join(str(f["prov"].get("command") or "").split()))
                 for f in evidence.facts if f.get("node") and isinstance(f.get("prov"), dict)
                 and f["prov"].get("command") and f.get("type") != "state_change" and not f.get("continues")}
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
        for cause, text in overruled(self.diagnosis().findings, established_before, revealed_before):
            self.turn.say(text)
            if self.state.question_cause == cause:     # no longer a question the facts answer
                self.state.stage, self.state.question_cause = GATHER, None
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

    def acknowledge_fixes(self, revealed_before: dict, established_before: set, pasted_nodes,
                          said: list[dict]) -> None:
        """A revealed cause the new evidence no longer establishes has been fixed: say so
        in the lab's values and mark it resolved."""
        # a cause an observation overrules is said so (tutor/observations.py), not "fixed"
        now = {f.cause for f in self.diagnosis().findings if f.status == "established" or f.overruled_by}
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
        if self.state.symptom and self.state.symptom != symptom.id and self.state.symptom not in self.state.left:
            self.state.left.append(self.state.symptom)
        self.state.symptom, self.state.stage, self.state.offered, self.state.asked_step = symptom.id, GATHER, [], None
        self.state.off_route, self.state.edge_said, self.state.question_cause = False, False, None
        self.turn.say(f"It sounds like this problem: **{self.text(symptom.title)}**. {self.text(symptom.start)}")
        self.advance()

    # --- answers ---------------------------------------------------------------------------

    # --- hint, why, solution ------------------------------------------------------------------


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


def _failure(error: Exception) -> str:
    words = " ".join(str(error).split())[:160]
    return f"{type(error).__name__}: {words}" if words else type(error).__name__


