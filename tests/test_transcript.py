"""Transcripts into facts: prompts, nodes, provenance, the timeline, and bad input."""
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from collectors.files import InputError, read_evidence
from grammar import transcript
from grammar.transcript import parse_prompt, read_transcript, split_blocks

EXAMPLES = Path(__file__).resolve().parent.parent / "rules" / "examples"
# A real capture of a healthy lab named otherwise (tests/fixtures/labs, the namespace lab).
NET01 = (Path(__file__).resolve().parent / "fixtures" / "labs" / "other-healthy" / "net01.txt").read_text()


def captured(command: str) -> str:
    """The prompt line of ``command`` in NET01 and what it printed."""
    start = NET01.index(f"root@net01:~# {command}\n")
    end = NET01.find("root@net01:~# ", start + 1)
    return NET01[start:end if end != -1 else None]


def output_of(command: str) -> str:
    return captured(command).split("\n", 1)[1]


@pytest.mark.parametrize("line, host, command", [
    ("root@network-node:~# iptables -L -t nat -v ", "network-node", "iptables -L -t nat -v"),
    ("[root@gks-061 ~]# ip route ", "gks-061", "ip route"),
    ("(elasticluster)root@gks-246:[~] $ elasticluster list-templates", "gks-246",
     "elasticluster list-templates"),
    ("stack@controller:~$ sudo tail -n 50 /var/log/nova/nova-api.log", "controller",
     "sudo tail -n 50 /var/log/nova/nova-api.log"),
    ("$ ip route", None, "ip route"),
    ("root@net01:/etc/nova# grep rabbit nova.conf", "net01", "grep rabbit nova.conf"),
])
def test_every_prompt_form_names_its_node_and_command(line, host, command):
    prompt = parse_prompt(line)
    assert prompt["host"] == host and prompt["command"] == command


def _lark_prompt(line: str):
    """What the prompt grammar alone makes of a line (no head kept from earlier lines)."""
    from grammar.lark_runtime import LarkError
    try:
        return transcript._PROMPT_FIELDS.transform(transcript._PROMPT_GRAMMAR.parse(line.strip()))
    except LarkError:
        return None


_PROMPT_PIECES = st.sampled_from([
    "root", "stack", "@", "net01", "gks-061", "my.host", ":", "~", "/etc/nova", "[", "]", "(",
    ")", "(venv)", "#", "$", " ", "  ", "\t", "ip route", "echo $HOME", "# done", "x#y", "$$",
    "[root@h ~]", "a@b:c", "sudo -u nova ls", ":~#", "(a)", "-", "é",
])


@settings(max_examples=400, deadline=None)
@given(st.lists(st.tuples(st.lists(_PROMPT_PIECES, max_size=8), st.lists(_PROMPT_PIECES, max_size=5)),
                min_size=1, max_size=6))
def test_a_prompt_read_again_after_its_head_is_known_reads_as_lark_reads_it(lines):
    """parse_prompt keeps each prompt head lark has split: any line, whatever came
    before it, is read exactly as the grammar reads it alone."""
    for head, command in lines:
        line = "".join(head) + "".join(command)
        expected = _lark_prompt(line) if transcript._PROMPT_CANDIDATE.match(line) else None
        assert parse_prompt(line) == expected, line


def test_commands_after_one_prompt_head_each_keep_their_own_text():
    lines = ["stack@ctl-9:~$ ip route", "stack@ctl-9:~$   echo $HOME # why", "stack@ctl-9:~$",
             "stack@ctl-9:~$ tail -f /var/log/nova/nova-api.log  "]
    assert [(p["host"], p["user"], p["command"]) for p in map(parse_prompt, lines)] == [
        ("ctl-9", "stack", "ip route"), ("ctl-9", "stack", "echo $HOME # why"),
        ("ctl-9", "stack", ""), ("ctl-9", "stack", "tail -f /var/log/nova/nova-api.log")]


