"""The chat in a real browser: Debian's chromium, headless, driven by Playwright, against
the app served by waitress on 127.0.0.1. A student asks the seed's question, pastes the
seed's outputs as asked, climbs the hints, sees the diagram, gets the solution, reloads
and finds the conversation; XSS payloads render as text.

Never ``playwright install``: the browser is the system's /usr/bin/chromium.
"""
import os
import socket
import threading

import pytest

from tests.test_tutor import SEED_PATH

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]

if not os.path.exists(CHROMIUM):
    pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium, or make system-packages as root)",
                allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright (see requirements.txt)")

XSS_PAYLOADS = [
    "<script>window.__xss = 1</script>",
    "<img src=x onerror=\"window.__xss = 1\">",
    "<svg onload=\"window.__xss = 1\"></svg>",
    "\"><iframe src=\"javascript:window.__xss = 1\"></iframe>",
    "[click me](javascript:window.__xss=1)",
    "<a href=\"javascript:window.__xss=1\">x</a>",
    "`<b>bold</b>` **<i>x</i>**",
    "2014-08-28 16:22:33.781 3966 ERROR cinder.image.glance [req-1 - - - - -] "
    "<img src=x onerror=\"window.__xss = 1\"> [x](javascript:window.__xss=1)",
]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    from waitress import create_server
    from web.server import build
    database = tmp_path_factory.mktemp("browser") / "browser.db"
    port = _free_port()
    app = build(str(database))
    httpd = create_server(app, host="127.0.0.1", port=port, threads=4)
    thread = threading.Thread(target=httpd.run, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{port}/"
    httpd.close()


@pytest.fixture
def browser_for(tmp_path):
    """A fresh chromium with its own user-data-dir, per viewport."""
    contexts = []
    playwright = sync_api.sync_playwright().start()

    def launch(width=1366, height=900, mobile=False):
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path / f"profile-{len(contexts)}"), executable_path=CHROMIUM, args=CHROMIUM_ARGS,
            headless=True, viewport={"width": width, "height": height}, is_mobile=mobile)
        contexts.append(context)
        return context

    yield launch
    for context in contexts:
        context.close()
    playwright.stop()


def tutor_count(page) -> int:
    return page.locator(".message.tutor").count()


def say(page, text: str):
    before = tutor_count(page)
    page.fill("#text", text)
    page.click("#send")
    page.locator(".message.tutor").nth(before).wait_for()
    return page.locator(".message.tutor").nth(before)


def press(page, word: str):
    before = tutor_count(page)
    page.click(f"button[data-say={word}]")
    page.locator(".message.tutor").nth(before).wait_for()
    return page.locator(".message.tutor").nth(before)


def test_a_student_is_led_to_the_cause(server, browser_for, tmp_path):
    context = browser_for()
    page = context.new_page()
    dialogs = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.goto(server)
    page.locator(".message.tutor").first.wait_for()

    first = say(page, "why can't my VM ping google?")
    assert "tcpdump" in first.inner_text() and "compute node" in first.inner_text()
    assert first.locator("pre code").count() >= 1                   # the command, in a code block

    for paste in SEED_PATH:
        reply = say(page, paste)
        # never told before answering or asking
        assert page.locator("#found li").count() == 0
        assert "public_interface" not in page.locator("#messages").inner_text()
    assert "Question:" in reply.inner_text()
    assert page.locator("#known li").count() >= 5                    # what we know, with evidence
    assert "default via 10.0.0.1 dev eth0" in page.locator("#known").inner_text()

    diagram = page.locator("figure.diagram svg").last
    assert diagram.count() == 1
    assert "still from 10.99.0.2" in diagram.inner_html()
    page.screenshot(path=str(tmp_path / "laptop-question.png"), full_page=False)

    hint1 = press(page, "hint")
    assert "Hint 1 of 3" in hint1.inner_text()
    hint2 = press(page, "hint")
    assert "Hint 2 of 3" in hint2.inner_text()
    assert page.locator("#found li").count() == 0
    why = press(page, "why")
    assert "The answer is in these lines" in why.inner_text()

    solution = press(page, "solution")
    assert "public_interface=eth0" in solution.inner_text()
    assert "fip-snat-wrong-interface" in page.locator("#found").inner_text()
    messages = page.locator(".message").count()

    page.reload()
    page.locator(".message.tutor").nth(tutor_count(page) - 1).wait_for()
    page.locator("#found li").first.wait_for()
    assert page.locator(".message").count() == messages
    assert "fip-snat-wrong-interface" in page.locator("#found").inner_text()
    assert dialogs == []

    # the same conversation on a phone
    phone = browser_for(390, 844, mobile=True).new_page()
    phone.goto(page.url)
    phone.locator(".message.tutor").nth(0).wait_for()
    phone.locator("#found li").first.wait_for()
    assert phone.locator(".message").count() == messages
    width = phone.evaluate("() => document.documentElement.scrollWidth")
    assert width <= 390 + 1                                           # nothing wider than the phone
    phone.screenshot(path=str(tmp_path / "phone.png"))


