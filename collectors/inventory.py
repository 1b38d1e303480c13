"""Ansible inventories (INI and YAML) and ``~/.ssh/config`` aliases: the hosts to collect from.

Read the way ``ansible-inventory --list`` reads them (tests/test_inventory.py compares):

* INI: ``[group]`` sections of host lines (``name key=value ...``, ranges such as
  ``node[01:03]`` and ``db-[a:c]``, ``name:port``), ``[group:children]``,
  ``[group:vars]``; hosts before any section are ``ungrouped``.
* YAML: ``all:`` (or any top-level group) with ``hosts:``, ``children:`` and ``vars:``.
* Variables: ``ansible_host``, ``ansible_port``, ``ansible_user``,
  ``ansible_ssh_private_key_file``, ``ansible_become``, ``ansible_password``,
  ``ansible_connection=local`` (collected on this machine), and
  ``ansible_ssh_common_args`` for its ``-o ProxyCommand=...`` and
  ``-o UserKnownHostsFile=...``. Host variables win over
  group variables, a child group's over its parents', ``all``'s come last.
* ``~/.ssh/config`` (paramiko's SSHConfig): ``HostName``, ``Port``, ``User``,
  ``IdentityFile`` and ``ProxyCommand`` for the name Ansible would hand OpenSSH
  (``ansible_host``, else the inventory name), where the inventory does not say
  otherwise (Ansible's ``-o`` options win over ssh_config).

A host's groups include its groups' parents. Every mistake raises
:class:`InventoryError` with the file and line.
"""
from __future__ import annotations

import ast
import fnmatch
import os
import re
import shlex
import string
from dataclasses import dataclass, field
from pathlib import Path

import yaml

BECOME_TRUE = {"true", "yes", "on", "1", "y", "t"}


class InventoryError(ValueError):
    def __init__(self, path, line: int | None, message: str):
        self.path, self.line = str(path), line
        super().__init__(f"{path}:{line}: {message}" if line else f"{path}: {message}")


@dataclass(frozen=True)
class Host:
    """One node to collect from. ``password`` never shows in repr or output."""

    name: str
    address: str
    port: int = 22
    user: str | None = None
    key_file: str | None = None
    become: bool = False
    groups: tuple[str, ...] = ()
    proxy_command: str | None = None
    known_hosts: str | None = None
    connection: str = "ssh"     # ansible_connection: "local" runs the commands here
    password: str | None = field(default=None, repr=False, compare=False)


@dataclass
class _Group:
    name: str
    hosts: dict[str, dict] = field(default_factory=dict)   # host -> vars given here
    children: list[str] = field(default_factory=list)
    vars: dict = field(default_factory=dict)


class _Inventory:
    def __init__(self):
        self.groups: dict[str, _Group] = {"all": _Group("all"), "ungrouped": _Group("ungrouped")}
        self.host_order: list[str] = []

    def group(self, name: str) -> _Group:
        if name not in self.groups:
            self.groups[name] = _Group(name)
        return self.groups[name]

    def add_host(self, group: str, host: str, variables: dict) -> None:
        if host not in self.host_order:
            self.host_order.append(host)
        self.group(group).hosts.setdefault(host, {}).update(variables)

    def parents(self) -> dict[str, set[str]]:
        parents: dict[str, set[str]] = {name: set() for name in self.groups}
        for group in self.groups.values():
            for child in group.children:
                parents.setdefault(child, set()).add(group.name)
        return parents

    def ancestors(self, name: str, parents) -> list[str]:
        seen, todo = [], [name]
        while todo:
            current = todo.pop()
            for parent in sorted(parents.get(current, ())):
                if parent not in seen and parent != name:
                    seen.append(parent)
                    todo.append(parent)
        return seen

    def depth(self, name: str, parents, memo) -> int:
        if name == "all":
            return 0
        if name not in memo:
            memo[name] = 0  # cycle guard
            memo[name] = 1 + max((self.depth(p, parents, memo) for p in parents.get(name, ())), default=0)
        return memo[name]

    def resolve(self) -> dict[str, tuple[set[str], dict]]:
        """host -> (its groups with their ancestors, merged variables)."""
        parents = self.parents()
        for name in list(self.groups):
            if name != "all" and not parents.get(name):
                parents[name] = {"all"}
        direct: dict[str, set[str]] = {h: set() for h in self.host_order}
        for group in self.groups.values():
            for host in group.hosts:
                direct[host].add(group.name)
        memo: dict[str, int] = {}
        out = {}
        for host in self.host_order:
            groups = set(direct[host])
            for group in list(groups):
                groups.update(self.ancestors(group, parents))
            if direct[host] - {"all"} == set():
                groups.add("ungrouped")
            groups.add("all")
            ordered = sorted(groups, key=lambda g: (self.depth(g, parents, memo), g))
            merged: dict = {}
            for group in ordered:
                merged.update(self.groups[group].vars)
            for group in ordered:
                merged.update(self.groups[group].hosts.get(host, {}))
            out[host] = (groups - {"all"}, merged)
        return out


