"""The tutor, scripted end to end without HTTP: a student follows the course's path
for the floating-IP problem and for the cinder <-> glance problems, and the tutor asks,
hints, explains and reveals exactly as the contract says (design.md: a cause is revealed
only when named, answered, or the solution is asked)."""
from pathlib import Path

import pytest

from tutor.conversation import Tutor
from tutor.store import Store

ROOT = Path(__file__).resolve().parent.parent
LABS = ROOT / "tests" / "fixtures" / "labs"
SNAT_CAUSE = "fip-snat-wrong-interface"

# The seed's outputs, as a student pastes them when asked (seed, "Floating IPs").
COMPUTE = """root@compute-1:~# tcpdump -i br100 -n icmp
tcpdump: WARNING: br100: no IPv4 address assigned
tcpdump: verbose output suppressed, use -v or -vv for full protocol decode
listening on br100, link-type EN10MB (Ethernet), capture size 65535 bytes
10:13:31.513718 IP 10.99.0.2 > 173.194.113.145: ICMP echo request, id 56064, seq 90, length 64
"""
NETWORK_BRIDGE = """root@network-node:~# tcpdump -i br100 icmp -n
tcpdump: verbose output suppressed, use -v or -vv for full protocol decode
listening on br100, link-type EN10MB (Ethernet), capture size 65535 bytes
10:14:13.532368 IP 10.99.0.2 > 173.194.113.145: ICMP echo request, id 56064, seq 132, length 64
"""
NETWORK_ROUTES = """root@network-node:~# ip route
default via 10.0.0.1 dev eth0
10.0.0.0/24 dev eth0  proto kernel  scope link  src 10.0.0.7
10.99.0.0/22 dev br100  proto kernel  scope link  src 10.99.0.1
172.16.0.0/16 dev eth1  proto kernel  scope link  src 172.16.0.7
"""
NETWORK_UPLINK = """root@network-node:~# tcpdump -i eth0 -n icmp
tcpdump: verbose output suppressed, use -v or -vv for full protocol decode
listening on eth0, link-type EN10MB (Ethernet), capture size 65535 bytes
10:15:53.570698 IP 10.99.0.2 > 173.194.113.145: ICMP echo request, id 56064, seq 232, length 64
"""
_NODE_FILE = (ROOT / "rules" / "examples" / "seed-network-node.txt").read_text()
NETWORK_NAT = _NODE_FILE[_NODE_FILE.index("root@network-node:~# iptables -L -t nat -v"):]
SEED_PATH = [COMPUTE, NETWORK_BRIDGE, NETWORK_ROUTES, NETWORK_UPLINK, NETWORK_NAT]

CINDER_API_LOG = "root@volume-node:~# tail /var/log/cinder/cinder-api.log\n" + \
    (ROOT / "rules" / "examples" / "seed-cinder-api.log").read_text()
# Real `ip addr show eth0` captures holding the seed's addresses (tests/fixtures/cinder).
CINDER_FIXTURES = ROOT / "tests" / "fixtures" / "cinder"
VOLUME_ADDRESSES = (CINDER_FIXTURES / "seed-volume-node-ip-addr.txt").read_text()
API_NODE_ADDRESSES = (CINDER_FIXTURES / "seed-api-node-ip-addr.txt").read_text()
QEMU_LOG = "root@volume-node:~# tail /var/log/cinder/cinder-volume.log\n" + \
    (ROOT / "rules" / "examples" / "seed-cinder-volume-qemu.log").read_text()


@pytest.fixture
def tutor(tmp_path):
    store = Store(str(tmp_path / "tutor.db"))
    yield Tutor(store)
    store.close()


def causes(reply):
    return [f["cause"] for f in reply.findings]


def walk_to_question(tutor, session):
    replies = [tutor.respond(session, "why can't my VM ping google?")]
    replies += [tutor.respond(session, paste) for paste in SEED_PATH]
    return replies


# --- the floating-IP problem, the seed's path -------------------------------------------

