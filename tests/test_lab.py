"""The seed's floating-IP testbed, built for real in network namespaces (lab/).

Root tests build the testbed and let the kernel decide: with no fault the VM pings the
outside host and the physical node reaches the VM's floating IP on tcp 22; each fault
alone breaks exactly the probes the seed says it breaks, and the seed's fix restores
them. Both namings run, to show nothing depends on the seed's names. After every test
no namespace of this run is left.

Tests without the root mark check the pure parts (rulesets, namings, fixtures).
"""
from __future__ import annotations

import json
import os
import subprocess
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

from lab import capture, netns
from lab.testbed import (FAULTS, GATEWAY, GATEWAY_FORWARD_BLOCKED,
                         GATEWAY_IP_FORWARD_OFF, GATEWAY_NO_MASQUERADE, GATEWAY_NO_RETURN_ROUTE,
                         GATEWAY_TO_FLOATING, NETWORK, OTHER, PROBES, ROLES, SEED, SEED_FAULTS,
                         SNAT_WRONG_INTERFACE, VM_TO_OUTSIDE, LabNaming, Testbed,
                         nova_network_ruleset)

FIXTURES = Path(__file__).parent / "fixtures" / "labs"

# What each fault alone does to the two probes - from the seed's reasoning, stated here
# independently of lab.testbed.FAULTS so the kernel's behaviour is checked against it.
EXPECTED_BROKEN = {
    SNAT_WRONG_INTERFACE: {VM_TO_OUTSIDE},              # leaves eth0 un-NATed; DNAT still works
    GATEWAY_NO_RETURN_ROUTE: {VM_TO_OUTSIDE, GATEWAY_TO_FLOATING},
    GATEWAY_NO_MASQUERADE: {VM_TO_OUTSIDE},             # outside cannot answer 172.16.1.1
    GATEWAY_FORWARD_BLOCKED: {VM_TO_OUTSIDE},           # gks-061's own nc is not forwarded
    GATEWAY_IP_FORWARD_OFF: {VM_TO_OUTSIDE},
}

# The seed's `iptables -L -t nat -v` on network-node, verbatim (public_interface=eth1).
SEED_NAT_LISTING = """\
Chain PREROUTING (policy ACCEPT 15 packets, 4523 bytes)
 pkts bytes target     prot opt in     out     source               destination         
   20  3456 nova-network-PREROUTING  all  --  any    any     anywhere             anywhere            
   15  4523 nova-api-metadat-PREROUTING  all  --  any    any     anywhere             anywhere            

Chain INPUT (policy ACCEPT 21 packets, 4859 bytes)
 pkts bytes target     prot opt in     out     source               destination         

Chain OUTPUT (policy ACCEPT 74 packets, 7961 bytes)
 pkts bytes target     prot opt in     out     source               destination         
   23  3948 nova-network-OUTPUT  all  --  any    any     anywhere             anywhere            
   74  7961 nova-api-metadat-OUTPUT  all  --  any    any     anywhere             anywhere            

Chain POSTROUTING (policy ACCEPT 63 packets, 4298 bytes)
 pkts bytes target     prot opt in     out     source               destination         
   24  4032 nova-network-POSTROUTING  all  --  any    any     anywhere             anywhere            
   63  4298 nova-api-metadat-POSTROUTING  all  --  any    any     anywhere             anywhere            
   63  4298 nova-postrouting-bottom  all  --  any    any     anywhere             anywhere            

Chain nova-api-metadat-OUTPUT (1 references)
 pkts bytes target     prot opt in     out     source               destination         

Chain nova-api-metadat-POSTROUTING (1 references)
 pkts bytes target     prot opt in     out     source               destination         

Chain nova-api-metadat-PREROUTING (1 references)
 pkts bytes target     prot opt in     out     source               destination         

Chain nova-api-metadat-float-snat (1 references)
 pkts bytes target     prot opt in     out     source               destination         

Chain nova-api-metadat-snat (1 references)
 pkts bytes target     prot opt in     out     source               destination         
   63  4298 nova-api-metadat-float-snat  all  --  any    any     anywhere             anywhere            

Chain nova-network-OUTPUT (1 references)
 pkts bytes target     prot opt in     out     source               destination         
    0     0 DNAT       all  --  any    any     anywhere             172.16.1.1           to:10.99.0.2

Chain nova-network-POSTROUTING (1 references)
 pkts bytes target     prot opt in     out     source               destination         
    0     0 ACCEPT     all  --  any    any     10.99.0.0/22         network-node        
   11  3171 ACCEPT     all  --  any    any     10.99.0.0/22         10.99.0.0/22         ! ctstate DNAT
    0     0 SNAT       all  --  any    any     10.99.0.2            anywhere             ctstate DNAT to:172.16.1.1

Chain nova-network-PREROUTING (1 references)
 pkts bytes target     prot opt in     out     source               destination         
    8   480 DNAT       tcp  --  any    any     anywhere             169.254.169.254      tcp dpt:http to:10.0.0.7:8775
    0     0 DNAT       all  --  any    any     anywhere             172.16.1.1           to:10.99.0.2

Chain nova-network-float-snat (1 references)
 pkts bytes target     prot opt in     out     source               destination         
    0     0 SNAT       all  --  any    any     10.99.0.2            10.99.0.2            to:172.16.1.1
    0     0 SNAT       all  --  any    eth1    10.99.0.2            anywhere             to:172.16.1.1

Chain nova-network-snat (1 references)
 pkts bytes target     prot opt in     out     source               destination         
   13   861 nova-network-float-snat  all  --  any    any     anywhere             anywhere            
    0     0 SNAT       all  --  any    eth1    10.99.0.0/22         anywhere             to:10.0.0.7

Chain nova-postrouting-bottom (1 references)
 pkts bytes target     prot opt in     out     source               destination         
   13   861 nova-network-snat  all  --  any    any     anywhere             anywhere            
   63  4298 nova-api-metadat-snat  all  --  any    any     anywhere             anywhere            
"""

