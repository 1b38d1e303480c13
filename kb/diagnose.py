"""One diagnosis: evidence in, findings out, each finding with its evidence lines and
the steps of reasoning that led to it.

    facts (grammar/) -> drop the stale ones (kb/timeline) -> neutral facts
    (kb/derivations) -> parts no rule joins across (kb/components) -> an engine
    session over the rulebook per part (kb/rulebook, kb/rulecompile, kb/engine),
    which asks kb/queries for the computed facts its patterns reach -> findings

A thousand labs in one folder are a thousand parts, reasoned about one after another
(a few small ones per session), so the engine never holds more than a part: time and
memory grow with the evidence, not with its square, and the fact limit is met only by
a part too big by itself.

The intermediate conclusions (the gateway of a node, node roles ...) are drawn by the
inference rules of rules/inferences/ in the same session, so a finding's reasoning
walks back through them to the evidence lines.
"""
from __future__ import annotations

import string
from dataclasses import dataclass, field
from itertools import chain
from operator import itemgetter
from pathlib import Path

from kb import components, derivations, timeline
from kb import engine as kb_engine
from kb.engine import ActionError, EngineLimit
from kb.facts import FactTable, engine_view
from kb.queries import COMPUTED, Answerer
from kb.rulebook import Cause, Case, Inference, Rulebook, cached_rulebook
from kb.rulecompile import Question, compiled, matched_fields, planned_json

RULES_DIR = Path(__file__).resolve().parent.parent / "rules"


@dataclass
class Finding:
    """A cause found on a node, with its status, explanation, fix and the evidence for it."""
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
    """What a diagnosis gives: its findings, what could not be read, and the facts behind them."""
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
    return cached_rulebook((str(RULES_DIR),), prepare=_prepared)


def _prepared(rulebook: Rulebook) -> None:
    """What a diagnosis derives from the rules alone, worked out before the rulebook
    is kept on disk (each is cached on the rulebook object)."""
    _fields_read(rulebook)
    _tells_facts_apart(rulebook)
    planned_json(rulebook, COMPUTED)
    matched_fields(rulebook)
    components.plan(rulebook, COMPUTED)
    components.reach(rulebook, COMPUTED)


def current_facts(evidence, handed_over: bool = False) -> tuple[FactTable, dict[int, dict]]:
    """The facts that still hold (later evidence wins) and the neutral facts derived
    from them, with the stale ones by index into ``evidence.facts``. Each fact is
    copied (the table numbers its facts) unless the evidence is ``handed_over``."""
    stale = timeline.stale_facts(evidence.facts, getattr(evidence, "source_order", ()))
    table = FactTable()
    table.extend([fact if handed_over else dict(fact) for index, fact in enumerate(evidence.facts)
                  if index not in stale and fact["type"] != "state_change"])
    derivations.derive_all(table)
    return table, stale


def diagnose(evidence, rulebook: Rulebook | None = None, handed_over: bool = False) -> Diagnosis:
    """``evidence`` is a grammar.transcript.Evidence (facts + unparsed). A caller that
    diagnoses it once and keeps no other use of its facts (a one-shot run over a
    folder) hands it over: its facts become the diagnosis' own, numbered in place
    instead of copied, which halves the memory the diagnosis adds to the evidence."""
    rulebook = rulebook or default_rulebook()
    table, stale = current_facts(evidence, handed_over)
    reasoning = _Reasoning(table, rulebook, getattr(evidence, "source_order", ()))
    left_out = reasoning.run()
    return Diagnosis(reasoning.findings(), list(evidence.unparsed), evidence.parsed_count,
                     _superseded(evidence.facts, stale), table,
                     reasoning.answerer.notes() + left_out)


# Facts per engine session: parts of the evidence (kb/components.py) go into one session
# together up to this many, so that a folder of small labs does not pay a session per
# node, and the engine never holds more than a part or a few at once (it costs about
# 10 KB per fact). 300 facts (a handful of small labs) hold 6 MB less than 1,000 at
# the peak of a 10 MB folder, in the same time: a session costs little of its own.
SESSION_FACTS = 300