def test_recognises_the_symptom_and_asks_for_the_first_evidence_with_why(tutor):
    session = tutor.start()
    reply = tutor.respond(session, "why can't my VM ping google?")
    assert "cannot reach the internet" in reply.reply
    assert "compute node" in reply.reply and "tcpdump" in reply.reply
    assert "```" in reply.reply                  # the command is in a code block
    assert "the fault is in the instance or on the compute node" in reply.reply   # why it matters
    assert reply.findings == [] and reply.hint_level == 0


def test_the_seed_path_is_asked_in_order_and_each_paste_is_explained(tutor):
    session = tutor.start()
    replies = walk_to_question(tutor, session)
    asked = ["compute node's bridge", "network node's bridge", "routing table",
             "leaving the network node by its default route", "NAT rules"]
    for reply, expected in zip(replies, asked):
        assert expected in reply.reply, reply.reply
    # after the routes, the uplink capture is asked in the lab's own interface name
    assert "tcpdump -n -i eth0 icmp" in replies[3].reply
    # each paste is said in plain words
    assert "tcpdump on compute-1 (br100) saw echo request from 10.99.0.2" in replies[1].reply
    assert "network-node's default route leaves by eth0 via 10.0.0.1" in replies[3].reply
    assert "That's what I asked for." in replies[2].reply
    # the diagram follows the packet
    assert "<svg" in replies[4].reply and "still from 10.99.0.2" in replies[4].reply


def test_the_cause_is_not_announced_but_asked_about(tutor):
    session = tutor.start()
    replies = walk_to_question(tutor, session)
    last = replies[-1]
    assert "**Question:**" in last.reply
    assert "Which interface must a packet leave network-node by" in last.reply
    assert last.findings == []
    for reply in replies:
        assert "public_interface" not in reply.reply
        assert "applies only to packets leaving by" not in reply.reply


def test_why_at_each_stage(tutor):
    session = tutor.start()
    before = tutor.respond(session, "why?")
    assert "what goes wrong" in before.reply
    tutor.respond(session, "why can't my VM ping google?")
    hypotheses = ["the instance's packets get out of the compute node",
                  "the packets reach the router of the instances",
                  "the network node knows where to send packets for the outside",
                  "the network node translates the packets before they leave",
                  "the SNAT rules match the packets the instance sends"]
    for paste, hypothesis in zip(SEED_PATH, hypotheses):
        why = tutor.respond(session, "why are you asking that?")
        assert hypothesis in why.reply, why.reply
        assert why.findings == []
        tutor.respond(session, paste)
    at_question = tutor.respond(session, "why")
    assert "The answer is in these lines" in at_question.reply
    assert "default via 10.0.0.1 dev eth0" in at_question.reply
    assert at_question.findings == []
    tutor.respond(session, "solution")
    how = tutor.respond(session, "how do you know?")
    assert "How we know" in how.reply
    assert "network-node's default route leaves by eth0 via 10.0.0.1" in how.reply


def test_every_hint_level_then_the_bottom_out_reveals(tutor):
    session = tutor.start()
    walk_to_question(tutor, session)
    first = tutor.respond(session, "hint")
    assert first.hint_level == 1 and "Hint 1 of 3" in first.reply and first.findings == []
    second = tutor.respond(session, "give me another hint")
    assert second.hint_level == 2 and "Hint 2 of 3" in second.reply and second.findings == []
    assert "nova-network-snat" in second.reply
    third = tutor.respond(session, "can I have a hint?")
    assert third.hint_level == 3 and "Hint 3 of 3" in third.reply
    assert causes(third) == [SNAT_CAUSE]
    assert "public_interface=eth0" in third.reply