root = pytest.mark.root
needs_lab = pytest.mark.skipif(not netns.available()[0], reason=netns.available()[1])
THIS_RUN = f"{netns.FAMILY_PREFIX}{os.getpid()}-"


def _rules_by_chain(listing: str) -> dict[str, list[str]]:
    """``iptables -L -v`` text -> {chain: [rule row without its two counter columns]}."""
    chains: dict[str, list[str]] = {}
    chain = None
    for line in listing.splitlines():
        if line.startswith("Chain "):
            chain = line.split()[1]
            chains[chain] = []
        elif chain and line.strip() and not line.lstrip().startswith("pkts"):
            chains[chain].append(" ".join(line.split()[2:]))
    return chains


def _host_links() -> str:
    return subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True,
                          timeout=5).stdout


def _assert_probes(results, broken: set, context: str) -> None:
    outcome = {name: result.succeeded for name, result in results.items()}
    expected = {name: name not in broken for name in PROBES}
    transcripts = "\n".join(result.transcript for result in results.values())
    assert outcome == expected, f"{context}: kernel said {outcome}\n{transcripts}"


@contextmanager
def built(**options):
    """A testbed for one test; asserts nothing of it is left afterwards."""
    testbed = Testbed(**options)
    try:
        with testbed:
            yield testbed
    finally:
        if testbed.session:
            assert testbed.session.leftovers() == []


@pytest.fixture(autouse=True)
def _nothing_left_behind(request):
    """Root tests: no namespace (or /etc/netns entry) of this run survives a test."""
    yield
    if request.node.get_closest_marker("root") and netns.available()[0]:
        assert [n for n in netns.list_namespaces() if n.startswith(THIS_RUN)] == []
        if netns.NETNS_ETC.is_dir():
            assert [p.name for p in netns.NETNS_ETC.iterdir() if p.name.startswith(THIS_RUN)] == []


@pytest.fixture(scope="module", autouse=True)
def _sweep_crashed_runs():
    """Leftovers of earlier crashed runs (owner pid dead) go before we start."""
    if netns.available()[0]:
        netns.sweep_stale()
    yield


# ----------------------------------------------------------------- pure parts
def test_available_answers_with_a_reason():
    ok, reason = netns.available()
    assert isinstance(ok, bool) and reason


