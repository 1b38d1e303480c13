"""iptables -L listings: fixture pairs, sniffing, damaged input, and the shape cache's
promise that a template gives exactly what lark gives."""
from __future__ import annotations

import contextlib
import json
import re
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from benchmarks import bench_iptables, gen_nova_nat
from grammar import iptables_list, iptables_save
from grammar.shapecache import ShapeCache, SlotScanner, resolve
from tests.fixture_pairs import FIXTURES, cases, check_case

KIND = "iptables_list"


@pytest.mark.parametrize("case, out, expected", cases(KIND), ids=[c[0] for c in cases(KIND)])
def test_fixture_pair(case, out, expected):
    check_case(KIND, out, expected)


def test_there_are_fixtures_from_the_seed_nftables_and_legacy():
    names = {case for case, _, _ in cases(KIND)}
    assert "seed_nat_v" in names
    assert any(n.startswith("nft_") for n in names) and any(n.startswith("legacy_") for n in names)


# ---- sniffing and command matching

@pytest.mark.parametrize("case, out, expected", cases(KIND), ids=[c[0] for c in cases(KIND)])
def test_looks_like_every_fixture(case, out, expected):
    assert iptables_list.looks_like(out.read_text())


@pytest.mark.parametrize("text", [
    "default via 10.20.0.1 dev ens3 proto static\n10.20.0.0/24 dev ens3 proto kernel scope link src 10.20.0.5\n",
    (FIXTURES / "iptables_save" / "nft_save.out").read_text(),
    (FIXTURES / "iptables_save" / "nft_S.out").read_text(),
    "",
    "\n\n",
    "\x00\x01\x02\xff binary",
    "Chain of events: nothing to see\n",
])
def test_does_not_look_like_other_text(text):
    assert not iptables_list.looks_like(text)


@pytest.mark.parametrize("command", [
    "iptables -L", "iptables -L -t nat -v", "iptables -nvL", "iptables -L -n -v -t nat",
    "iptables --list", "iptables --table nat --list -n", "iptables -t nat -nvL --line-numbers",
    "/sbin/iptables -L FORWARD", "iptables-legacy -L -n", "iptables-nft -vnL -t mangle",
    "watch -n1 iptables -nvL",
])
def test_commands_that_list(command):
    assert iptables_list.COMMANDS.search(command)


@pytest.mark.parametrize("command", [
    "iptables -S", "iptables-save", "iptables --list-rules", "iptables -t nat -S",
    "ip route", "iptables -A INPUT -j ACCEPT", "iptables --line-numbers -F",
])
def test_commands_that_do_not_list(command):
    assert not iptables_list.COMMANDS.search(command)


@pytest.mark.parametrize("command, table", [
    ("iptables -L", "filter"), ("iptables -L -t nat -v", "nat"), ("iptables -t mangle -nvL", "mangle"),
    ("iptables --table nat -L", "nat"), ("iptables --table=raw -L", "raw"), ("iptables -nvL -tnat", "nat"),
    ("iptables -L --line-numbers", "filter"), ("", "filter"),
])
def test_table_comes_from_the_command(command, table):
    assert iptables_list.command_table(command) == table


# ---- what the records say

def _rules(text, command=""):
    result = iptables_list.parse(text, command)
    return [r for r in result.records if r["type"] == "iptables_rule"], result.problems


def test_empty_target_and_negations():
    text = (" pkts bytes target     prot opt in     out     source               destination\n"
            "    7   588            0    --  !ens3  *      !10.0.0.0/8           0.0.0.0/0            ! ctstate DNAT\n")
    [rule], problems = _rules(text)
    assert not problems
    assert rule["target"] is None and rule["protocol"] == "all"
    assert (rule["in"], rule["in_negated"], rule["out"]) == ("ens3", True, None)
    assert (rule["source"], rule["source_negated"]) == ("10.0.0.0/8", True)
    assert (rule["ctstate"], rule["ctstate_negated"], rule["extra"]) == (["DNAT"], True, "")