def test_a_wrong_answer_then_half_then_right(tutor):
    session = tutor.start()
    walk_to_question(tutor, session)
    wrong = tutor.respond(session, "the DNS server is broken")
    assert wrong.reply.startswith("Not quite") and "'out' column" in wrong.reply
    assert wrong.findings == []
    half = tutor.respond(session, "it only applies on eth1")
    # the feedback points at what is missing: the default route's interface
    assert "You have the SNAT rule's interface" in half.reply and "'default' line" in half.reply
    assert half.findings == []
    other_half = tutor.respond(session, "I think it's eth0 for both")
    # the misconception that the SNAT rule applies on eth0 too is met at the rule itself
    assert "read the 'out' column of the SNAT rule for 10.99.0.0/22" in other_half.reply
    assert other_half.findings == []
    right = tutor.respond(session, "SNAT wants eth1 but the default route uses eth0")
    assert right.reply.startswith("**Right.**")
    assert causes(right) == [SNAT_CAUSE]
    finding = right.findings[0]
    assert finding["node"] == "network-node" and finding["evidence"]
    assert any("public_interface=eth0" in step for step in finding["fix"])
    # and the route goes on to the gateway, should the ping still fail after the fix
    assert "gateway" in right.reply


def test_naming_the_cause_reveals_it(tutor):
    session = tutor.start()
    walk_to_question(tutor, session)
    reply = tutor.respond(session, "I think public_interface is set to the wrong interface")
    assert causes(reply) == [SNAT_CAUSE]
    assert "that's it" in reply.reply


def test_solution_reveals_with_fix_reasoning_and_diagram(tutor):
    session = tutor.start()
    walk_to_question(tutor, session)
    reply = tutor.respond(session, "just tell me the answer")
    assert causes(reply) == [SNAT_CAUSE]
    assert "**Fix:**" in reply.reply and "service nova-network restart" in reply.reply
    assert "How we know" in reply.reply and "<svg" in reply.reply


def test_solution_before_any_evidence_says_what_to_gather(tutor):
    session = tutor.start()
    tutor.respond(session, "my vm can't ping google")
    reply = tutor.respond(session, "solution")
    assert reply.findings == []
    assert "can't give you the answer yet" in reply.reply and "tcpdump" in reply.reply


def test_evidence_out_of_order_is_kept_and_the_route_goes_on(tutor):
    session = tutor.start()
    tutor.respond(session, "my instance has no internet")
    nat_first = tutor.respond(session, NETWORK_NAT)
    assert "before I asked for it" in nat_first.reply
    assert "compute node's bridge" in nat_first.reply        # still what it needs first
    tutor.respond(session, COMPUTE)
    tutor.respond(session, NETWORK_UPLINK)                    # before the routes and the bridge
    routes = tutor.respond(session, NETWORK_ROUTES)
    # routes + NAT establish the cause: the tutor asks, it does not tell
    assert "**Question:**" in routes.reply and routes.findings == []


def test_evidence_from_a_different_node_than_asked(tutor):
    session = tutor.start()
    tutor.respond(session, "why can't my VM ping google?")
    reply = tutor.respond(session, NETWORK_BRIDGE)            # asked: the compute node
    assert "not the compute node I asked about" in reply.reply
    assert "network-node" in reply.reply
    # the packet seen on the network node went through the compute node: that capture is moot
    assert "The ping got further than the ping on the compute node's bridge" in reply.reply
    assert "**Next: the network node's routing table.**" in reply.reply


def test_the_conversation_survives_a_restart(tmp_path):
    path = str(tmp_path / "tutor.db")
    first = Tutor(Store(path))
    session = first.start()
    first.respond(session, "why can't my VM ping google?")
    for paste in SEED_PATH[:3]:
        first.respond(session, paste)
    first.store.close()
    second = Tutor(Store(path))
    transcript = second.transcript(session)
    assert transcript["symptom"] == "vm-cannot-reach-internet"
    assert len(transcript["messages"]) == 1 + 2 * 4
    reply = second.respond(session, NETWORK_UPLINK)
    assert "NAT rules" in reply.reply
    reply = second.respond(session, NETWORK_NAT)
    assert "**Question:**" in reply.reply