class _Reasoning:
    """The rulebook over the table, part after part of the evidence (kb/components.py):
    facts of two parts never meet in a rule, so each part goes into an engine session
    of its own, and its findings are those one session over everything would give."""

    def __init__(self, table: FactTable, rulebook: Rulebook, source_order=()):
        self.table, self.rulebook = table, rulebook
        self.position = {source: number for number, source in enumerate(source_order)}
        self.answerer = Answerer(table)
        self.engine = compiled(rulebook, _on_cause, _on_inference, _on_query, COMPUTED, _on_overrule)
        self.reads = _fields_read(rulebook)
        self.states: list[_SessionState] = []
        # the same output shown again (a transcript pasted twice, a log's line repeated)
        # gives facts no rule can tell apart: the first stands for the others
        self.compact = not _tells_facts_apart(rulebook)
        self.repeats: dict[int, list[int]] = {}  # fact_id -> the facts that say the same

    def _without_repeats(self, part: list[dict]) -> list[dict]:
        """The part without facts that repeat an earlier one in every field but where
        they were printed (or, derived, which lines they came from): each would fire
        every rule its first fires and say the same in every template, over again (a
        transcript repeated a hundred times is a hundred-fold join, not more evidence)."""
        first: dict[tuple, dict] = {}
        kept = []
        for fact in part:
            key = tuple(sorted((name, repr(value)) for name, value in fact.items()
                               if name not in _WHERE_FROM))
            earlier = first.get(key)
            if earlier is None:
                first[key] = fact
                kept.append(fact)
            else:
                self.repeats.setdefault(earlier["fact_id"], []).append(fact["fact_id"])
        return kept

    def run(self) -> list[str]:
        """Reasons over every part; what a limit left out, in words."""
        # the facts of the types some rule reads, in the order of the table
        kinds = [self.table.of(fact_type) for fact_type in self.table.types() if fact_type in self.reads]
        facts = sorted(chain.from_iterable(kinds), key=_FACT_ID) if len(kinds) > 1 else (kinds or [[]])[0]
        layout = components.plan(self.rulebook, COMPUTED)
        groups = [list(range(len(facts)))] if layout.unsplittable else components.parts(facts, layout)
        left_out: list[str] = []
        batch: list[list[dict]] = []
        size = 0
        reach = components.reach(self.rulebook, COMPUTED)
        parts = len(groups)
        groups.reverse()
        while groups:           # each group let go once its part is made
            part = [facts[i] for i in groups.pop()]
            if self.compact:
                part = self._without_repeats(part)
            worth = reach.types({fact["type"] for fact in part})
            part = [fact for fact in part if fact["type"] in worth]
            if not part:
                continue
            if batch and size + len(part) > SESSION_FACTS:
                self._batch(batch, parts, left_out)
                batch, size = [], 0
            batch.append(part)
            size += len(part)
        if batch:
            self._batch(batch, parts, left_out)
        return left_out

    def _batch(self, batch: list[list[dict]], parts: int, left_out: list[str]) -> None:
        """One session over some parts; at a limit, each part alone, and a part over the
        limit by itself once more, node after node."""
        facts = [fact for part in batch for fact in part]
        if len(batch) > 1:
            facts.sort(key=lambda f: f["fact_id"])
        # more facts than a session takes can only meet the limit: straight to node order
        if len(facts) <= kb_engine.MAX_FACTS:
            mark = self._checkpoint()
            state, limit, _ = self._session(facts)
            if limit is None:
                self.states.append(state)
                # no later part asks about these nodes: what the walks compiled of
                # their tables is not kept while the rest is reasoned about
                self.answerer.forget_tables({fact["node"] for fact in facts
                                             if isinstance(fact.get("node"), str)})
                return
            self._rollback(mark)
        if len(batch) > 1:
            for part in batch:
                self._batch([part], parts, left_out)
            return
        # Facts go in by kind (every route, then every address ...), so a limit reached
        # in evidence of thousands of nodes leaves no join complete and no finding. Again,
        # node after node in the order the evidence shows them: the nodes before the
        # limit are judged whole.
        first_seen: dict = {}
        for fact in facts:
            first_seen.setdefault(repr(fact.get("node")), len(first_seen))
        facts.sort(key=lambda f: first_seen[repr(f.get("node"))])
        state, limit, fed = self._session(facts)
        self.states.append(state)
        if limit is None:
            return
        nodes = len(first_seen)
        # the node whose fact met the limit is only partly in
        whole = len({repr(f.get("node")) for f in facts[:fed]}) - 1 if fed < len(facts) else nodes
        part = (f" in a part of the evidence that {nodes} nodes share (their facts can meet in a "
                f"rule)" if parts > 1 else "")
        left_out.append(f"the reasoning stopped at a limit ({limit}); the findings are those "
                        f"reached before it{part}, node after node in the order of the evidence "
                        f"(the first {whole} of {nodes} nodes with facts the rules read went in "
                        f"whole), and causes that rest on something being absent were not judged")

    def _session(self, facts: list[dict]):
        """One engine session over the facts: its state, the limit it met (or None) and
        how many facts went in."""
        state = _SessionState(self.table, self.rulebook, self.answerer, self.reads, self.position)
        fed = 0

        def feed():
            nonlocal fed
            for fed, fact in enumerate(facts, 1):
                yield state.engine_fact(fact)

        with self.engine.session() as session:
            session.diagnosis = state
            try:
                session.assert_facts(feed())
                session.complete()
            except (EngineLimit, ActionError) as error:
                limits = [e for e in getattr(error, "errors", [error]) if isinstance(e, EngineLimit)]
                if not limits:
                    raise
                return state.closed(), limits[0], fed
        return state.closed(), None, fed

    def _checkpoint(self):
        return len(self.table.facts), self.answerer.checkpoint()

    def _rollback(self, mark) -> None:
        """Forget what a session cut short by a limit derived, before it goes again."""
        length, answers = mark
        self.table.truncate(length)
        self.answerer.restore(answers)

    def _repeated(self, fact_ids) -> int:
        """How many evidence lines, not shown, repeat those under these facts."""
        if not self.repeats:
            return 0
        repeats, stack, seen = [], list(fact_ids), set()
        while stack:
            fact_id = stack.pop()
            if fact_id in seen:
                continue
            seen.add(fact_id)
            repeats += self.repeats.get(fact_id, ())
            stack.extend(self.table[fact_id].get("derived_from", ()))
        shown = self.table.evidence(fact_ids)
        places, texts = {(p["source"], p["line"]) for p in shown}, {p["text"] for p in shown}
        return sum(1 for p in self.table.evidence(repeats)
                   if p["text"] in texts and (p["source"], p["line"]) not in places)

    def findings(self) -> list[Finding]:
        found: dict[tuple, Finding] = {}
        alike: dict[tuple, set[int]] = {}
        overruling = _SessionState(self.table, self.rulebook, self.answerer, self.reads, self.position)
        for state in self.states:
            found.update(state._findings)
            alike.update(state.alike)
            overruling.overrules.update(state.overrules)
        order = {cause.cause: i for i, cause in enumerate(self.rulebook.causes)}
        for finding in found.values():
            finding.evidence = self.table.evidence(finding.fact_ids)
            overruling._overrule(finding)
            finding.reasoning = self.table.reasoning(finding.fact_ids)
            others = alike.get((finding.cause, finding.node, finding.service))
            if others:
                finding.reasoning.append(f"the same holds for {len(others)} more alike, whose "
                                         f"evidence is not shown")
            repeated = self._repeated(finding.fact_ids)
            if repeated:
                finding.reasoning.append(f"{repeated} more evidence lines repeat lines shown here "
                                         f"(the same output again; shown once)")
        return sorted(found.values(), key=lambda f: (f.status != "established", order.get(f.cause, 0),
                                                     str(f.node), str(f.service)))