@pytest.mark.parametrize("line", [
    "2014-08-28 16:22:33.743 3966 AUDIT cinder.api.v1.volumes [req-e19de3f2 - - -] Create",
    "    0     0 SNAT       all  --  any    eth1    10.99.0.0/22         anywhere",
    "# public_interface=eth1",
    "default via 10.0.0.1 dev eth0",
])
def test_output_lines_are_not_prompts(line):
    assert parse_prompt(line) is None


def test_a_paste_from_several_nodes_keeps_each_block_on_its_node():
    text = (EXAMPLES / "seed-floating-ip-investigation.txt").read_text()
    blocks = split_blocks(text, "paste")
    assert [(b.node, b.command) for b in blocks][:3] == [
        ("compute-1", "tcpdump -i br100 -n icmp"),
        ("network-node", "tcpdump -i br100 icmp -n"),
        ("network-node", "ip route"),
    ]
    gateway = [b for b in blocks if b.node == "gks-061"]
    assert [b.command for b in gateway] == ["tcpdump -i br1 -n icmp", "tcpdump -i br1 -n icmp -e",
                                           "ip addr show br1", "ip route"]
    route = blocks[2]
    assert route.lines[0] == "default via 10.0.0.1 dev eth0 "
    assert text.split("\n")[route.first_line - 1] == route.lines[0]


def test_sudo_is_stripped_and_backslash_continuations_are_one_command():
    # the seed's own `nova boot`, typed over four lines
    blocks = split_blocks("stack@net01:~$ sudo ip route\n" + output_of("ip route")
                          + "root@api-node:~# nova boot \\\n  --block-device \\\n"
                          "  id=7b05a000-dd1b-409a-ba51-a567a9ebec13,source=image,dest=volume,size=1,"
                          "shutdown=remove,bootindex=0 \\\n"
                          "  --key-name gridka-auth-node --flavor m1.tiny test-from-volume\n", "paste")
    assert blocks[0].command == "ip route"
    assert blocks[1].command == ("nova boot --block-device id=7b05a000-dd1b-409a-ba51-a567a9ebec13,"
                                 "source=image,dest=volume,size=1,shutdown=remove,bootindex=0 "
                                 "--key-name gridka-auth-node --flavor m1.tiny test-from-volume")
    assert blocks[1].lines == []


def test_facts_carry_node_command_source_and_the_line_itself():
    evidence = read_transcript((EXAMPLES / "seed-network-node.txt").read_text(), "seed.txt")
    default = next(f for f in evidence.facts if f["type"] == "route" and f["destination"] == "0.0.0.0/0")
    assert default["prov"] == {"node": "network-node", "command": "ip route", "source": "seed.txt",
                               "line": 6, "text": "default via 10.0.0.1 dev eth0"}
    snat = next(f for f in evidence.facts if f["type"] == "iptables_rule"
                and f["chain"] == "nova-network-snat" and f["target"] == "SNAT")
    assert snat["out"] == "eth1" and snat["table"] == "nat" and snat["prov"]["line"] == 73
    assert evidence.unparsed == []


def test_text_without_a_prompt_takes_the_node_it_is_given():
    evidence = read_transcript(output_of("ip route"), "routes.txt", node="net01")
    assert {f["node"] for f in evidence.facts} == {"net01"}
    assert {f["dev"] for f in evidence.facts} == {"ens3", "br-fixed", "ens4"}


def test_a_file_in_a_node_directory_is_that_nodes_evidence(tmp_path):
    (tmp_path / "net01").mkdir()
    (tmp_path / "net01" / "routes.txt").write_text(output_of("ip route"))
    evidence = read_evidence([str(tmp_path)])
    assert {f["node"] for f in evidence.facts} == {"net01"} and len(evidence.facts) == 4
    assert evidence.facts[0]["prov"]["source"].endswith("net01/routes.txt")


def test_changes_are_facts_in_the_timeline():
    text = (EXAMPLES / "seed-floating-ip-investigation.txt").read_text()
    evidence = read_transcript(text, "paste")
    changes = [(f["change"], f["target"]) for f in evidence.facts if f["type"] == "state_change"]
    assert changes == [("config", "/etc/nova/nova.conf"), ("service", "nova-network")]