def test_ruleset_has_the_seeds_snat_rules_on_public_interface():
    text = nova_network_ruleset(SEED, "eth1")
    assert "-A nova-network-snat -s 10.99.0.0/22 -o eth1 -j SNAT --to-source 10.0.0.7" in text
    assert "-A nova-network-float-snat -s 10.99.0.2/32 -o eth1 -j SNAT --to-source 172.16.1.1" in text
    assert "-A nova-network-PREROUTING -d 172.16.1.1/32 -j DNAT --to-destination 10.99.0.2" in text
    assert "-A nova-network-OUTPUT -d 172.16.1.1/32 -j DNAT --to-destination 10.99.0.2" in text
    fixed = nova_network_ruleset(SEED, "eth0")
    assert "-o eth1" not in fixed and "-s 10.99.0.0/22 -o eth0 -j SNAT" in fixed


def test_other_naming_shares_no_name_or_address_with_the_seed():
    shared = []
    for field in LabNaming.__dataclass_fields__:
        if field in ("label", "vm_service_port", "metadata_port", "rhel_roles"):
            continue
        if getattr(SEED, field) == getattr(OTHER, field):
            shared.append(field)
    assert shared == []
    rendered = nova_network_ruleset(OTHER, OTHER.mgmt_iface)
    for seed_value in ("10.99.", "10.0.0.", "172.16.", "eth0", "eth1", "br100"):
        assert seed_value not in rendered


def test_naming_rejects_inconsistent_addresses_and_long_names():
    from dataclasses import replace
    with pytest.raises(ValueError, match="floating_ip"):
        replace(SEED, floating_ip="10.0.0.99")
    with pytest.raises(ValueError, match="15 characters"):
        replace(SEED, public_iface="a-very-long-interface")
    with pytest.raises(ValueError, match="overlaps"):
        replace(SEED, uplink_cidr="172.16.5.0/24", gateway_uplink_ip="172.16.5.2", upstream_ip="172.16.5.1")


def test_fault_table_agrees_with_the_seed():
    assert set(FAULTS) == set(EXPECTED_BROKEN)
    assert {name: set(fault.breaks) for name, fault in FAULTS.items()} == EXPECTED_BROKEN
    assert SEED_FAULTS == {SNAT_WRONG_INTERFACE, GATEWAY_NO_RETURN_ROUTE,
                           GATEWAY_NO_MASQUERADE, GATEWAY_FORWARD_BLOCKED}


def test_unknown_fault_and_contradictory_public_interface_are_refused():
    with pytest.raises(ValueError, match="unknown"):
        Testbed(faults={"gateway_on_fire"})
    with pytest.raises(ValueError, match="contradicts"):
        Testbed(faults={SNAT_WRONG_INTERFACE}, public_interface="eth0")
    assert Testbed(public_interface="eth1").faults == {SNAT_WRONG_INTERFACE}


def test_command_slugs_are_file_names():
    assert capture.command_slug("iptables -L -t nat -v") == "iptables-L-t-nat-v"
    assert capture.command_slug("sysctl net.ipv4.ip_forward") == "sysctl-net.ipv4.ip_forward"
    assert capture.command_slug("tcpdump -i br1 -n icmp") == "tcpdump-i-br1-n-icmp"


FIXTURE_CASES = sorted(p.parent.name for p in FIXTURES.glob("*/case.json"))


@pytest.mark.parametrize("case", FIXTURE_CASES)
def test_saved_captures_are_consistent(case):
    """Fixtures are real captures; their recorded probe outcomes match the seed's reasoning."""
    meta = json.loads((FIXTURES / case / "case.json").read_text())
    naming = {"seed": SEED, "other": OTHER}[meta["naming"]]
    broken = set().union(*(EXPECTED_BROKEN[f] for f in meta["faults"]))
    assert meta["probes"] == {name: name not in broken for name in PROBES}
    for role in ROLES:
        text = (FIXTURES / case / f"{naming.hostname(role)}.txt").read_text()
        assert text.startswith(naming.prompt(role))
    gateway = (FIXTURES / case / f"{naming.gateway_host}.txt").read_text()
    assert f"[root@{naming.gateway_host} ~]# iptables-save" in gateway


