"""The evidence in parts that no rule can join across, so that each part is reasoned
about in an engine session of its own, one after another.

durable-rules costs about 8-11 KB per fact it holds, and a session is reliable only up
to kb/engine.MAX_FACTS facts; a folder of a thousand labs holds hundreds of thousands.
Yet facts only ever meet through a rule's joins: a pattern after the first is tied to
an earlier one by an equality (``node: $snat.node``). Two facts whose joined fields
share no value can never be bound in one firing, so the nodes of one lab and those of
another, which share no address, network or name, form separate parts. Each part's
findings are exactly those it has in one session over everything.

Which fields join is read from the rulebook, never named here:

- every fact's ``node``: a node's facts stay together (a finding is one per cause,
  node and service; an inference's conclusion one per type, node and fields);
- per pair of patterns tied by equalities, one of them (the one on node names, when
  there is one: an interface name every lab has must not make a thousand labs one part);
- a conclusion's field copied from a bound fact (``for_node: $route.node``) takes the
  values of the field it copies, and so does a computed fact's key (kb/queries.py);
- a conclusion's constant (``service: keystone``) compared with evidence anywhere ("no
  node runs keystone"): the facts that make the conclusion are tied to every fact
  holding the constant there.

Facts the engine derives (conclusions, computed answers) are not split: they arise in
the part whose facts they come from. That is sound only where their joined fields carry
values copied from the evidence; a rule that joins on a value made up along the way
(a constant, a template, a field the network model computes) with nothing else tying
its patterns together could meet facts of two parts. ``Plan.unsplittable`` says why a
rulebook cannot be split; such a rulebook is reasoned about in one session.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from kb.rulebook import Pattern, Rulebook
from kb.rulecompile import questions

_NODE = ("", "node")          # the class every fact's node belongs to
_EITHER = 2                   # a field compared with itself: no sides
_TEMPLATE_FIELD = re.compile(r"^\{([a-z][a-z0-9_]*)\.([A-Za-z_][A-Za-z0-9_]*)\}$")


@dataclass
class Plan:
    """Per fact type, the fields whose values tie facts together: (field, tie, side).
    Two facts are tied when they hold the same value on the two sides of one tie, or on
    side ``_EITHER`` of it (a field compared with itself). Facts naming one node in
    ``names`` fields are tied, and node names are on ``name_sides`` of further ties."""
    joined: dict[str, list[tuple[str, int, int]]] = field(default_factory=dict)
    names: dict[str, list[str]] = field(default_factory=dict)     # fields holding node names
    name_sides: list[tuple[int, int]] = field(default_factory=list)   # (tie, side) of node names
    # (type, field, {constant: types}): facts holding the constant there are tied to every
    # fact of the types whose facts make a conclusion holding it (a rule joins the two)
    constant_ties: list[tuple[str, str, dict]] = field(default_factory=list)
    unsplittable: list[str] = field(default_factory=list)


class _Classes:
    """Union-find over (fact type, field) attributes."""

    def __init__(self):
        self.parent: dict[tuple, tuple] = {}

    def find(self, item):
        parent = self.parent.setdefault(item, item)
        if parent != item:
            parent = self.parent[item] = self.find(parent)
        return parent

    def union(self, a, b) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[ra] = rb

    def same(self, a, b) -> bool:
        return self.find(a) == self.find(b)


def _rules(rulebook: Rulebook):
    """(where, patterns, finding-node template or None, conclusion or None) per rule."""
    for inference in rulebook.inferences:
        yield f"{inference.path}: {inference.name}", inference.patterns, None, inference.conclude
    for cause in rulebook.causes:
        for number, case in enumerate(cause.cases):
            yield f"{cause.path}: case {number + 1}", case.patterns, case.texts.get("node"), None
            # observations that overrule the case join its facts and share its finding
            for item in getattr(case, "unless", ()):
                yield (f"{cause.path}: case {number + 1}, unless", case.patterns + item,
                       case.texts.get("node"), None)


def _reference(value):
    """(name, field) of a ``$name.field`` conclusion value, else None."""
    if isinstance(value, str) and value.startswith("$") and "." in value:
        name, _, attribute = value[1:].partition(".")
        return name, attribute
    return None


def plan(rulebook: Rulebook, computed: dict) -> Plan:
    """How the rulebook's joins split the evidence (cached on the rulebook)."""
    cached = getattr(rulebook, "_components_plan", None)
    if cached is not None:
        return cached
    result = _plan(rulebook, computed)
    rulebook._components_plan = result
    return result