def test_service_names_and_ranges_become_numbers():
    text = ("target     prot opt source               destination\n"
            "ACCEPT     tcp  --  anywhere             anywhere             multiport dports ssh,http:90,iscsi-target\n"
            "ACCEPT     udp  --  anywhere             anywhere             udp spts:bootpc:1023 dpt:domain\n"
            "DNAT       tcp  --  anywhere             anywhere             tcp dpt:amqp to:10.0.0.7:8775\n"
            "ACCEPT     tcp  --  anywhere             anywhere             tcp dpt:no-such-service\n")
    rules, problems = _rules(text)
    assert not problems
    assert [r["dport"] for r in rules] == ["22,80:90,3260", "53", "5672", "no-such-service"]
    assert rules[1]["sport"] == "68:1023"
    assert (rules[2]["to_address"], rules[2]["to_port"]) == ("10.0.0.7", "8775")


def test_layout_comes_from_the_command_when_the_header_is_missing():
    line = "    8   480 DNAT       tcp  --  any    any     anywhere             169.254.169.254      tcp dpt:http to:10.0.0.7:8775\n"
    [rule], problems = _rules(line, "iptables -t nat -L -v")
    assert not problems and rule["table"] == "nat" and rule["packets"] == 8 and rule["chain"] is None
    [guessed], problems = _rules(line)
    assert not problems and guessed == rule | {"table": "filter"}


def test_scaled_counters_are_multiplied_out():
    text = ("Chain INPUT (policy ACCEPT 123M packets, 99G bytes)\n"
            " pkts bytes target     prot opt in     out     source               destination\n"
            " 100K 1235K user1      all  --  any    any     10.0.0.2             anywhere\n")
    result = iptables_list.parse(text)
    chain, rule = result.records
    assert (chain["packets"], chain["bytes"]) == (123_000_000, 99_000_000_000)
    assert (rule["packets"], rule["bytes"]) == (100_000, 1_235_000)


# ---- damaged input: problems with line numbers, never an exception

def test_truncated_and_garbled_lines_are_problems_and_the_rest_is_read():
    text = ("Chain INPUT (policy ACCEPT)\n"
            "target     prot opt source               destination\n"
            "ACCEPT     all  --  anywhere\n"
            "Chain foo (policy\n"
            "\x00\xff\xfe garbage\n"
            "ACCEPT     all  --  anywhere             anywhere\n"
            "    0     0 SNAT       all  --  any    ens4    10.20")
    result = iptables_list.parse(text)
    assert [p.line for p in result.problems] == [3, 4, 5, 7]
    assert "ends too early" in result.problems[0].reason
    assert all(p.column for p in result.problems)
    assert [r["line"] for r in result.records] == [1, 6]


def test_indented_listing_reads_the_same():
    text = (FIXTURES / KIND / "nft_filter_names.out").read_text()
    indented = "\n".join(" " * 14 + line if line else line for line in text.split("\n"))
    plain, shifted = iptables_list.parse(text), iptables_list.parse(indented)
    assert not shifted.problems and plain.records == shifted.records


@pytest.mark.parametrize("text", ["", "\n", "   \n\t\n"])
def test_empty_input(text):
    result = iptables_list.parse(text)
    assert result.records == [] and result.problems == []


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_any_prefix_of_a_listing_or_any_bytes_never_raise(data):
    fixture = data.draw(st.sampled_from(cases(KIND)))[1].read_text()
    cut = data.draw(st.integers(0, len(fixture)))
    noise = data.draw(st.binary(max_size=200)).decode("latin-1")
    for text in (fixture[:cut], noise, fixture[:cut] + noise):
        result = iptables_list.parse(text, "iptables -L -v")
        for problem in result.problems:
            assert 1 <= problem.line <= text.count("\n") + 1


