"""The start-up caches in .cache/: the loaded rulebook, the kinds' command patterns and
compiled regular expressions. Each must give what no cache gives, and be rebuilt when
stale, corrupt or half-written, never served for rule files that changed."""
from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from hypothesis import given, strategies as st

from grammar import kinds, regex_cache
from kb import rulebook as rulebook_module
from kb.diagnose import diagnose
from grammar.transcript import read_transcript

ROOT = Path(__file__).resolve().parent.parent
SEED = ROOT / "rules" / "examples" / "seed-network-node.txt"


@pytest.fixture
def rules_copy(tmp_path, monkeypatch):
    """A copy of the shipped rules, with the rulebook caches (memory and disk) empty
    and kept in the test's own directory."""
    folder = tmp_path / "rules"
    shutil.copytree(ROOT / "rules", folder)
    monkeypatch.setattr(rulebook_module, "_DISK_CACHE", tmp_path / "cache")
    monkeypatch.setattr(rulebook_module, "_CACHE", {})
    return folder


def _causes(rulebook) -> list[str]:
    evidence = read_transcript(SEED.read_text(), str(SEED))
    return sorted(f.cause for f in diagnose(evidence, rulebook=rulebook).findings)


def _cause_file(folder: Path, cause: str) -> Path:
    return next(p for p in folder.rglob("*.yaml") if f"cause: {cause}\n" in p.read_text())


def test_a_rulebook_from_the_disk_cache_diagnoses_as_the_files_do(rules_copy):
    loaded = rulebook_module.cached_rulebook([rules_copy])
    rulebook_module._CACHE.clear()          # a new process: only the disk cache is left
    from_disk = rulebook_module.cached_rulebook([rules_copy])
    assert from_disk is not loaded
    assert [c.cause for c in from_disk.causes] == [c.cause for c in loaded.causes]
    assert _causes(from_disk) == _causes(loaded) == ["fip-snat-wrong-interface"]


def test_what_a_diagnosis_derives_from_the_rules_is_kept_with_them_on_disk(rules_copy):
    from kb import components
    from kb.diagnose import COMPUTED, _prepared
    loaded = rulebook_module.cached_rulebook([rules_copy], prepare=_prepared)
    rulebook_module._CACHE.clear()          # a new process: only the disk cache is left
    from_disk = rulebook_module.cached_rulebook([rules_copy], prepare=_prepared)
    assert from_disk is not loaded
    kept = from_disk.__dict__["_components_plan"]           # read from disk, not worked out
    fresh = components._plan(rulebook_module.load_rulebook([rules_copy]), COMPUTED)
    assert kept == fresh
    assert from_disk.__dict__["_fields_read"] == loaded._fields_read
    # the rules' conditions as durable reads them, written when the files were read
    from kb.rulecompile import planned_json
    assert from_disk.__dict__["_planned_json"] == planned_json(
        rulebook_module.load_rulebook([rules_copy]), COMPUTED)
    assert from_disk.__dict__["_matched_fields"] == loaded._matched_fields
    assert from_disk.__dict__["_tells_facts_apart"] is loaded._tells_facts_apart is False
    assert _causes(from_disk) == ["fip-snat-wrong-interface"]


def _titles(rulebook) -> list[str]:
    evidence = read_transcript(SEED.read_text(), str(SEED))
    return [f.title for f in diagnose(evidence, rulebook=rulebook).findings]


def test_an_edited_rule_file_is_read_again_not_served_from_either_cache(rules_copy):
    import os
    before = rulebook_module.cached_rulebook([rules_copy])
    assert _titles(before)[0].startswith("SNAT on network-node applies only")
    path = _cause_file(rules_copy, "fip-snat-wrong-interface")
    stat = path.stat()
    text = path.read_text()
    path.write_text(text.replace('title: "SNAT on', 'title: "Source NAT on'))
    assert _titles(rulebook_module.cached_rulebook([rules_copy]))[0].startswith("Source NAT on")
    rulebook_module._CACHE.clear()          # and in a new process, from the disk cache
    assert _titles(rulebook_module.cached_rulebook([rules_copy]))[0].startswith("Source NAT on")

    # the same size and modification time as the cached version: only the content tells
    path.write_text(text.replace('title: "SNAT on', 'title: "snat on'))
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert path.stat().st_size == stat.st_size
    rulebook_module._CACHE.clear()
    assert _titles(rulebook_module.cached_rulebook([rules_copy]))[0].startswith("snat on")
    path.write_text(text)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert _titles(rulebook_module.cached_rulebook([rules_copy]))[0].startswith("SNAT on")


