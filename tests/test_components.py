"""The evidence is reasoned about part by part (kb/components.py): parts no rule can
join across, each in an engine session of its own. The findings must be exactly those
of one session over everything, for every shipped example, every captured lab, labs
side by side (sharing node names or addresses or not) and generated large labs."""
import dataclasses
import random
import re
from collections import Counter
from pathlib import Path

import pytest

import kb.diagnose
from benchmarks import bench_size, gen_lab
from collectors.files import read_evidence
from grammar.transcript import read_transcript
from kb import components
from kb.diagnose import default_rulebook, diagnose
from kb.queries import COMPUTED

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "rules" / "examples").iterdir())
LABS = sorted(p for p in (ROOT / "tests" / "fixtures" / "labs").iterdir() if p.is_dir())
EVIDENCE = [p for p in EXAMPLES + LABS if p.suffix != ".md"]
LAB = ROOT / "tests" / "fixtures" / "labs" / "other-snat-wrong-interface"


def outcome(diagnosis) -> dict:
    """All a reader of the diagnosis sees, and every conclusion drawn on the way (fact
    ids differ with the order facts are derived in; what they say does not)."""
    findings = []
    for finding in diagnosis.findings:
        seen = dataclasses.asdict(finding)
        del seen["fact_ids"]
        findings.append(seen)
    derived = Counter(repr(sorted((k, v) for k, v in fact.items() if k not in ("fact_id", "derived_from")))
                      for fact in diagnosis.table.facts if "because" in fact)
    return {"findings": findings, "left_out": diagnosis.left_out, "derived": derived,
            "facts": len(diagnosis.table.facts)}


def split_and_whole(evidence, monkeypatch):
    """The diagnosis part by part, each part alone in its session, and in one session
    holding every fact some rule reads."""
    monkeypatch.setattr(kb.diagnose, "SESSION_FACTS", 0)
    split = diagnose(evidence)
    with monkeypatch.context() as whole_mode:
        whole_mode.setattr(kb.diagnose, "SESSION_FACTS", 10 ** 9)
        whole_mode.setattr(components, "parts", lambda facts, layout: [list(range(len(facts)))])
        whole_mode.setattr(components.Reach, "types", lambda self, present: frozenset(present))
        whole = diagnose(evidence)
    return outcome(split), outcome(whole)


def test_the_shipped_rulebook_can_be_split():
    assert components.plan(default_rulebook(), COMPUTED).unsplittable == []


@pytest.mark.parametrize("path", EVIDENCE, ids=[p.name for p in EVIDENCE])
def test_each_example_gives_the_same_findings_split_as_whole(path, monkeypatch):
    split, whole = split_and_whole(read_evidence([str(path)]), monkeypatch)
    assert split == whole


def test_examples_side_by_side_give_the_same_findings_split_as_whole(monkeypatch):
    """Examples read as one evidence: their nodes share names (network-node, net01) and
    addresses across examples, so parts join examples together and tear others apart."""
    chooser = random.Random(20261127)
    for _ in range(6):
        chosen = chooser.sample(EVIDENCE, 8)
        evidence = read_evidence([str(p) for p in chosen])
        split, whole = split_and_whole(evidence, monkeypatch)
        assert split == whole, [p.name for p in chosen]


def copies(count: int, own_addresses: bool, tag: str = "") -> str:
    """The captured lab ``count`` times over, nodes renamed per copy (net01-3); with
    ``own_addresses`` each copy holds addresses of its own (benchmarks/bench_size)."""
    captures = [(path.name, path.read_text()) for path in sorted(LAB.glob("*.txt"))]
    publics = sorted({(a, b) for _, text in captures for a, b, c, d in bench_size._IPV4.findall(text)
                      if a != "10" and a not in bench_size._SHARED_FIRST_OCTETS and int(a) <= 223})
    text = ""
    for copy in range(1, count + 1):
        for _, capture in captures:
            capture = re.sub(r"(?m)^(\S+@)([\w.-]+)", rf"\g<1>\g<2>-{tag}{copy}", capture)
            text += bench_size.renumber(capture, copy, publics) if own_addresses else capture
    return text


def test_many_labs_are_many_parts_with_the_findings_of_one_session(monkeypatch):
    """Copies of a lab with their own addresses are a part each; copies that keep the
    lab's addresses join through them (every copy's gateway holds its next hop)."""
    evidence = read_transcript(copies(6, own_addresses=True, tag="own") + copies(6, own_addresses=False),
                               "labs.txt")
    rulebook = default_rulebook()
    facts = [f for f in kb.diagnose.current_facts(evidence)[0].facts if f["type"] in rulebook.fact_types()]
    parts = components.parts(facts, components.plan(rulebook, COMPUTED))
    nodes = [{facts[i]["node"] for i in part} for part in parts]
    for copy in range(1, 7):
        assert {f"{name}-own{copy}" for name in ("net01", "gw01", "cmp01", "vm01")} \
            <= next(n for n in nodes if f"net01-own{copy}" in n) <= \
            {f"{name}-own{copy}" for name in ("net01", "gw01", "cmp01", "vm01", "ext-host")}
    assert any({f"net01-{copy}" for copy in range(1, 7)} <= n for n in nodes)
    split, whole = split_and_whole(evidence, monkeypatch)
    assert split == whole
    assert len([f for f in split["findings"] if f["cause"] == "fip-snat-wrong-interface"]) == 12


