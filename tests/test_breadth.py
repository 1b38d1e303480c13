"""Breadth of the catalog (issue 11, item 6), read from the rule files' own worked
examples: every cause has two positives on different nodes (Ubuntu and RHEL-family
prompts among them), a healthy counterpart that gives nothing and a look-alike it must
not be taken for, and the look-alike pairs of item 3 are told apart both ways. Each
example says its kind (`kind:`; `rules check` holds it to what the example expects);
here the examples of a pair are diagnosed again and what a user reads — which cause, on
which node, about which service — is asserted.
"""
import re
from functools import lru_cache
from pathlib import Path

import pytest

from collectors.files import read_evidence
from kb.diagnose import default_rulebook, diagnose
from kb.examples import expectations

RULEBOOK = default_rulebook()

# The ids of the catalog (shared/causes.md): each must be shipped and covered.
CATALOG = [
    "fip-snat-wrong-interface", "fip-upstream-no-return-route", "fip-upstream-no-masquerade",
    "fip-upstream-forward-blocked", "secgroup-port-closed", "floating-ip-not-assigned",
    "cinder-glance-endpoint", "cinder-qemu-img-missing", "keystone-admin-role-missing",
    "rabbit-host-wrong", "instances-disk-full", "service-down", "db-password-wrong",
    "keystone-password-wrong", "iscsi-ip-wrong", "floating-ips-missing", "floating-ips-off-network",
    "public-interface-missing", "floating-ip-interface-override", "python-argparse-missing",
]

# Item 3's look-alikes that are two causes: (cause, the service it is about, cause, service).
PAIRS = [
    ("service-down", "glance-api", "cinder-glance-endpoint", None),
    ("service-down", "rabbitmq-server", "rabbit-host-wrong", None),
    ("service-down", "mysql", "db-password-wrong", None),
    ("keystone-password-wrong", None, "keystone-admin-role-missing", None),
    ("public-interface-missing", None, "fip-snat-wrong-interface", None),
    ("floating-ips-missing", None, "floating-ip-not-assigned", None),
    ("floating-ips-missing", None, "floating-ips-off-network", None),
    ("floating-ip-not-assigned", None, "floating-ips-off-network", None),
]


def examples_of(cause_id: str, kind: str) -> list[dict]:
    return [e for e in RULEBOOK.cause(cause_id).examples if e.get("kind") == kind]


def own_expectations(cause_id: str, example: dict):
    return [e for e in expectations(example["expect"]) if e.cause == cause_id]


@lru_cache(maxsize=None)
def _diagnosis(cause_id: str, evidence: tuple, node):
    folder = Path(RULEBOOK.cause(cause_id).path).parent
    return diagnose(read_evidence([str(folder / p) for p in evidence], node=node), rulebook=RULEBOOK)


def diagnosis_of(cause_id: str, example: dict):
    given = example["evidence"]
    return _diagnosis(cause_id, tuple(given if isinstance(given, list) else [given]), example.get("node"))


def test_the_whole_catalog_is_shipped():
    assert sorted(cause.cause for cause in RULEBOOK.causes) == sorted(CATALOG)


def test_every_example_says_what_it_shows():
    unsaid = [f"{cause.cause}: {example['evidence']}" for cause in RULEBOOK.causes
              for example in cause.examples if example.get("kind") not in ("positive", "healthy", "lookalike")]
    assert unsaid == []


@pytest.mark.parametrize("cause_id", CATALOG)
def test_two_positives_on_different_nodes(cause_id):
    nodes = {e.node or example.get("node") for example in examples_of(cause_id, "positive")
             for e in own_expectations(cause_id, example)}
    assert len(nodes - {None}) >= 2, f"{cause_id}: positives only on {sorted(n for n in nodes if n)}"


# Python 2.6, which lacks argparse, is EL6's (the seed's capture is Scientific Linux 6).
RHEL_FAMILY_ONLY = {"python-argparse-missing"}
_UBUNTU_PROMPT = re.compile(r"^root@[^\s:]+:[^#]*# ", re.M)
_RHEL_PROMPT = re.compile(r"^\[root@[^\s\]]+ [^\]]*\]# ", re.M)