def test_another_lab_is_taught_in_its_own_names(tutor):
    session = tutor.start()
    tutor.respond(session, "my VM cannot ping the outside")
    lab = LABS / "other-snat-wrong-interface"
    replies = [tutor.respond(session, (lab / name).read_text()) for name in ("cmp01.txt", "net01.txt")]
    text = " ".join(r.reply for r in replies)
    assert "**Question:**" in replies[-1].reply and "net01" in replies[-1].reply
    for seed_word in ("eth0", "eth1", "network-node", "br100", "10.99."):
        assert seed_word not in text
    answer = tutor.respond(session, "the SNAT rule is only for ens4 but the default route uses ens3")
    assert causes(answer) == [SNAT_CAUSE]


def test_unrecognised_problem_gets_a_question_and_a_choice(tutor):
    session = tutor.start()
    reply = tutor.respond(session, "hello there")
    assert "not sure which problem" in reply.reply
    listing = [line for line in reply.reply.splitlines() if line[:2].rstrip(".").isdigit()]
    number = next(line.split(".")[0] for line in listing if "internet" in line)
    chosen = tutor.respond(session, number)
    assert "compute node's bridge" in chosen.reply


# --- cinder <-> glance -----------------------------------------------------------------------

def test_cinder_glance_endpoint_path(tutor):
    session = tutor.start()
    first = tutor.respond(session, "creating a volume from an image fails")
    assert "cinder-api.log" in first.reply and "volume node" in first.reply
    log = tutor.respond(session, CINDER_API_LOG)
    assert "Error contacting glance server" in log.reply        # what the paste shows
    assert "ip addr show" in log.reply and log.findings == []  # the log alone cannot decide
    why = tutor.respond(session, "why do you need that?")
    assert "cinder looks for glance where glance runs" in why.reply
    addresses = tutor.respond(session, VOLUME_ADDRESSES)
    assert "**Question:**" in addresses.reply and "10.0.0.8" not in addresses.reply.split("**Question:**")[1]
    hint = tutor.respond(session, "hint")
    assert hint.hint_level == 1 and hint.findings == []
    half = tutor.respond(session, "it uses 10.0.0.8")
    assert "Half of it" in half.reply and half.findings == []
    right = tutor.respond(session, "10.0.0.8 is the volume node itself; glance_api_servers is not set")
    assert causes(right) == ["cinder-glance-endpoint"]
    assert "glance_api_servers=" in right.reply


def test_cinder_qemu_img_path_with_a_wrong_answer_and_the_solution(tutor):
    session = tutor.start()
    first = tutor.respond(session, "boot from volume fails, my instance goes to ERROR")
    assert "booted from a volume" in first.reply
    log = tutor.respond(session, QEMU_LOG)
    assert "**Question:**" in log.reply and log.findings == []
    wrong = tutor.respond(session, "glance is down")
    assert wrong.reply.startswith("Not quite") and wrong.findings == []
    solution = tutor.respond(session, "what's the solution?")
    assert causes(solution) == ["cinder-qemu-img-missing"]
    assert "qemu-utils" in solution.reply


def test_naming_qemu_reveals_it(tutor):
    session = tutor.start()
    tutor.respond(session, "cannot create a volume")
    tutor.respond(session, QEMU_LOG)
    reply = tutor.respond(session, "qemu-img is missing, we need to install qemu-utils")
    assert causes(reply) == ["cinder-qemu-img-missing"]


def test_every_hint_level_for_cinder(tutor):
    session = tutor.start()
    tutor.respond(session, "cannot create a volume")
    tutor.respond(session, QEMU_LOG)
    levels = [tutor.respond(session, "hint") for _ in range(3)]
    assert [r.hint_level for r in levels] == [1, 2, 3]
    assert [bool(r.findings) for r in levels] == [False, False, True]
    again = tutor.respond(session, "hint")
    assert again.hint_level == 3


# --- the words that always work ----------------------------------------------------------------