def test_the_listed_fixture_cases_exist():
    for case in ("seed-healthy", "seed-snat-wrong-interface", "other-healthy",
                 "other-snat-wrong-interface", "other-gateway-no-return-route",
                 "other-gateway-no-masquerade", "other-gateway-forward-blocked"):
        assert case in FIXTURE_CASES


# ----------------------------------------------------------------- the real lab
@root
@needs_lab
@pytest.mark.parametrize("names", [SEED, OTHER], ids=lambda n: n.label)
def test_healthy_testbed_works_end_to_end(names):
    host_links_before = _host_links()
    with built(names=names) as tb:
        # Nothing was plugged into the host's own network namespace.
        assert _host_links() == host_links_before
        _assert_probes(capture.run_probes(tb), set(), f"{names.label} healthy")
        # The floating IP reaches *the VM's listener*: without it, the VM refuses.
        tb.session.stop(tb.listener)
        refused = capture.connect_floating(tb)
        assert not refused.succeeded and "refused" in refused.step.output


@root
@needs_lab
@pytest.mark.parametrize("names", [SEED, OTHER], ids=lambda n: n.label)
@pytest.mark.parametrize("fault", sorted(EXPECTED_BROKEN))
def test_each_fault_alone_breaks_its_probe_and_the_fix_restores_it(fault, names):
    with built(faults={fault}, names=names) as tb:
        _assert_probes(capture.run_probes(tb), EXPECTED_BROKEN[fault], f"with {fault}")
        tb.fix(fault)
        assert tb.faults == frozenset()
        _assert_probes(capture.run_probes(tb), set(), f"after fixing {fault}")


@root
@needs_lab
def test_faults_injected_into_a_running_testbed_break_it_again():
    with built(names=OTHER) as tb:
        for fault in sorted(EXPECTED_BROKEN):
            tb.inject(fault)
            _assert_probes(capture.run_probes(tb), EXPECTED_BROKEN[fault], f"injected {fault}")
            tb.fix(fault)
        _assert_probes(capture.run_probes(tb), set(), "all fixed again")


@root
@needs_lab
def test_seed_as_found_lists_the_seeds_nat_rules_and_the_seeds_fixes_repair_it():
    with built(faults=SEED_FAULTS, names=SEED) as tb:
        assert tb.public_interface == "eth1"
        listing = tb.run(NETWORK, "iptables -L -t nat -v").stdout
        assert _rules_by_chain(listing) == _rules_by_chain(SEED_NAT_LISTING)
        _assert_probes(capture.run_probes(tb), {VM_TO_OUTSIDE, GATEWAY_TO_FLOATING}, "as found")
        tb.fix_all()
        assert tb.public_interface == "eth0"
        _assert_probes(capture.run_probes(tb), set(), "after the seed's fixes")


@root
@needs_lab
def test_the_seeds_other_fix_routing_via_the_public_network():
    """Fix 1: br1:0 172.16.0.1/16 on gks-061, default via 172.16.0.1 dev eth1, public_interface=eth1."""
    with built(names=SEED, route_style="public") as tb:
        assert tb.public_interface == "eth1"
        assert "default via 172.16.0.1 dev eth1" in tb.run(NETWORK, "ip route").stdout
        _assert_probes(capture.run_probes(tb), set(), "fix 1")
        tb.inject(SNAT_WRONG_INTERFACE)   # now eth0 is the wrong one
        assert tb.public_interface == "eth0"
        _assert_probes(capture.run_probes(tb), {VM_TO_OUTSIDE}, "fix 1, SNAT on eth0")


