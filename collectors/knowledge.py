"""Which commands to run on which node: read from the knowledge, never listed in Python.

The plan for a node is the union of

* ``base:`` of ``rules/collect.yaml`` (every node),
* ``roles.<role>.commands:`` of that file, for the node's roles,
* the ``command:`` of each step of ``rules/symptoms/*.yaml`` whose ``role:`` the node has,
* the commands a cause file's ``decide_by:`` names, written ``On <who>: <command>.``:
  on the nodes of the role ``<who>`` names (``the image node`` -> image), on every node
  where it names none,

where a node's roles come from its inventory groups (``roles.<role>.groups``); a node in
no such group gets the base set and the commands meant for every node, and the
collection says it found no role for it. ``cmd1; cmd2`` is two commands. A command
with a ``{placeholder}`` (a value only the person at the terminal knows) or one that no
``allow:`` pattern matches is not run: :class:`Plan` keeps it in ``skipped`` with why.

The YAML is read here with its own small loader (collectors come before kb/ in the
flow), and a mistake raises :class:`KnowledgeError` naming the file and line.
"""
from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

import yaml

RULES_DIR = Path(__file__).resolve().parent.parent / "rules"
COLLECT_FILE = "collect.yaml"

FILE_READERS = {"cat", "tail", "head", "grep"}
"""Programs whose path arguments are read only where the file exists on the node."""

_TOKENS = {
    # never the stores of secrets redaction cannot clean (password hashes, private keys)
    "{path}": (r"(?!/etc/(?:g?shadow|sudoers|ssh/|ssl/private/|.*\.key$))"
               r"/(?:etc|var/log|proc)(?:/[A-Za-z0-9_@:+-][A-Za-z0-9_.@:+-]*)+"),
    "{word}": r"[A-Za-z0-9_@:+-][A-Za-z0-9_.@:+-]*",
}
_LIMIT_DEFAULTS = {"command_timeout": 10.0, "host_timeout": 60.0, "connect_timeout": 5.0,
                   "max_output": 8_000_000, "parallel_hosts": 8}
_DECIDE = re.compile(r"^\s*On (?P<who>[^:]{1,80}):\s*(?P<command>.+?)(?:\.(?:\s|$)|$)")


class KnowledgeError(ValueError):
    """A rule or collect file that cannot be used: where (file, line) and what."""

    def __init__(self, path, line: int | None, message: str):
        self.path, self.line, self.message = str(path), line, message
        super().__init__(f"{path}:{line}: {message}" if line else f"{path}: {message}")


@dataclass(frozen=True)
class Command:
    """One command to run: its words, and where the knowledge asked for it."""

    argv: tuple[str, ...]
    origin: str

    @property
    def text(self) -> str:
        return shlex.join(self.argv)

    @property
    def program(self) -> str:
        return self.argv[0]

    @property
    def paths(self) -> tuple[str, ...]:
        """The files a reader (cat, tail, grep ...) opens: its absolute path arguments."""
        if self.program not in FILE_READERS:
            return ()
        return tuple(a for a in self.argv[1:] if a.startswith("/"))


@dataclass(frozen=True)
class Skipped:
    """A command a collection plan leaves out, and why."""
    command: str
    origin: str
    reason: str


@dataclass
class Knowledge:
    """The collect file plus the commands the rule and symptom files name."""

    role_groups: dict[str, set[str]]
    role_commands: dict[str, list[Command]]
    base: list[Command]
    allow: list[re.Pattern]
    limits: dict[str, float]
    wanted: list[tuple[str | None, str, str]] = field(default_factory=list)
    """(role or None for every node, command text, origin) from symptom and rule files."""

    def roles_of(self, groups) -> set[str]:
        """The roles an inventory's group names give a node."""
        names = {_group_key(g) for g in groups}
        return {role for role, aliases in self.role_groups.items() if names & aliases}

    def allowed(self, argv) -> bool:
        text = shlex.join(argv)
        return any(pattern.fullmatch(text) for pattern in self.allow)

    def plan(self, groups) -> "Plan":
        """The commands for a node in these inventory groups, in a stable order."""
        roles = self.roles_of(groups)
        plan = Plan(sorted(roles))
        for command in self.base:
            plan.add(command)
        for role in sorted(roles):
            for command in self.role_commands.get(role, []):
                plan.add(command)
        for role, text, origin in self.wanted:
            if role is None or role in roles:
                for part in split_commands(text):
                    self._consider(plan, part, origin)
        return plan

    def _consider(self, plan: "Plan", text: str, origin: str) -> None:
        if "{" in text or "<" in text:
            plan.skip(text, origin, "needs a value only the person at the terminal knows")
            return
        try:
            argv = tuple(shlex.split(text))
        except ValueError as error:
            plan.skip(text, origin, f"not a command: {error}")
            return
        if not argv:
            return
        if not self.allowed(argv):
            plan.skip(text, origin, "not on the read-only allowlist (rules/collect.yaml allow:)")
            return
        plan.add(Command(argv, origin))


