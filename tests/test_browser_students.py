"""Issue 10, item 7 in the real browser: each student behaviour of
tests/test_tutor_students.py, played on the page (typed into the chat box, pasted from
the clipboard, the Hint/Why/Solution buttons clicked) and judged by what the student
sees: the reply, the "What we know" and "Found" panels, the hint level, the diagram.

The conversations use the namespace-lab captures of tests/fixtures/labs (cmp01, net01,
gw01, ens3/ens4, 10.20.x), not the seed the tutor's data was written from. One chromium
for the module, a fresh page (and conversation) per test.
"""
from pathlib import Path

import pytest

from tests.test_browser import CHROMIUM, CHROMIUM_ARGS, server  # noqa: F401  (server is a fixture)
from tests.test_tutor_students import A, B, FIXTURES, block, output_of

sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright (see requirements.txt)")

SNAT, RETURN_ROUTE = "fip-snat-wrong-interface", "fip-upstream-no-return-route"


@pytest.fixture(scope="module")
def browser():
    playwright = sync_api.sync_playwright().start()
    browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
    yield browser
    browser.close()
    playwright.stop()


@pytest.fixture
def page(browser, server):  # noqa: F811
    """A page of its own (own storage, so its own conversation) in the module's chromium."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.grant_permissions(["clipboard-read", "clipboard-write"])
    page = context.new_page()
    dialogs = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.goto(server)
    page.locator(".message.tutor").first.wait_for()
    yield page
    assert dialogs == [], dialogs
    context.close()


def _reply_after(page, send):
    before = page.locator(".message.tutor").count()
    send()
    reply = page.locator(".message.tutor").nth(before)
    reply.wait_for()
    return reply.locator(".tutor-text")                  # what the tutor said, without its label


def types(page, text: str):
    """Typed key by key, sent with Enter, as a student writes a sentence."""
    def send():
        page.click("#text")
        page.keyboard.type(text)
        page.keyboard.press("Enter")
    return _reply_after(page, send)


def pastes(page, text: str):
    """Put on the clipboard and pasted with Ctrl+V (lines and all), then sent."""
    def send():
        page.fill("#text", "")
        page.evaluate("text => navigator.clipboard.writeText(text)", text)
        page.click("#text")
        page.keyboard.press("Control+V")
        assert page.input_value("#text") == text          # the paste arrived whole in the box
        page.click("#send")
    return _reply_after(page, send)


def presses(page, word: str):
    return _reply_after(page, lambda: page.click(f"button[data-say={word}]"))


def known(page) -> str:
    return page.locator("#known").inner_text()


def found(page) -> list[str]:
    return page.locator("#found li").all_inner_texts()


def walk_to_the_snat_question(page):
    types(page, "pings from my instance to the outside get no answer")
    for paste in (block(A, "cmp01", "tcpdump"), block(A, "net01", "tcpdump"), block(A, "net01", "ip route")):
        pastes(page, paste)
    question = pastes(page, block(A, "net01", "iptables -L -t nat"))
    assert "Question:" in question.inner_text()
    return question


def test_a_listing_split_over_two_pastes_is_joined(page):
    types(page, "no connectivity from my vm to the outside world")
    listing = block(A, "net01", "iptables -L -t nat").split("\n")
    cut = listing.index("Chain nova-network-POSTROUTING (1 references)")
    first = pastes(page, "\n".join(listing[:cut]))
    assert "does not show" in first.inner_text() and "nova-network-POSTROUTING" in first.inner_text()
    second = pastes(page, "\n".join(listing[cut:]))
    assert "net01 has a SNAT rule in nova-network-snat: from 10.20.4.0/22" in second.inner_text()
    assert "Which node is this from" not in second.inner_text()
    assert "net01 has a DNAT rule in nova-network-OUTPUT: from 0.0.0.0/0 to 198.51.100.77/32, to 10.20.4.5" \
        in known(page)
    assert "net01 has a SNAT rule in nova-network-snat" in known(page)


def test_prose_before_a_paste_names_its_node(page):
    types(page, "hey, vm01 has no internet at all")
    reply = pastes(page, "this is on cmp01:\n" + output_of(block(A, "cmp01", "tcpdump")))
    assert "tcpdump on cmp01 (br-fixed) saw echo request from 10.20.4.5" in reply.inner_text()
    assert "as a comment" not in reply.inner_text()
    assert "cmp01" in known(page)


def test_a_bare_paste_is_held_until_the_student_names_its_node(page):
    types(page, "my instance cannot get out to the internet")
    pastes(page, block(A, "cmp01", "tcpdump"))
    pastes(page, block(A, "net01", "tcpdump"))
    asked = pastes(page, output_of(block(A, "net01", "iptables -L -t nat")))
    assert asked.inner_text().startswith("Which node is this from (cmp01, net01, or another)?")
    assert "SNAT rule" not in known(page)                                  # nothing filed yet
    filed = types(page, "net01")
    assert "I read it as from net01" in filed.inner_text()
    assert "net01 has a SNAT rule in nova-network-snat" in known(page)


def test_a_correction_moves_the_facts_in_what_we_know(page):
    types(page, "the vm can't ping out")
    pastes(page, block(A, "cmp01", "tcpdump"))
    pastes(page, block(A, "net01", "tcpdump"))
    wrong = pastes(page, "from cmp01\n" + output_of(block(A, "net01", "ip route")))
    assert "cmp01's default route leaves by ens3" in wrong.inner_text()
    assert "cmp01's default route" in known(page)
    fixed = types(page, "wait, that was net01")
    assert "moved what that paste showed to net01" in fixed.inner_text()
    assert "net01's default route leaves by ens3 via 10.20.0.1" in known(page)
    assert "cmp01's default route" not in known(page)


def test_a_keyword_stuffed_wrong_answer_is_not_accepted(page):
    walk_to_the_snat_question(page)
    swapped = types(page, "the snat rule wants ens3 but the default route uses ens4")
    assert "not each where the evidence puts it" in swapped.inner_text()
    assert "Right." not in swapped.inner_text() and found(page) == []
    right = types(page, "packets only get SNAT when leaving via ens4, and the default route goes out ens3")
    assert right.inner_text().startswith("Right.")
    page.locator("#found li").first.wait_for()
    assert SNAT in page.locator("#found").inner_text()


def test_five_wrong_answers_climb_the_hints_then_i_give_up(page):
    walk_to_the_snat_question(page)
    texts = [types(page, text).inner_text()
             for text in ("dns is broken", "the firewall", "no clue", "maybe the cable?", "the MTU")]
    assert all(a != b for a, b in zip(texts, texts[1:]))                  # never the same twice in a row
    assert any("Hint 1 of 3" in t for t in texts) and any("Hint 2 of 3" in t for t in texts)
    assert any("solution" in t for t in texts[2:])                       # the answer is offered
    assert found(page) == []
    gave_up = types(page, "ok fine, I give up")
    assert "Fix:" in gave_up.inner_text()
    assert SNAT in page.locator("#found").inner_text()


def test_the_buttons_climb_the_ladder_and_explain(page):
    walk_to_the_snat_question(page)
    assert "Hint 1 of 3" in presses(page, "hint").inner_text()
    assert "Hint 2 of 3" in presses(page, "hint").inner_text()
    why = presses(page, "why")
    assert "The answer is in these lines" in why.inner_text() and found(page) == []
    solution = presses(page, "solution")
    assert "public_interface=ens3" in solution.inner_text()
    assert SNAT in page.locator("#found").inner_text()


def test_side_questions_are_answered_and_the_question_stays_open(page):
    walk_to_the_snat_question(page)
    dns = types(page, "side question: how does the vm resolve names if it can't get out?")
    assert "dnsmasq" in dns.inner_text() and "Question:" in dns.inner_text()
    two = types(page, "why does tcpdump show two packets for one ping on the gateway?")
    assert "same ping, seen twice" in two.inner_text() and "Question:" in two.inner_text()
    assert "It sounds like this problem" not in two.inner_text()         # not re-classified
    policy = types(page, "if the FORWARD policy is ACCEPT, doesn't everything get through?")
    assert "first rule that matches" in policy.inner_text()
    assert "cannot reach the internet" not in policy.inner_text()
    assert found(page) == []


def test_i_already_fixed_it_skips_the_steps_it_covers(page):
    types(page, "instance has no outbound connectivity")
    reply = types(page, "I already fixed the network node")
    assert "won't ask for" in reply.inner_text() and "network node's routing table" in reply.inner_text()
    assert "On the compute node, run" in reply.inner_text()
    after = pastes(page, block(A, "cmp01", "tcpdump"))
    assert "translated ping arriving on the gateway" in after.inner_text()


def test_a_fix_then_new_evidence_marks_the_cause_fixed_and_redraws_the_diagram(page):
    walk_to_the_snat_question(page)
    before = page.locator("figure.diagram svg").last.get_attribute("aria-label")
    assert "network node net01: seen from 10.20.4.5" in before
    types(page, "SNAT only applies out of ens4, while the default route leaves by ens3")
    page.locator("#found li").first.wait_for()
    fixed = pastes(page, "root@net01:~# sed -i 's/public_interface.*/public_interface=ens3/' "
                   "/etc/nova/nova.conf\nroot@net01:~# service nova-network restart\n"
                   + block(B, "net01", "tcpdump") + block(B, "net01", "iptables -L -t nat"))
    assert "Your fix worked." in fixed.inner_text() and "from 198.51.100.77" in fixed.inner_text()
    resolved = page.locator("#found li.resolved")
    assert resolved.count() == 1 and SNAT in resolved.inner_text()
    assert resolved.locator(".badge").inner_text() == "fixed"
    gateway = pastes(page, block(B, "gw01", "tcpdump -l -n -c 20 -i br-mgmt icmp")
                     + block(B, "gw01", "tcpdump -l -n -c 20 -i wan0 icmp"))
    diagram = gateway.locator("figure.diagram svg")
    after = diagram.get_attribute("aria-label")
    assert after != before
    assert "SNAT 10.20.4.5 → 198.51.100.77" in after
    assert "reply lost here" in after.split("gateway gw01")[1]
    assert "reply lost here" in diagram.inner_html()                    # drawn, not only described
    question = pastes(page, block(B, "gw01", "ip route"))                # on to the next cause, unasked
    assert "Question: A reply to 198.51.100.77 arrives at gw01" in question.inner_text()
    types(page, "gw01 would send it out of wan0, but it reaches net01 on br-mgmt")
    page.wait_for_function("() => document.querySelectorAll('#found li').length === 2")
    assert RETURN_ROUTE in page.locator("#found li:not(.resolved)").inner_text()


def test_an_unknown_symptom_gets_the_honest_exit(page):
    first = types(page, "my keyboard layout is wrong in horizon")
    assert "not sure which problem" in first.inner_text()
    second = types(page, "none of those, it's the keyboard layout")
    assert "not something I can diagnose yet" in second.inner_text()
    assert "instructor" in second.inner_text()


def test_glance_api_stopped_is_found_from_the_status_already_pasted(page):
    types(page, "creating a volume from an image fails")
    log = (FIXTURES / "oslo_log" / "cinder_api_icehouse_glance_refused.out").read_text()
    pastes(page, "root@vol01:~# tail -n 40 /var/log/cinder/cinder-api.log\n" + log)
    pastes(page, (FIXTURES / "cinder" / "other-vol01-ip-addr.txt").read_text())
    pastes(page, "root@vol01:~# grep glance_api_servers /etc/cinder/cinder.conf\n"
           "glance_api_servers = 192.0.2.5:9292\n")
    status = pastes(page, "root@img01:~# service glance-api status\nglance-api stop/waiting\n")
    assert "glance-api is not running on img01" in status.inner_text()
    assert "service glance-api status" not in status.inner_text()        # already run
    assert found(page) == []                                              # asked, not told
    types(page, "glance-api is stopped on img01, that's the problem")
    assert found(page) == ["glance-api is not running on img01\nservice-down"]   # title, then its id