def test_missing_paths_are_input_errors():
    with pytest.raises(InputError, match="no such file or directory"):
        read_evidence(["/nonexistent/evidence.txt"])


@pytest.mark.parametrize("text, reason", [
    ("\x00\x01\x02ELF", "binary data"),
    ("root@net01:~# glance image-list\n+----+------+\n| ID | Name |\n", "does not read the output of 'glance'"),
    ("root@net01:~# nova list\n+----+------+\n| ID | Name |\n", "columns (ID, Name) stackdoc does not read"),
    ("this is not the output of anything\nat all\n", "not recognised"),
])
def test_unreadable_blocks_are_reported_with_where_and_why(text, reason):
    evidence = read_transcript(text, "bad.txt")
    assert len(evidence.unparsed) == 1
    assert reason in evidence.unparsed[0]["reason"]
    assert evidence.unparsed[0]["source"] == "bad.txt"


def test_one_bad_block_does_not_hide_the_rest():
    # a real capture whose nat listing lost the middle of one SNAT line, as a broken
    # paste does
    listing = captured("iptables -L -t nat -v").split("\n")
    broken = next(i for i, line in enumerate(listing) if " SNAT " in line)
    listing[broken] = listing[broken][:30] + "\x07"
    text = captured("ip route") + "\n".join(listing) + captured("ip addr show")
    evidence = read_transcript(text, "mixed.txt")
    types = {f["type"] for f in evidence.facts}
    assert {"route", "address", "iptables_chain", "iptables_rule"} <= types
    line_of_break = len(captured("ip route").split("\n")) + broken
    assert [item["line"] for item in evidence.unparsed] == [line_of_break]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=400))
def test_nothing_typed_or_pasted_crashes_the_reader(text):
    read_transcript(text, "fuzz")


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from((EXAMPLES / "seed-floating-ip-investigation.txt").read_text().split("\n")),
                max_size=60))
def test_shuffled_and_truncated_real_lines_never_crash_the_reader(lines):
    read_transcript("\n".join(lines), "fuzz")


def test_outputs_pasted_without_prompts_are_still_told_apart():
    """A student pastes only what the commands printed: a capture, then a routing
    table with no blank line between, then the nat table."""
    lines = (EXAMPLES / "seed-network-node.txt").read_text().split("\n")
    outputs_only = "\n".join(line for line in lines if not line.startswith("root@"))
    evidence = read_transcript(outputs_only, "paste", node="network-node")
    kinds_read = {f["type"] for f in evidence.facts}
    assert {"capture", "packet", "route", "iptables_chain", "iptables_rule"} <= kinds_read
    assert evidence.unparsed == []
    default = next(f for f in evidence.facts if f["type"] == "route" and f["destination"] == "0.0.0.0/0")
    assert default["dev"] == "eth0" and default["prov"]["text"] == "default via 10.0.0.1 dev eth0"


def test_what_the_collectors_could_not_collect_is_listed_with_their_own_reasons(tmp_path):
    """The notes the collectors really write (a node that refuses the connection, a
    command this machine lacks) come back as what could not be read, with the
    collector's reason, the node it names and the note's file and line."""
    import socket
    from collectors.collect import collect, collect_local
    from collectors.inventory import Host
    from collectors.knowledge import load_knowledge

    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "collect.yaml").write_text(
        'collect: 1\nbase:\n  - "ip route"\n  - "nova-manage floating list"\n'
        'allow:\n  - "ip route"\n  - "nova-manage (service|floating) list"\n')
    knowledge = load_knowledge(rules)
    with socket.socket() as probe:                      # a loopback port nothing listens on
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    out = tmp_path / "evidence"
    collect([Host(name="net07", address="127.0.0.1", port=closed_port, user="root")], knowledge, out,
            progress=False)
    collect_local(knowledge, tmp_path / "local", name="cmp07", progress=False)
    (out / "cmp07").mkdir()
    (out / "cmp07" / "collect-problems.txt").write_bytes(
        (tmp_path / "local" / "cmp07" / "collect-problems.txt").read_bytes())

    unparsed = sorted(read_evidence([str(out)]).unparsed, key=lambda u: u["node"])
    assert [(u["node"], Path(u["source"]).relative_to(out).as_posix(), u["line"]) for u in unparsed] == [
        ("cmp07", "cmp07/collect-problems.txt", 1), ("net07", "net07/unreachable.txt", 1)]
    assert unparsed[0]["reason"] == ("collector: nova-manage floating list: "
                                     "nova-manage: command not found on the node")
    assert unparsed[1]["reason"] == (f"collector: net07 (127.0.0.1 port {closed_port}) cannot be "
                                     "reached: Connection refused")
    # a line that only looks like a note, among other text, is still text
    mixed = read_transcript("stackdoc collect: net07: looks like a note\nsomething else\n", "notes.txt")
    assert [u["reason"] for u in mixed.unparsed] == [
        "not recognised as the output of any command stackdoc reads"]


