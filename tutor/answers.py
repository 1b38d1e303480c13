"""Answers, hints and explanations: what the student says about a cause.

An answer to a cause's question is judged by meaning (tutor/grading.py); misses climb
the hint ladder by themselves and end with the offer of the solution, never repeating
the same feedback twice in a row. Explanations ("how we know", "why") are cut to the
cause asked about, so nothing gives away a cause not yet asked about; fix steps that
ask for what the evidence already shows are left out.
"""
from __future__ import annotations

import re

from kb.diagnose import Finding
from tutor import intent
from tutor.grading import judge
from tutor.roles import ROLES
from tutor.state import DONE, GATHER, QUESTION
from tutor.words import code, evidence_lines, fence, join, md


class Answers:
    """What the student says about a cause, and what the tutor says back. A part of dialogue.Conversation."""

    def answer(self, text: str) -> bool:
        finding = self.finding(self.state.question_cause)
        if finding is None or not finding.questions:
            return False
        question = finding.questions[0]
        verdict = judge(text, question, self.known_nodes())
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

    def step_asked_about(self, text: str):
        """The step a why-question names ("why do I need the routing table?"): the one
        whose title shares the most words with it, the asked step first among equals."""
        if not self.symptom or not text:
            return None
        asked = self.symptom.steps.get(self.state.asked_step or "")
        said = set(_words(text))
        best, score = None, 1
        for step in ([asked] if asked else []) + self.symptom.route():
            shared = len(said & set(_words(self.text(step.title))))
            if shared > score:
                best, score = step, shared
        return best

    def why(self, text: str = "") -> None:
        stage = self.state.stage
        named = self.step_asked_about(text)
        if named is not None and (stage != QUESTION or named.id != self.state.asked_step):
            self.turn.say(f"{self.text(named.title)[:1].upper()}{self.text(named.title)[1:]} tests one "
                          f"hypothesis: *{self.text(named.hypothesis)}*. {self.text(named.why)}")
            if stage == QUESTION and self.state.question_cause:
                finding = self.finding(self.state.question_cause)
                if finding is not None:
                    self.ask_question(finding, again=True)
            asked = self.symptom.steps.get(self.state.asked_step or "")
            if stage == GATHER and asked is not None and asked is not named:
                self.turn.say(self.step_request(asked, again=True))
            return
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
                self.turn.figures.append(self.diagram())
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


def _words(text: str) -> list[str]:
    """The words of a text that can tell one cause from another: no addresses, numbers
    or short words."""
    return [w.lower() for w in re.findall(r"[A-Za-z][A-Za-z_-]{4,}", str(text))]
