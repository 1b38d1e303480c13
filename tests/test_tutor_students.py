"""The tutor as real students use it (issue 10): scripted conversations through the JSON
API, written in other words and other lab names (the namespace captures in
tests/fixtures/labs: net01, gw01, ens3, 10.20.x) than the data the tutor was written
from. Each asserts what the student would see: which node a paste is filed under, which
causes are revealed or resolved, the hint level, the exit."""
import re
from pathlib import Path

import pytest

from web import create_app

LABS = Path(__file__).resolve().parent / "fixtures" / "labs"
FIXTURES = Path(__file__).resolve().parent / "fixtures"
SNAT, RETURN_ROUTE, FORWARD, MASQUERADE = ("fip-snat-wrong-interface", "fip-upstream-no-return-route",
                                           "fip-upstream-forward-blocked", "fip-upstream-no-masquerade")


def block(lab: str, node: str, command: str) -> str:
    """One command and its output, prompt included, from a real lab capture."""
    out, keep = [], False
    for line in (LABS / lab / f"{node}.txt").read_text().splitlines():
        if re.match(r"^\[?root@", line):
            keep = line.split("# ", 1)[1].startswith(command)
        if keep:
            out.append(line)
    assert out, f"{command!r} not in {lab}/{node}"
    return "\n".join(out) + "\n"


def output_of(paste: str) -> str:
    """The same paste without its prompt line."""
    return paste.split("\n", 1)[1]


class Student:
    def __init__(self, client):
        self.client = client
        self.session = client.post("/api/sessions").get_json()["session"]
        self.replies = []

    def says(self, text: str) -> dict:
        response = self.client.post(f"/api/sessions/{self.session}/messages", json={"text": text})
        assert response.status_code == 200, response.get_data(as_text=True)
        reply = response.get_json()
        reply["text"] = re.sub(r"<svg.*?</svg>", "", reply["reply"], flags=re.S)
        self.replies.append(reply)
        return reply

    def revealed(self) -> list[str]:
        return [f["cause"] for f in self.replies[-1]["findings"]]

    def known(self) -> list[str]:
        return [k["text"] for k in self.replies[-1]["known"]]


@pytest.fixture
def student(tmp_path):
    app = create_app({"DATABASE": str(tmp_path / "chat.db"), "TESTING": True})
    return Student(app.test_client())


A, B, C, D, HEALTHY = ("other-snat-wrong-interface", "other-gateway-no-return-route",
                       "other-gateway-forward-blocked", "other-gateway-no-masquerade", "other-healthy")


def test_prose_before_a_paste_names_its_node(student):
    student.says("hey, vm01 has no internet at all")
    reply = student.says("this is on cmp01:\n" + output_of(block(A, "cmp01", "tcpdump")))
    assert "tcpdump on cmp01 (br-fixed) saw echo request from 10.20.4.5" in reply["text"]
    assert "That's what I asked for." in reply["text"]


def test_a_bare_paste_is_held_until_the_student_says_whose_it_is(student):
    student.says("my instance cannot get out to the internet")
    student.says(block(A, "cmp01", "tcpdump"))
    student.says(block(A, "net01", "tcpdump"))
    asked = student.says(output_of(block(A, "net01", "iptables -L -t nat")))
    assert asked["text"].startswith("Which node is this from (cmp01, net01")
    assert not any("SNAT rule" in k for k in asked["known"])          # nothing filed yet
    filed = student.says("net01")
    assert "I read it as from **net01**" in filed["text"]
    assert any(k.startswith("net01 has a SNAT rule in nova-network-snat") for k in student.known())


def test_a_bare_paste_whose_addresses_name_its_node_is_filed_there(student):
    student.says("vm can't reach google")
    student.says(block(A, "net01", "ip addr"))
    reply = student.says(output_of(block(A, "net01", "ip route")))
    assert "net01's default route leaves by ens3 via 10.20.0.1" in reply["text"]


