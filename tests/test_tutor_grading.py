"""Answers judged by meaning (tutor/grading.py) and intents read from rules/intents.yml,
with wordings and lab names that are in neither the rule files nor the intents file."""
import pytest

from tutor.grading import judge
from tutor.intent import read_intent, starts_new_problem

SNAT_QUESTION = {"ask": "Which interface must a packet leave net01 by for the SNAT rule in "
                        "nova-network-snat to apply, and which interface does net01's default "
                        "route send it out of?", "expect": ["ens4", "ens3"]}
RETURN_QUESTION = {"ask": "A reply to 198.51.100.77 arrives at gw01. Which interface would gw01's "
                          "routing table send it out of, and which interface does gw01 reach net01 on?",
                   "expect": ["wan0", "br-mgmt"]}
NODES = ["cmp01", "net01", "gw01"]


@pytest.mark.parametrize("answer", [
    "SNAT only kicks in for traffic leaving ens4; the default route goes out ens3",
    "ens3 is where the default route points, whereas the snat rule is bound to ens4",
    "the rule's out interface is ens4 but routing sends everything via ens3",
])
def test_the_right_relation_in_free_words_is_right(answer):
    assert judge(answer, SNAT_QUESTION, NODES).right


@pytest.mark.parametrize("answer", [
    "the snat rule is bound to ens3, the default route uses ens4",
    "snat ens3 route ens4",
    "routing leaves by ens4 while the SNAT rule wants ens3",
])
def test_swapped_values_are_wrong_even_with_every_keyword(answer):
    verdict = judge(answer, SNAT_QUESTION, NODES)
    assert not verdict.right and verdict.swapped and sorted(verdict.named) == ["ens3", "ens4"]


def test_half_an_answer_names_what_is_missing():
    verdict = judge("the default route goes out ens3", SNAT_QUESTION, NODES)
    assert not verdict.right and verdict.missing == ["ens4"] and not verdict.swapped


def test_a_value_put_with_the_wrong_node_is_wrong():
    assert not judge("net01 routes it out of wan0, and gw01 reaches net01 on br-mgmt",
                     RETURN_QUESTION, NODES).right
    assert judge("gw01 routes it out of wan0 although net01 sits behind br-mgmt",
                 RETURN_QUESTION, NODES).right


@pytest.mark.parametrize("text, name", [
    ("fine, you win, I give up", "solution"), ("ok just show me", "solution"),
    ("honestly, no idea", "dont_know"), ("idk", "dont_know"), ("not sure", "dont_know"),
    ("why should we look at the nat table?", "why"), ("what does that tell me?", "why"),
    ("I already fixed the gateway", "already_fixed"), ("the snat rule has been fixed", "already_fixed"),
    ("no, that was gw01", "correction"), ("oops, that's net01", "correction"),
    ("why can't my instance reach the outside?", None), ("the SNAT rule only applies to ens4", None),
])
def test_intents_in_words_not_in_the_file(text, name):
    found = read_intent(text)
    assert (found.name if found else None) == name


def test_a_correction_passes_on_the_node_named():
    assert read_intent("wait, that was still on net01").groups["node"] == "net01"


def test_a_new_problem_is_said_at_the_start():
    assert starts_new_problem("thanks! another issue: my volume won't attach")
    assert not starts_new_problem("the SNAT rule applies to another interface")
