"""One diagnosis: evidence in, findings out, each finding with its evidence lines and
the steps of reasoning that led to it.

    facts (grammar/) -> drop the stale ones (kb/timeline) -> neutral facts
    (kb/derivations) -> one engine session over the rulebook (kb/rulebook,
    kb/rulecompile, kb/engine), which asks kb/queries for the computed facts its
    patterns reach -> findings

The intermediate conclusions (the gateway of a node, node roles ...) are drawn by the
inference rules of rules/inferences/ in the same session, so a finding's reasoning
walks back through them to the evidence lines.
"""
from __future__ import annotations

import string
from dataclasses import dataclass, field
from pathlib import Path

from kb import derivations, timeline
from kb.engine import ActionError, EngineLimit
from kb.facts import FactTable, engine_view
from kb.queries import COMPUTED, Answerer
from kb.rulebook import Cause, Case, Inference, Rulebook, cached_rulebook
from kb.rulecompile import Question, compiled

RULES_DIR = Path(__file__).resolve().parent.parent / "rules"


@dataclass
class Finding:
    cause: str
    node: str | None
    service: str | None
    status: str
    title: str
    explanation: str
    fix: list[str]
    evidence: list[dict]
    decide_by: list[str] = field(default_factory=list)
    hints: list[str] = field(default_factory=list)
    questions: list[dict] = field(default_factory=list)
    reasoning: list[str] = field(default_factory=list)
    fact_ids: list[int] = field(default_factory=list)
    overruled_by: list[str] = field(default_factory=list)   # observations it yields to

    def as_json(self) -> dict:
        out = {"cause": self.cause, "node": self.node, "service": self.service,
               "status": self.status, "title": self.title, "explanation": self.explanation,
               "fix": self.fix, "evidence": self.evidence, "reasoning": self.reasoning}
        if self.status == "possible":
            out["decide_by"] = self.decide_by
        if self.overruled_by:
            out["overruled_by"] = self.overruled_by
        return out


@dataclass
class Diagnosis:
    findings: list[Finding]
    unparsed: list[dict]
    facts: int
    superseded: list[dict]
    table: FactTable
    left_out: list[str] = field(default_factory=list)   # what a limit kept out, and why

    def as_json(self) -> dict:
        out = {"findings": [f.as_json() for f in self.findings], "unparsed": self.unparsed,
               "facts": self.facts, "superseded": self.superseded}
        if self.left_out:
            out["left_out"] = self.left_out
        return out


def default_rulebook() -> Rulebook:
    return cached_rulebook((str(RULES_DIR),))


def current_facts(evidence) -> tuple[FactTable, dict[int, dict]]:
    """The facts that still hold (later evidence wins) and the neutral facts derived
    from them, with the stale ones by index into ``evidence.facts``."""
    stale = timeline.stale_facts(evidence.facts, getattr(evidence, "source_order", ()))
    table = FactTable()
    for index, fact in enumerate(evidence.facts):
        if index not in stale and fact["type"] != "state_change":
            table.add(dict(fact))
    derivations.derive_all(table)
    return table, stale


def diagnose(evidence, rulebook: Rulebook | None = None) -> Diagnosis:
    """``evidence`` is a grammar.transcript.Evidence (facts + unparsed)."""
    rulebook = rulebook or default_rulebook()
    table, stale = current_facts(evidence)
    order = getattr(evidence, "source_order", ())
    state, left_out = _reason(table, rulebook, by_node=False, source_order=order)
    if left_out:
        # Facts go in by kind (every route, then every address ...), so a limit reached
        # in evidence of thousands of nodes leaves no join complete and no finding. Again,
        # node after node in the order the evidence shows them: the nodes before the
        # limit are judged whole. The first attempt's facts go before the second's come.
        state = table = None
        table, stale = current_facts(evidence)
        state, left_out = _reason(table, rulebook, by_node=True, source_order=order)
    findings = state.findings()
    return Diagnosis(findings, list(evidence.unparsed), evidence.parsed_count,
                     _superseded(evidence.facts, stale), table, state.answerer.notes() + left_out)


def _reason(table: FactTable, rulebook: Rulebook, by_node: bool, source_order=()):
    """One engine session over the table; the session's state and what a limit left out."""
    state = _SessionState(table, rulebook, source_order)
    engine = compiled(rulebook, _on_cause, _on_inference, _on_query, COMPUTED, _on_overrule)
    wanted = rulebook.fact_types()
    facts = [f for f in table.facts if f["type"] in wanted]
    if by_node:
        first_seen: dict = {}
        for fact in facts:
            first_seen.setdefault(repr(fact.get("node")), len(first_seen))
        facts.sort(key=lambda f: first_seen[repr(f.get("node"))])
    left_out: list[str] = []
    fed = 0

    def feed():
        nonlocal fed
        for fed, fact in enumerate(facts, 1):
            yield engine_view(fact)

    with engine.session() as session:
        session.diagnosis = state
        try:
            session.assert_facts(feed())
            session.complete()
        except (EngineLimit, ActionError) as error:
            limits = [e for e in getattr(error, "errors", [error]) if isinstance(e, EngineLimit)]
            if not limits:
                raise
            order = ""
            if by_node:
                nodes = len({repr(f.get("node")) for f in facts})
                # the node whose fact met the limit is only partly in
                whole = len({repr(f.get("node")) for f in facts[:fed]}) - 1 if fed < len(facts) else nodes
                order = (f", node after node in the order of the evidence (the first {whole} of "
                         f"{nodes} nodes with facts the rules read went in whole),")
            left_out.append(f"the reasoning stopped at a limit ({limits[0]}); the findings are "
                            f"those reached before it{order} and causes that rest on something "
                            f"being absent were not judged")
    return state, left_out


