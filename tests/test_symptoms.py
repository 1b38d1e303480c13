"""Symptom files: the tutor's routes are data, checked with file:line errors, and a
route written in a file is the route the tutor follows."""
import shutil
from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st

from kb.diagnose import default_rulebook
from kb.rulebook import RuleFileError, load_rulebook, read_rule_yaml
from tutor.conversation import Tutor
from tutor.recognise import SymptomIndex, direction_of
from tutor.store import Store
from tutor.symptoms import load_symptom, load_symptoms

RULES = Path(__file__).resolve().parent.parent / "rules"
SHIPPED = {"vm-cannot-reach-internet", "cannot-reach-vm", "cannot-boot-from-volume",
           "cannot-create-volume"}


@pytest.fixture(scope="module")
def symptoms():
    return load_symptoms(default_rulebook())


def test_the_shipped_symptoms_load(symptoms):
    assert SHIPPED <= set(symptoms)
    for symptom in symptoms.values():
        assert symptom.phrasings and symptom.route()
        for route in symptom.causes:
            assert all(step in symptom.steps for step in route.route)


def test_every_cause_that_names_a_symptom_is_on_its_list(symptoms):
    for cause in default_rulebook().causes:
        for symptom_id in cause.symptoms:
            assert cause.cause in symptoms[symptom_id].cause_ids()


def test_the_floating_ip_route_is_the_seeds(symptoms):
    route = symptoms["vm-cannot-reach-internet"].causes[0]
    assert route.cause == "fip-snat-wrong-interface"
    assert [symptoms["vm-cannot-reach-internet"].steps[s].role for s in route.route] == \
        ["compute", "network", "network", "network", "network"]


# How students put it in their own words: none of these is a phrasing of the files, so
# the index must generalise (stemming, shared words), not look up what it was built from.
HELD_OUT = [
    ("my guest cannot ping 8.8.8.8", "vm-cannot-reach-internet"),
    ("the instance has no access to the internet", "vm-cannot-reach-internet"),
    ("outbound traffic from the vm never gets a reply", "vm-cannot-reach-internet"),
    ("pinging google from inside the instance fails", "vm-cannot-reach-internet"),
    ("ssh into my instance times out", "cannot-reach-vm"),
    ("i can't connect to the floating ip", "cannot-reach-vm"),
    ("port 22 on the vm is unreachable from outside", "cannot-reach-vm"),
    ("booting the instance from a volume gives ERROR", "cannot-boot-from-volume"),
    ("nova boot from volume ends in error state", "cannot-boot-from-volume"),
    ("cinder create with an image ends in error", "cannot-create-volume"),
    ("the new volume made from an image is in error status", "cannot-create-volume"),
]


@pytest.mark.parametrize("text, symptom_id", HELD_OUT)
def test_a_description_in_other_words_finds_its_symptom(symptoms, text, symptom_id):
    written = {" ".join(p.lower().split()) for s in symptoms.values() for p in [s.title, *s.phrasings]}
    assert " ".join(text.lower().split()) not in written
    assert SymptomIndex(symptoms.values()).best(text) == symptom_id


def test_nothing_matches_small_talk(symptoms):
    assert SymptomIndex(symptoms.values()).best("hello, good morning") is None
    assert SymptomIndex(symptoms.values()).best("hi, I'm writing from my laptop") is None


# Which way the traffic goes, said in words none of the files has: from the instance
# outwards, or from outside to the instance. Both sides share the words (a VM, reaching,
# the outside); only the direction tells them apart. Other lab names than the seed's.
DIRECTED = [
    ("vm01 can't reach anything outside", "vm-cannot-reach-internet"),   # the reported case
    ("nothing outside can reach vm01", "cannot-reach-vm"),
    ("vm01 is unreachable from the outside", "cannot-reach-vm"),
    ("from outside I can't reach vm01", "cannot-reach-vm"),
    ("vm01 cannot get out", "vm-cannot-reach-internet"),
    ("vm01 can't talk to the outside world", "vm-cannot-reach-internet"),
    ("the outside world can't talk to vm01", "cannot-reach-vm"),
    ("I can't get to vm01 from my laptop", "cannot-reach-vm"),
    ("can't ping my vm from the host", "cannot-reach-vm"),
    ("can't ping out from my vm", "vm-cannot-reach-internet"),
    ("pinging the instance from outside fails", "cannot-reach-vm"),
    ("the instance cannot ping anything", "vm-cannot-reach-internet"),
    ("web server on my instance is not reachable from outside", "cannot-reach-vm"),
    ("connections into the vm time out", "cannot-reach-vm"),
    ("connections out of the vm time out", "vm-cannot-reach-internet"),
    ("outgoing traffic from the instance is dropped", "vm-cannot-reach-internet"),
    ("incoming traffic to the instance is dropped", "cannot-reach-vm"),
    ("test-vm has no network access to the outside", "vm-cannot-reach-internet"),
    ("nobody can ssh into test-vm", "cannot-reach-vm"),
    ("curl from inside the guest hangs", "vm-cannot-reach-internet"),
    ("web requests to my instance from my desktop hang", "cannot-reach-vm"),
    ("vm01 won't talk to the internet", "vm-cannot-reach-internet"),
    ("the internet can't get to vm01", "cannot-reach-vm"),
    ("I cannot reach the vm from outside the cloud", "cannot-reach-vm"),
    ("nothing I run inside vm01 reaches the outside", "vm-cannot-reach-internet"),
    ("from my laptop, vm01 doesn't answer ping", "cannot-reach-vm"),
    ("the instance booted from a volume can't reach google", "vm-cannot-reach-internet"),
]