def test_a_listing_split_over_two_messages_is_joined(student):
    student.says("no connectivity from my vm to the outside world")
    listing = block(A, "net01", "iptables -L -t nat").split("\n")
    cut = listing.index("Chain nova-network-POSTROUTING (1 references)")
    first = student.says("\n".join(listing[:cut]))
    assert "does not show" in first["text"] and "nova-network-POSTROUTING" in first["text"]
    assert "net01 has a DNAT rule in nova-network-OUTPUT: from 0.0.0.0/0 to 198.51.100.77/32, to 10.20.4.5" \
        in student.known()
    second = student.says("\n".join(listing[cut:]))
    assert "net01 has a SNAT rule in nova-network-snat: from 10.20.4.0/22" in second["text"]
    assert "Which node is this from" not in second["text"]
    # the second half goes on with the first: both stay in what we know
    assert "net01 has a DNAT rule in nova-network-OUTPUT: from 0.0.0.0/0 to 198.51.100.77/32, to 10.20.4.5" \
        in student.known()


def test_a_correction_moves_the_facts(student):
    student.says("the vm can't ping out")
    student.says(block(A, "cmp01", "tcpdump"))
    student.says(block(A, "net01", "tcpdump"))
    wrong = student.says("from cmp01\n" + output_of(block(A, "net01", "ip route")))
    assert "cmp01's default route leaves by ens3" in wrong["text"]
    fixed = student.says("wait, that was net01")
    assert "moved what that paste showed to **net01**" in fixed["text"]
    assert "net01's default route leaves by ens3 via 10.20.0.1" in student.known()
    assert not any(k.startswith("cmp01's default route") for k in student.known())


def test_a_vm_prompt_never_becomes_a_node_role(student):
    student.says("my vm can't ping the internet")
    reply = student.says(block(A, "vm01", "ping"))
    assert "(**vm01**)" not in reply["text"]
    assert "On the compute node, run" in reply["text"]


def walk_to_the_snat_question(student):
    student.says("pings from my instance to the outside get no answer")
    for paste in (block(A, "cmp01", "tcpdump"), block(A, "net01", "tcpdump"),
                  block(A, "net01", "ip route")):
        student.says(paste)
    return student.says(block(A, "net01", "iptables -L -t nat"))


def test_swapped_interfaces_are_wrong_and_the_right_relation_is_right(student):
    question = walk_to_the_snat_question(student)
    assert "**Question:**" in question["text"]
    swapped = student.says("the snat rule wants ens3 but the default route uses ens4")
    assert swapped["findings"] == [] and "not each where the evidence puts it" in swapped["text"]
    right = student.says("packets only get SNAT when leaving via ens4, and the default route goes out ens3")
    assert right["text"].startswith("**Right.**") and student.revealed() == [SNAT]


def test_five_misses_escalate_without_repeating_then_i_give_up(student):
    walk_to_the_snat_question(student)
    answers = ["dns is broken", "the firewall", "no clue", "maybe the cable?", "the MTU"]
    replies = [student.says(text) for text in answers]
    texts = [r["text"] for r in replies]
    assert all(a != b for a, b in zip(texts, texts[1:]))             # never twice in a row
    assert [r["hint_level"] for r in replies][-1] >= 2                 # the ladder climbed by itself
    assert any("**solution**" in t for t in texts)                     # the answer is offered
    assert all(r["findings"] == [] for r in replies)
    gave_up = student.says("ok fine, I give up")
    assert student.revealed() == [SNAT] and "**Fix:**" in gave_up["text"]


@pytest.mark.parametrize("words", ["dunno", "honestly no idea", "alright, just tell me",
                                   "why would I need the routing table?"])