# ---- the shape cache

def test_slots_are_standalone_addresses_and_integers_only():
    scanner = SlotScanner(scaled_counters=True)
    line = ("    0  15K eth1  0x1/0xff  1024-65535  MAC 52:54:00:25:67:05  nova-compute-inst-3 "
            "10.0.0.0/8 to:10.0.0.7:8775 dpts:1024:65535 22,80 10.0.0.0/255.0.255.0")
    _, values = scanner.shape(line)
    assert values == ["0", "15K", "10.0.0.0/8", "10.0.0.7", "8775", "1024", "65535"]
    spans = scanner.spans(line)
    assert [line[a:b] for a, b in spans] == values


def test_lines_of_one_shape_share_a_shape():
    scanner = SlotScanner()
    first = "    0     0 SNAT       all  --  any    ens4    10.20.0.2            anywhere             to:198.18.0.1"
    second = "   12  7200 SNAT       all  --  any    ens4    10.20.19.147         anywhere             to:198.18.19.127"
    assert scanner.shape(first)[0] == scanner.shape(second)[0]
    assert scanner.shape(first)[0] != scanner.shape(first.replace("ens4", "ens3"))[0]


def test_a_nova_nat_listing_is_mostly_filled_from_templates():
    calls = []
    real_parser = iptables_list.PARSER

    class CountingParser:
        def parse(self, text, start):
            calls.append(start)
            return real_parser.parse(text, start=start)

    listing = gen_nova_nat.listing_text(300)
    with mock.patch.object(iptables_list, "PARSER", CountingParser()):
        result = iptables_list.parse(listing, "iptables -t nat -L -v")
    assert not result.problems and len(result.records) == 300 * 4 + 15 + 15
    assert len(calls) < 60                     # ~1,230 lines, a few dozen shapes


@contextlib.contextmanager
def _without_cache():
    """Every line through lark: the reference the cache must match."""
    def uncached(self, line, start):
        return resolve(self.parse_fields(line, start))
    with mock.patch.object(ShapeCache, "fields", uncached):
        yield


def _padding():
    # Mostly spaces; sometimes whitespace that is not a space, which lark must skip exactly
    # where the shape collapses it.
    return st.one_of(st.integers(1, 14).map(lambda n: " " * n), st.sampled_from(["\t", " \x1c ", "\xa0", "\x0b "]))


_octet = st.integers(0, 255).map(str)
_ipv4 = st.tuples(_octet, _octet, _octet, _octet).map(".".join)
_cidr = st.one_of(_ipv4, st.tuples(_ipv4, st.integers(0, 32)).map(lambda p: f"{p[0]}/{p[1]}"))
_number = st.integers(0, 10 ** 12).map(str)
_small = st.integers(0, 70000).map(str)
_counter = st.one_of(_number, st.tuples(st.integers(0, 99999), st.sampled_from("KMGT")).map(
    lambda p: f"{p[0]}{p[1]}"))
_port = st.one_of(_small, st.sampled_from(["http", "ssh", "domain", "bootpc", "x-unknown"]))
# Any kind of slot: where the grammar wants one kind, the others must not reuse its template.
_any_slot = st.one_of(_small, _ipv4, _counter)
_text = st.text(alphabet="ab 1.2:\"", min_size=1, max_size=10)


class Fixed:
    """A part drawn once per skeleton: the same for every line built from it."""

    def __init__(self, strategy):
        self.strategy = strategy


