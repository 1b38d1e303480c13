"""The class's HTML reports in a real browser (Debian's chromium, headless, driven by
Playwright, as tests/test_browser.py does), opened from the folder as a teacher who got
it by mail would: the labs x causes table sorts by any column, every lab's link opens
its page and the way back works, nothing is fetched from the network, and names from
the class folder render as text.

Never ``playwright install``: the browser is the system's /usr/bin/chromium.
"""
import json
import re
import shutil
from pathlib import Path

import pytest

from app import main
from batch.labs import natural_key
from tests.test_browser import CHROMIUM, CHROMIUM_ARGS

sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright (see requirements.txt)")

LABS = Path(__file__).resolve().parent / "fixtures" / "class" / "labs"
EXPECTED = json.loads((LABS.parent / "expected.json").read_text())
XSS_NAME = "<img src=x onerror=window.__xss=1>"


@pytest.fixture(scope="module")
def reports(tmp_path_factory):
    root = tmp_path_factory.mktemp("batch-html")
    classroom = root / "class"
    shutil.copytree(LABS, classroom)
    shutil.copytree(LABS / "lab-06", classroom / XSS_NAME)
    out = root / "report"
    code = main(["batch", "--class", str(classroom), "--format", "html", "--out", str(out),
                 "--workers", "2", "--db", str(root / "h.db")])
    assert code == 1
    return out


@pytest.fixture
def page(tmp_path):
    """A page whose every request is logged; anything not from a file is refused."""
    playwright = sync_api.sync_playwright().start()
    context = playwright.chromium.launch_persistent_context(
        str(tmp_path / "profile"), executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True,
        viewport={"width": 1366, "height": 900})
    requests, refused, errors = [], [], []
    context.route("**/*", lambda route: (refused.append(route.request.url), route.abort())
                  if not route.request.url.startswith("file://") else route.continue_())
    page = context.new_page()
    page.on("request", lambda request: requests.append(request.url))
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.requests, page.refused, page.errors = requests, refused, errors
    yield page
    context.close()
    playwright.stop()


def lab_column(page) -> list[str]:
    return page.locator("#labs tbody tr td:first-child").all_inner_texts()


def sort_by(page, column: str) -> None:
    page.locator("#labs thead th button", has_text=column).first.click()


def test_the_table_sorts_by_any_column(reports, page):
    page.goto((reports / "index.html").as_uri())
    names = sorted([*EXPECTED, XSS_NAME], key=natural_key)
    assert lab_column(page) == names                                    # name order to start

    with_masquerade = [n for n in names if n in EXPECTED and "fip-upstream-no-masquerade" in EXPECTED[n]["causes"]]
    sort_by(page, "fip-upstream-no-masquerade")
    assert page.locator("#labs thead th[aria-sort=ascending]").inner_text() == "fip-upstream-no-masquerade"
    assert lab_column(page)[:len(with_masquerade)] == with_masquerade   # labs with it first
    sort_by(page, "fip-upstream-no-masquerade")
    assert lab_column(page)[-len(with_masquerade):] == with_masquerade  # last, ties kept in order

    sort_by(page, "Causes")
    counts = [int(c) for c in page.locator("#labs tbody tr td:nth-child(3)").all_inner_texts()]
    assert counts == sorted(counts) and counts[0] == 0
    sort_by(page, "Causes")
    most = [n for n in names if n in EXPECTED and len(EXPECTED[n]["causes"]) == 4]
    assert sorted(lab_column(page)[:len(most)]) == most

    sort_by(page, "Lab")
    assert lab_column(page) == names
    sort_by(page, "Lab")
    assert lab_column(page) == names[::-1]
    assert page.errors == [] and page.refused == []


def test_every_lab_link_opens_its_page_and_leads_back(reports, page):
    page.goto((reports / "index.html").as_uri())
    links = page.locator("#labs tbody a")
    assert links.count() == len(EXPECTED) + 1
    for index in range(links.count()):
        href = links.nth(index).get_attribute("href")
        assert (reports / href).is_file(), href
    page.locator("#labs tbody a", has_text="lab-09").click()
    page.wait_for_url("**/lab-09.html")
    # 198: the probes' own output (ping, nc) is read too since issue 11
    assert page.locator("h1").inner_text() == "lab-09: 4 root causes found (198 facts read)"
    assert page.locator("section.finding").count() == 4
    walk = page.locator("h3.walk").first.inner_text()
    assert walk.startswith("Packet walk (vm-to-outside): icmp")
    assert page.locator("ol.walk li").count() > 5
    page.locator("p.walk-again a").first.click()                           # the walk shown once
    assert page.evaluate("location.hash") == "#finding-1"
    page.locator("text=← all labs").click()
    page.wait_for_url("**/index.html")
    assert page.locator("#labs tbody tr").count() == len(EXPECTED) + 1
    assert page.errors == [] and page.refused == []


def test_nothing_is_fetched_from_the_network(reports, page):
    for name in ["index.html", "lab-09.html", "lab-01.html"]:
        page.goto((reports / name).as_uri())
        page.wait_for_load_state("load")
    assert page.requests and all(url.startswith("file://") for url in page.requests)
    assert page.refused == []
    for html in reports.glob("*.html"):
        text = html.read_text()
        assert "<link" not in text and "@import" not in text and "url(" not in text
        for target in re.findall(r"""<[^>]+\s(?:src|href)=['"]([^'"]*)""", text):
            assert target.startswith("#") or (reports / target).is_file(), (html.name, target)


def test_the_bar_chart_shows_each_cause_with_its_count(reports, page):
    page.goto((reports / "index.html").as_uri())
    bars = page.locator("svg.chart g.bar")
    counts: dict[str, int] = {}
    for lab in EXPECTED.values():
        for cause in lab["causes"]:
            counts[cause] = counts.get(cause, 0) + 1
    counts["fip-snat-wrong-interface"] += 1                               # the copied lab-06
    assert bars.count() == len(counts)
    shown = {bars.nth(i).locator("title").text_content() for i in range(bars.count())}
    assert shown == {f"{cause}: {n} labs" for cause, n in counts.items()}
    widths = [float(bars.nth(i).locator("rect").get_attribute("width")) for i in range(bars.count())]
    assert widths == sorted(widths, reverse=True)


def test_a_lab_named_like_markup_is_shown_as_text(reports, page):
    page.goto((reports / "index.html").as_uri())
    link = page.locator("#labs tbody a", has_text=XSS_NAME)
    assert link.count() == 1
    link.click()
    page.wait_for_load_state("load")
    assert page.locator("h1").inner_text().startswith(XSS_NAME)
    assert page.evaluate("window.__xss") is None
    assert page.errors == []