def test_intents_in_words_not_in_the_files(student, words):
    walk_to_the_snat_question(student)
    reply = student.says(words)
    assert "as a comment" not in reply["text"]
    if words.startswith("alright"):
        assert student.revealed() == [SNAT]
    elif words.startswith("why"):
        # the step the question names, explained; then back to the open question
        assert "tests one hypothesis: *the network node knows where to send packets" in reply["text"]
        assert "**Question:**" in reply["text"] and reply["findings"] == []
    else:
        assert reply["hint_level"] == 1 and reply["findings"] == []


def test_side_questions_are_answered_in_place_and_the_thread_kept(student):
    question = walk_to_the_snat_question(student)
    assert "**Question:**" in question["text"]
    dns = student.says("side question: how does the vm resolve names if it can't get out?")
    assert "dnsmasq" in dns["text"] and "**Question:**" in dns["text"]
    two = student.says("why does tcpdump show two packets for one ping on the gateway?")
    assert "same ping, seen twice" in two["text"] and "**Question:**" in two["text"]
    policy = student.says("if the FORWARD policy is ACCEPT, doesn't everything get through?")
    assert "first rule that matches" in policy["text"]
    assert all(r["findings"] == [] for r in student.replies)
    assert "cannot reach the internet" not in policy["text"]             # not re-classified


def test_i_already_fixed_it_skips_what_it_covers(student):
    student.says("instance has no outbound connectivity")
    reply = student.says("I already fixed the network node")
    assert "won't ask for" in reply["text"] and "network node's routing table" in reply["text"]
    assert "On the compute node, run" in reply["text"]
    after = student.says(block(A, "cmp01", "tcpdump"))
    assert "translated ping arriving on the gateway" in after["text"]


def test_four_causes_one_after_another_as_the_student_fixes_them(student):
    walk_to_the_snat_question(student)
    student.says("SNAT applies only out of ens4 while the default route uses ens3")
    assert student.revealed() == [SNAT]
    fixed = student.says("root@net01:~# sed -i 's/public_interface.*/public_interface=ens3/' /etc/nova/nova.conf\n"
                         "root@net01:~# service nova-network restart\n"
                         + block(B, "net01", "tcpdump") + block(B, "net01", "iptables -L -t nat"))
    assert "**Your fix worked.**" in fixed["text"] and "from 198.51.100.77" in fixed["text"]
    assert fixed["resolved"] == [SNAT]
    student.says(block(B, "gw01", "tcpdump -l -n -c 20 -i br-mgmt icmp"))
    question = student.says(block(B, "gw01", "ip route"))
    assert "**Question:** A reply to 198.51.100.77 arrives at gw01" in question["text"]
    other_node = student.says("net01 would send it out of wan0, and gw01 reaches net01 on br-mgmt")
    assert student.revealed() == [SNAT] and "not each where the evidence puts it" in other_node["text"]
    student.says("gw01 would send it out of wan0, but it reaches net01 on br-mgmt")
    assert student.revealed() == [SNAT, RETURN_ROUTE]
    forward = student.says("[root@gw01 ~]# ip route add 198.51.100.64/26 dev br-mgmt\n"
                           + block(C, "gw01", "ip route") + block(C, "gw01", "iptables -L FORWARD")
                           + block(C, "gw01", "sysctl"))
    assert forward["resolved"] == [SNAT, RETURN_ROUTE]
    assert "**Question:** Which node receives the packets from 198.51.100.77" in forward["text"]
    student.says("gw01 receives them but won't forward them")
    assert student.revealed() == [SNAT, RETURN_ROUTE, FORWARD]
    assert "ip_forward=1" not in student.replies[-1]["text"]          # shown = 1 already
    masq = student.says("[root@gw01 ~]# iptables -I FORWARD -s 198.51.100.64/26 -j ACCEPT\n"
                        + block(D, "gw01", "iptables -L FORWARD") + block(D, "gw01", "iptables -L -t nat")
                        # 198.51.100.64/26 is a public range: only the outside's own routes
                        # show that nothing beyond gw01 routes it back
                        + block(D, "ext-host", "ip route") + block(D, "ext-host", "ip addr"))
    assert "**Question:** The packets leave gw01 for the outside" in masq["text"]
    student.says("out of wan0, and it needs a masquerade rule")
    assert student.revealed() == [SNAT, RETURN_ROUTE, FORWARD, MASQUERADE]
    done = student.says("[root@gw01 ~]# iptables -t nat -A POSTROUTING -o wan0 -s 198.51.100.64/26 -j MASQUERADE\n"
                        + block(HEALTHY, "gw01", "iptables -L -t nat")
                        + block(HEALTHY, "gw01", "tcpdump -l -n -c 20 -i wan0 icmp"))
    assert done["resolved"] == [SNAT, RETURN_ROUTE, FORWARD, MASQUERADE]
    assert "**Your fix worked.**" in done["text"] and "from 192.0.2.2" in done["text"]
    # the symptom was said once, at the start
    assert sum("It sounds like this problem" in r["text"] for r in student.replies) == 1