def test_xss_payloads_render_as_text(server, browser_for):
    page = browser_for().new_page()
    dialogs = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.goto(server)
    page.locator(".message.tutor").first.wait_for()
    for payload in XSS_PAYLOADS:
        say(page, payload)
        shown = page.locator(".message.student pre").last.text_content()
        assert shown == payload
    assert page.evaluate("() => window.__xss === undefined")
    assert dialogs == []
    messages = page.locator("#messages")
    assert messages.locator("script, iframe, img").count() == 0
    assert messages.locator("a[href^='javascript']").count() == 0
    assert messages.locator(".message.tutor svg[onload], .message.student svg").count() == 0
    # after a reload, from the database, still text
    page.reload()
    page.locator(".message.student").nth(len(XSS_PAYLOADS) - 1).wait_for()
    assert page.locator("#messages").locator("script, iframe, img").count() == 0
    assert page.evaluate("() => window.__xss === undefined")


def test_a_paste_too_large_gets_a_clear_message(server, browser_for):
    page = browser_for().new_page()
    page.goto(server)
    page.locator(".message.tutor").first.wait_for()
    page.fill("#text", "x" * 1_000_001)
    page.click("#send")
    assert "larger than 1 MB" in page.locator("#status").inner_text()
    reply = say(page, "why can't my VM ping google?")               # nothing else broken
    assert "tcpdump" in reply.inner_text()


def test_a_file_upload_is_read_as_evidence(server, browser_for, tmp_path):
    from tests.test_tutor import COMPUTE
    capture = tmp_path / "compute-capture.txt"
    capture.write_text(COMPUTE)
    page = browser_for().new_page()
    page.goto(server)
    page.locator(".message.tutor").first.wait_for()
    say(page, "why can't my VM ping google?")
    before = tutor_count(page)
    page.set_input_files("#file", str(capture))
    page.locator(".message.tutor").nth(before).wait_for()
    reply = page.locator(".message.tutor").nth(before).inner_text()
    assert "tcpdump on compute-1 (br100) saw echo request from 10.99.0.2" in reply
    assert "compute-1" in page.locator("#known").inner_text()