# Each clause is a list of parts: a string or a Fixed part is the same for every line of a
# skeleton; a strategy is drawn anew for each line. Lines of one skeleton thus share a
# shape unless a slot or a run of spaces inside a token tells them apart, which is exactly
# what the cache must notice.
_CLAUSES = [
    ["tcp dpt:", _port], ["udp spt:", _port, " dpt:", _port], ["tcp dpts:", _port, ":", _port],
    ["tcp dpt:!", _port], ["tcp flags:0x17/0x02"], ["to:", _ipv4], ["to:", _ipv4, ":", _small],
    ["to:", _ipv4, "-", _ipv4, ":", _small, "-", _small], ["ctstate RELATED,ESTABLISHED"],
    ["! ctstate DNAT"], ["state NEW"], ["! state NEW"], ["multiport dports ", _port, ",", _port],
    ["multiport sports  !", _port], ["multiport ports ", _small],
    ["/* ", Fixed(_text), " */"], ["/* ", Fixed(_text), _padding(), Fixed(_text), " */"],
    ["/* port ", _small, " of ", _ipv4, " */"], ["reject-with icmp-port-unreachable"],
    ["LOG flags 0 level ", _small, ' prefix "', Fixed(_text), _padding(), _small, '"'],
    ["LOG level warning prefix `drop ", _small, ": '"],
    ["limit: avg ", _small, "/min burst ", _small],
    ["limit: up to ", _small, "/sec burst ", _small, " mode srcip"], ["masq ports: ", _small, "-", _small],
    ["masq ports: ", _small], ["redir ports ", _small], ["mark match ! 0x", _small], ["MARK set 0x2"],
    ["TCPMSS clamp to PMTU"], ["CHECKSUM fill"], ["icmptype ", _small], ["icmptype ", _small, " code ", _small],
    ["icmp echo-request"], ["icmp !type ", _small, " code ", _small],
    ["MAC 52:54:00:", st.sampled_from(["25", "ab", "0f"]), ":67:05"], ["ctorigdst ", _ipv4],
    ["recent: CHECK seconds: ", _small, " name: SSH"], ["[goto]"], ["length ", _small, ":", _small],
    [_small], [_counter], [_any_slot], ["icmptype ", _any_slot], ["x:", _small], ["x", _small], ["tcp dpt:", _small, " foo"], ["!"],
    ['u32 "', Fixed(_text), '"'], ['u32 "0x', _small, _padding(), _small, '"'], [Fixed(_text)],
]


@st.composite
def listing_skeleton(draw):
    """A rule-line layout with fixed words and drawn slots, for one column layout."""
    layout = draw(st.sampled_from(iptables_list.RULE_LAYOUTS))
    parts: list = [draw(st.sampled_from(["", " ", "   "]))]
    if layout.startswith("numbered"):
        parts += [draw(st.sampled_from([_small, _any_slot])), _padding()]
    if "counted" in layout:
        parts += [_counter, _padding(), draw(st.sampled_from([_counter, _any_slot])), _padding()]
    target = draw(st.sampled_from(["ACCEPT", "DNAT", "SNAT", "nova-network-snat", "", "LOG", "REJECT"]))
    if target:
        parts += [target, _padding()]
    else:
        parts += [" " * 10]
    parts += [draw(st.sampled_from(["", "!"])), draw(st.sampled_from(["all", "tcp", "icmp", _small, _any_slot])),
              _padding(), draw(st.sampled_from(["--", "-f"])), _padding()]
    if "counted" in layout:
        for _ in range(2):
            parts += [draw(st.sampled_from(["any", "*", "ens3", "!ens3", "br-int+", "eth0.100"])), _padding()]
    for _ in range(2):
        parts += [draw(st.sampled_from(["", "!"])),
                  draw(st.sampled_from(["anywhere", "0.0.0.0/0", "net-node", "10.0.0.0/255.0.255.0", _cidr, _cidr])),
                  _padding()]
    for clause in draw(st.lists(st.sampled_from(_CLAUSES), max_size=4)):
        parts += [draw(p.strategy) if isinstance(p, Fixed) else p for p in clause]
        parts += [draw(st.sampled_from([" ", "  "]))]
    return layout, parts


def _instance(data, parts) -> str:
    return "".join(data.draw(p) if isinstance(p, st.SearchStrategy) else p for p in parts)