def test_the_cinder_story_in_other_words(student):
    student.says("i try to make a volume out of an image and cinder says error")
    log = (FIXTURES / "oslo_log" / "y2014_cinder_api_glance_refused.out").read_text()
    first = student.says("root@vol01:~# tail -n 40 /var/log/cinder/cinder-api.log\n" + log)
    assert "could not reach glance at 10.0.0.8:9292" in first["text"] and first["findings"] == []
    own = (FIXTURES / "cinder" / "seed-volume-node-ip-addr.txt").read_text()
    question = student.says("here's ip addr from vol01\n" + output_of(own))
    assert "**Question:**" in question["text"]
    idk = student.says("no clue")
    assert idk["hint_level"] == 1 and idk["findings"] == []
    answer = student.says("cinder looks for glance on 10.0.0.8, which is vol01 itself, because "
                          "glance_api_servers was never set")
    assert student.revealed() == ["cinder-glance-endpoint"] and answer["text"].startswith("**Right.**")
    qemu = (Path(__file__).resolve().parent.parent / "rules" / "examples" / "seed-cinder-volume-qemu.log").read_text()
    after = student.says("root@vol01:~# sed -i 's/^#glance_api_servers.*/glance_api_servers=10.0.0.3:9292/' "
                         "/etc/cinder/cinder.conf\nroot@vol01:~# service cinder-api restart\n"
                         "root@vol01:~# service cinder-volume restart\n"
                         "root@vol01:~# tail -n 5 /var/log/cinder/cinder-volume.log\n" + qemu)
    # the restart makes cinder-api's older log lines stale, and no newer error follows:
    # the endpoint cause is fixed, said so, and the next cause of the story comes next
    assert after["resolved"] == ["cinder-glance-endpoint"]
    assert "**Your fix worked.** The evidence from vol01 no longer shows that" in after["text"]
    assert "**Question:** What does cinder on vol01 need to turn the qcow2 image" in after["text"]
    student.says("qemu-img isn't there, qemu-utils must be installed")
    assert student.revealed() == ["cinder-glance-endpoint", "cinder-qemu-img-missing"]
    assert sum("It sounds like this problem" in r["text"] for r in student.replies) == 1


def test_glance_api_stopped_is_found_from_the_status_already_pasted(student):
    student.says("creating a volume from an image fails")
    log = (FIXTURES / "oslo_log" / "cinder_api_icehouse_glance_refused.out").read_text()
    student.says("root@vol01:~# tail -n 40 /var/log/cinder/cinder-api.log\n" + log)
    student.says((FIXTURES / "cinder" / "other-vol01-ip-addr.txt").read_text())
    student.says("root@vol01:~# grep glance_api_servers /etc/cinder/cinder.conf\n"
                 "glance_api_servers = 192.0.2.5:9292\n")
    status = student.says("root@img01:~# service glance-api status\nglance-api stop/waiting\n")
    assert "glance-api is not running on img01" in status["text"] and "**Question:**" in status["text"]
    assert "service glance-api status" not in status["text"]             # already run
    named = student.says("glance-api is stopped on img01, that's the problem")
    assert "service-down" in student.revealed()