FIXTURES = Path(__file__).resolve().parent / "fixtures"


def _records_of(evidence, fact_type):
    return [f for f in evidence.facts if f["type"] == fact_type]


def test_a_command_that_prints_a_traceback_instead_of_its_table_is_read_as_one():
    traceback = (FIXTURES / "traceback" / "elasticluster_py26_importerror.out").read_text()
    evidence = read_transcript("[root@ctl-el6 ~]# nova list\n" + traceback, "paste")
    crashes = [f for f in evidence.facts if f["type"] != "state_change"]
    assert crashes and {f["prov"]["command"] for f in crashes} == {"nova list"}
    assert any("ImportError" in str(f.values()) for f in crashes)
    assert evidence.unparsed == []


def test_a_traceback_after_part_of_a_table_is_read_and_the_table_still_is():
    table = (FIXTURES / "cli_table" / "nova_list_with_floating.out").read_text()
    traceback = (FIXTURES / "traceback" / "py311_urlopen_refused_chained.out").read_text()
    alone = read_transcript("root@ctl01:~# nova list\n" + table, "paste")
    both = read_transcript("root@ctl01:~# nova list\n" + table + traceback, "paste")
    servers = [(f["name"], f["prov"]["line"]) for f in _records_of(alone, "server")]
    assert servers and [(f["name"], f["prov"]["line"]) for f in _records_of(both, "server")] == servers
    crash = [f for f in both.facts if f["type"] not in {"server", "state_change"}]
    assert crash and all(f["prov"]["command"] == "nova list" for f in crash)
    assert min(f["prov"]["line"] for f in crash) == 2 + len(table.splitlines())
    assert both.unparsed == []


def test_lines_of_no_kind_inside_a_commands_output_stay_not_read():
    table = (FIXTURES / "cli_table" / "nova_list_with_floating.out").read_text().splitlines()
    garbled = "\n".join(table[:4] + ["@@ this is no table line @@"] + table[4:]) + "\n"
    evidence = read_transcript("root@ctl01:~# nova list\n" + garbled, "paste")
    assert [u["line"] for u in evidence.unparsed] == [6]


def test_a_traceback_after_a_listing_read_record_by_record_is_read_and_the_listing_still_is():
    """The nat listing is made facts as its parser reads it (each_record); the
    traceback its command printed after it is still cut off and read as one, and the
    listing's facts are those it gives alone."""
    listing = captured("iptables -L -t nat -v")
    traceback = (FIXTURES / "traceback" / "py311_urlopen_refused_chained.out").read_text()
    alone = read_transcript(listing, "paste")
    both = read_transcript(listing + traceback, "paste")
    rules = _records_of(alone, "iptables_rule")
    assert rules and _records_of(both, "iptables_rule") == rules
    crash = [f for f in both.facts if not f["type"].startswith(("iptables_", "state_change"))]
    assert crash and min(f["prov"]["line"] for f in crash) == 1 + len(listing.rstrip("\n").split("\n"))
    assert both.unparsed == [] and both.parsed_count == alone.parsed_count + len(crash)