@pytest.mark.parametrize("text", [gen_lab.many_nodes(40), gen_lab.many_floating_ips(300, 4)],
                         ids=["40-nodes", "300-floating-ips"])
def test_generated_labs_give_the_same_findings_split_as_whole(text, monkeypatch):
    split, whole = split_and_whole(read_transcript(text, "lab.txt"), monkeypatch)
    assert split == whole
    assert split["findings"]


def test_a_part_over_the_limit_is_judged_node_by_node_and_the_others_whole(monkeypatch):
    """A part too big for one session meets the fact limit alone: the parts before and
    after it are judged whole, and the report says which part stopped where."""
    import kb.engine

    same, own = copies(20, own_addresses=False), copies(3, own_addresses=True, tag="own")
    evidence = read_transcript(own + same, "labs.txt")
    monkeypatch.setattr(kb.engine, "MAX_FACTS", 600)
    diagnosis = diagnose(evidence)
    (note,) = diagnosis.left_out
    assert note.startswith("the reasoning stopped at a limit (more than 600 facts")
    whole, nodes = map(int, re.search(r"the first (\d+) of (\d+) nodes", note).groups())
    assert nodes == 100 and 0 < whole < nodes
    snat = {f.node for f in diagnosis.findings if f.cause == "fip-snat-wrong-interface"}
    assert {"net01-own1", "net01-own2", "net01-own3", "net01-1"} <= snat
    assert len(snat) < 23


def test_facts_no_rule_of_the_part_can_use_stay_out_of_the_engine():
    """A lab without nova.conf has no use for its interfaces' listing (only rules about
    nova.conf's options read them); with nova.conf they go in."""
    reach = components.reach(default_rulebook(), COMPUTED)
    captured = {"interface", "address", "owns_address", "default_route", "snat_scope", "route"}
    assert "interface" not in reach.types(captured)
    assert {"owns_address", "default_route", "snat_scope"} <= reach.types(captured)
    assert {"interface", "address"} <= reach.types(captured | {"config_option"})


def test_facts_holding_lists_or_mappings_where_names_go_are_still_parted():
    layout = components.plan(default_rulebook(), COMPUTED)
    facts = [{"type": "owns_address", "node": ["a", "b"], "address": {"x": 1}, "fact_id": 0},
             {"type": "default_route", "node": ["a", "b"], "via": {"x": 1}, "fact_id": 1},
             {"type": "owns_address", "node": "c", "address": "192.0.2.1", "fact_id": 2},
             {"type": "default_route", "node": None, "via": "192.0.2.1", "fact_id": 3}]
    assert components.parts(facts, layout) == [[0, 1], [2, 3]]


def split_and_whole_with(evidence, rulebook, monkeypatch):
    monkeypatch.setattr(kb.diagnose, "SESSION_FACTS", 0)
    split = diagnose(evidence, rulebook)
    with monkeypatch.context() as whole_mode:
        whole_mode.setattr(kb.diagnose, "SESSION_FACTS", 10 ** 9)
        whole_mode.setattr(components, "parts", lambda facts, layout: [list(range(len(facts)))])
        whole_mode.setattr(components.Reach, "types", lambda self, present: frozenset(present))
        whole = diagnose(evidence, rulebook)
    return outcome(split), outcome(whole)


def test_a_rule_joining_on_a_constant_a_conclusion_writes_sees_every_node(tmp_path, monkeypatch):
    """A conclusion that writes a constant (service: keystone) joined with evidence held
    anywhere ("no node runs keystone") ties the facts that make it to every fact holding
    that constant, though they share no node or address."""
    from kb.rulebook import load_rulebook

    (tmp_path / "infer.yaml").write_text(
        "infer:\n"
        "  - name: a node whose nova-compute stopped wants keystone\n"
        "    when:\n"
        "      stopped: {type: service_state, service: nova-compute, running: false}\n"
        "    conclude: {type: wants_service, node: $stopped.node, service: keystone}\n"
        "    because: \"{stopped.node} stopped nova-compute\"\n")
    (tmp_path / "cause.yaml").write_text(
        "cause: nothing-runs-it\n"
        "title: \"nothing runs {want.service} for {want.node}\"\n"
        "node: \"{want.node}\"\n"
        "when:\n"
        "  want: {type: wants_service}\n"
        "  no running: {type: service_state, service: $want.service, running: true}\n"
        "explanation: \"no node runs {want.service}\"\n"
        "fix: [\"start {want.service}\"]\n"
        "hints: [\"Which node runs {want.service}?\", \"Look at every node.\", \"Start {want.service}.\"]\n")
    rulebook = load_rulebook([str(tmp_path)])
    layout = components.plan(rulebook, COMPUTED)
    assert layout.unsplittable == [] and layout.constant_ties
    stopped = "root@cmp1:~# service nova-compute status\nnova-compute stop/waiting\n"
    running = "root@ctl9:~# service keystone status\nkeystone start/running, process 1234\n"
    split, whole = split_and_whole_with(read_transcript(stopped + running, "x.txt"), rulebook, monkeypatch)
    assert split == whole and split["findings"] == []
    split, whole = split_and_whole_with(read_transcript(stopped, "x.txt"), rulebook, monkeypatch)
    assert split == whole and [f["title"] for f in split["findings"]] == ["nothing runs keystone for cmp1"]
