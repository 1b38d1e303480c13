"""One reply's worth of reasoning over a conversation's state: the state machine.

The tutor follows the symptom's route (rules/symptoms/*.yaml): it asks for one piece of
evidence at a time, says in plain words what each paste shows, and once the evidence
establishes a cause it asks the cause's question (from the cause's rule file) instead of
announcing it. A cause is *revealed* (and listed in ``findings``) only when the student
names it, answers its question, reaches the bottom of its hint ladder, or asks for the
solution.
"""
from __future__ import annotations

import re

from grammar.transcript import Evidence, read_block, split_blocks
from kb.diagnose import Diagnosis, Finding
from tutor import intent
from tutor.cache import session_diagnosis
from tutor.diagram import packet_path_svg
from tutor.plain import known_facts
from tutor.roles import ROLES, context, fill, known, role_from_name, roles_from_facts
from tutor.state import DONE, GATHER, QUESTION, SYMPTOM, State
from tutor.symptoms import Step, Symptom
from tutor.words import code, evidence_lines, fence, join, md

MAX_EVIDENCE_SUMMARY = 8
MAX_COMMANDS_KEPT = 200
# What a single line with no prompt must parse into to count as evidence rather than prose.
_ONE_LINE_EVIDENCE = {"log_entry", "packet", "route", "iptables_rule", "address", "capture",
                      "sysctl", "config_option"}


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
        self._memo["gathered_key"], self._memo["gathered"] = key, set(done)
        return done

    def next_step(self) -> Step | None:
        symptom = self.symptom
        if symptom is None:
            return None
        done = self.gathered()
        for step in symptom.route():
            if step.id not in done:
                return step
        return None

    # --- the turn -----------------------------------------------------------------------

    def handle(self, text: str) -> None:
        evidence, commands = self.read(text)
        control = None if evidence else intent.control_word(text.strip())
        if control == intent.HINT:
            return self.hint()
        if control == intent.WHY:
            return self.why()
        if control == intent.HOW:
            focus = self.finding(self.state.focus) if self.state.focus else None
            return self.turn.say(self.how(focus)) if focus is not None else self.why()
        if control == intent.SOLUTION:
            return self.solution()
        if evidence:
            return self.take_evidence(evidence, commands, text)
        if self.state.stage == QUESTION and self.answer(text):
            return
        if self.names_a_cause(text):
            return
        if self.state.symptom is None or self.state.stage == SYMPTOM:
            return self.recognise(text)
        if self.hypothesis(text):
            return
        if self.concept(text):
            return
        other = self.tutor.index.best(text)
        if other and other != self.state.symptom and self.state.stage != QUESTION \
                and len(text) < 300 and _describes_a_problem(text):
            return self.recognise(text)
        self.turn.say("I read that as a comment, not as evidence or an answer.")
        self.ask_next(again=True)

    def read(self, text: str):
        """The evidence in a message (None when it holds none) and its commands."""
        if "\x00" in text:
            return None, []
        asked = self.symptom.steps.get(self.state.asked_step or "") if self.symptom else None
        default_node = None
        if asked:
            # output pasted without a prompt comes from the node asked about
            default_node = next((n for n, r in self.roles().items() if r == asked.role),
                                None) or ROLES[asked.role]["name"]
        source = f"message {self.seq}"
        evidence = Evidence()
        commands = []
        for block in split_blocks(text, source, default_node):
            if block.command:
                commands.append([block.node, block.command])
            evidence.extend(read_block(block))
        if evidence.parsed_count == 0 and not commands:
            return None, []
        if not commands and "\n" not in text.strip() \
                and not {f.get("type") for f in evidence.facts} & _ONE_LINE_EVIDENCE:
            return None, []   # one line of prose that happens to parse ("X is not installed")
        for fact in evidence.facts:
            fact["chat_message"] = self.seq
        return evidence, commands

    def take_evidence(self, evidence: Evidence, commands: list, text: str) -> None:
        asked_id = self.state.asked_step
        before = self.gathered() if self.symptom else set()
        self.tutor.store.add_evidence(self.session_id, self.seq, evidence.facts,
                                      [u for u in evidence.unparsed if u.get("command")])
        self.state.commands = (self.state.commands + commands)[-MAX_COMMANDS_KEPT:]
        self._forget()
        pasted_nodes = _nodes_in(evidence, commands)

        # the student pasted what was asked: the node it came from plays the asked role
        symptom = self.symptom
        asked = symptom.steps.get(asked_id or "") if symptom else None
        elsewhere = []
        if asked:
            for node in pasted_nodes:
                role = self.roles().get(node)
                if role is None:
                    self.state.roles[node] = asked.role
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
            self.turn.say(f"I read {evidence.parsed_count} lines of evidence; none of them is about "
                          "the packet's path, a service's errors or its settings.")
        unread = [u for u in evidence.unparsed if u.get("command")]
        if unread:
            programs = sorted({str(u["command"]).split()[0] for u in unread})
            self.turn.say("I could not read the output of " + ", ".join(f"`{code(p)}`" for p in programs)
                          + " (the rest is used).")
        if asked and any(self.roles().get(node) == asked.role for node in pasted_nodes):
            elsewhere = []      # what was asked came too; the rest is simply more evidence
        for node, role in elsewhere:
            self.turn.say(f"That is from **{md(node)}**, which I take for the {ROLES[role]['name']} "
                          f"({ROLES[role]['about']}), not the {ROLES[asked.role]['name']} I asked about. "
                          "I've kept it for later.")

        if symptom:
            after = self.gathered()
            new_steps = [s for s in symptom.route() if s.id in after - before]
            if asked and asked.id in after - before:
                early = [self.text(s.title) for s in new_steps if s.id != asked.id]
                self.turn.say("That's what I asked for." + (
                    f" You also gave me {join(early)}, which I'd have asked for later." if early else ""))
            elif new_steps:
                self.turn.say(f"You gave me {join([self.text(s.title) for s in new_steps])}"
                              + (" before I asked for it; noted." if asked else "."))
            elif asked and asked.id not in after:
                self.turn.say(f"It doesn't give me {self.text(asked.title)} yet.")
            if symptom.diagram and any(f.get("type") in ("packet", "capture") for f in evidence.facts):
                self.turn.figures.append(packet_path_svg(table, self.roles(), self.values()))
        self.advance()

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

    def nothing_left(self) -> None:
        possible = self.findings("possible")
        if possible:
            lines = []
            for finding in possible:
                lines.extend(f"- {md(step)}" for step in finding.decide_by)
            self.turn.say("The evidence fits more than one explanation and cannot tell them apart "
                          "yet. What would decide:\n\n" + "\n".join(lines))
            return
        if self.state.revealed:
            self.turn.say("We've found what the evidence shows. Apply the fix and try again; if it "
                          "still fails, paste what your commands print now.")
            return
        self.turn.say("I have everything I would ask for on this route, and none of the causes I "
                      "know explains it. Check that the evidence comes from the time the problem "
                      "happens (the ping running while you capture), or ask your instructor.")

    # --- symptom -------------------------------------------------------------------------

    def recognise(self, text: str) -> None:
        chosen = _pick_offered(text, self.state.offered)
        symptom_id = chosen or self.tutor.index.best(text)
        if symptom_id is None:
            options = sorted(self.tutor.symptoms.values(), key=lambda s: s.title)
            self.state.offered = [s.id for s in options]
            self.state.stage = SYMPTOM
            listing = "\n".join(f"{i}. {self.text(s.title)}" for i, s in enumerate(options, 1))
            self.turn.say("I'm not sure which problem you mean. What did you try, and what happened? "
                          "Or pick the closest (type its number):\n\n" + listing)
            return
        symptom = self.tutor.symptoms[symptom_id]
        self.state.symptom, self.state.stage, self.state.offered, self.state.asked_step = symptom.id, GATHER, [], None
        self.turn.say(f"It sounds like this problem: **{self.text(symptom.title)}**. {self.text(symptom.start)}")
        self.advance()

    # --- answers ---------------------------------------------------------------------------

    def answer(self, text: str) -> bool:
        finding = self.finding(self.state.question_cause)
        if finding is None or not finding.questions:
            return False
        question = finding.questions[0]
        expected = [v for v in question["expect"] if v]
        named = [v for v in expected if intent.mentions(text, v)]
        attempts = self.state.attempts
        attempts[finding.cause] = attempts.get(finding.cause, 0) + 1
        if expected and len(named) == len(expected):
            self.reveal(finding, "answered", "**Right.**")
            return True
        if self.names_a_cause(text):
            return True
        pointers = [text for value, text in zip(question["expect"], question.get("missing") or [])
                    if value and text and value not in named]
        if named and pointers:
            self.turn.say(" ".join(md(text) for text in pointers))
        elif named and question.get("partial"):
            self.turn.say(md(question["partial"]))
        elif named:
            self.turn.say("Part of it. " + md(question["ask"]))
        else:
            self.turn.say(md(question.get("wrong") or "Not quite. Look again at the evidence lines; "
                              "type **hint** if you'd like a nudge."))
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
        """A question about an idea on the way (the seed's bonus question is one)."""
        for concept in self.symptom.concepts if self.symptom else []:
            if intent.named_by(text, [concept.when], []):
                self.turn.say(self.text(concept.answer))
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

    def reveal(self, finding: Finding, how: str, lead: str) -> None:
        if finding.cause not in self.state.revealed:
            self.state.revealed.append(finding.cause)
            self.tutor.store.add_revealed(self.session_id, finding.cause, how, finding.as_json())
        self.state.focus = finding.cause
        self.state.question_cause = None
        self.state.stage = GATHER
        self.turn.say(f"{lead} {md(finding.title)}.\n\n{md(finding.explanation)}")
        self.turn.say("**Fix:**\n\n" + fence("\n".join(finding.fix)))
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
        self.turn.say("**Hint:** we've covered the route I know. Paste new evidence if the problem persists.")

    def why(self) -> None:
        stage = self.state.stage
        if stage == QUESTION and self.state.question_cause:
            finding = self.finding(self.state.question_cause)
            if finding is not None:
                self.turn.say("I ask because the evidence you've pasted is now enough to decide what is "
                              "wrong, and you'll remember it better if you see it yourself. The answer is "
                              "in these lines:\n\n" + fence(evidence_lines(finding)))
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

    @staticmethod
    def how(finding: Finding) -> str:
        steps = "\n".join(f"{i}. {md(step)}" for i, step in enumerate(finding.reasoning, 1))
        return (f"How we know that {md(finding.title)}:\n\n{steps}\n\n"
                f"The evidence it stands on:\n\n{fence(evidence_lines(finding))}")

    def solution(self) -> None:
        finding = self.focus()
        if finding is not None:
            self.turn.say(f"**The answer:** {md(finding.hints[-1]) if finding.hints else ''}")
            self.reveal(finding, "solution", "**The cause:**")
            self.turn.say(self.how(finding))
            if self.symptom and self.symptom.diagram:
                self.turn.figures.append(packet_path_svg(self.diagnosis().table, self.roles(), self.values()))
            return
        if self.state.revealed:
            last = self.finding(self.state.revealed[-1])
            if last is not None:
                self.turn.say(f"We found it already: {md(last.title)}.\n\n**Fix:**\n\n" + fence("\n".join(last.fix)))
                return
        self.turn.say("I can't give you the answer yet: nothing you've shown establishes a cause. "
                      "The quickest way there:")
        possible = self.findings("possible")
        if possible:
            self.turn.say("What would decide:\n\n" + "\n".join(
                f"- {md(step)}" for f in possible for step in f.decide_by))
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