@pytest.mark.parametrize("text, word", [
    ("hint", "hint"), ("Hint?", "hint"), ("give me a hint", "hint"), ("I'm stuck", "hint"),
    ("can I get a clue?", "hint"), ("any hints", "hint"),
    ("why", "why"), ("why?", "why"), ("why are you asking that?", "why"),
    ("why does that matter?", "why"), ("why do I need this", "why"),
    ("how do you know?", "how"), ("how does that follow?", "how"),
    ("solution", "solution"), ("just tell me the answer", "solution"), ("I give up", "solution"),
    ("what's the answer?", "solution"), ("show me the solution", "solution"),
    ("why can't my VM ping google?", None), ("how can I resolve google's name?", None),
    ("the SNAT rule only applies to eth1", None),
])
def test_control_words_and_their_natural_phrasings(text, word):
    from tutor.intent import control_word
    assert control_word(text) == word


def test_cannot_reach_vm_follows_its_own_route(tutor):
    session = tutor.start()
    first = tutor.respond(session, "I can't ssh to my instance, connection timed out")
    assert "Nothing outside can connect" in first.reply and "iptables -t nat" in first.reply
    assert "`nc -v -w 3 <floating IP> 22`" in first.reply       # the file's Markdown is kept
    lab = LABS / "other-gateway-no-return-route"
    network = tutor.respond(session, (lab / "net01.txt").read_text())
    assert "gateway's routing table" in network.reply and "198.51.100.77" in network.reply
    gateway = tutor.respond(session, (lab / "gw01.txt").read_text())
    assert "**Question:**" in gateway.reply and gateway.findings == []
    answer = tutor.respond(session, "gw01 sends it out of wan0 but it reaches net01 on br-mgmt")
    assert causes(answer) == ["fip-upstream-no-return-route"]


# --- the picture ------------------------------------------------------------------------------

def test_the_diagram_escapes_every_text_it_draws():
    from kb.facts import FactTable
    from tutor.diagram import packet_path_svg
    table = FactTable()
    hostile = '<script>alert("x")</script>&'
    table.add({"type": "packet", "node": hostile, "iface": "br0", "src": "<img src=x>",
               "dst": "192.0.2.1", "icmp_type": "echo request"})
    svg = packet_path_svg(table, {hostile: "compute"}, {})
    assert "<script" not in svg and "<img" not in svg
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;" in svg
    assert "&lt;img src=x&gt;" in svg
    assert svg.startswith("<svg") and svg.endswith("</svg>")


def test_the_diagram_marks_where_the_reply_is_lost(tutor):
    session = tutor.start()
    tutor.respond(session, "my vm cannot ping google")
    lab = LABS / "other-gateway-no-return-route"
    for name in ("cmp01.txt", "net01.txt", "gw01.txt"):
        reply = tutor.respond(session, (lab / name).read_text())
    assert "reply lost here" in reply.reply and "SNAT 10.20.4.5" in reply.reply


def test_naming_a_cause_before_the_evidence_shows_it_is_a_hypothesis(tutor):
    session = tutor.start()
    tutor.respond(session, "why can't my VM ping google?")
    reply = tutor.respond(session, "maybe public_interface is wrong?")
    assert "hypothesis worth testing" in reply.reply and reply.findings == []
    assert "compute node's bridge" in reply.reply


def test_after_the_fix_the_route_goes_on_to_the_gateway_as_in_the_seed(tutor):
    session = tutor.start()
    walk_to_question(tutor, session)
    tutor.respond(session, "the SNAT rule wants eth1, the default route uses eth0")
    investigation = (ROOT / "rules" / "examples" / "seed-floating-ip-investigation.txt").read_text()
    after_fix = investigation[investigation.index("root@network-node:~# sed -i"):]
    reply = tutor.respond(session, after_fix)
    assert "**Question:**" in reply.reply and "A reply to 172.16.1.1 arrives at gks-061" in reply.reply
    assert causes(reply) == [SNAT_CAUSE]
    answer = tutor.respond(session, "gks-061 would send it out of eth0, but it reaches network-node on br1")
    assert causes(answer) == [SNAT_CAUSE, "fip-upstream-no-return-route"]