@dataclass
class Plan:
    """What to collect from a node of some roles, and what is left out."""
    roles: list[str]
    commands: list[Command] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)

    def add(self, command: Command) -> None:
        if all(_same_output(c.argv) != _same_output(command.argv) for c in self.commands):
            self.commands.append(command)

    def skip(self, text: str, origin: str, reason: str) -> None:
        if all(s.command != text for s in self.skipped):
            self.skipped.append(Skipped(text, origin, reason))


def _same_output(argv) -> tuple:
    """Commands that print the same thing compare equal: ``ip addr`` is ``ip addr show``
    (show is what ip does for an object given no action)."""
    if argv[:1] == ("ip",) and argv[-1:] == ("show",) and len(argv) == 3:
        return argv[:2]
    return tuple(argv)


def split_commands(text: str) -> list[str]:
    """``iptables -L FORWARD -v -n; sysctl net.ipv4.ip_forward`` -> the two commands."""
    return [part.strip() for part in text.split(";") if part.strip()]


def _group_key(name: str) -> str:
    return str(name).lower().replace("-", "_")


# --------------------------------------------------------------------------- loading
class _Mapping(dict):
    lines: dict


class _Sequence(list):
    lines: list


class _LineLoader(yaml.SafeLoader):
    pass


def _mapping(loader, node):
    loader.flatten_mapping(node)
    out = _Mapping()
    out.lines = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        out[key] = loader.construct_object(value_node, deep=True)
        out.lines[key] = key_node.start_mark.line + 1
    return out


def _sequence(loader, node):
    out = _Sequence(loader.construct_object(item, deep=True) for item in node.value)
    out.lines = [item.start_mark.line + 1 for item in node.value]
    return out


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)
_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _sequence)


def _read_yaml(path: Path):
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise KnowledgeError(path, None, f"cannot be read: {error.strerror or error}") from None
    try:
        return yaml.load(text, Loader=_LineLoader)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        raise KnowledgeError(path, mark.line + 1 if mark else None,
                             f"not valid YAML: {getattr(error, 'problem', error)}") from None


def _line(container, key) -> int | None:
    lines = getattr(container, "lines", None)
    if isinstance(lines, dict):
        return lines.get(key)
    if isinstance(lines, list) and isinstance(key, int) and key < len(lines):
        return lines[key]
    return None


def _commands(path: Path, container, key, origin: str, allow) -> list[Command]:
    value = container.get(key) if isinstance(container, dict) else None
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise KnowledgeError(path, _line(container, key), f"'{key}:' is a list of commands (strings)")
    out = []
    for index, text in enumerate(value):
        try:
            argv = tuple(shlex.split(text))
        except ValueError as error:
            raise KnowledgeError(path, _line(value, index), f"{text!r} is not a command: {error}") from None
        if not argv:
            raise KnowledgeError(path, _line(value, index), "an empty command")
        if not any(p.fullmatch(shlex.join(argv)) for p in allow):
            raise KnowledgeError(path, _line(value, index),
                                 f"{text!r} matches no 'allow:' pattern: only read-only commands "
                                 "are collected; add a pattern for it (and be sure it changes nothing)")
        out.append(Command(argv, origin))
    return out


