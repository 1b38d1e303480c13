"""The facts of one diagnosis: parsed ones with their provenance, derived ones with
the facts they came from, so that every conclusion can walk back to evidence lines."""
from __future__ import annotations

from collections import defaultdict

from grammar.compact import compact

# Fields that stay out of the engine: provenance lives here, not in durable-rules, and
# nested structures (traceback frames) are for explanations, not for matching.
_KEEP_OUT_OF_ENGINE = {"prov", "derived_from", "because", "traceback", "frames"}


class FactTable:
    def __init__(self):
        self.facts: list[dict] = []
        self._by_type: dict[str, list[dict]] = defaultdict(list)
        # by node too, for the few types asked about per node (routes, addresses ...):
        # a scan of every fact of the type per node is quadratic in a folder of thousands
        # of nodes. A type's index is made on the first such question: one for every
        # type would cost a list per type and node, as much as a tenth of the facts.
        self._by_node: dict[str, dict] = {}

    def add(self, fact: dict) -> dict:
        fact["fact_id"] = len(self.facts)
        self.facts.append(fact)
        fact_type = fact["type"]
        self._by_type[fact_type].append(fact)
        by_node = self._by_node.get(fact_type)
        if by_node is not None:
            by_node.setdefault(_node_key(fact), []).append(fact)
        return fact

    def extend(self, facts: list[dict]) -> None:
        """``add`` for each fact, in one loop (a listing's 20,000 rules)."""
        if self._by_node:
            for fact in facts:
                self.add(fact)
            return
        by_type, number = self._by_type, len(self.facts)
        for fact in facts:
            fact["fact_id"] = number
            number += 1
            by_type[fact["type"]].append(fact)
        self.facts += facts

    def derive(self, fact_type: str, node, sources, because: str, **fields) -> dict:
        """A conclusion drawn in code (a combiner) or by a rule, tied to its sources."""
        fact = {"type": fact_type, "node": node, **fields,
                # a tuple: half a list's memory, for as many as the evidence's facts
                "derived_from": tuple(sorted({s["fact_id"] for s in sources if s and "fact_id" in s})),
                "because": because}
        return self.add(compact(fact))     # the same dict, in less memory

    def truncate(self, length: int) -> None:
        """Forget the facts added after the first ``length`` (what a diagnosis cut short
        by a limit derived, before it goes again)."""
        for fact in reversed(self.facts[length:]):     # each index ends with them, in order
            self._by_type[fact["type"]].pop()
            by_node = self._by_node.get(fact["type"])
            if by_node is not None:
                by_node[_node_key(fact)].pop()
        del self.facts[length:]

    def of(self, fact_type: str, node=...) -> list[dict]:
        found = self._by_type.get(fact_type, [])
        if node is ...:
            return list(found)
        by_node = self._by_node.get(fact_type)
        if by_node is None:
            by_node = self._by_node[fact_type] = {}
            for fact in found:
                by_node.setdefault(_node_key(fact), []).append(fact)
        return list(by_node.get(_hashable(node), ()))

    def types(self) -> list[str]:
        """The fact types the table holds facts of."""
        return [fact_type for fact_type, facts in self._by_type.items() if facts]

    def nodes(self, fact_type: str) -> list:
        return sorted({f.get("node") for f in self._by_type.get(fact_type, [])},
                      key=lambda n: (n is None, n or ""))

    def __getitem__(self, fact_id: int) -> dict:
        return self.facts[fact_id]

    def evidence(self, fact_ids) -> list[dict]:
        """The evidence lines under some facts, in the order they were printed."""
        seen, lines = set(), []
        for fact in self._walk(fact_ids):
            prov = fact.get("prov")
            if prov is None:
                continue
            key = (prov["source"], prov["line"], prov["node"])
            if key not in seen:
                seen.add(key)
                lines.append(dict(prov))
        return sorted(lines, key=lambda p: (str(p["source"]), p["line"] or 0))

    def reasoning(self, fact_ids) -> list[str]:
        """The steps that derived these facts, in the order given, each after the
        steps it rests on, each said once."""
        steps: list[str] = []
        visited: set[int] = set()

        def visit(fact_id: int) -> None:
            if fact_id in visited:
                return
            visited.add(fact_id)
            fact = self.facts[fact_id]
            for source in fact.get("derived_from", []):
                visit(source)
            because = fact.get("because")
            if because and because not in steps:
                steps.append(because)

        for fact_id in fact_ids:
            visit(fact_id)
        return steps

    def _walk(self, fact_ids):
        stack, visited = list(fact_ids)[::-1], set()
        while stack:
            fact_id = stack.pop()
            if fact_id in visited:
                continue
            visited.add(fact_id)
            fact = self.facts[fact_id]
            yield fact
            stack.extend(reversed(fact.get("derived_from", [])))


def _node_key(fact: dict):
    node = fact.get("node")
    # the usual kinds need no check
    return node if node is None or node.__class__ is str else _hashable(node)


def _hashable(node):
    """A node's name as an index key (a malformed fact may carry a list there)."""
    try:
        hash(node)
    except TypeError:
        return repr(node)
    return node


def engine_view(fact: dict) -> dict:
    """What the rule engine sees of a fact: its plain fields and its fact_id."""
    return {key: value for key, value in fact.items()
            if key not in _KEEP_OUT_OF_ENGINE and _plain(value)}


def _plain(value) -> bool:
    if isinstance(value, (str, int, float, bool)) or value is None:
        return True
    if isinstance(value, list):
        return all(isinstance(v, (str, int, float, bool)) for v in value)
    return False