def test_cinder_evidence_out_of_order_and_from_another_node(tutor):
    session = tutor.start()
    tutor.respond(session, "creating a volume from an image fails")
    api_node = tutor.respond(session, API_NODE_ADDRESSES)
    assert "not the volume node I asked about" in api_node.reply
    early = tutor.respond(session, VOLUME_ADDRESSES)        # the addresses before the log
    assert "volume node's addresses" in early.reply and "cinder-api.log" in early.reply
    log = tutor.respond(session, CINDER_API_LOG)
    assert "**Question:**" in log.reply and log.findings == []
    why = tutor.respond(session, "why?")
    assert "Error contacting glance server '10.0.0.8:9292'" in why.reply
    assert "inet 10.0.0.8/24" in why.reply


# --- nothing a student types can break the conversation --------------------------------------

from hypothesis import HealthCheck, given, settings, strategies as st  # noqa: E402


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.one_of(st.text(max_size=300), st.sampled_from(
    ["hint", "why", "solution", "1", "eth0", COMPUTE, NETWORK_NAT[:400], "root@x:~# ip route\n\x00"])),
    min_size=1, max_size=6))
def test_any_messages_get_a_reply(tutor, messages):
    session = tutor.start()
    for text in messages:
        reply = tutor.respond(session, text)
        assert reply.reply and "I could not use that" not in reply.reply


def test_output_pasted_without_a_prompt_is_held_until_the_student_names_its_node(tutor):
    session = tutor.start()
    tutor.respond(session, "why can't my VM ping google?")
    tutor.respond(session, COMPUTE)
    tutor.respond(session, NETWORK_BRIDGE)
    bare_routes = NETWORK_ROUTES.split("\n", 1)[1]          # no prompt line
    asked = tutor.respond(session, bare_routes)
    # both nodes seen so far have br100: the routes could be either's, so it asks
    assert asked.reply.startswith("Which node is this from")
    assert asked.known == tutor.respond(session, "hmm").known          # nothing was filed yet
    reply = tutor.respond(session, "network-node")
    assert "network-node's default route leaves by eth0 via 10.0.0.1" in reply.reply
    assert "tcpdump -n -i eth0 icmp" in reply.reply


def test_the_seeds_bonus_question_is_discussed(tutor):
    session = tutor.start()
    tutor.respond(session, "why can't my VM ping google?")
    tutor.respond(session, COMPUTE)
    reply = tutor.respond(session, "but then how does the VM resolve google's name?")
    assert "dnsmasq" in reply.reply and reply.findings == []
    assert "network node's bridge" in reply.reply                # and the route goes on


def test_a_correction_to_a_node_not_seen_yet_moves_the_paste_there(tutor):
    session = tutor.start()
    tutor.respond(session, "why can't my VM ping google?")
    tutor.respond(session, COMPUTE)
    tutor.respond(session, "from compute-1\n" + NETWORK_BRIDGE.split("\n", 1)[1])
    role_only = tutor.respond(session, "wait, that was still on the network node")
    assert role_only.reply.startswith("Which node is the network node?")
    moved = tutor.respond(session, "that was network-node")
    assert "moved what that paste showed to **network-node**" in moved.reply
    assert "tcpdump on network-node (br100) saw echo request from 10.99.0.2 to 173.194.113.145" in \
        [item["text"] for item in moved.known]
    assert "**Next: the network node's routing table.**" in moved.reply


def test_a_vm_s_own_output_never_makes_the_vm_the_network_node(tutor):
    session = tutor.start()
    tutor.respond(session, "why can't my VM ping google?")
    tutor.respond(session, COMPUTE)                        # asked next: the network node's bridge
    vm = (LABS / "seed-as-found" / "test-vm.txt").read_text().replace("root@test-vm", "ubuntu@test-vm")
    reply = tutor.respond(session, vm)
    assert "test-vm's default route leaves by eth0 via 10.99.0.1" in reply.reply
    assert "On the network node, run" in reply.reply      # still no node for that role
    assert "network node test-vm" not in reply.reply       # nor in the diagram
    routes = tutor.respond(session, NETWORK_ROUTES)
    assert "network-node's default route leaves by eth0 via 10.0.0.1" in routes.reply