def load_collect_file(path: Path) -> Knowledge:
    """``rules/collect.yaml``, checked; raises :class:`KnowledgeError` with file:line."""
    doc = _read_yaml(path)
    if not isinstance(doc, dict) or "collect" not in doc:
        raise KnowledgeError(path, 1, "a collect file is a mapping starting with 'collect: 1'")
    known = {"collect", "roles", "base", "allow", "limits"}
    for key in doc:
        if key not in known:
            raise KnowledgeError(path, _line(doc, key),
                                 f"unknown key {key!r}; known keys: {', '.join(sorted(known))}")
    allow_raw = doc.get("allow") or []
    if not isinstance(allow_raw, list) or not allow_raw:
        raise KnowledgeError(path, _line(doc, "allow"), "'allow:' is a non-empty list of regular expressions")
    allow = []
    for index, raw in enumerate(allow_raw):
        if not isinstance(raw, str):
            raise KnowledgeError(path, _line(allow_raw, index), "an 'allow:' entry is a regular expression (a string)")
        pattern = raw
        for token, regex in _TOKENS.items():
            pattern = pattern.replace(token, regex)
        try:
            allow.append(re.compile(pattern))
        except re.error as error:
            raise KnowledgeError(path, _line(allow_raw, index), f"not a regular expression: {error}") from None
    roles_raw = doc.get("roles") or {}
    if not isinstance(roles_raw, dict):
        raise KnowledgeError(path, _line(doc, "roles"), "'roles:' maps each role to its groups and commands")
    role_groups, role_commands = {}, {}
    for role, spec in roles_raw.items():
        if not isinstance(spec, dict) or not isinstance(spec.get("groups"), list) or not spec["groups"]:
            raise KnowledgeError(path, _line(roles_raw, role),
                                 f"role {role!r} needs 'groups:', the inventory group names that mean it")
        extra = set(spec) - {"groups", "commands"}
        if extra:
            key = sorted(extra)[0]
            raise KnowledgeError(path, _line(spec, key), f"unknown key {key!r} in role {role!r}; known: commands, groups")
        role_groups[str(role)] = {_group_key(g) for g in spec["groups"]} | {_group_key(role)}
        role_commands[str(role)] = _commands(path, spec, "commands", f"{path.name} ({role})", allow)
    base = _commands(path, doc, "base", path.name, allow)
    limits = dict(_LIMIT_DEFAULTS)
    raw_limits = doc.get("limits") or {}
    if not isinstance(raw_limits, dict):
        raise KnowledgeError(path, _line(doc, "limits"), "'limits:' is a mapping")
    for key, value in raw_limits.items():
        if key not in _LIMIT_DEFAULTS:
            raise KnowledgeError(path, _line(raw_limits, key),
                                 f"unknown limit {key!r}; known: {', '.join(sorted(_LIMIT_DEFAULTS))}")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
            raise KnowledgeError(path, _line(raw_limits, key), f"{key} must be a positive number")
        limits[key] = value
    return Knowledge(role_groups, role_commands, base, allow, limits)


def _as_list(value) -> list:
    """A rule file's list (kb/rulebook.py reports a malformed one; here it is read as given)."""
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _role_for(knowledge: Knowledge, words: str) -> str | None:
    """The role a symptom step's ``role:`` or a ``decide_by`` subject names, if any."""
    key = _group_key(words)
    if key in knowledge.role_groups:
        return key
    for token in re.findall(r"[a-z0-9_-]+", words.lower()):
        for role, aliases in knowledge.role_groups.items():
            if _group_key(token) in aliases:
                return role
    return None


def load_knowledge(rules_dir: Path | str = RULES_DIR) -> Knowledge:
    """The collect file of ``rules_dir`` (the built-in one where the folder has none) and
    the commands its rule and symptom files name."""
    rules_dir = Path(rules_dir)
    if not rules_dir.is_dir():
        raise KnowledgeError(rules_dir, None, "no such rules folder")
    own = rules_dir / COLLECT_FILE
    knowledge = load_collect_file(own if own.exists() else RULES_DIR / COLLECT_FILE)
    for path in sorted(rules_dir.rglob("*.yaml")):
        if path.name == COLLECT_FILE and path.parent == rules_dir:
            continue
        doc = _read_yaml(path)
        if not isinstance(doc, dict):
            continue
        rel = path.relative_to(rules_dir)
        steps = doc.get("steps") if "symptom" in doc else None
        if isinstance(steps, dict):
            for step_id, step in steps.items():
                if isinstance(step, dict) and isinstance(step.get("command"), str):
                    role = _role_for(knowledge, str(step.get("role", "")))
                    knowledge.wanted.append((role, step["command"], f"{rel} step {step_id}"))
        if "cause" in doc:
            cases = doc.get("cases") if isinstance(doc.get("cases"), list) else []
            texts = [text for holder in [doc, *cases] if isinstance(holder, dict)
                     for text in _as_list(holder.get("decide_by"))]
            for text in texts:
                match = _DECIDE.match(str(text))
                if match:
                    role = _role_for(knowledge, match["who"]) if "{" not in match["who"] else None
                    knowledge.wanted.append((role, match["command"].strip(),
                                             f"{rel} decide_by"))
    return knowledge
