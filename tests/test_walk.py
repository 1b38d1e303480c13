"""The packet walk on captured labs: its verdict must be what the kernel did when the
capture was taken (case.json records the probes), and its steps must say why, in the
lab's own names, with the evidence lines. Then ``python app.py walk`` as a person runs it."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

from collectors.files import read_evidence
from grammar.transcript import read_transcript
from kb.diagnose import current_facts
from kb.queries import Answerer
from kb.walk import VERDICTS, WalkError, walk
from lab import testbed

ROOT = Path(__file__).resolve().parent.parent
LABS = ROOT / "tests" / "fixtures" / "labs"
EXAMPLES = ROOT / "rules" / "examples"
CASES = sorted(p.name for p in LABS.iterdir() if (p / "case.json").exists())


def _case(case):
    meta = json.loads((LABS / case / "case.json").read_text())
    names = testbed.SEED if meta["naming"] == "seed" else testbed.OTHER
    table, _ = current_facts(read_evidence(sorted(str(p) for p in (LABS / case).glob("*.txt"))))
    return meta, names, table


@pytest.mark.parametrize("case", CASES)
def test_walk_verdict_is_what_the_kernel_did(case):
    meta, names, table = _case(case)
    ping = walk(table, names.vm_ip, names.outside_ip, "icmp")
    connect = walk(table, meta["nodes"]["gateway"], names.floating_ip, "tcp", 22)
    assert (ping.verdict == "delivered") == meta["probes"]["vm-to-outside"], ping.summary
    assert (connect.verdict == "delivered") == meta["probes"]["gateway-to-floating"], connect.summary
    for result in (ping, connect):
        assert result.verdict in VERDICTS
        assert (result.node is None) == (result.verdict == "delivered")


def test_snat_on_the_wrong_interface_is_shown_where_it_fails_to_apply():
    _, names, table = _case("seed-snat-wrong-interface")
    result = walk(table, names.vm_ip, names.outside_ip)
    misses = [s for s in result.steps if s.text.startswith("not translated")]
    assert misses and misses[0].node == "network-node" and misses[0].stage == "nat POSTROUTING"
    assert "it leaves by eth0, rule wants eth1" in misses[0].text
    assert misses[0].evidence[0]["command"] == "iptables-save"   # the complete listing wins
    assert "-o eth1 -j SNAT" in misses[0].evidence[0]["text"]
    # the untranslated packet crosses the gateway and is answered, but nobody routes 10.99.0.2 back
    assert result.verdict == "reply-lost" and result.node == "www-google"
    assert "no route to 10.99.0.2" in result.summary and "rule wants eth1" in result.summary


def test_the_reply_is_translated_back_by_conntrack_on_each_node():
    _, names, table = _case("seed-healthy")
    result = walk(table, names.vm_ip, names.outside_ip)
    assert result.verdict == "delivered" and result.node is None
    rewrites = [(s.node, s.direction, s.packet.src, s.packet.dst) for s in result.steps
                if s.stage in ("nat POSTROUTING", "conntrack") and "rewrites" in s.text or s.stage == "conntrack"]
    assert ("network-node", "packet", "172.16.1.1", "203.0.113.10") in rewrites      # SNAT
    assert ("gks-061", "packet", "198.51.100.61", "203.0.113.10") in rewrites        # MASQUERADE
    assert ("gks-061", "reply", "203.0.113.10", "172.16.1.1") in rewrites            # undone
    assert ("network-node", "reply", "203.0.113.10", "10.99.0.2") in rewrites        # undone
    assert result.steps[-1].stage == "delivered" and result.steps[-1].node == "test-vm"


def test_dnat_to_the_vm_and_the_reply_back_from_the_floating_ip():
    _, names, table = _case("seed-healthy")
    result = walk(table, "gks-061", names.floating_ip, "tcp", 22)
    assert result.verdict == "delivered"
    dnat = next(s for s in result.steps if s.stage == "nat PREROUTING")
    assert dnat.node == "network-node" and dnat.packet.dst == "10.99.0.2" and dnat.packet.dport == 22
    undo = next(s for s in result.steps if s.stage == "conntrack" and s.direction == "reply")
    assert undo.packet.src == "172.16.1.1"
    forward = next(s for s in result.steps if s.stage == "filter FORWARD" and s.node == "network-node")
    assert "-o br100 -j ACCEPT" in forward.text and forward.evidence[-1]["command"] == "iptables-save"


def test_forward_policy_drop_names_the_policy_line():
    _, names, table = _case("seed-as-found")
    result = walk(table, names.vm_ip, names.outside_ip)
    assert (result.verdict, result.node) == ("dropped", "gks-061")
    assert ":FORWARD DROP [2:168]" in result.summary
    drop = next(s for s in result.steps if s.stage == "filter FORWARD" and s.node == "gks-061")
    assert any(line["text"] == ":FORWARD DROP [2:168]" for line in drop.evidence)


def test_the_other_lab_is_walked_in_its_own_names():
    _, names, table = _case("other-snat-wrong-interface")
    result = walk(table, names.vm_ip, names.outside_ip)
    text = result.summary + " ".join(s.text for s in result.steps)
    assert "it leaves by ens3, rule wants ens4" in text and "net01" in text
    for word in ("eth0", "eth1", "network-node", "10.99.", "172.16."):
        assert word not in text


def test_seed_network_node_alone_private_source_leaves_with_assumptions():
    table, _ = current_facts(read_evidence([str(EXAMPLES / "seed-network-node.txt")]))
    result = walk(table, "10.99.0.2", "173.194.113.145")
    assert (result.verdict, result.node) == ("private-source-leaves", "network-node")
    assert "leaves by eth0, rule wants eth1" in result.summary
    assumed = " ".join(result.assumptions)
    assert "10.99.0.2 is not a node in the evidence" in assumed
    assert "filter table was not shown" in assumed and "ip_forward" in assumed
    assert result.steps[0].assumed and result.steps[0].node == "network-node"


# iptables 1.8.9 in a fresh network namespace: an empty filter table, then an empty nat table
EMPTY_TABLES = """root@r1:~# iptables -L -v -n
Chain INPUT (policy ACCEPT 0 packets, 0 bytes)
 pkts bytes target     prot opt in     out     source               destination         