_HEADERS = {
    "rule": "target     prot opt source               destination",
    "numbered_rule": "num  target     prot opt source               destination",
    "counted_rule": " pkts bytes target     prot opt in     out     source               destination",
    "numbered_counted_rule": "num   pkts bytes target     prot opt in     out     source               destination",
}


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_cached_path_gives_what_lark_gives(data):
    layout, parts = data.draw(listing_skeleton())
    # from the fifth line of a shape on, lines are read by its line pattern
    lines = [_instance(data, parts) for _ in range(data.draw(st.integers(2, 7)))]
    text = "\n".join(["Chain INPUT (policy ACCEPT 12K packets, 3M bytes)", _HEADERS[layout], *lines])
    cached = iptables_list.parse(text, "iptables -L")
    with _without_cache():
        uncached = iptables_list.parse(text, "iptables -L")
    assert cached.records == uncached.records
    assert cached.problems == uncached.problems
    assert all(tuple(r) == iptables_list.RECORD_FIELDS[r["type"]] for r in cached.records)


def _same_digits_elsewhere(data, line: str) -> str:
    """The line with runs of digits kept, grown, shrunk or drawn anew: slots may grow,
    shrink, vanish or merge with their neighbours."""
    def redrawn(run):
        change = data.draw(st.sampled_from(["keep", "grow", "shrink", "anew"]))
        if change == "grow":
            return run[0] + "3"
        if change == "shrink":
            return run[0][1:]
        if change == "anew":
            return data.draw(st.text(alphabet="0123456789", max_size=4))
        return run[0]
    return re.sub(r"\d+", redrawn, line)


def _pattern_agrees_with_shape(scanner: SlotScanner, first: str, second: str) -> None:
    shaped = scanner.shape(first)
    if shaped is None:
        return
    pattern = scanner.line_pattern(shaped[0])
    if pattern is None:
        return
    matched = pattern(second)
    again = scanner.shape(second)
    if matched is not None:
        assert again is not None and again[0] == shaped[0] and list(matched.groups()) == again[1]
    else:
        assert again is None or again[0] != shaped[0]


_PACKED = st.lists(st.sampled_from(["1", "25", "0", "7K", ".", ":", "/", "-", ",", " ", "  ", "\t",
                                     "a", "f", "x", "M", '"']), max_size=14).map("".join)


@settings(max_examples=1000, deadline=None)
@given(st.data(), _PACKED, st.booleans())
def test_a_line_pattern_matches_exactly_the_lines_of_its_shape(data, text, scaled):
    # digits, dots, colons, slashes and letters packed together: where one slot ends and
    # the next begins is decided by the look-arounds, which the pattern must honour
    scanner = SlotScanner(scaled_counters=scaled)
    _pattern_agrees_with_shape(scanner, text, _same_digits_elsewhere(data, text))
    _pattern_agrees_with_shape(scanner, text, text)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_a_line_pattern_matches_the_listing_lines_of_its_shape_only(data):
    _, parts = data.draw(listing_skeleton())
    first, second = _instance(data, parts), _instance(data, parts)
    scanner = SlotScanner(scaled_counters=True)
    _pattern_agrees_with_shape(scanner, first, second)
    _pattern_agrees_with_shape(scanner, first, _same_digits_elsewhere(data, second))


def test_a_line_pattern_matches_exactly_the_lines_of_its_shape_among_all_short_lines():
    # Every line of up to five of these pieces, against each of its digit runs grown by
    # a digit: every way two slots and the text between them can meet.
    pieces = ["12", "3", ":", ".", "/", " ", "a", "K", "*"]
    # the usual openers ("/*" cannot be made up across a slot), and openers that can
    scanners = [SlotScanner(scaled_counters=True),
                SlotScanner(scaled_counters=True, whitespace_tokens_start_with=("3:", "3K", "a a"))]
    lines = [""]
    for _ in range(5):
        lines = [line + piece for line in lines for piece in pieces]
        for line in lines:
            runs = list(re.finditer(r"\d+", line))
            for run in runs:
                for scanner in scanners:
                    _pattern_agrees_with_shape(scanner, line, line[:run.end()] + "3" + line[run.end():])