def test_an_unknown_problem_is_said_so_within_a_few_messages(student):
    first = student.says("my keyboard layout is wrong in horizon")
    assert "not sure which problem" in first["text"]
    second = student.says("none of those, it's the keyboard layout")
    assert "not something I can diagnose yet" in second["text"] and "instructor" in second["text"]


def test_a_paste_whose_diagnosis_fails_is_set_aside_and_the_session_goes_on(student, monkeypatch):
    import tutor.cache
    real = tutor.cache.diagnose

    def failing_on_gw01(evidence, rulebook=None):
        if any(f.get("node") == "gw01" for f in evidence.facts):
            raise ValueError("'198.51.100.70/33' does not appear to be an IPv4 network")
        return real(evidence, rulebook)

    monkeypatch.setattr(tutor.cache, "diagnose", failing_on_gw01)
    walk_to_the_snat_question(student)
    bad = student.says(block(B, "gw01", "ip addr"))
    assert bad["text"].startswith("I could not use that paste (ValueError:")
    assert not any("gw01" in k for k in student.known())
    hint = student.says("hint")
    assert hint["text"].startswith("**Hint 1 of 3:**")
    right = student.says("SNAT only applies on ens4 but the default route is ens3")
    assert student.revealed() == [SNAT] and right["text"].startswith("**Right.**")


def diagram_of(reply: dict) -> str:
    found = re.findall(r'<svg[^>]*aria-label="([^"]*)"', reply["reply"])
    assert found, "no diagram in the reply"
    return found[-1]


def test_the_diagram_follows_the_request_and_the_reply_through_a_fix(student):
    walk_to_the_snat_question(student)
    before = diagram_of(student.replies[-1])
    assert "network node net01: seen from 10.20.4.5" in before
    assert "outside: not looked yet; no reply (walk)" in before            # a private source leaves
    student.says("SNAT only applies out of ens4, while the default route leaves by ens3")
    student.says("root@net01:~# service nova-network restart\n" + block(B, "net01", "tcpdump")
                 + block(B, "net01", "iptables -L -t nat"))
    after = student.says(block(B, "gw01", "tcpdump -l -n -c 20 -i br-mgmt icmp")
                         + block(B, "gw01", "tcpdump -l -n -c 20 -i wan0 icmp"))
    picture = diagram_of(after)
    # the translated sources, each shown; the reply seen at the gateway and lost there
    assert "SNAT 10.20.4.5 → 198.51.100.77" in picture
    assert "gateway gw01: seen from 198.51.100.77, 192.0.2.2" in picture
    assert "reply lost here" in picture.split("gateway gw01")[1]
    assert "+1" not in after["reply"]


def test_nothing_given_away_about_the_cause_not_yet_asked(student):
    """Two faults at once on gw01 (no return route, FORWARD blocked): while the
    return-route question is open, nothing said draws the FORWARD conclusion."""
    student.says("pinging out from the vm fails")
    for paste in (block(C, "cmp01", "tcpdump"), block(C, "net01", "tcpdump"), block(C, "net01", "ip route"),
                  block(C, "net01", "iptables -L -t nat"), block(C, "gw01", "tcpdump -l -n -c 20 -i br-mgmt icmp"),
                  block(B, "gw01", "ip route"), block(C, "gw01", "ip addr"), block(C, "gw01", "iptables -L FORWARD")):
        question = student.says(paste)
    assert "**Question:** A reply to 198.51.100.77 arrives at gw01" in question["text"]
    why = student.says("why?")
    solution = student.says("show me the answer")
    before_next = solution["text"].split("**Question:**")[0]
    for text in (why["text"], before_next):
        assert "FORWARD" not in text and "does not forward" not in text
    assert student.revealed() == [RETURN_ROUTE]
    assert "How we know that gw01 has no route back" in before_next   # its own reasoning
    assert "they come into gw01 by br-mgmt" in before_next


