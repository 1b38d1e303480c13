"""Labs of a real size are diagnosed like any other, with facts that grow linearly:
nova-network's nat table with 5,000 floating IPs (20,015 rules, the benchmark's own
generator), the same node beside its gateway and ten compute nodes, and the captured
lab grown to 200 nodes (benchmarks/gen_lab.py)."""
import html
from pathlib import Path

from benchmarks import gen_lab, gen_nova_nat
from grammar.transcript import read_transcript
from kb.diagnose import diagnose
from report.render import render


def test_a_network_node_with_5000_floating_ips_is_diagnosed():
    text = ("root@net01:~# iptables -L -t nat -v\n" + gen_nova_nat.listing_text(5000)
            + "root@net01:~# ip route\n"
            + "default via 10.20.0.1 dev ens3 \n"
            + "10.20.0.0/24 dev ens3 proto kernel scope link src 10.20.0.11 \n")
    evidence = read_transcript(text, "net01.txt")
    assert evidence.unparsed == []
    diagnosis = diagnose(evidence)
    # 5,000 floating IPs alike: one stands for the class, and says for how many
    (floating,) = diagnosis.table.of("floating_ip")
    assert (floating["address"], floating["alike"]) == ("198.18.0.1", 4999)
    finding = next(f for f in diagnosis.findings if f.cause == "fip-snat-wrong-interface")
    assert finding.node == "net01" and f"leaving by {gen_nova_nat.PUBLIC_INTERFACE}" in finding.title


def test_5000_floating_ips_beside_their_gateway_and_ten_compute_nodes():
    evidence = read_transcript(gen_lab.many_floating_ips(5000, 10), "lab.txt")
    diagnosis = diagnose(evidence)
    assert [(f.cause, f.node, f.status) for f in diagnosis.findings] == [
        ("fip-snat-wrong-interface", "net01", "established"),
        ("fip-upstream-no-return-route", "gw01", "established")]
    back = diagnosis.findings[1]
    # one finding for the gateway, about the floating IP that stands for its class
    assert ("198.18.0.1 is a floating IP served by net01 for 10.20.0.2, in its public network "
            "198.18.0.0/15 on ens4; it stands for 4999 more alike") \
        in back.reasoning
    assert len(back.evidence) < 30
    assert diagnosis.left_out == []


def test_a_200_node_lab_is_diagnosed_with_facts_linear_in_nodes():
    sizes = {}
    for nodes in (100, 200):
        diagnosis = diagnose(read_transcript(gen_lab.many_nodes(nodes), "lab.txt"))
        assert [(f.cause, f.node) for f in diagnosis.findings] == [
            ("fip-upstream-no-return-route", "gw01")]
        assert len({f["node"] for f in diagnosis.table.facts if f.get("prov")}) == nodes
        sizes[nodes] = len(diagnosis.table.facts)
    assert sizes[200] <= 2.1 * sizes[100]


def test_a_limit_reached_is_said_and_the_diagnosis_goes_on(monkeypatch):
    import kb.engine
    from kb.queries import Answerer

    evidence = read_transcript(gen_lab.many_nodes(60), "lab.txt")
    monkeypatch.setattr(Answerer, "max_answers", 2)
    diagnosis = diagnose(evidence)
    assert any(note.endswith("questions were not answered (at most 2 answers per diagnosis); "
                             "causes that rest on them were not judged") for note in diagnosis.left_out)

    assert diagnosis.as_json()["left_out"] == diagnosis.left_out
    # and every report a person reads says it too
    note = next(n for n in diagnosis.left_out if "questions were not answered" in n)
    assert f"Left out (a limit was reached; causes may be missing):\n  - {note}\n" in render(diagnosis, "text")
    assert f"  - {note}\n" in render(diagnosis, "markdown").split("## Notes", 1)[1]
    assert html.escape(note) in render(diagnosis, "html").split("<h2>Notes</h2>", 1)[1]
    # so does a batch's page for the lab
    from batch.run import diagnose_lab
    from report.class_report import lab_report
    result = diagnose_lab({"lab": "lab-60", "sources": [("lab.txt", gen_lab.many_nodes(60), None)],
                           "rules": None})
    assert note in result["left_out"]
    assert f"  - {note}\n" in lab_report(result, "text")
    assert f"<li>{html.escape(note)}</li>" in lab_report(result, "html").split("<h2>Left out", 1)[1]

    monkeypatch.setattr(kb.engine, "MAX_FACTS", 200)
    diagnosis = diagnose(evidence)
    assert diagnosis.left_out[-1].startswith("the reasoning stopped at a limit (more than 200 facts")