# --------------------------------------------------------------------------- INI
MAX_RANGE = 10_000
"""Hosts one range may give: a lab, not a typo's million."""
_RANGE = re.compile(r"\[([0-9a-zA-Z]+):([0-9a-zA-Z]+)(?::([0-9]+))?\]")


def expand_host_pattern(pattern: str) -> list[str]:
    """``node[01:03]`` -> node01 node02 node03; ``db-[a:c]`` -> db-a db-b db-c."""
    match = _RANGE.search(pattern)
    if not match:
        return [pattern]
    start, end, step = match.group(1), match.group(2), int(match.group(3) or 1)
    head, tail = pattern[:match.start()], pattern[match.end():]
    if step < 1:
        raise ValueError(f"bad host range step {step} in [{start}:{end}:{step}]")
    if start.isdigit() and end.isdigit():
        if (int(end) - int(start)) // step > MAX_RANGE:
            raise ValueError(f"host range [{start}:{end}] is larger than {MAX_RANGE} hosts")
        width = len(start) if start.startswith("0") or len(start) == len(end) else 0
        values = [str(i).zfill(width) for i in range(int(start), int(end) + 1, step)]
    elif len(start) == 1 and len(end) == 1 and start.isalpha() and end.isalpha():
        letters = string.ascii_letters
        values = list(letters[letters.index(start):letters.index(end) + 1:step])
    else:
        raise ValueError(f"bad host range [{start}:{end}]")
    names = [name for value in values for name in expand_host_pattern(head + value + tail)]
    if len(names) > MAX_RANGE:
        raise ValueError(f"host pattern {pattern!r} gives more than {MAX_RANGE} hosts")
    return names


def _ini_value(raw: str):
    try:
        return ast.literal_eval(raw)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return raw


def _parse_ini(text: str, path) -> _Inventory:
    inv = _Inventory()
    section, kind = "ungrouped", "hosts"
    wanted_children: dict[str, int] = {}
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            match = re.fullmatch(r"\[([^\]:\s]+)(?::(\w+))?\]", line)
            if not match:
                raise InventoryError(path, number, f"not a section header: {line!r}")
            section, kind = match.group(1), match.group(2) or "hosts"
            if kind not in ("hosts", "children", "vars"):
                raise InventoryError(path, number, f"unknown section kind ':{kind}' (hosts, children or vars)")
            inv.group(section)
            continue
        try:
            words = shlex.split(line, comments=True)
        except ValueError as error:
            raise InventoryError(path, number, f"cannot split {line!r}: {error}") from None
        if not words:
            continue
        if kind == "children":
            inv.group(section).children.append(words[0])
            wanted_children.setdefault(words[0], number)
        elif kind == "vars":
            key, sep, value = line.partition("=")
            if not sep:
                raise InventoryError(path, number, f"expected key=value in [{section}:vars], got {line!r}")
            inv.group(section).vars[key.strip()] = value.strip()
        else:
            name, variables = words[0], {}
            for word in words[1:]:
                key, sep, value = word.partition("=")
                if not sep:
                    raise InventoryError(path, number, f"expected key=value after the host name, got {word!r}")
                variables[key] = _ini_value(value)
            port = re.fullmatch(r"(.+?):(\d+)", name)
            if port and "[" not in port.group(2):
                name, variables = port.group(1), {"ansible_port": int(port.group(2)), **variables}
            try:
                names = expand_host_pattern(name)
            except ValueError as error:
                raise InventoryError(path, number, str(error)) from None
            for host in names:
                inv.add_host(section, host, variables)
    for child, number in wanted_children.items():
        if child not in inv.groups:
            # as ansible-inventory does: a child group must have a section of its own
            raise InventoryError(path, number, f"group {child!r} is listed as a child but never defined")
    return inv