def _plan(rulebook: Rulebook, computed: dict) -> Plan:
    rules = list(_rules(rulebook))
    unsplittable: list[str] = []
    # --- where each derived type's fields get their values --------------------------
    # copies[(type, field)] = attributes it is copied from; made_up: fields with values
    # not copied from any fact (constants, templates, what Python computes)
    copies: dict[tuple, set] = {}
    made_up: set[tuple] = set()
    constants: dict[tuple, dict] = {}     # (type, field) -> constant -> the types that make it
    derived_types: set[str] = set()
    for where, patterns, _, conclusion in rules:
        if conclusion is None:
            continue
        fact_type = conclusion["type"]
        derived_types.add(fact_type)
        types = {p.name: p.fact_type for p in patterns}
        if "node" not in conclusion:
            made_up.add((fact_type, "node"))
        for key, value in conclusion.items():
            if key == "type":
                continue
            source = _reference(value)
            if source and source[0] in types:
                copies.setdefault((fact_type, key), set()).add((types[source[0]], source[1]))
            elif _constant(value) and patterns and not patterns[0].negated:
                # a constant (service: keystone): facts of the inference's first pattern
                # are what make it, wherever they are
                constants.setdefault((fact_type, key), {}).setdefault(
                    _value_key(value), set()).add(patterns[0].fact_type)
            else:
                made_up.add((fact_type, key))
    asked: list[tuple] = []           # (where, patterns, question)
    for where, patterns, _, _ in rules:
        for question in questions(patterns, computed, where):
            asked.append((where, patterns, question))
    computed_keys: dict[str, set] = {}
    for where, patterns, question in asked:
        derived_types.add(question.fact_type)
        types = {p.name: p.fact_type for p in patterns}
        for key, value in question.keys.items():
            computed_keys.setdefault(question.fact_type, set()).add(key)
            if isinstance(value, tuple):
                copies.setdefault((question.fact_type, key), set()).add((types[value[0]], value[1]))
            else:
                made_up.add((question.fact_type, key))

    def traced(attribute, seen=()) -> bool:
        """Whether every value of the attribute is a value some evidence fact holds."""
        fact_type, name = attribute
        if fact_type not in derived_types:
            return True
        if attribute in made_up or attribute in constants:
            return False
        if fact_type in computed_keys and name not in computed_keys[fact_type]:
            return False      # what the network model computes
        if attribute in seen:
            return True       # a cycle of copies adds no value of its own
        return all(traced(source, seen + (attribute,)) for source in copies.get(attribute, ()))

    # --- node names: a node's facts stay together -------------------------------------
    # A finding is one per cause and node, a conclusion one per type and node: the fields
    # their node is copied from hold node names too, tied to every fact's node.
    names = _Classes()
    all_types = set(derived_types)
    for _, patterns, _, _ in rules:
        all_types.update(p.fact_type for p in patterns)
    for fact_type in all_types:
        names.union((fact_type, "node"), _NODE)
    for where, patterns, node_template, conclusion in rules:
        if conclusion is not None and not traced((conclusion["type"], "node")):
            unsplittable.append(f"{where}: the node of its conclusion is not a field of one "
                                "fact the evidence holds")
        if node_template is None:
            continue
        types = {p.name: p.fact_type for p in patterns if not p.negated}
        match = _TEMPLATE_FIELD.match(str(node_template))
        attribute = (types.get(match.group(1)), match.group(2)) if match else None
        if attribute is None or attribute[0] is None or not traced(attribute):
            unsplittable.append(f"{where}: its finding's node {node_template!r} is not a field "
                                "of one fact the evidence holds")
            continue
        names.union(attribute, _NODE)
    grown = True
    while grown:            # back along copies, to the evidence
        grown = False
        for attribute, sources in copies.items():
            if names.same(attribute, _NODE):
                for source in sources:
                    if not names.same(source, _NODE):
                        names.union(source, _NODE)
                        grown = True

    def node_valued(attribute, seen=()) -> bool:
        if names.same(attribute, _NODE):
            return True
        if attribute[0] not in derived_types or attribute in seen or not copies.get(attribute):
            return False
        return all(node_valued(source, seen + (attribute,)) for source in copies[attribute])

    def vertex(attribute):
        return _NODE if names.same(attribute, _NODE) else attribute

    # --- the joins: the patterns of each rule tied by equalities on evidence values ------
    edges: list[tuple] = []        # (attribute, attribute, "join" or "copy")
    constant_ties: list[tuple] = []   # (evidence attribute, {constant: types that make it})
    for where, patterns, _, _ in rules:
        for group in [patterns] + [q.before for w, p, q in asked if p is patterns]:
            problem = _tie(group, traced, node_valued, edges, lambda a: _by_constant(
                a, constants, copies, traced, derived_types), constant_ties)
            if problem:
                unsplittable.append(f"{where}: {problem}")
    edges += [(attribute, source, "copy") for attribute, sources in copies.items() for source in sources]

    # --- which evidence fields must be compared, value by value -----------------------------
    # Two evidence fields are compared when a join ties them, directly or through fields
    # of derived facts that copy them (a conclusion's field, a computed fact's key). A path
    # through another evidence field needs no tie of its own: the facts there tie both ends.
    neighbours: dict[tuple, list[tuple]] = {}
    for a, b, kind in edges:
        a, b = vertex(a), vertex(b)
        neighbours.setdefault(a, []).append((b, kind))
        neighbours.setdefault(b, []).append((a, kind))
    compared: set[tuple] = set()
    for start in neighbours:
        if start[0] in derived_types:
            continue
        stack, seen = [(start, False)], set()
        while stack:
            attribute, through_join = stack.pop()
            for other, kind in neighbours.get(attribute, ()):
                step = (other, through_join or kind == "join")
                if step in seen:
                    continue
                seen.add(step)
                if other[0] in derived_types:
                    stack.append(step)
                elif step[1]:
                    compared.add(tuple(sorted((start, other))))
    compared.discard((_NODE, _NODE))

    # per evidence type: (field, tie, side); facts tie when they hold one value on the
    # two sides of a tie, or on side _EITHER of it (a field compared with itself)
    node_fields: dict[str, list[str]] = {}
    for attribute in names.parent:
        if attribute != _NODE and attribute[0] not in derived_types and names.same(attribute, _NODE):
            node_fields.setdefault(attribute[0], []).append(attribute[1])
    joined: dict[str, list[tuple[str, int, int]]] = {}
    name_sides: list[tuple[int, int]] = []
    for number, (one, other) in enumerate(sorted(compared), 1):
        for attribute, side in ([(one, _EITHER)] if one == other else [(one, 0), (other, 1)]):
            if attribute == _NODE:
                name_sides.append((number, side))
            else:
                joined.setdefault(attribute[0], []).append((attribute[1], number, side))
    for fields in list(joined.values()) + list(node_fields.values()):
        fields.sort()
    def evidence_of(attribute, seen=()):
        """The evidence fields a traced field's values are copied from."""
        if attribute[0] not in derived_types:
            return {attribute}
        if attribute in seen:
            return set()
        return {found for source in copies.get(attribute, ())
                for found in evidence_of(source, seen + (attribute,))}

    ties: list[tuple] = []
    for attribute, made in constant_ties:
        for found in sorted(evidence_of(attribute)):
            if (found[0], found[1], made) not in ties:
                ties.append((found[0], found[1], made))
    return Plan(joined, node_fields, name_sides, ties, sorted(set(unsplittable)))


