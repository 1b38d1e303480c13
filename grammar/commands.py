"""What a typed command line means before its output is read.

A transcript's command tells three things: which program printed the output (so the
right parser reads it), which file was read when the program is ``cat``/``tail``/
``grep``..., and whether the command *changed* the node (``sed -i`` on a config,
``service X restart``, ``iptables -A``, ``route add``) so that earlier evidence about
that thing may be stale.

>>> strip_wrappers("sudo -u nova tail -n 50 /var/log/nova/nova-api.log")
'tail -n 50 /var/log/nova/nova-api.log'
>>> read_paths("grep -n rabbit /etc/nova/nova.conf /etc/cinder/cinder.conf")
['/etc/nova/nova.conf', '/etc/cinder/cinder.conf']
>>> state_changes("sed -i 's/public_interface.*/public_interface=eth0/' /etc/nova/nova.conf")
[{'change': 'config', 'target': '/etc/nova/nova.conf'}]
"""
from __future__ import annotations

import re
import shlex

FILE_READERS = {"cat", "tail", "head", "less", "more", "tac", "zcat", "view",
                "grep", "egrep", "fgrep", "zgrep"}
GREPS = {"grep", "egrep", "fgrep", "zgrep"}

# Options of the file readers that take a value, so the value is not a path.
_VALUE_OPTIONS = {
    "tail": {"-n", "-c", "--lines", "--bytes", "-s", "--pid"},
    "head": {"-n", "-c", "--lines", "--bytes"},
    "grep": {"-e", "-f", "-m", "-A", "-B", "-C", "--max-count", "--regexp", "--file",
             "--after-context", "--before-context", "--context"},
}
_VALUE_OPTIONS["egrep"] = _VALUE_OPTIONS["fgrep"] = _VALUE_OPTIONS["zgrep"] = _VALUE_OPTIONS["grep"]

_SUDO_VALUE_OPTIONS = {"-u", "-g", "-h", "-p", "-C", "-U", "--user", "--group"}
_ENV_ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")


def words(command: str) -> list[str]:
    """Split like a shell would; a line with unbalanced quotes still splits."""
    try:
        return shlex.split(command, comments=False, posix=True)
    except ValueError:
        return command.split()


def strip_wrappers(command: str) -> str:
    """Drop what does not change which program prints: sudo, env assignments, time."""
    text = command.strip()
    while True:
        parts = text.split(None, 1)
        if not parts:
            return ""
        head = parts[0]
        rest = parts[1] if len(parts) > 1 else ""
        if head == "sudo":
            text = _strip_sudo_options(rest)
        elif head in {"time", "nice", "command", "exec", "env"} or _ENV_ASSIGNMENT.match(head):
            if not rest or rest[0] in "|;&<>":
                return text  # `env | grep OS_`: the program is env itself
            text = rest
        else:
            return text


def _strip_sudo_options(rest: str) -> str:
    tokens = rest.split()
    i = 0
    while i < len(tokens) and tokens[i].startswith("-"):
        i += 2 if tokens[i] in _SUDO_VALUE_OPTIONS else 1
    return " ".join(tokens[i:])


def pipeline(command: str) -> list[str]:
    """The stages of a pipeline, split on ``|`` outside quotes (``||`` is not a pipe)."""
    stages, current, quote = [], [], None
    i = 0
    while i < len(command):
        char = command[i]
        if quote:
            if char == quote:
                quote = None
        elif char in "'\"":
            quote = char
        elif char == "|":
            if command[i + 1:i + 2] == "|":
                current.append("||")
                i += 2
                continue
            stages.append("".join(current).strip())
            current = []
            i += 1
            continue
        current.append(char)
        i += 1
    stages.append("".join(current).strip())
    return [strip_wrappers(stage) for stage in stages if stage.strip()]


def read_paths(stage: str) -> list[str]:
    """The files a reader stage (cat, tail, grep ...) reads; [] for other programs."""
    tokens = words(stage)
    if not tokens or tokens[0] not in FILE_READERS:
        return []
    program = tokens[0]
    takes_value = _VALUE_OPTIONS.get(program, set())
    operands: list[str] = []
    pattern_given = False
    i = 1
    while i < len(tokens):
        token = tokens[i]
        if token == "--":
            operands.extend(tokens[i + 1:])
            break
        if token.startswith("-") and len(token) > 1 and not _is_number_option(program, token):
            if token in takes_value:
                if program in GREPS and token in {"-e", "--regexp", "-f", "--file"}:
                    pattern_given = True
                i += 2
                continue
            i += 1
            continue
        operands.append(token)
        i += 1
    if program in GREPS and not pattern_given and operands:
        operands = operands[1:]
    return [path for path in operands if path.startswith(("/", "~", ".")) or "/" in path
            or "." in path]


def _is_number_option(program: str, token: str) -> bool:
    # "tail -50 file" and "head -20 file" are line counts, not paths or flags with values.
    return program in {"tail", "head"} and token[1:].isdigit()


# --- commands that change a node -------------------------------------------------