def _superseded(facts: list[dict], stale: dict[int, dict]) -> list[dict]:
    """One line per change that made earlier evidence stale, with how much."""
    counts: dict[int, tuple[dict, int]] = {}
    for index, change in stale.items():
        key = id(change)
        counts[key] = (change, counts.get(key, (change, 0))[1] + 1)
    return [{"node": change.get("node"), "command": change["prov"]["command"],
             "source": change["prov"]["source"], "line": change["prov"]["line"],
             "facts": count}
            for change, count in sorted(counts.values(), key=lambda item: (
                str(item[0]["prov"]["source"]), item[0]["prov"]["line"] or 0))]


def _on_query(session, question: Question, c) -> None:
    state: _SessionState = session.diagnosis
    bound = state.bindings(question.before, c)
    for fact in state.answerer.answer(question.fact_type, question.values(bound)):
        session.derive(c, engine_view(fact))


def _on_inference(session, inference: Inference, c) -> None:
    state: _SessionState = session.diagnosis
    bound = state.bindings(inference.patterns, c)
    fields = {}
    for key, value in inference.conclude.items():
        if key == "type":
            continue
        fields[key] = state.value(value, bound)
    node = fields.pop("node", None)
    key = (inference.conclude["type"], node, tuple(sorted((k, repr(v)) for k, v in fields.items())))
    if key in state.concluded:
        return
    fact = state.table.derive(inference.conclude["type"], node, bound.values(),
                              render(inference.because, bound), **fields)
    state.concluded[key] = fact
    if fact["type"] in state.wanted:     # the engine refuses facts no rule asks about
        session.derive(c, engine_view(fact))


def _on_overrule(session, cause: Cause, case: Case, patterns, c) -> None:
    """An ``unless:`` item matched: remember what may overrule the finding; whether it
    does (it must not come before the finding's evidence) is judged in findings()."""
    state: _SessionState = session.diagnosis
    bound = state.bindings(case.patterns + patterns, c)
    key = (cause.cause, _render_optional(case.texts["node"], bound),
           _render_optional(case.texts["service"], bound))
    # the item's last pattern is the observation; those before it only join it to the case
    observed = [bound[p.name]["fact_id"] for p in patterns[-1:] if not p.negated]
    if observed and observed not in state.overrules.setdefault(key, []):
        state.overrules[key].append(observed)


# A cause that fires for thousands of facts alike (every floating IP of a node) keeps the
# evidence of its first few firings per case; the others are counted and said.
MERGED_FIRINGS_PER_CASE = 3


def _on_cause(session, cause: Cause, case: Case, c) -> None:
    state: _SessionState = session.diagnosis
    bound = state.bindings(case.patterns, c)
    texts = case.texts
    node = _render_optional(texts["node"], bound)
    service = _render_optional(texts["service"], bound)
    key = (cause.cause, node, service)
    fact_ids = [bound[name]["fact_id"] for name in texts["evidence"]]
    existing = state._findings.get(key)
    if existing is not None and not (existing.status == "possible" and texts["status"] == "established"):
        firings = state.firings.setdefault((key, id(case)), [0])
        firings[0] += 1
        if firings[0] <= MERGED_FIRINGS_PER_CASE:
            existing.fact_ids += [i for i in fact_ids if i not in existing.fact_ids]
        else:
            state.alike.setdefault(key, set()).add(fact_ids[0])
        return
    finding = Finding(
        cause=cause.cause,
        node=node,
        service=service,
        status=texts["status"],
        title=render(texts["title"], bound),
        explanation=" ".join(render(texts["explanation"], bound).split()),
        fix=[render(step, bound) for step in texts["fix"]],
        evidence=[],
        decide_by=[render(step, bound) for step in texts["decide_by"]],
        hints=[render(hint, bound) for hint in cause.hints],
        questions=[{"ask": render(q.ask, bound), "expect": [render(v, bound) for v in q.expect],
                    "missing": [render(m, bound) if m else None for m in q.missing],
                    "partial": render(q.partial, bound) if q.partial else None,
                    "wrong": render(q.wrong, bound) if q.wrong else None}
                   for q in cause.questions],
        fact_ids=fact_ids,
    )
    if existing is not None:      # established replaces possible, keeping its evidence
        finding.fact_ids = existing.fact_ids + [i for i in fact_ids if i not in existing.fact_ids]
    state._findings[key] = finding