_FACT_ID = itemgetter("fact_id")

# what tells repeated output apart: where it was printed, which facts it came from
_WHERE_FROM = {"fact_id", "prov", "derived_from"}


def _rule_patterns(rulebook: Rulebook) -> list[list]:
    """The patterns of every rule the rulebook compiles to (a case's ``unless:`` items,
    where the rulebook has them, after the case's own)."""
    rules = [inference.patterns for inference in rulebook.inferences]
    for cause in rulebook.causes:
        for case in cause.cases:
            rules.append(case.patterns)
            rules.extend(case.patterns + item for item in getattr(case, "unless", ()))
    return rules


def _tells_facts_apart(rulebook: Rulebook) -> bool:
    """Whether some rule reads a fact's identity (its fact_id), so that two facts alike
    in every other field are not the same to it."""
    cached = getattr(rulebook, "_tells_facts_apart", None)
    if cached is None:
        patterns = [p for rule in _rule_patterns(rulebook) for p in rule]
        cached = rulebook._tells_facts_apart = any(
            fld == "fact_id" or (isinstance(value, tuple) and value[1] == "fact_id")
            for p in patterns for fld, _, value in p.conditions)
    return cached


def _fields_read(rulebook: Rulebook) -> dict[str, frozenset]:
    """Per fact type some rule asks about, the fields its patterns read: all the engine
    needs to hold of a fact (the rest stays in the table, reached by fact_id)."""
    cached = getattr(rulebook, "_fields_read", None)
    if cached is not None:
        return cached
    reads: dict[str, set] = {}
    for patterns in _rule_patterns(rulebook):
        types = {p.name: p.fact_type for p in patterns}
        for pattern in patterns:
            reads.setdefault(pattern.fact_type, {"type", "fact_id"})
            for fld, _, value in pattern.conditions:
                reads[pattern.fact_type].add(fld)
                if isinstance(value, tuple) and value[0] in types:   # $name.field: read there
                    reads.setdefault(types[value[0]], {"type", "fact_id"}).add(value[1])
    result = {fact_type: frozenset(fields) for fact_type, fields in reads.items()}
    rulebook._fields_read = result
    return result


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
        session.derive(c, state.engine_fact(fact))


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
    if fact["type"] in state.reads:     # the engine refuses facts no rule asks about
        session.derive(c, state.engine_fact(fact))


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
    """What one engine session concluded and found (kb/diagnose._Reasoning merges them)."""

    def __init__(self, table: FactTable, rulebook: Rulebook, answerer: Answerer,
                 reads: dict[str, frozenset], position: dict | None = None):
        self.table = table
        self.position = position or {}
        self.overrules: dict[tuple, list[list[int]]] = {}
        self.rulebook = rulebook
        self.answerer = answerer
        self.reads = reads
        self.concluded: dict[tuple, dict] = {}
        self._findings: dict[tuple, Finding] = {}
        self.firings: dict[tuple, list[int]] = {}
        self.alike: dict[tuple, set[int]] = {}

    def closed(self) -> "_SessionState":
        """The state once its session is over: what only the session's rules needed
        (which conclusions it drew, how often a case fired) is let go, as a folder of
        a thousand labs keeps a state per session."""
        self.concluded.clear()
        self.firings.clear()
        return self

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

    def engine_fact(self, fact: dict) -> dict:
        """What the engine holds of a fact: the fields some rule reads (it costs the
        engine memory per field), with the fact_id that leads back to the table."""
        fields = self.reads[fact["type"]]
        return engine_view({key: value for key, value in fact.items() if key in fields})

    def bindings(self, patterns, c) -> dict[str, dict]:
        return {p.name: self.table[getattr(c, p.name).fact_id] for p in patterns if not p.negated}

    def value(self, value, bound):
        if isinstance(value, str) and value.startswith("$"):
            name, _, attribute = value[1:].partition(".")
            return bound[name].get(attribute)
        if isinstance(value, str):
            return render(value, bound)
        return value


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