@pytest.mark.parametrize("text, symptom_id", DIRECTED)
def test_the_direction_of_the_traffic_picks_the_symptom(symptoms, text, symptom_id):
    written = {" ".join(p.lower().split()) for s in symptoms.values() for p in [s.title, *s.phrasings]}
    assert " ".join(text.lower().split()) not in written
    assert SymptomIndex(symptoms.values()).best(text) == symptom_id


def test_a_symptom_s_direction_is_what_its_phrasings_say():
    """No direction is written in Python per symptom: a new pair of symptom files that
    share every word but the direction is told apart by its phrasings alone."""
    from types import SimpleNamespace
    made_up = [
        SimpleNamespace(id="guest-dns-out", title="A guest cannot resolve names",
                        phrasings=["dns lookups from the guest time out",
                                   "my vm can't resolve any dns name"]),
        SimpleNamespace(id="guest-dns-in", title="Dns queries to a guest get no answer",
                        phrasings=["nobody can send dns queries to my guest",
                                   "from outside, dns lookups to the guest time out"]),
    ]
    index = SymptomIndex(made_up)
    assert index.directions == {"guest-dns-out": "out", "guest-dns-in": "in"}
    assert index.best("dns lookups from db01-vm time out") == "guest-dns-out"
    assert index.best("dns lookups to db01-vm time out") == "guest-dns-in"


_WORDS = st.sampled_from(["vm", "vm01", "instance", "from", "to", "into", "out", "of", "outside", "the",
                          "can't", "reach", "ping", "is", "unreachable", "inbound", "outgoing", ",",
                          "internet", "my", "\"", "'", "(", "*", "OR", "NEAR", "-", ":", "\n"])


@settings(max_examples=200, deadline=None)
@given(st.one_of(st.text(max_size=200), st.lists(_WORDS, max_size=30).map(" ".join)))
def test_anything_typed_is_recognised_or_not_never_a_crash(symptoms, text):
    found = SymptomIndex(symptoms.values()).best(text)
    assert found is None or found in symptoms
    assert direction_of(text) in (None, "out", "in")


def test_the_student_who_says_vm01_cannot_reach_outside_is_walked_outwards(tmp_path):
    store = Store(str(tmp_path / "t.db"))
    tutor = Tutor(store, default_rulebook())
    session = tutor.start()
    reply = tutor.respond(session, "my vm01 can't reach anything outside")
    assert "An instance cannot reach the internet" in reply.reply
    assert "Nothing outside can connect" not in reply.reply


GOOD = """symptom: test-symptom
title: "A test"
phrasings: ["a test symptom"]
start: "Let's test."
steps:
  first:
    role: network
    title: "the routes"
    command: "ip route"
    shows: "the routes"
    why: "because"
    gathered:
      - {fact: route}
causes:
  - cause: fip-snat-wrong-interface
    route: [first]
"""


def _load(text):
    return load_symptom(read_rule_yaml(text, "x.yaml"), "x.yaml", default_rulebook())


def test_a_good_file_loads():
    symptom = _load(GOOD)
    assert symptom.id == "test-symptom" and symptom.steps["first"].role == "network"


@pytest.mark.parametrize("change, line, words", [
    (("title: \"A test\"", "title: \"A test\"\ncolour: red"), 3, "unknown key 'colour'"),
    (("role: network", "role: moon"), 7, "unknown role 'moon'"),
    (("route: [first]", "route: [first, second]"), 16, "'second', which 'steps:' does not define"),
    (("cause: fip-snat-wrong-interface", "cause: no-such-cause"), 15, "no cause file defines 'no-such-cause'"),
    (("command: \"ip route\"", "command: \"ip route {nope}\""), 9, "{nope} is not something the tutor learns"),
    (("      - {fact: route}\n", "      - {where: {a: b}}\n"), 13, "names a 'fact:' type or a 'command:'"),
    (("phrasings: [\"a test symptom\"]", "phrasings: []"), 3, "'phrasings:' is a list"),
])
def test_mistakes_are_reported_with_file_and_line(change, line, words):
    with pytest.raises(RuleFileError) as error:
        _load(GOOD.replace(*change))
    assert words in str(error.value)
    assert str(error.value).startswith(f"x.yaml:{line}:"), str(error.value)


def test_a_route_in_a_file_is_the_route_the_tutor_follows(tmp_path):
    rules = tmp_path / "rules"
    shutil.copytree(RULES, rules)
    path = rules / "symptoms" / "vm-cannot-reach-internet.yaml"
    text = path.read_text()
    # an instructor decides the NAT rules are the cheapest first look
    text = text.replace("route: [compute-bridge-capture, network-bridge-capture, network-routes, "
                        "network-uplink-capture, network-nat]",
                        "route: [network-nat, network-routes]", 1)
    path.write_text(text)
    store = Store(str(tmp_path / "t.db"))
    tutor = Tutor(store, load_rulebook([str(rules)]))
    session = tutor.start()
    reply = tutor.respond(session, "why can't my VM ping google?")
    assert "NAT rules" in reply.reply and "compute node's bridge" not in reply.reply
    store.close()