Chain FORWARD (policy ACCEPT 0 packets, 0 bytes)
 pkts bytes target     prot opt in     out     source               destination         

Chain OUTPUT (policy ACCEPT 0 packets, 0 bytes)
 pkts bytes target     prot opt in     out     source               destination         
root@r1:~# iptables -t nat -L -v -n
Chain PREROUTING (policy ACCEPT 0 packets, 0 bytes)
 pkts bytes target     prot opt in     out     source               destination         

Chain INPUT (policy ACCEPT 0 packets, 0 bytes)
 pkts bytes target     prot opt in     out     source               destination         

Chain OUTPUT (policy ACCEPT 0 packets, 0 bytes)
 pkts bytes target     prot opt in     out     source               destination         

Chain POSTROUTING (policy ACCEPT 0 packets, 0 bytes)
 pkts bytes target     prot opt in     out     source               destination         
"""


def test_a_global_source_leaving_the_lab_is_assumed_answered():
    text = ("root@r1:~# ip route\ndefault via 192.0.2.254 dev wan0\n"
            "192.0.2.0/24 dev wan0 proto kernel scope link src 192.0.2.10\n"
            "10.5.0.0/24 dev lan0 proto kernel scope link src 10.5.0.1\n"
            "root@r1:~# sysctl net.ipv4.ip_forward\nnet.ipv4.ip_forward = 1\n")
    table, _ = current_facts(read_transcript(text + EMPTY_TABLES, "r1.txt"))
    result = walk(table, "8.8.4.4", "10.5.0.7")   # from the Internet to a host behind r1
    assert result.verdict == "delivered"
    assert any("10.5.0.7 is on r1's lan0 network" in a for a in result.assumptions)
    result = walk(table, "10.5.0.7", "8.8.4.4")   # and out, untranslated
    assert (result.verdict, result.node) == ("private-source-leaves", "r1")

    # r1's tables not shown: the packet gets through only if they let it, and the walk
    # says so rather than guessing; a failure found despite that assumption stands
    table, _ = current_facts(read_transcript(text, "r1.txt"))
    result = walk(table, "8.8.4.4", "10.5.0.7")
    assert (result.verdict, result.node) == ("insufficient-info", "r1")
    assert result.summary.endswith("but only if what the evidence did not show lets it: r1's "
                                   "nat table was not shown; taken as empty, accepting everything; "
                                   "r1's filter table was not shown; taken as empty, accepting everything")
    assert (walk(table, "10.5.0.7", "8.8.4.4").verdict) == "private-source-leaves"
    with pytest.raises(WalkError):
        walk(table, "not-an-address", "8.8.4.4")


def _walk_verdicts(table, floating):
    answerer = Answerer(table)
    return {kind: answerer.answer("walk_verdict", {"kind": kind, "floating": floating})[0]
            for kind in ("vm-to-outside", "outside-to-floating")}


def test_walk_verdict_facts_for_rules():
    _, names, table = _case("seed-as-found")
    verdicts = _walk_verdicts(table, names.floating_ip)
    assert verdicts["vm-to-outside"]["verdict"] == "dropped"
    assert verdicts["vm-to-outside"]["failed_at"] == "gks-061"
    assert verdicts["vm-to-outside"]["destination"] == names.outside_ip   # what tcpdump saw
    assert verdicts["outside-to-floating"]["verdict"] == "dropped"
    _, names, table = _case("seed-healthy")
    assert {f["verdict"] for f in _walk_verdicts(table, names.floating_ip).values()} == {"delivered"}


# --- the command line -----------------------------------------------------------------

def run(*args, stdin=None):
    return subprocess.run([sys.executable, "app.py", "walk", *args], cwd=ROOT, input=stdin,
                          capture_output=True, text=True, timeout=120)


def test_cli_text_says_where_the_ping_stops_being_natted():
    done = run(str(EXAMPLES / "seed-network-node.txt"), "--from", "10.99.0.2", "--to", "173.194.113.145")
    assert done.returncode == 1, done.stderr
    assert "verdict: private-source-leaves at network-node" in done.stdout
    assert "not translated" in done.stdout and "rule wants eth1" in done.stdout
    assert "seed-network-node.txt:68 (iptables -L -t nat -v)" in done.stdout
    assert "assumed (not in the evidence):" in done.stdout


def test_cli_json_contract_and_exit_codes():
    done = run(str(LABS / "seed-healthy"), "--from", "gks-061", "--to", "172.16.1.1",
               "--proto", "tcp", "--port", "22", "--format", "json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["verdict"] == "delivered" and report["node"] is None and report["steps"]
    for step in report["steps"]:
        assert {"node", "stage", "text", "direction", "packet", "evidence"} <= set(step)
    done = run(str(LABS / "seed-as-found"), "--from", "10.99.0.2", "--to", "203.0.113.10",
               "--format", "json")
    assert done.returncode == 1
    assert (json.loads(done.stdout)["verdict"], json.loads(done.stdout)["node"]) == ("dropped", "gks-061")


@pytest.mark.parametrize("args", [
    ("/no/such/path", "--from", "10.0.0.1", "--to", "10.0.0.2"),
    ("rules/examples/seed-network-node.txt", "--from", "10.99.0.2", "--to", "nowhere"),
    ("rules/examples/seed-network-node.txt", "--from", "192.0.2.1", "--to", "198.51.100.9"),
    ("rules/examples/seed-network-node.txt", "--from", "10.99.0.2", "--to", "8.8.8.8", "--proto", "tcp"),
])
def test_cli_unusable_input_exits_2(args):
    done = run(*args)
    assert done.returncode == 2 and done.stdout == "" and done.stderr.startswith("stackdoc:")


def test_cli_reads_standard_input():
    done = run("-", "--from", "10.99.0.2", "--to", "173.194.113.145",
               stdin=(EXAMPLES / "seed-network-node.txt").read_text())
    assert done.returncode == 1 and "<stdin>:6 (ip route)" in done.stdout


def test_the_replys_walk_shows_the_missing_return_route():
    _, names, table = _case("other-gateway-no-return-route")
    result = walk(table, names.vm_ip, names.outside_ip)
    assert result.verdict == "reply-lost"
    assert "gw01 sent it here by its default route ('default via 192.0.2.1 dev wan0'), having " \
           "no route of its own for 198.51.100.77" in result.summary
    undo = [s for s in result.steps if s.direction == "reply" and s.stage == "conntrack"]
    assert undo[0].node == "gw01" and undo[0].packet.dst == "198.51.100.77"


def test_a_captured_reply_outranks_what_the_walk_assumed():
    """The healthy seed lab without the physical node's evidence: the walk loses the VM's
    ping at the lab's edge (a private floating IP leaving for a gateway not shown), but
    compute-1's capture shows the replies coming back; the observation wins."""
    meta, names, _ = _case("seed-healthy")
    paths = [p for p in sorted((LABS / "seed-healthy").glob("*.txt"))
             if p.stem != meta["nodes"]["gateway"]]
    table, _ = current_facts(read_evidence([str(p) for p in paths]))
    (verdict,) = Answerer(table).answer("walk_verdict", {"kind": "vm-to-outside",
                                                         "floating": names.floating_ip})
    assert verdict["verdict"] == "private-source-leaves"
    assert (verdict["failed"], verdict["refuted_by_capture"]) == (False, True)
    assert f"saw the reply {names.outside_ip} > {names.vm_ip}" in verdict["because"]