def _constant(value) -> bool:
    """A conclusion's value written as a constant (no $reference, no {template})."""
    return isinstance(value, (int, float, bool)) or (
        isinstance(value, str) and not value.startswith("$") and "{" not in value)


def _by_constant(attribute, constants, copies, traced, derived_types):
    """{constant: making types} when every value of a derived attribute is a constant
    some conclusion writes or a copy of evidence (None otherwise)."""
    if attribute[0] not in derived_types or attribute not in constants:
        return None
    if not all(traced(source) for source in copies.get(attribute, ())):
        return None
    if any(t in derived_types for made in constants[attribute].values() for t in made):
        return None          # made from conclusions: their makers would have to be followed
    return constants[attribute]


def _tie(patterns: list[Pattern], traced, node_valued, edges: list, by_constant=None,
         constant_ties=None) -> str | None:
    """Ties the patterns together by as few equalities on evidence values as will do,
    those between node names first (a join on interface names alone would make every lab
    with the same interface names one part); says which patterns are left loose."""
    if len(patterns) < 2:
        return None
    by_name = {p.name: p for p in patterns}
    candidates = []
    for pattern in patterns:
        for fld, op, value in pattern.conditions:
            if op != "eq" or not isinstance(value, tuple) or value[0] not in by_name:
                continue
            mine, theirs = (pattern.fact_type, fld), (by_name[value[0]].fact_type, value[1])
            if traced(mine) and traced(theirs):
                on_names = node_valued(mine) and node_valued(theirs)
                candidates.append((0 if on_names else 1, pattern.name, value[0], mine, theirs))
            elif by_constant is not None:
                # a constant a conclusion writes, compared with an evidence field: last resort
                for made_side, other in ((mine, theirs), (theirs, mine)):
                    if by_constant(made_side) is not None and traced(other):
                        candidates.append((2, pattern.name, value[0], made_side, other))
                        break
    group = {p.name: {p.name} for p in patterns}
    for rank, a, b, mine, theirs in sorted(candidates, key=lambda c: c[0]):
        if group[a] is group[b]:
            continue
        if rank == 2:       # the constants tie here; copied values through the edge
            constant_ties.append((theirs, by_constant(mine)))
        edges.append((mine, theirs, "join"))
        merged = group[a] | group[b]
        for name in merged:
            group[name] = merged
    loose = [p.name for p in patterns if p.name not in group[patterns[0].name]]
    if loose:
        return (f"{', '.join(loose)} not tied to the other patterns by an equality on a "
                "value the evidence holds")
    return None


