"""The honest edge: where the tutor's knowledge ends, it says so.

When the route is used up, every check that would decide a possible cause has been
run, or the evidence points off the route, the tutor says plainly that it cannot name
the cause, lists what the evidence rules out and the checks it would run next (only
those not yet run), and suggests showing the transcript to the instructor. It also
names what an incomplete paste still lacks.
"""
from __future__ import annotations

import re

from grammar.transcript import Evidence
from kb.diagnose import Finding
from tutor.roles import ROLES, fill
from tutor.symptoms import Step
from tutor.words import code, join, md


class Edge:
    """Where the knowledge ends. A part of dialogue.Conversation."""

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

    def remaining_checks(self, finding: Finding) -> list[str]:
        return [c for c in finding.decide_by if not _check_done(c, self.state.commands)]

    def undecidable(self) -> bool:
        """Evidence fits a cause only as possible, and every check that would decide it
        has been run: what is wrong is outside what the rules know."""
        possible = self.findings("possible")
        return bool(possible) and not any(self.remaining_checks(f) for f in possible)


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