@root
@needs_lab
def test_tcpdump_shows_the_vm_packet_leaving_un_natted_until_the_fix():
    """The seed's observation: on network-node eth0 the source is still 10.99.0.2."""
    with built(faults={SNAT_WRONG_INTERFACE}, names=SEED) as tb:
        ping, (dump,) = capture.tcpdump_during(tb, [(NETWORK, "eth0", "icmp")],
                                               lambda: capture.ping_outside(tb, count=1))
        assert not ping.succeeded
        assert dump.packets and all(" IP 10.99.0.2 > 203.0.113.10: ICMP echo request" in p
                                    for p in dump.packets)
        assert dump.step.text.startswith("root@network-node:~# tcpdump ")
        assert "^C\n" in dump.step.text and "captured" in dump.step.text
        tb.fix(SNAT_WRONG_INTERFACE)
        ping, (dump,) = capture.tcpdump_during(tb, [(NETWORK, "eth0", "icmp")],
                                               lambda: capture.ping_outside(tb, count=1))
        assert ping.succeeded
        assert any(" IP 172.16.1.1 > 203.0.113.10: ICMP echo request" in p for p in dump.packets)
        assert any(" IP 203.0.113.10 > 172.16.1.1: ICMP echo reply" in p for p in dump.packets)


@root
@needs_lab
def test_transcripts_have_node_prompts_and_evidence_files_their_layout(tmp_path):
    with built(faults={GATEWAY_NO_MASQUERADE}, names=SEED) as tb:
        transcripts = capture.capture_all(tb)
        # tcpdump is bounded in time even when nobody stops it: ^C after time_limit.
        dump = capture.Tcpdump(tb, GATEWAY, "eth0", "icmp", time_limit=0.3).start()
        time.sleep(0.8)
        assert dump._process.poll() is not None
        idle = dump.stop()
        assert idle.interrupted and idle.packets == ()
        assert idle.transcript.startswith("[root@gks-061 ~]# tcpdump -l -n -c 20 -i eth0 icmp\n")
        assert "^C\n0 packets captured\n" in idle.transcript
    assert set(transcripts) == {SEED.hostname(role) for role in ROLES}
    network = transcripts["network-node"].text
    assert network.startswith("root@network-node:~# ip route\ndefault via 10.0.0.1 dev eth0 \n")
    assert "root@network-node:~# iptables -L -t nat -v\nChain PREROUTING" in network
    assert "network-node" in _rules_by_chain(network.split("# iptables -L -t nat -v\n")[1]
                                             )["nova-network-POSTROUTING"][0]
    gateway = transcripts["gks-061"].text
    assert "[root@gks-061 ~]# sysctl net.ipv4.ip_forward\nnet.ipv4.ip_forward = 1\n" in gateway
    assert "MASQUERADE" not in gateway
    assert "172.16.0.0/16 dev br1" in gateway
    written = capture.write_evidence(transcripts, tmp_path / "evidence")
    assert len(written) == len(ROLES) * len(capture.EVIDENCE_COMMANDS)
    route = (tmp_path / "evidence" / "gks-061" / "ip-route.txt").read_text()
    assert route.startswith("[root@gks-061 ~]# ip route\ndefault via 198.51.100.1 dev eth0")
    assert (tmp_path / "evidence" / "network-node" / "iptables-L-t-nat-v.txt").is_file()
    assert (tmp_path / "evidence" / "compute-1" / "sysctl-net.ipv4.ip_forward.txt").is_file()


@root
@needs_lab
def test_a_failed_build_leaves_nothing(monkeypatch):
    def broken_listener(self, timeout=5.0):
        raise RuntimeError("simulated failure late in the build")

    monkeypatch.setattr(Testbed, "_start_listener", broken_listener)
    testbed = Testbed(names=OTHER)
    with pytest.raises(RuntimeError, match="simulated"):
        testbed.build()
    assert testbed.session.leftovers() == []


@root
@needs_lab
def test_session_cleans_up_on_exception_and_sweeper_only_takes_dead_owners():
    dead = subprocess.Popen(["true"])
    dead.wait(timeout=5)
    stale = netns.NetnsSession(prefix=f"{netns.FAMILY_PREFIX}{dead.pid}-abc123-")
    stale.namespace("vm")                   # a "crashed run": owner pid is gone
    with pytest.raises(ZeroDivisionError):
        with netns.NetnsSession() as live:
            live.namespace("vm")
            removed = netns.sweep_stale()
            assert f"{stale.prefix}vm" in removed and f"{live.prefix}vm" not in removed
            assert live.leftovers() == [f"{live.prefix}vm"]
            1 / 0
    assert live.leftovers() == []
    assert stale.leftovers() == []
    with pytest.raises(ValueError):
        netns.sweep_stale(prefix="not-ours-")