def test_a_student_on_a_phone_fixes_cause_after_cause_and_sees_the_reply_s_fate(server, browser_for, tmp_path):
    """At 400 px: prose before a paste, a bare paste whose node the tutor asks for, a
    swapped answer, the fix acknowledged and marked in the Found panel, the diagram
    showing where the reply is lost, legible (scaled to the page, nothing clipped)."""
    from tests.test_tutor_students import A, B, block, output_of
    page = browser_for(400, 860, mobile=True).new_page()
    page.goto(server)
    page.locator(".message.tutor").first.wait_for()
    say(page, "my vm01 can't reach anything outside")
    prose = say(page, "this is on cmp01:\n" + output_of(block(A, "cmp01", "tcpdump")))
    assert "tcpdump on cmp01 (br-fixed) saw echo request from 10.20.4.5" in prose.inner_text()
    say(page, block(A, "net01", "tcpdump"))
    asked = say(page, output_of(block(A, "net01", "ip route")))
    assert "Which node is this from" in asked.inner_text()
    say(page, "net01")
    question = say(page, block(A, "net01", "iptables -L -t nat"))
    assert "Question:" in question.inner_text()
    swapped = say(page, "the snat rule wants ens3 but the default route uses ens4")
    assert "not each where the evidence puts it" in swapped.inner_text()
    assert page.locator("#found li").count() == 0
    say(page, "SNAT only applies out of ens4, while the default route leaves by ens3")
    page.locator("#found li").first.wait_for()
    fixed = say(page, "root@net01:~# service nova-network restart\n" + block(B, "net01", "tcpdump")
                + block(B, "net01", "iptables -L -t nat"))
    assert "Your fix worked." in fixed.inner_text()
    assert page.locator("#found li.resolved .badge").inner_text() == "fixed"
    gateway = say(page, block(B, "gw01", "tcpdump -l -n -c 20 -i br-mgmt icmp")
                  + block(B, "gw01", "tcpdump -l -n -c 20 -i wan0 icmp"))
    diagram = gateway.locator("figure.diagram svg")
    assert "reply lost here" in diagram.inner_html() and "198.51.100.77" in diagram.inner_html()
    box = diagram.bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= 400 + 1            # scaled, not clipped
    font = diagram.evaluate("svg => svg.getBoundingClientRect().width / svg.viewBox.baseVal.width")
    assert font * 12 >= 10                                                # the smallest text stays >= 10 px
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 400 + 1
    page.evaluate("() => { document.querySelector('.composer').style.position = 'static'; }")  # not over it
    diagram.scroll_into_view_if_needed()
    diagram.screenshot(path=str(tmp_path / "phone-diagram.png"))
    if os.environ.get("STACKDOC_SCREENSHOTS"):
        diagram.screenshot(path=os.path.join(os.environ["STACKDOC_SCREENSHOTS"], "phone-diagram.png"))


def test_students_who_are_stuck_or_off_the_map_get_an_exit(server, browser_for):
    """A student who misses five times and gives up gets the cause; a problem the
    knowledge does not cover is said to be beyond it; glance-api stopped is found from
    the status the student pasted."""
    from pathlib import Path
    from tests.test_tutor_students import A, block
    page = browser_for().new_page()
    page.goto(server)
    page.locator(".message.tutor").first.wait_for()
    say(page, "pings from my instance to the outside get no answer")
    for paste in (block(A, "cmp01", "tcpdump"), block(A, "net01", "tcpdump"), block(A, "net01", "ip route")):
        say(page, paste)
    assert "Question:" in say(page, block(A, "net01", "iptables -L -t nat")).inner_text()
    texts = [say(page, text).inner_text() for text in
             ("dns", "the firewall", "dunno", "maybe the cable?", "mtu")]
    assert all(a != b for a, b in zip(texts, texts[1:]))
    assert any("Hint 2 of 3" in t for t in texts) and page.locator("#found li").count() == 0
    say(page, "ok I give up")
    page.locator("#found li").first.wait_for()
    assert "fip-snat-wrong-interface" in page.locator("#found").inner_text()

    page.click("#new-session")
    page.locator(".message.tutor").first.wait_for()
    page.wait_for_function("() => document.querySelectorAll('.message').length === 1")
    say(page, "horizon shows my keyboard layout wrong")
    unknown = say(page, "none of them")
    assert "not something I can diagnose yet" in unknown.inner_text()

    page.click("#new-session")
    page.wait_for_function("() => document.querySelectorAll('.message').length === 1")
    fixtures = Path(__file__).resolve().parent / "fixtures"
    say(page, "creating a volume from an image fails")
    say(page, "root@vol01:~# tail -n 40 /var/log/cinder/cinder-api.log\n"
        + (fixtures / "oslo_log" / "cinder_api_icehouse_glance_refused.out").read_text())
    say(page, (fixtures / "cinder" / "other-vol01-ip-addr.txt").read_text())
    say(page, "root@vol01:~# grep glance_api_servers /etc/cinder/cinder.conf\nglance_api_servers = 192.0.2.5:9292\n")
    status = say(page, "root@img01:~# service glance-api status\nglance-api stop/waiting\n")
    assert "glance-api is not running on img01" in status.inner_text()
    assert "Question:" in status.inner_text()