# --------------------------------------------------------------------------- YAML
def _parse_yaml(document, path) -> _Inventory:
    inv = _Inventory()
    if not isinstance(document, dict):
        raise InventoryError(path, 1, "a YAML inventory is a mapping of groups (all: hosts: children: vars:)")

    def group(name, body, trail):
        if name in trail:
            raise InventoryError(path, None, f"group {name!r} is its own child")
        inv.group(name)
        if body is None:
            return
        if not isinstance(body, dict):
            raise InventoryError(path, None, f"group {name!r} must be a mapping with hosts:, children:, vars:")
        unknown = set(body) - {"hosts", "children", "vars"}
        if unknown:
            raise InventoryError(path, None, f"group {name!r}: unknown key {sorted(unknown)[0]!r} (hosts, children or vars)")
        for key in ("hosts", "children", "vars"):
            if body.get(key) is not None and not isinstance(body[key], dict):
                raise InventoryError(path, None, f"group {name!r}: '{key}:' must be a mapping "
                                     f"(name: ...), not a {type(body[key]).__name__}")
        for host, variables in (body.get("hosts") or {}).items():
            if variables is not None and not isinstance(variables, dict):
                raise InventoryError(path, None, f"host {host!r} in {name!r}: its variables must be a mapping")
            try:
                expanded_hosts = expand_host_pattern(str(host))
            except ValueError as error:
                raise InventoryError(path, None, f"host {host!r}: {error}") from None
            for expanded in expanded_hosts:
                inv.add_host(name, expanded, dict(variables or {}))
        inv.group(name).vars.update(body.get("vars") or {})
        for child, child_body in (body.get("children") or {}).items():
            if child not in inv.group(name).children:
                inv.group(name).children.append(child)
            group(child, child_body, trail + (name,))

    for name, body in document.items():
        group(str(name), body, ())
    return inv


def _limit_regex(term: str) -> re.Pattern:
    try:
        return re.compile(term)
    except re.error as error:
        raise InventoryError("--limit", None, f"~{term} is not a regular expression: {error}") from None


# --------------------------------------------------------------------------- hosts
def _ssh_option(args: str | None, name: str) -> str | None:
    """``-o Name=value`` in ``ansible_ssh_common_args``/``ansible_ssh_extra_args``."""
    if not args:
        return None
    words = shlex.split(str(args))
    for index, word in enumerate(words):
        option = None
        if word == "-o" and index + 1 < len(words):
            option = words[index + 1]
        elif word.startswith("-o") and len(word) > 2:
            option = word[2:]
        if option:
            key, _, value = option.partition("=")
            if key.strip().lower() == name and value.strip():
                return value.strip()
    return None


def _ssh_config(path: str | os.PathLike | None):
    import paramiko
    path = Path(os.path.expanduser(path or "~/.ssh/config"))
    if not path.is_file():
        return None
    try:
        return paramiko.SSHConfig.from_path(str(path))
    except Exception as error:  # paramiko raises several kinds for a bad file
        raise InventoryError(path, None, f"cannot read the SSH config: {error}") from None


def _as_bool(value) -> bool:
    return str(value).strip().lower() in BECOME_TRUE