def _value_key(value):
    """A value as durable-rules compares it: 1 == 1.0 == True, "1" is not 1."""
    if isinstance(value, (bool, int, float)):
        return float(value)
    try:
        hash(value)
    except TypeError:             # a malformed fact's list or mapping: equal if printed alike
        return repr(value)
    return value


def parts(facts: list[dict], layout: Plan) -> list[list[int]]:
    """Indexes into ``facts``, grouped into parts no rule joins across, each part in the
    facts' order and the parts in the order of their first fact."""
    parent = list(range(len(facts)))

    def find(i: int) -> int:
        root = i
        while parent[root] != root:
            root = parent[root]
        while parent[i] != root:
            parent[i], i = root, parent[i]
        return root

    def tie(one: int, other: int) -> None:
        one, other = find(one), find(other)
        if other < one:
            parent[one] = other
        elif other > one:
            parent[other] = one

    names, joined = layout.names, layout.joined
    # A tie's value ties the facts holding it when they are on both of its sides, or on
    # side _EITHER: first which sides each value is on (a bit per side), then each
    # holder of a value that ties is tied to its first holder. Only bits and first
    # holders are kept, not every holder: a folder of labs holds a value per address.
    first_naming: dict = {}                        # node name -> the first fact naming it
    sides: dict[int, dict] = {}                    # tie -> value -> the sides it is on
    for index, fact in enumerate(facts):
        fact_type = fact["type"]
        for name in names.get(fact_type, ()):
            if name in fact:
                value = fact[name]
                first = first_naming.setdefault(value if type(value) is str else _value_key(value), index)
                if first != index:
                    tie(first, index)
        for name, number, side in joined.get(fact_type, ()):
            if name in fact:
                value = fact[name]
                value = value if type(value) is str else _value_key(value)
                on = sides.get(number)
                if on is None:
                    on = sides[number] = {}
                on[value] = on.get(value, 0) | 1 << side
    for number, side in layout.name_sides:
        on = sides.setdefault(number, {})
        for value in first_naming:
            on[value] = on.get(value, 0) | 1 << side
    first_holding: dict[int, dict] = {}            # tie -> value that ties -> its first holder

    def hold(number: int, value, index: int) -> None:
        if _ties(sides[number][value]):
            first = first_holding.setdefault(number, {}).setdefault(value, index)
            if first != index:
                tie(first, index)

    for index, fact in enumerate(facts):
        for name, number, _ in joined.get(fact["type"], ()):
            if name in fact:
                value = fact[name]
                hold(number, value if type(value) is str else _value_key(value), index)
    for number, _ in layout.name_sides:
        for value, index in first_naming.items():
            hold(number, value, index)
    if layout.constant_ties:
        wanted = {held for held, _, _ in layout.constant_ties} | {
            maker for _, _, made in layout.constant_ties for makers in made.values() for maker in makers}
        of_type: dict[str, list[int]] = {}
        for index, fact in enumerate(facts):
            if fact["type"] in wanted:
                of_type.setdefault(fact["type"], []).append(index)
        for fact_type, name, made in layout.constant_ties:
            for constant, makers in made.items():
                holding = [i for i in of_type.get(fact_type, ()) if name in facts[i]
                           and _value_key(facts[i][name]) == constant]
                making = [i for t in sorted(makers) for i in of_type.get(t, ())]
                if holding and making:
                    tied = holding + making
                    for index in tied[1:]:
                        tie(tied[0], index)
    grouped: dict[int, list[int]] = {}
    for index in range(len(facts)):
        grouped.setdefault(find(index), []).append(index)
    return list(grouped.values())