def test_a_corrupt_or_foreign_cache_file_is_rebuilt(rules_copy, tmp_path):
    rulebook_module.cached_rulebook([rules_copy])
    (cached,) = (tmp_path / "cache").glob("*.pickle")
    for damage in (cached.read_bytes()[:100], b"not a pickle at all", __import__("pickle").dumps({"a": 1})):
        cached.write_bytes(damage)
        rulebook_module._CACHE.clear()
        rebuilt = rulebook_module.cached_rulebook([rules_copy])
        assert _causes(rebuilt) == ["fip-snat-wrong-interface"]
        assert cached.read_bytes() != damage    # and written again, whole


def test_a_broken_rule_file_is_an_error_even_after_a_good_one_was_cached(rules_copy):
    rulebook_module.cached_rulebook([rules_copy])
    path = _cause_file(rules_copy, "fip-snat-wrong-interface")
    path.write_text(path.read_text().replace("when:", "whne:", 1))
    with pytest.raises(rulebook_module.RuleFileError) as error:
        rulebook_module.cached_rulebook([rules_copy])
    assert path.name in str(error.value.path)


def test_a_missing_example_file_is_not_hidden_by_the_cache(rules_copy):
    rulebook_module.cached_rulebook([rules_copy])
    (rules_copy / "examples" / "seed-network-node.txt").unlink()
    with pytest.raises(rulebook_module.RuleFileError):
        rulebook_module.cached_rulebook([rules_copy])


# --- the kinds' command patterns ---------------------------------------------------------

COMMANDS = ["iptables -L -t nat -v", "ip route", "sudo tcpdump -n -i eth0", "route -n",
            "ip -4 addr show", "ifconfig -a", "sysctl -a", "cat /etc/nova/nova.conf",
            "tail -n 50 /var/log/nova/nova-network.log", "dpkg -l", "service nova-api status",
            "iptables-save -c", "cat /proc/sys/net/ipv4/ip_forward", "nova list", "ls -l"]


def _recognised() -> list:
    kinds.recognizers.cache_clear()
    return [kinds.kind_for_command(command) for command in COMMANDS]


def _from_the_modules() -> list:
    """What the parser modules' own COMMANDS and FILES say, with no cache."""
    from grammar import commands
    answers = []
    for command in COMMANDS:
        first = commands.pipeline(command)[0]
        paths = commands.read_paths(first)
        if paths:
            kind = next((k for k in kinds.KIND_NAMES if kinds.parsers()[k].FILES is not None
                         and kinds.parsers()[k].FILES.search(paths[0])), None)
            answers.append((kind, paths[0]))
        else:
            answers.append((next((k for k in kinds.KIND_NAMES
                                  if kinds.parsers()[k].COMMANDS.search(first)), None), None))
    return answers


@pytest.fixture
def pattern_cache(tmp_path, monkeypatch):
    monkeypatch.setattr(kinds, "PATTERN_CACHE", tmp_path / "kinds")
    yield tmp_path / "kinds" / "patterns.json"
    kinds.recognizers.cache_clear()


def test_commands_are_recognised_from_the_cache_as_the_modules_say(pattern_cache):
    expected = _from_the_modules()
    assert ("iptables_list", None) in expected and ("oslo_log", "/var/log/nova/nova-network.log") in expected
    assert _recognised() == expected        # builds the cache
    assert pattern_cache.exists()
    assert _recognised() == expected        # served from it


@pytest.mark.parametrize("damage", [b"", b"{not json", b'{"digest": "x", "kinds": []}',
                                    b"[1, 2, 3]"])