def test_a_digit_whose_neighbours_are_slots_keeps_the_line_off_the_pattern():
    # "3" after "12:" is a MAC address's octet (no slot); after "123:" it is a slot
    scanner = SlotScanner()
    shape, values = scanner.shape("x:12:3 y")
    assert values == ["12"] and scanner.shape("x:123:3 y")[1] == ["123", "3"]
    assert scanner.line_pattern(shape) is None
    shape, values = scanner.shape("   7 eth1 to:10.0.0.7  ")
    assert scanner.line_pattern(shape)("\t12\xa0eth1  to:192.0.2.1").groups() == ("12", "192.0.2.1")


def test_whitespace_inside_a_token_is_not_taken_from_the_template():
    header = "target     prot opt source               destination\n"
    first = "ACCEPT     all  --  anywhere             anywhere             /* a  b */"
    second = first.replace("a  b", "a     b")
    text = header + "\n".join([first, second, second, first])
    assert [r["comment"] for r in iptables_list.parse(text).records] == ["a  b", "a     b", "a     b", "a  b"]
    collapsed = first.replace("/* a  b */", "tcp dpt:22")
    assert SlotScanner().shape(collapsed)[0] == SlotScanner().shape(collapsed.replace("   ", " "))[0]


def test_a_token_holding_a_slot_among_other_text_is_not_templated():
    header = "target     prot opt source               destination\n"
    line = 'DROP       all  --  anywhere             anywhere             u32 "0x0 5" LOG level 4 prefix "drop 22: "'
    text = header + "\n".join([line, line.replace('"0x0 5"', '"0x0 6"'), line.replace("drop 22", "drop 23")])
    assert [r["extra"] for r in iptables_list.parse(text).records] == ['u32 "0x0 5"', 'u32 "0x0 6"', 'u32 "0x0 5"']


def test_whitespace_that_is_not_a_space_separates_tokens_for_lark_and_cache_alike():
    header = "target     prot opt source               destination\n"
    lines = ["ACCEPT     all  --  anywhere anywhere", "ACCEPT     all  --  anywhere\x1canywhere",
             "ACCEPT\tall\xa0--  anywhere\u2003anywhere   /* a\xa0b */"]
    cached = iptables_list.parse(header + "\n".join(lines * 2))
    with _without_cache():
        uncached = iptables_list.parse(header + "\n".join(lines * 2))
    assert cached == uncached and not cached.problems
    assert [r["comment"] for r in cached.records] == [None, None, "a\xa0b"] * 2


def test_an_address_where_a_number_was_does_not_reuse_the_template():
    header = "num  target     prot opt source               destination\n"
    numbered = "1    ACCEPT     6    --  anywhere             anywhere"
    text = header + "\n".join([numbered, numbered.replace("1 ", "2 ", 1),
                                numbered.replace("1 ", "10.0.0.1 ", 1), numbered.replace("6 ", "1.2.3.4 ")])
    cached = iptables_list.parse(text)
    with _without_cache():
        uncached = iptables_list.parse(text)
    assert cached == uncached and [p.line for p in cached.problems] == [4, 5]
    scanner = SlotScanner(scaled_counters=True)
    assert len({scanner.shape(f"x {value} y")[0] for value in ("7", "7K", "10.0.0.7", "10.0.0.0/8")}) == 3


# ---- the real thing (root)