def test_an_error_off_the_route_is_said_to_be_unknown_not_chased(student):
    """'No valid host was found' sounds like a failed boot; the scheduler's own log shows
    it is not the volume problem the tutor knows, and the tutor says so."""
    student.says("my instance goes to ERROR when I boot it: No valid host was found")
    log = (FIXTURES / "oslo_log" / "nova_conductor_no_valid_host.out").read_text()
    reply = student.says("root@ctl01:~# tail /var/log/nova/nova-conductor.log\n" + log)
    assert "No valid host was found" in reply["text"]
    assert "not the one I took it for" in reply["text"] and "instructor" in reply["text"]
    assert "cinder-api.log" not in reply["text"]
    hint = student.says("hint")
    assert "instructor" in hint["text"] and "cinder-api.log" not in hint["text"]


def test_the_thread_changes_only_when_the_student_says_it_is_another_problem(student):
    walk_to_the_snat_question(student)
    aside = student.says("creating volumes fails too btw")
    assert "It sounds like this problem" not in aside["text"]           # still the ping
    moved = student.says("ok thanks, another problem: creating a volume from an image fails")
    assert "It sounds like this problem: **Creating a volume (from an image) fails**" in moved["text"]
    assert "cinder-api.log" in moved["text"]


def test_a_refused_command_is_followed_to_the_socket_listing_that_decides_it(student):
    """ss -ltnp answers "does the service behind the endpoint run?" as its status would."""
    capture = (Path(__file__).resolve().parent.parent / "rules" / "examples" / "refused-keystone-ubuntu"
               / "controller.txt").read_text()
    pastes = {p.split("\n", 1)[0]: "root@controller:~# " + p for p in capture.split("root@controller:~# ") if p}
    assert "service <the service of that port> status" in student.says(
        "hey, nova list gives me connection refused on the controller??")["text"]
    student.says(pastes["nova list"])
    assert "That's what I asked for." in student.says(pastes["ss -ltnp"])["text"]
    # which node holds 10.0.0.11, the address the command was refused at
    addresses = student.says(pastes["ip addr show eth0"])
    assert "Which service is not running?" in addresses["text"] and addresses["findings"] == []
    answer = student.says("i think keystone is dead, nothing on 5000")
    assert [(f["cause"], f["status"], f["node"]) for f in answer["findings"]] == [
        ("service-down", "established", "controller")]
    assert "service keystone start" in answer["text"]


def test_a_filtered_port_is_taught_from_the_probes_and_the_instances_one_group(student):
    """nc timing out while ping answers, the instance's only group without tcp 22: the
    probe and nova show are steps of the route, and the cause is asked about, not told."""
    examples = Path(__file__).resolve().parent.parent / "rules" / "examples" / "sg-ssh-filtered-ubuntu"

    def pastes(node):
        text = (examples / f"{node}.txt").read_text()
        return {p.split("\n", 1)[0]: f"root@{node}:~# " + p for p in text.split(f"root@{node}:~# ") if p}
    gw01, ctl01 = pastes("gw01"), pastes("ctl01")
    student.says("ssh to my instance web-2 just hangs, ping works though")
    probe = student.says(gw01["nc -zv -w 2 198.51.100.24 22"])
    assert "You gave me what the connection attempt says before I asked for it" in probe["text"]
    student.says(gw01["ping -c 3 198.51.100.24"])
    student.says(ctl01["nova secgroup-list-rules default"])
    shown = student.says(ctl01["nova show web-2"])
    assert shown["findings"] == []
    assert "Which command lets the instances of default be reached on the port you need?" in shown["text"]
    answer = student.says("nova secgroup-add-rule default tcp 22 22 0.0.0.0/0")
    assert [(f["cause"], f["status"], f["node"]) for f in answer["findings"]] == [
        ("secgroup-port-closed", "established", "ctl01")]