def test_a_limit_reached_in_many_nodes_still_judges_the_nodes_before_it(monkeypatch):
    """Facts go in node after node once a limit is reached, so the first copies of a lab
    repeated far past the limit keep their findings (by kind, none would be complete)."""
    import re
    from pathlib import Path

    import kb.engine

    lab = Path(__file__).parent / "fixtures" / "labs" / "other-snat-wrong-interface"
    text = "".join(re.sub(r"(?m)^(\S+@)([\w.-]+)", rf"\g<1>\g<2>-{copy}", path.read_text())
                   for copy in range(1, 41) for path in sorted(lab.glob("*.txt")))
    evidence = read_transcript(text, "labs.txt")
    whole = diagnose(evidence)
    assert whole.left_out == []
    assert len([f for f in whole.findings if f.cause == "fip-snat-wrong-interface"]) == 40

    monkeypatch.setattr(kb.engine, "MAX_FACTS", 1500)
    capped = diagnose(evidence)
    assert "node after node in the order of the evidence" in capped.left_out[-1]
    whole, nodes = map(int, re.search(r"the first (\d+) of (\d+) nodes", capped.left_out[-1]).groups())
    assert 0 < whole < nodes == 200      # 40 copies of 5 nodes
    nodes = [f.node for f in capped.findings if f.cause == "fip-snat-wrong-interface"]
    assert "net01-1" in nodes and len(nodes) < 40


def test_evidence_handed_over_is_numbered_in_place_and_diagnosed_alike():
    """A one-shot run hands its evidence over (no copy of every fact); any other caller
    keeps its facts as they were (the chat diagnoses the same facts again and again)."""
    kept = read_transcript(gen_lab.many_nodes(20), "lab.txt")
    copied = diagnose(kept)
    assert not any("fact_id" in fact for fact in kept.facts)
    handed = read_transcript(gen_lab.many_nodes(20), "lab.txt")
    owned = diagnose(handed, handed_over=True)
    assert [f.as_json() for f in owned.findings] == [f.as_json() for f in copied.findings]
    assert any(fact is handed.facts[0] for fact in owned.table.facts)


SEED = Path(__file__).resolve().parent.parent / "rules" / "examples" / "seed-network-node.txt"


def test_a_transcript_pasted_fifty_times_is_one_lab_not_fifty_copies_of_every_rule():
    """The same nat table listed again is the table as it is by then: the earlier
    listing is set aside (as after a change), so the walk meets each rule once and a
    transcript repeated to megabytes costs what it costs once."""
    once = diagnose(read_transcript(SEED.read_text(), "seed.txt"))
    lines = SEED.read_text().count("\n")
    repeated = diagnose(read_transcript(SEED.read_text() * 50, "seed.txt"))
    assert [(f.cause, f.node, f.status, f.title, f.explanation) for f in repeated.findings] == \
        [(f.cause, f.node, f.status, f.title, f.explanation) for f in once.findings]
    # its evidence is the last copy's lines
    assert {e["line"] > 49 * lines for f in repeated.findings for e in f.evidence
            if e["command"].startswith("iptables")} == {True}
    nat = [s for s in repeated.superseded if s["command"].startswith("iptables")]
    assert nat and all(s["line"] > 49 * lines for s in nat)
    rules = sum(1 for f in read_transcript(SEED.read_text(), "seed.txt").facts
                if f["type"] in ("iptables_rule", "iptables_chain"))
    assert sum(s["facts"] for s in nat) == 49 * rules
    assert len(repeated.table.of("iptables_rule")) == len(once.table.of("iptables_rule"))


def test_only_the_chain_listed_again_and_only_in_order_is_set_aside():
    later_snat = ("root@network-node:~# iptables -L nova-network-snat -t nat -v\n"
                     "Chain nova-network-snat (1 references)\n"
                     " pkts bytes target     prot opt in     out     source               destination\n")
    evidence = read_transcript(SEED.read_text() + later_snat, "seed.txt")
    diagnosis = diagnose(evidence)
    kept = {f["chain"] for f in diagnosis.table.of("iptables_rule")}
    assert "nova-network-snat" not in kept and "nova-network-float-snat" in kept
    # two files side by side have no order: neither sets the other aside
    from grammar.transcript import Evidence
    both = Evidence()
    both.extend(read_transcript(SEED.read_text(), "a.txt"))
    both.extend(read_transcript(SEED.read_text(), "b.txt"))
    assert diagnose(both).superseded == []


def test_a_log_pasted_three_times_is_judged_once_and_says_its_lines_repeat():
    log = (Path(__file__).resolve().parent.parent / "rules" / "examples" / "seed-cinder-api.log").read_text()
    once = diagnose(read_transcript(log, "cinder-api.log", "vol01"))
    thrice = diagnose(read_transcript(log * 3, "cinder-api.log", "vol01"))
    assert [(f.cause, f.title, f.explanation, f.evidence) for f in thrice.findings] == \
        [(f.cause, f.title, f.explanation, f.evidence) for f in once.findings]
    (finding,) = thrice.findings
    assert finding.reasoning == once.findings[0].reasoning + [
        "2 more evidence lines repeat lines shown here (the same output again; shown once)"]