def test_a_corrupt_or_stale_pattern_cache_is_rebuilt(pattern_cache, damage):
    expected = _from_the_modules()
    _recognised()
    pattern_cache.write_bytes(damage)
    assert _recognised() == expected
    assert pattern_cache.read_bytes() != damage


def test_a_pattern_cache_from_other_code_is_not_used(pattern_cache):
    import json
    _recognised()
    data = json.loads(pattern_cache.read_text())
    for row in data["kinds"]:      # as if every module's COMMANDS had been changed since
        row[1] = ["(?!)", 0]
    data["digest"] = "0" * 64
    pattern_cache.write_text(json.dumps(data))
    assert _recognised() == _from_the_modules()


def test_the_pattern_cache_is_keyed_on_the_grammar_modules_as_python_judges_them(tmp_path, monkeypatch):
    """An edited module of grammar/ (its size or modification time, as Python judges its
    compiled code stale) names another cache; an untouched one the same."""
    import os
    for path in (ROOT / "grammar").glob("*.py"):
        shutil.copy2(path, tmp_path / path.name)
    monkeypatch.setattr(kinds, "_GRAMMAR", tmp_path)
    before = kinds._modules_digest()
    assert kinds._modules_digest() == before
    module = tmp_path / "ip_route.py"
    stat = module.stat()
    os.utime(module, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    touched = kinds._modules_digest()
    assert touched != before
    module.write_text(module.read_text() + "\n# edited\n")
    assert kinds._modules_digest() not in (before, touched)


# --- compiled regular expressions --------------------------------------------------------

@pytest.fixture
def regex_table(tmp_path, monkeypatch):
    """The regex cache's compile function over an empty table, without turning it on
    for the whole test process."""
    monkeypatch.setattr(regex_cache, "CACHE_DIR", tmp_path / "re")
    monkeypatch.setattr(regex_cache, "_table", {})
    monkeypatch.setattr(regex_cache, "_stored", {})
    monkeypatch.setattr(regex_cache, "_added", 0)
    monkeypatch.setattr(regex_cache, "_original", re._compiler.compile)
    return regex_cache._table


PATTERNS = [(r"^(?P<node>[\w.-]+)@(?P=node):\s+(\d+)?", 0), (r"dev\s+(\S+)", re.I),
            (rb"\x00(ab|cd)*", 0), (r"(?x) a b # comment", 0), (r"[^\s|;&>()]+", re.M)]
SUBJECTS = ["net01@net01: 42", "DEV eth1", "dev  br100", "ab", "x | y", "abcd"]


def _behaviour(compile_):
    results = []
    for pattern, flags in PATTERNS:
        compiled = compile_(pattern, flags)
        results.append((compiled.pattern, compiled.flags, compiled.groups, compiled.groupindex))
        for subject in SUBJECTS:
            text = subject.encode() if isinstance(pattern, bytes) else subject
            match = compiled.search(text)
            results.append(match and (match.span(), match.groups()))
    return results


def test_cached_code_behaves_as_python_compiles_it(regex_table):
    expected = _behaviour(lambda p, f: re._compiler.compile(p, f))
    assert _behaviour(regex_cache._compile) == expected      # compiled, and kept
    assert len(regex_table) == len(PATTERNS)
    path = regex_cache._cache_file()
    regex_cache._save(path)
    regex_table.clear()
    regex_table.update(regex_cache._load(path))               # a later run
    assert len(regex_table) == len(PATTERNS)
    assert _behaviour(regex_cache._compile) == expected


def test_a_corrupt_regex_cache_is_ignored_and_unusable_entries_recompiled(regex_table):
    expected = _behaviour(lambda p, f: re._compiler.compile(p, f))
    _behaviour(regex_cache._compile)
    path = regex_cache._cache_file()
    regex_cache._save(path)
    data = path.read_bytes()
    for damage in (b"", data[:len(data) // 2], data[:10] + b"x" + data[11:]):
        path.write_bytes(damage)
        assert regex_cache._load(path) == {}
    # an entry the engine refuses (from a file that passed its checksum) is compiled again
    for key in list(regex_table):
        regex_table[key] = regex_cache.marshal.dumps(("not", "code"))
    assert _behaviour(regex_cache._compile) == expected
    assert all(regex_cache.marshal.loads(v) != ("not", "code") for v in regex_table.values())


def test_a_damaged_entry_of_the_regex_cache_is_not_served_the_others_are(regex_table):
    expected = _behaviour(lambda p, f: re._compiler.compile(p, f))
    _behaviour(regex_cache._compile)
    path = regex_cache._cache_file()
    regex_cache._save(path)
    data = bytearray(path.read_bytes())
    data[-3] ^= 0xFF                      # inside the last entry; the index is intact
    path.write_bytes(bytes(data))
    stored = regex_cache._load(path)
    assert len(list(stored)) == len(PATTERNS) - 1
    assert all(stored.get(key) == regex_table[key] for key in stored)
    regex_table.clear()
    regex_table.update(stored)
    assert _behaviour(regex_cache._compile) == expected


# --- dataclasses' generated methods -------------------------------------------------------

def _records_classes():
    """Dataclasses of the shapes the project uses: defaults, factories, frozen, slots."""
    from dataclasses import dataclass, field

    @dataclass
    class Finding:
        cause: str
        node: str | None
        evidence: list[dict] = field(default_factory=list)
        status: str = "established"

    @dataclass(frozen=True)
    class Problem:
        line: int
        reason: str
        column: int | None = None

    @dataclass(slots=True, order=True)
    class Step:
        node: str
        hop: int = 0
    return Finding, Problem, Step


def _dataclass_behaviour():
    import dataclasses
    import inspect
    finding, problem, step = _records_classes()
    a, b = finding("c1", "net01"), finding("c1", "net01", [{"line": 3}])
    frozen = problem(3, "bad")
    try:
        frozen.line = 4
        refused = False
    except dataclasses.FrozenInstanceError:
        refused = True
    return [repr(a), repr(b), a == finding("c1", "net01"), a == b, a.evidence is not finding("x", None).evidence,
            repr(frozen), hash(frozen) == hash(problem(3, "bad")), refused,
            repr(sorted([step("b", 2), step("a", 5), step("a", 1)])), step.__slots__,
            [str(inspect.signature(cls)) for cls in (finding, problem, step)],
            [cls.__init__.__annotations__ for cls in (finding, problem, step)]]


def test_dataclasses_made_from_cached_code_behave_as_python_makes_them(regex_table, monkeypatch):
    import dataclasses
    expected = _dataclass_behaviour()
    monkeypatch.setattr(dataclasses, "exec", regex_cache._exec, raising=False)
    assert _dataclass_behaviour() == expected              # compiled, and kept
    kept = [key for key in regex_table if isinstance(key, str)]
    assert any("def __init__(self,cause" in key for key in kept)
    path = regex_cache._cache_file()
    regex_cache._save(path)
    regex_table.clear()
    regex_table.update(regex_cache._load(path))            # a later run
    assert sorted(k for k in regex_table if isinstance(k, str)) == sorted(kept)
    assert _dataclass_behaviour() == expected
    for key in kept:                                      # entries that are not code
        regex_table[key] = regex_cache.marshal.dumps(("not", "code"))
    assert _dataclass_behaviour() == expected
    assert all(isinstance(regex_cache.marshal.loads(regex_table[k]), regex_cache.types.CodeType)
               for k in kept)


# --- lark's analysed grammars --------------------------------------------------------------

def test_a_grammar_cache_that_is_corrupt_or_of_another_grammar_is_replaced(tmp_path, monkeypatch):
    from grammar import base, ip_route
    monkeypatch.setattr(base, "LARK_CACHE", tmp_path / "lark")
    grammar = (ROOT / "grammar" / "ip_route.lark").read_text()
    text = "default via 192.0.2.1 dev eth0\n192.0.2.0/24 dev eth0 proto kernel scope link src 192.0.2.7\n"

    def fresh(source=grammar):
        return base.LazyLark(source, parser="lalr", cache=base.lark_cache("ip_route"),
                             maybe_placeholders=True)

    reference = ip_route.parse(text).records
    first = fresh()
    first.parse("default via 192.0.2.1 dev eth0\n")        # builds and writes the cache
    (cached,) = (tmp_path / "lark").glob("ip_route-*.lark-cache")
    assert fresh().parse("default via 192.0.2.1 dev eth0\n") == first.parse("default via 192.0.2.1 dev eth0\n")
    for damage in (b"", cached.read_bytes()[:200], b"\x80\x05garbage"):
        cached.write_bytes(damage)
        again = fresh()
        assert again.parse("default via 192.0.2.1 dev eth0\n") == first.parse("default via 192.0.2.1 dev eth0\n")
        assert cached.read_bytes() != damage                 # replaced, whole
    # another grammar text gets its own file: the old cache is neither used nor overwritten
    before = cached.read_bytes()
    fresh(grammar + "\n// edited\n").parse("default via 192.0.2.1 dev eth0\n")
    assert len(list((tmp_path / "lark").glob("ip_route-*.lark-cache"))) == 2
    assert cached.read_bytes() == before
    assert ip_route.parse(text).records == reference


def test_a_parser_from_the_cache_reads_as_a_freshly_built_one(tmp_path, monkeypatch):
    """Every line of the listing fixtures, from every start, gives the same tree (or the
    same error) from a parser lark builds now and from one loaded whole from the cache
    into lark_runtime's classes."""
    from lark import Lark, UnexpectedInput
    from grammar import base, iptables_list, lark_runtime
    monkeypatch.setattr(base, "LARK_CACHE", tmp_path / "lark")
    grammar = (ROOT / "grammar" / "iptables_list.lark").read_text()
    options = {"parser": "lalr", "start": iptables_list._STARTS, "keep_all_tokens": True}
    base.LazyLark(grammar, cache=base.lark_cache("iptables_list"), **options).options  # writes it
    cached = base.LazyLark(grammar, cache=base.lark_cache("iptables_list"), **options)
    fresh = Lark(grammar, **options)

    def outcome(parser, line, start):
        try:
            return parser.parse(line, start=start)
        except (UnexpectedInput, lark_runtime.UnexpectedInput) as error:
            return type(error).__name__, error.line, error.column

    lines = [line for path in sorted((ROOT / "tests" / "fixtures" / "iptables_list").glob("*.out"))
             for line in path.read_text().splitlines()[:40]]
    compared = [(outcome(cached, line, start), outcome(fresh, line, start))
                for line in lines for start in ("chain_header", "column_header", "counted_rule", "rule")]
    assert len(compared) > 400 and any(not isinstance(c, tuple) for c, _ in compared)
    assert [c for c, _ in compared] == [f for _, f in compared]


def _route_transformer(word: str):
    """A transformer class of one name whose code (the word it returns) may change, as
    a module's transformer does between two versions of the code."""
    from grammar.lark_runtime import Transformer
    return type("RouteTransformer", (Transformer,), {"dev": lambda self, children: word})


def test_a_cached_parser_calls_the_transformer_of_the_running_code(tmp_path, monkeypatch):
    from grammar import base
    monkeypatch.setattr(base, "LARK_CACHE", tmp_path / "lark")
    grammar = (ROOT / "grammar" / "ip_route.lark").read_text()

    def parser(word):
        return base.LazyLark(grammar, parser="lalr", cache=base.lark_cache("ip_route"),
                             maybe_placeholders=True, transformer=_route_transformer(word)())

    assert "old" in str(parser("old").parse("default via 192.0.2.1 dev eth0\n"))   # writes the cache
    assert len(list((tmp_path / "lark").glob("ip_route-*.lark-cache"))) == 1
    # the same class name, so the same cache file: its methods are the running code's
    assert "new" in str(parser("new").parse("default via 192.0.2.1 dev eth0\n"))
    assert len(list((tmp_path / "lark").glob("ip_route-*.lark-cache"))) == 1


def test_a_damaged_runtime_cache_is_extracted_from_lark_again(tmp_path, monkeypatch):
    from grammar import lark_runtime
    monkeypatch.setattr(lark_runtime, "LARK_CACHE", tmp_path / "lark")
    first = lark_runtime._runtime_code()
    (code_file,) = (tmp_path / "lark").glob("runtime-*.code")
    assert code_file.with_suffix(".py").read_text().startswith("# The file was automatically generated by Lark")
    for damage in (b"", code_file.read_bytes()[:300], lark_runtime.marshal.dumps(("not", "code"))):
        code_file.write_bytes(damage)
        again = lark_runtime._runtime_code()
        assert again == first and code_file.read_bytes() != damage
        namespace: dict = {"__name__": "runtime_check"}
        exec(again, namespace)
        assert namespace["__version__"] == lark_runtime.__version__
        assert {"Lark", "Token", "Transformer", "UnexpectedInput"} <= set(namespace)


def test_a_lark_whose_standalone_tool_writes_another_form_is_named_plainly(tmp_path, monkeypatch):
    from lark.tools import standalone
    from grammar import lark_runtime
    monkeypatch.setattr(lark_runtime, "LARK_CACHE", tmp_path / "lark")
    monkeypatch.setattr(standalone, "gen_standalone", lambda parser, output: output("# nothing"))
    with pytest.raises(ImportError, match="install the lark requirements.txt names"):
        lark_runtime._runtime_code()
    assert not list((tmp_path / "lark").glob("runtime-*"))


def test_a_diagnosis_with_its_parsers_cached_loads_neither_lark_s_compiler_nor_openssl():
    """What lark_runtime and grammar.digest are for: once every parser it needs is in the
    cache, a diagnosis reads the transcript with lark_runtime alone, and its digests are
    Python's own BLAKE2."""
    import subprocess
    import sys
    script = ("import sys, cli\n"
              "try:\n    cli.main(['diagnose', '--format', 'json', sys.argv[1]])\n"
              "except SystemExit:\n    pass\n"
              "sys.stderr.write(repr(sorted(m for m in sys.modules\n"
              "                             if m.split('.')[0] in ('lark', '_hashlib'))))\n")
    runs = [subprocess.run([sys.executable, "-c", script, str(SEED)], cwd=ROOT,
                           capture_output=True, text=True) for _ in range(2)]
    assert all('"fip-snat-wrong-interface"' in run.stdout for run in runs)
    assert runs[1].stderr.splitlines()[-1] == "[]"


@given(st.binary(max_size=300))
def test_the_digests_are_hashlib_s_blake2b_of_32_bytes(data):
    import hashlib
    from grammar.digest import digest
    assert digest(data).hexdigest() == hashlib.blake2b(data, digest_size=32).hexdigest()
    incremental = digest()
    incremental.update(data[:7])
    incremental.update(data[7:])
    assert incremental.digest() == hashlib.blake2b(data, digest_size=32).digest()
    assert len(digest(data).hexdigest()) == 64


# --- the command line built for one command ---------------------------------------------

@pytest.mark.parametrize("argv", [
    ["diagnose", "a.txt", "--format", "json", "--node", "net01"],
    ["diagnose", "--inventory", "inv.yaml", "--limit", "net*"],
    ["walk", "a.txt", "--from", "192.0.2.7", "--to", "198.51.100.1", "--proto", "tcp", "--port", "22"],
    ["serve", "--port", "5001", "--rules", "r"],
    ["rules", "test", "r", "fip-snat-wrong-interface"],
    ["rules", "facts", "--write"],
])
def test_a_parser_built_for_one_command_reads_it_as_the_whole_parser_does(argv):
    import app
    assert app._command_of(argv) == argv[0]
    assert vars(app.build_parser(argv[0]).parse_args(argv)) == vars(app.build_parser().parse_args(argv))


def test_a_command_run_in_process_leaves_the_garbage_collector_as_it_found_it(capsys):
    """``python app.py`` freezes what a one-shot command made (the process ends: no
    collection need walk it again); called in-process, main() must not."""
    import gc
    import app
    thresholds = gc.get_threshold()
    frozen = gc.get_freeze_count()
    assert app.main(["diagnose", str(SEED)]) == 1
    assert "fip-snat-wrong-interface" in capsys.readouterr().out
    assert gc.get_threshold() == thresholds
    assert gc.get_freeze_count() == frozen