_SERVICE_ACTION = re.compile(
    r"^(?:service\s+(?P<svc1>\S+)\s+(?P<act1>start|stop|restart|reload|force-reload)"
    r"|/etc/init\.d/(?P<svc2>\S+)\s+(?P<act2>start|stop|restart|reload)"
    r"|(?P<act3>start|stop|restart)\s+(?P<svc3>\S+)"
    r"|systemctl\s+(?:-\S+\s+)*(?P<act4>start|stop|restart|reload|try-restart)\s+(?P<svc4>.+))$")
_IPTABLES_CHANGE = re.compile(
    r"^(?P<prog>ip6?tables(?:-legacy|-nft)?)\s+(?P<args>.*)$")
_IPTABLES_CHANGE_OPTION = re.compile(r"(?:^|\s)(?:-[AIDRFZNXPE]|--(?:append|insert|delete|replace|flush|zero|new-chain|delete-chain|policy|rename-chain))(?=\s|$)")
_IPTABLES_TABLE = re.compile(r"(?:^|\s)(?:-t\s*|--table[ =])(\w+)")
_ROUTE_CHANGE = re.compile(r"^(?:route\s+(?:-\S+\s+)*(?:add|del)\b|ip\s+(?:-\S+\s+)*r(?:o(?:u(?:te?)?)?)?\s+(?:add|del|delete|replace|change|append|flush)\b)")
_ADDRESS_CHANGE = re.compile(r"^(?:ip\s+(?:-\S+\s+)*a(?:d(?:d(?:r(?:e(?:s(?:s)?)?)?)?)?)?\s+(?:add|del|delete|replace|change|flush)\b|ifconfig\s+\S+\s+(?:\d|add|del|inet|up|down|netmask))|^ip\s+(?:-\S+\s+)*link\s+set\b")
_SYSCTL_WRITE = re.compile(r"^sysctl\s+(?:-\S+\s+)*-w\s+(?P<key>[\w./-]+)=|^sysctl\s+-p\b")
_PROC_SYS_WRITE = re.compile(r">\s*/proc/sys/(?P<path>\S+)")
_PACKAGE_CHANGE = re.compile(r"^(?:apt-get|apt|aptitude|yum|dnf)\s+(?:-\S+\s+)*(?:install|remove|purge|reinstall)\s+(?P<pkgs>.+)$|^dpkg\s+(?:-i|--install|-r|--remove|-P|--purge)\s+(?P<pkgs2>.+)$|^pip\s+install\s+(?P<pkgs3>.+)$")
_EDITORS = {"vi", "vim", "nano", "emacs", "ed", "crudini", "openstack-config", "mcedit", "joe"}


def state_changes(command: str) -> list[dict]:
    """How a command changes its node, as ``{"change": kind, "target": what}`` items.

    Kinds: config (a file path), service (a service name), iptables (a table name),
    routes, addresses, sysctl (a key, or None for all), packages (a package name).
    """
    changes: list[dict] = []
    full = command.strip()
    for stage in pipeline(full):
        changes.extend(_stage_changes(stage))
    redirect = _PROC_SYS_WRITE.search(full)
    if redirect:
        changes.append({"change": "sysctl", "target": redirect.group("path").replace("/", ".")})
    else:
        for path in re.findall(r"(?<!>)>>?\s*(/etc/\S+)", full):
            changes.append({"change": "config", "target": path})
    return changes


def _stage_changes(stage: str) -> list[dict]:
    tokens = words(stage)
    if not tokens:
        return []
    program = tokens[0]
    if program == "sed" and any(t.startswith("-i") or t == "--in-place" for t in tokens[1:]):
        return [{"change": "config", "target": t} for t in tokens[1:] if t.startswith("/")]
    if program in _EDITORS or program == "tee":
        return [{"change": "config", "target": t} for t in tokens[1:] if t.startswith("/etc/")]
    if program in {"openstack-config", "crudini"}:
        return [{"change": "config", "target": t} for t in tokens[1:] if t.startswith("/")]
    match = _SERVICE_ACTION.match(stage)
    if match:
        service = next(match.group(g) for g in ("svc1", "svc2", "svc3", "svc4") if match.group(g))
        return [{"change": "service", "target": name.removesuffix(".service")}
                for name in service.split()]
    match = _IPTABLES_CHANGE.match(stage)
    if match and _IPTABLES_CHANGE_OPTION.search(match.group("args")):
        table = _IPTABLES_TABLE.search(match.group("args"))
        return [{"change": "iptables", "target": table.group(1) if table else "filter"}]
    if program.startswith("iptables-restore") or program.startswith("ip6tables-restore"):
        return [{"change": "iptables", "target": None}]
    if _ROUTE_CHANGE.match(stage):
        return [{"change": "routes", "target": None}]
    if _ADDRESS_CHANGE.match(stage):
        return [{"change": "addresses", "target": None}, {"change": "routes", "target": None}]
    match = _SYSCTL_WRITE.match(stage)
    if match:
        return [{"change": "sysctl", "target": match.group("key")}]
    match = _PACKAGE_CHANGE.match(stage)
    if match:
        names = match.group("pkgs") or match.group("pkgs2") or match.group("pkgs3") or ""
        return [{"change": "packages", "target": name} for name in names.split()
                if not name.startswith("-")]
    return []