def _ties(on: int) -> bool:
    """Whether a value on these sides (bits 1 << side) ties its holders together."""
    return bool(on & 1 << _EITHER) or on & 3 == 3


class Reach:
    """Which fact types can matter in a part, from the types it holds: a rule whose
    patterns name a type no fact of the part has, and no rule can conclude or compute
    there, never fires, so the facts only it reads need not go into the engine (a lab
    without nova.conf has no use for its interfaces' listing). Every rule that can
    fire gets all it reads, absent ones included: the part's findings and conclusions
    are those it would have with every fact in."""

    def __init__(self, rulebook: Rulebook, computed: dict):
        # (types the rule must find, every type it reads, the type it makes or None)
        self.rules: list[tuple[frozenset, frozenset, str | None]] = []
        for where, patterns, _, conclusion in _rules(rulebook):
            self._add(patterns, conclusion["type"] if conclusion else None)
            for question in questions(patterns, computed, where):
                self._add(question.before, question.fact_type)
        self._known: dict[frozenset, frozenset] = {}

    def _add(self, patterns: list[Pattern], makes: str | None) -> None:
        self.rules.append((frozenset(p.fact_type for p in patterns if not p.negated),
                           frozenset(p.fact_type for p in patterns), makes))

    def types(self, present) -> frozenset:
        """The fact types worth asserting in a part holding facts of ``present`` types."""
        present = frozenset(present)
        known = self._known.get(present)
        if known is not None:
            return known
        available, grown = set(present), True
        while grown:
            grown = False
            for needs, _, makes in self.rules:
                if makes and makes not in available and needs <= available:
                    available.add(makes)
                    grown = True
        wanted = frozenset(t for needs, reads, _ in self.rules if needs <= available for t in reads)
        self._known[present] = wanted
        return wanted


def reach(rulebook: Rulebook, computed: dict) -> Reach:
    cached = getattr(rulebook, "_components_reach", None)
    if cached is None:
        cached = rulebook._components_reach = Reach(rulebook, computed)
    return cached