class _SessionState:
    def __init__(self, table: FactTable, rulebook: Rulebook, source_order=()):
        self.table = table
        self.position = {source: number for number, source in enumerate(source_order)}
        self.overrules: dict[tuple, list[list[int]]] = {}
        self.rulebook = rulebook
        self.answerer = Answerer(table)
        self.wanted = rulebook.fact_types()
        self.concluded: dict[tuple, dict] = {}
        self._findings: dict[tuple, Finding] = {}
        self.firings: dict[tuple, list[int]] = {}
        self.alike: dict[tuple, set[int]] = {}

    def _overrule(self, finding: Finding) -> None:
        """Observations outrank what the evidence implies: a finding yields to one its
        ``unless:`` matched, unless the observation is known to come before all of the
        finding's own evidence (then the lab may have changed since; while some of the
        evidence is older than the observation, that part may be what changed)."""
        outranking = []
        for observed in self.overrules.get((finding.cause, finding.node, finding.service), ()):
            lines = self.table.evidence(observed)
            if lines and not all(self._before(seen, line) for seen in lines for line in finding.evidence):
                outranking.append(observed)
        if not outranking:
            return
        finding.overruled_by = list(dict.fromkeys(self._observation(fact_id)
                                                  for observed in outranking for fact_id in observed))
        said = "; and ".join(finding.overruled_by)
        finding.status = "possible"
        finding.explanation += (f" But what was observed after (some of) this evidence outranks "
                                f"it: {said}. "
                                f"So this is not what stops the traffic now, or the evidence "
                                f"above is stale.")
        finding.decide_by.insert(0, f"Observed after (some of) this evidence: {said}. Run the "
                                    f"probe again and show the tables again: if it still gets through, this "
                                    f"cause is gone (mended since, or never what failed); if it "
                                    f"fails again, it stands.")
        finding.fact_ids += [i for observed in outranking for i in observed if i not in finding.fact_ids]
        finding.evidence = self.table.evidence(finding.fact_ids)

    def _before(self, earlier: dict, later: dict) -> bool:
        """Whether the evidence says ``earlier`` was printed before ``later``."""
        if earlier["source"] == later["source"]:
            return (earlier["line"] or 0) < (later["line"] or 0)
        first, then = self.position.get(earlier["source"]), self.position.get(later["source"])
        return first is not None and then is not None and first < then

    def _observation(self, fact_id: int) -> str:
        """What was observed, in words: the command, where it ran, and what it printed."""
        probe, sources = self.table[fact_id], []
        while not probe.get("prov") and probe.get("derived_from"):
            sources.extend(probe["derived_from"])
            probe = self.table[sources.pop(0)]
        if not probe.get("prov"):
            return self.table[fact_id].get("because") or self.table[fact_id]["type"]
        prov = probe["prov"]
        detail = probe.get("detail")
        return (f"'{prov['command']}' on {prov['node']} ({prov['source']}:{prov['line']})"
                + (f" printed '{detail}'" if detail else f": {' '.join(str(prov['text']).split())}"))

    def bindings(self, patterns, c) -> dict[str, dict]:
        return {p.name: self.table[getattr(c, p.name).fact_id] for p in patterns if not p.negated}

    def value(self, value, bound):
        if isinstance(value, str) and value.startswith("$"):
            name, _, attribute = value[1:].partition(".")
            return bound[name].get(attribute)
        if isinstance(value, str):
            return render(value, bound)
        return value

    def findings(self) -> list[Finding]:
        order = {cause.cause: i for i, cause in enumerate(self.rulebook.causes)}
        found = list(self._findings.values())
        for finding in found:
            finding.evidence = self.table.evidence(finding.fact_ids)
            self._overrule(finding)
            finding.reasoning = self.table.reasoning(finding.fact_ids)
            alike = self.alike.get((finding.cause, finding.node, finding.service))
            if alike:
                finding.reasoning.append(f"the same holds for {len(alike)} more alike, whose "
                                         f"evidence is not shown")
        return sorted(found, key=lambda f: (f.status != "established", order.get(f.cause, 0),
                                            str(f.node), str(f.service)))


# --- templates ---------------------------------------------------------------------------

class _Formatter(string.Formatter):
    def get_field(self, field_name, args, kwargs):
        name, _, attribute = field_name.partition(".")
        fact = kwargs.get(name)
        if fact is None or not attribute or attribute.startswith("_"):
            return "(unknown)", field_name
        return _show(fact.get(attribute)), field_name


def _show(value) -> str:
    if value is None:
        return "(not shown)"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return str(value)


_FORMATTER = _Formatter()


def render(template: str, bound: dict[str, dict]) -> str:
    return _FORMATTER.vformat(template, (), bound)


def _render_optional(template, bound):
    if template is None:
        return None
    text = render(template, bound)
    return None if text in ("", "(not shown)", "(unknown)") else text