@pytest.mark.root
def test_benchmark_fallback_listing_is_what_iptables_prints():
    if not bench_iptables.namespace_available():
        pytest.skip("needs root, `ip netns` and iptables-restore")
    with bench_iptables.network_namespace("stackdoc-test") as run_in_namespace:
        run_in_namespace("iptables-restore", input=gen_nova_nat.save_text(25))
        listing = run_in_namespace("iptables", "-t", "nat", "-L", "-v")
        saved = run_in_namespace("iptables-save", "-t", "nat")
    assert listing == gen_nova_nat.listing_text(25)
    restored = [r for r in iptables_save.parse(saved).records if r["type"] == "iptables_rule"]
    listed = [r for r in iptables_list.parse(listing, "iptables -t nat -L -v").records
              if r["type"] == "iptables_rule"]
    assert len(restored) == len(listed) == 25 * 4 + 15
    assert re.match(r"# Generated by iptables-save", saved)


# ---- records one at a time (grammar/base.py: each_record)

def _counted(lines: list[str], taken: list[int]):
    for line in lines:
        taken[0] += 1
        yield line


@pytest.mark.parametrize("case, out, expected", cases(KIND), ids=[c[0] for c in cases(KIND)])
def test_each_record_gives_what_parse_gives(case, out, expected):
    command = json.loads(expected.read_text()).get("command", "")
    text = out.read_text()
    problems: list = []
    records = list(iptables_list.each_record(text.split("\n"), command, problems))
    parsed = iptables_list.parse(text, command)
    assert records == parsed.records and problems == parsed.problems


def test_a_listing_of_a_named_table_gives_each_record_before_reading_the_next_line():
    """A reader that makes each record a fact as it comes never holds the records of a
    20,000-rule listing at once: the first comes after its own line is read."""
    lines = gen_nova_nat.listing_text(200).split("\n")
    taken = [0]
    records = iptables_list.each_record(_counted(lines, taken), "iptables -t nat -L -v", [])
    first = next(records)
    assert first["type"] == "iptables_chain" and first["line"] == 1 and taken[0] == 1
    rule = next(r for r in records if r["type"] == "iptables_rule")
    assert taken[0] == rule["line"] < len(lines) / 10


def test_a_listing_told_by_its_chains_gives_its_records_once_every_chain_is_read():
    lines = gen_nova_nat.listing_text(20).split("\n")
    taken = [0]
    records = iptables_list.each_record(_counted(lines, taken), "", [])
    assert next(records)["table"] == "nat" and taken[0] == len(lines)


@pytest.mark.parametrize("case, out, expected", cases(KIND), ids=[c[0] for c in cases(KIND)])
def test_every_record_has_the_fields_its_type_declares_in_their_order(case, out, expected):
    """The transcript reader trusts RECORD_FIELDS to know a record's layout by its type."""
    for text in (out.read_text(), gen_nova_nat.listing_text(30)):
        for record in iptables_list.parse(text, json.loads(expected.read_text()).get("command", "")).records:
            assert tuple(record) == iptables_list.RECORD_FIELDS[record["type"]]


def test_a_line_pattern_reads_any_whitespace_and_any_decimal_digit():
    """Its runs read spaces first and its slots ASCII digits first, for speed: a tab, a
    no-break space and a digit of another script are still whitespace and digits."""
    scanner = SlotScanner()
    first = "   7 eth1 to:10.0.0.7  "
    for second in ("\t12\xa0eth1  to:192.0.2.1", "7 eth1 to:10.0.0.7", "7 eth1to:10.0.0.7",
                   "7 eth1 to:10.0.0.7 x", "7\u2003 eth1 \x1c\x1c to:10.0.0.7/24\x85"):
        _pattern_agrees_with_shape(scanner, first, second)
    pattern = scanner.line_pattern(scanner.shape(first)[0])
    assert pattern("\u2003\u0663\u0664 eth1\x1cto:10.0.0.\u0667 \t").groups() == ("\u0663\u0664", "10.0.0.\u0667")
    assert pattern("7 eth1 to:10.0.0.7 x") is None and pattern("7 eth1 to:10.0.0.7\u2003\x85 ")