def hosts_from(inventory: _Inventory, path, ssh_config=None) -> list[Host]:
    hosts = []
    for name, (groups, variables) in inventory.resolve().items():
        # Ansible hands OpenSSH ansible_host when set, so that is what ssh_config matches.
        ssh = ssh_config.lookup(str(variables.get("ansible_host") or name)) if ssh_config else {}
        address = str(variables.get("ansible_host") or ssh.get("hostname") or name)
        port_raw = variables.get("ansible_port") or variables.get("ansible_ssh_port") or ssh.get("port") or 22
        try:
            port = int(port_raw)
        except (TypeError, ValueError):
            raise InventoryError(path, None, f"host {name!r}: ansible_port {port_raw!r} is not a number") from None
        if not 0 < port < 65536:
            raise InventoryError(path, None, f"host {name!r}: port {port} is out of range")
        user = variables.get("ansible_user") or variables.get("ansible_ssh_user") or ssh.get("user")
        key = variables.get("ansible_ssh_private_key_file") or variables.get("ansible_private_key_file")
        if not key and ssh.get("identityfile"):
            key = ssh["identityfile"][0]
        ssh_args = [variables.get("ansible_ssh_common_args"), variables.get("ansible_ssh_extra_args")]
        proxy = next(filter(None, (_ssh_option(a, "proxycommand") for a in ssh_args)),
                     ssh.get("proxycommand"))
        known_hosts = next(filter(None, (_ssh_option(a, "userknownhostsfile") for a in ssh_args)), None)
        if not known_hosts and ssh.get("userknownhostsfile"):
            known_hosts = ssh["userknownhostsfile"].split()[0]
        password = variables.get("ansible_password") or variables.get("ansible_ssh_pass")
        hosts.append(Host(
            name=name, address=address, port=port, user=str(user) if user else None,
            key_file=os.path.expanduser(str(key)) if key else None,
            become=_as_bool(variables.get("ansible_become", False)),
            groups=tuple(sorted(groups)), proxy_command=str(proxy) if proxy else None,
            known_hosts=os.path.expanduser(str(known_hosts)) if known_hosts else None,
            connection="local" if str(variables.get("ansible_connection", "")) == "local" else "ssh",
            password=str(password) if password is not None else None))
    return hosts


def load_inventory(path, ssh_config_path=None) -> list[Host]:
    """The hosts of an INI or YAML inventory file, in file order."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise InventoryError(path, None, f"cannot be read: {error.strerror or error}") from None
    except UnicodeDecodeError:
        raise InventoryError(path, None, "not a text file") from None
    inventory = None
    if path.suffix.lower() in (".yml", ".yaml") or re.match(r"\s*(---|[\w.-]+:\s*$)", text):
        try:
            document = yaml.safe_load(text)
        except yaml.YAMLError as error:
            mark = getattr(error, "problem_mark", None)
            if path.suffix.lower() in (".yml", ".yaml"):
                raise InventoryError(path, mark.line + 1 if mark else None,
                                     f"not valid YAML: {getattr(error, 'problem', error)}") from None
        else:
            if isinstance(document, dict):
                inventory = _parse_yaml(document, path)
    if inventory is None:
        inventory = _parse_ini(text, path)
    hosts = hosts_from(inventory, path, _ssh_config(ssh_config_path))
    if not hosts:
        raise InventoryError(path, None, "no hosts in this inventory")
    return hosts


def select(hosts: list[Host], pattern: str | None) -> list[Host]:
    """Ansible's ``--limit``: names or groups, globs, ``~regex``, ``!exclude``, ``&intersect``,
    joined by ``,`` or ``:``."""
    if not pattern:
        return list(hosts)

    def matches(host: Host, term: str) -> bool:
        if term == "all" or term == "*":
            return True
        if term.startswith("~"):
            regex = _limit_regex(term[1:])
            return bool(regex.search(host.name)) or any(regex.search(g) for g in host.groups)
        return any(fnmatch.fnmatchcase(name, term) for name in (host.name, *host.groups))

    terms = [t for t in re.split(r"[,:](?![^\[]*\])", pattern) if t.strip()]
    chosen: list[Host] = []
    for term in terms:
        if not term.startswith(("!", "&")):
            chosen += [h for h in hosts if matches(h, term) and h not in chosen]
    if not any(not t.startswith(("!", "&")) for t in terms):
        chosen = list(hosts)
    for term in terms:
        if term.startswith("&"):
            chosen = [h for h in chosen if matches(h, term[1:])]
        elif term.startswith("!"):
            chosen = [h for h in chosen if not matches(h, term[1:])]
    return chosen
