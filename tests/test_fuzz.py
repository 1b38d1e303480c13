"""The fuzzing harness that found issue 9's crashes, kept as a bounded property suite.

Each parser reads its own real fixtures with one address, prefix or port made invalid
(an octet over 255, a prefix over 32 or 128, a port over 65535 ...): the reading never
raises, no fact holds a value the kernel would refuse, and the record that held the
value becomes an ``unparsed`` entry naming its line. Random text and shuffled real
lines never break the transcript reader either.

CI runs the ``ci`` profile (a few hundred examples, well under a minute);
``make fuzz`` runs the ``fuzz`` profile (HYPOTHESIS_PROFILE=fuzz), 20,000 per property
(a few minutes).
"""
import ipaddress
import json
import os
import re
from collections import Counter

from hypothesis import HealthCheck, given, settings, strategies as st

from grammar import kinds
from grammar.redact import redact
from grammar.transcript import read_transcript
from tests.fixture_pairs import FIXTURES

settings.register_profile("ci", max_examples=60, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("fuzz", max_examples=20000, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

NETWORK_KINDS = ("ip_addr", "ip_route", "route_n", "ifconfig", "iptables_list",
                 "iptables_save", "tcpdump")
_IPV4 = re.compile(r"(?<![\w.:])(\d{1,3}(?:\.\d{1,3}){3})(?:/(\d{1,2}))?(?![\w.])")
_PORT = re.compile(r"(?:dpts?:|spts?:|--dport |--sport |--to-ports? |to:[\d.]+:|\.)(\d{2,5})(?=[\s:,]|$)")


def _fixture_texts(kind):
    cases = []
    for out in sorted((FIXTURES / kind).glob("*.out")):
        spec = out.with_suffix(".json")
        command = json.loads(spec.read_text()).get("command", "") if spec.exists() else ""
        cases.append((out.name, out.read_text(errors="replace"), command))
    return cases


CASES = [(kind, *case) for kind in NETWORK_KINDS for case in _fixture_texts(kind)]

bad_octet = st.integers(256, 99999).map(str)
bad_prefix = st.sampled_from([33, 40, 64, 99, 129, 999]).map(str)
bad_port = st.one_of(st.integers(65536, 10**12), st.just(10**30)).map(str)


def _valid(fact) -> str | None:
    """The test's own check, from the standard library, of what a fact may hold."""
    for field in ("address", "via", "broadcast", "peer", "to_address"):
        value = fact.get(field)
        if isinstance(value, str) and re.fullmatch(r"[\d.]+|[\da-fA-F:]+:[\da-fA-F:.]*", value):
            try:
                ipaddress.ip_address(value)
            except ValueError:
                return f"{field}={value}"
    for field in ("cidr", "destination", "source"):
        value = fact.get(field)
        if isinstance(value, str) and re.fullmatch(r"!?[\d.]+/\d+|!?[\da-fA-F:]+/\d+", value):
            try:
                ipaddress.ip_interface(value.lstrip("!"))
            except ValueError:
                return f"{field}={value}"
    for field in ("dport", "sport", "to_port"):
        for number in re.findall(r"\d+", str(fact.get(field) or "")):
            if int(number) > 65535:
                return f"{field}={fact[field]}"
    return None


# How many lines one record may span (ip route's multipath nexthops, ifconfig's stanza).
RECORD_SPAN = 8
def _read(text, command, name):
    return read_transcript(f"root@fuzz-node:~# {command or 'cat ' + name}\n{text}", name)


@given(case=st.sampled_from(CASES), data=st.data())
def test_an_invalid_address_prefix_or_port_is_that_lines_problem_only(case, data):
    kind, name, text, command = case
    spots = ([("address", m) for m in _IPV4.finditer(text)]
             + [("port", m) for m in _PORT.finditer(text)])
    if not spots:
        return
    what, match = data.draw(st.sampled_from(spots))
    if what == "port":
        start, end = match.span(1)
        replacement = data.draw(bad_port)
    elif match.group(2) and data.draw(st.booleans()):
        start, end = match.span(2)
        replacement = data.draw(bad_prefix)
    else:
        octet = data.draw(st.integers(0, 3))
        pieces = match.group(1).split(".")
        pieces[octet] = data.draw(bad_octet)
        start, end = match.span(1)
        replacement = ".".join(pieces)
    original_value = text[start:end]
    mutated = text[:start] + replacement + text[end:]
    line = mutated.count("\n", 0, start) + 2  # the prompt is line 1

    before = _read(text, command, name)
    after = _read(mutated, command, name)

    for fact in after.facts:
        assert _valid(fact) is None, (_valid(fact), fact["prov"])
    # What is lost is the record holding the line (a record starts on its line or, with
    # continuation lines, a few lines before), and an unparsed entry says so.
    def by_line(evidence):
        return Counter((fact["prov"]["line"], fact["type"]) for fact in evidence.facts)
    lost = by_line(before) - by_line(after)
    assert all(line - RECORD_SPAN <= at <= line for at, _ in lost), (line, lost)
    if lost:
        assert any(entry["source"] == name and line - RECORD_SPAN <= entry["line"] <= line
                   for entry in after.unparsed), (line, replacement, after.unparsed)


_line_texts = st.text(st.characters(blacklist_categories=("Cs",)), max_size=120)


@given(lines=st.lists(_line_texts, max_size=30), prompt=st.booleans())
def test_random_text_never_breaks_the_reader(lines, prompt):
    text = ("root@fuzz-node:~# ip addr\n" if prompt else "") + "\n".join(lines)
    evidence = read_transcript(text, "fuzz.txt")
    for entry in evidence.unparsed:
        assert entry["source"] == "fuzz.txt" and isinstance(entry["line"], int)


_REAL_LINES = [line for _, _, text, _ in CASES for line in text.splitlines()][:4000]
_COMMANDS = sorted({command for _, _, _, command in CASES if command})


@given(lines=st.lists(st.sampled_from(_REAL_LINES), min_size=1, max_size=40),
       command=st.sampled_from(_COMMANDS),
       cut=st.integers(0, 60))
def test_shuffled_and_cut_real_lines_never_break_the_reader(lines, command, cut):
    # A terminal wrap or a bad copy cuts lines anywhere.
    text = "\n".join(line[:len(line) - cut] if cut < len(line) else line for line in lines)
    evidence = read_transcript(f"root@fuzz-node:~# {command}\n{text}", "shuffled.txt")
    for fact in evidence.facts:
        assert _valid(fact) is None, fact


@given(text=st.text(max_size=300))
def test_redaction_keeps_the_line_count_and_never_raises(text):
    assert redact(text).count("\n") == text.count("\n")