@pytest.mark.parametrize("cause_id", CATALOG)
def test_positives_from_ubuntu_and_rhel_family_nodes(cause_id):
    folder = Path(RULEBOOK.cause(cause_id).path).parent
    texts = []
    for example in examples_of(cause_id, "positive"):
        given = example["evidence"]
        for path in (folder / p for p in (given if isinstance(given, list) else [given])):
            texts.extend(f.read_text() for f in ([path] if path.is_file() else sorted(path.rglob("*.txt"))))
    ubuntu = any(_UBUNTU_PROMPT.search(text) for text in texts)
    rhel = any(_RHEL_PROMPT.search(text) for text in texts)
    assert rhel and (ubuntu or cause_id in RHEL_FAMILY_ONLY), (cause_id, ubuntu, rhel)


@pytest.mark.parametrize("cause_id", CATALOG)
def test_a_healthy_counterpart_that_gives_nothing(cause_id):
    healthy = examples_of(cause_id, "healthy")
    assert healthy, f"{cause_id} has no healthy example"
    for example in healthy:
        assert expectations(example["expect"]) == []
        assert cause_id in {e.cause for e in expectations(example.get("expect_not"))}


@pytest.mark.parametrize("cause_id", CATALOG)
def test_a_lookalike_it_must_not_be_taken_for(cause_id):
    lookalikes = examples_of(cause_id, "lookalike")
    assert lookalikes, f"{cause_id} has no look-alike example"
    for example in lookalikes:
        assert cause_id in {e.cause for e in expectations(example.get("expect_not"))}


def _told_apart(cause_id, other, other_service):
    """A look-alike of cause_id whose diagnosis says `other` (about other_service) and not cause_id."""
    seen = []
    for example in examples_of(cause_id, "lookalike"):
        if other not in {e.cause for e in expectations(example["expect"])}:
            continue
        findings = diagnosis_of(cause_id, example).findings
        said = [f for f in findings if f.cause == other
                and (other_service is None or f.service == other_service)]
        seen.append((example["evidence"], [(f.cause, f.status, f.node, f.service) for f in findings]))
        if said and cause_id not in {f.cause for f in findings}:
            return True, seen
    return False, seen


@pytest.mark.parametrize("first, first_service, second, second_service", PAIRS,
                         ids=[f"{a}({s or '-'})~{b}" for a, s, b, _ in PAIRS])
def test_each_pair_is_told_apart_both_ways(first, first_service, second, second_service):
    told, seen = _told_apart(first, second, second_service)
    assert told, f"no look-alike of {first} that shows {second} instead: {seen}"
    told, seen = _told_apart(second, first, first_service)
    assert told, f"no look-alike of {second} that shows {first} ({first_service}) instead: {seen}"


def test_broker_errors_followed_by_a_reconnect_are_history_not_a_wrong_rabbit_host():
    def links(example):
        return list(diagnosis_of("rabbit-host-wrong", example).table.of("amqp_link"))

    def failed_before(example):
        return any("is unreachable" in str(entry.get("message"))
                   for entry in diagnosis_of("rabbit-host-wrong", example).table.of("log_entry"))
    history = [example for example in examples_of("rabbit-host-wrong", "lookalike")
               if failed_before(example) and any(link.get("reachable") for link in links(example))]
    assert history, "no look-alike where the broker was unreachable, then reconnected"
    for example in history:
        assert diagnosis_of("rabbit-host-wrong", example).findings == []
    current = [example for example in examples_of("rabbit-host-wrong", "positive")
               if any(link.get("reachable") is False for link in links(example))]
    assert len({e.node for example in current for e in own_expectations("rabbit-host-wrong", example)}) >= 2


def test_the_interface_column_while_public_interface_is_set_is_not_the_override():
    def shown(example):
        table = diagnosis_of("floating-ip-interface-override", example).table
        public = {o.get("value") for o in table.of("config_option") if o.get("key") == "public_interface"}
        columns = {f.get("interface") for f in table.of("nova_floating")}
        return public, columns
    herrings = [example for example in examples_of("floating-ip-interface-override", "lookalike")
                if (lambda p, c: p and "" not in p and c - p)(*shown(example))]
    assert herrings, "no look-alike whose column names another interface while public_interface is set"
    for example in herrings:
        assert diagnosis_of("floating-ip-interface-override", example).findings == []
    overrides = [example for example in examples_of("floating-ip-interface-override", "positive")
                 if shown(example)[0] == {""}]
    assert len(overrides) >= 2
    for example in overrides:
        assert [f.cause for f in diagnosis_of("floating-ip-interface-override", example).findings] == [
            "floating-ip-interface-override"]
