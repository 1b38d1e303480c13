"""Whether a service runs: what init systems and service tools say about it.

Commands: ``service X status|start|stop|restart``, ``status X`` / ``start X`` /
``stop X`` / ``restart X`` (upstart), ``/etc/init.d/X status``, ``systemctl status X``
(and start/stop/restart), ``service --status-all``, ``openstack-service status``,
``rabbitmqctl status``.  Forms read:

* upstart: ``nova-network start/running, process 2168``, ``nova-network stop/waiting``,
  ``stop: Unknown instance:``, ``start: Job is already running: nova-api``;
* sysvinit/LSB: `` * rabbitmq-server is not running``, ``dbus is not running ... failed!``,
  ``openstack-nova-compute (pid  2345) is running...``, ``openstack-nova-compute is stopped``,
  and the start/stop announcements `` * Restarting message broker rabbitmq-server  [ OK ]``,
  ``Starting system message bus: dbus.``, ``Starting openstack-nova-compute:  [  OK  ]``;
* ``X: unrecognized service``;
* systemd: ``● nova-api.service - OpenStack Compute API`` with its ``Loaded:``,
  ``Active: active (running) since ...`` and ``Main PID: 1234 (nova-api)`` lines
  (journal lines and the rest of the unit's report are skipped), ``Unit X.service
  could not be found.``, ``Job for X.service failed ...``;
* rabbitmqctl: ``Status of node rabbit@controller ...`` followed by ``[{pid,9527},``
  (or ``OS PID: 9527``) when the node runs, or ``Error: unable to connect to node
  rabbit@controller: nodedown`` (3.7 on: no header, ``Error: unable to perform an
  operation on node 'rabbit@controller'. ...`` and its diagnostics).

Record (one per service state reported)::

    {"type": "service_status", "line": int, "service": str, "running": bool,
     "state": str, "pid": int | None}

``service`` is the name as printed (``.service`` dropped from a systemd unit; the node
name for rabbitmqctl), or the name from the command when the output does not name the
service (upstart's ``Unknown instance``, the announcements, whose wording is free).
``state`` is what was printed: ``start/running``, ``stop/waiting``, ``active (running)``,
``inactive (dead)``, ``failed (Result: exit-code)``, ``not-found``, ``is stopped``,
``is not running``, ``dead but pid file exists``, ``unrecognized service``,
``already running``, ``unknown instance``, or for an announcement ``started``,
``stopped``, ``restarted``, ``failed to start`` ... (``starting`` when no result was
printed).  ``running`` is true only when the output says the service is up: upstart
``start/running`` (``post-start``, ``spawned``), systemd ``active``/``reloading``,
``is running``/``is active``, a successful start/restart, ``[ + ]``, a rabbit node that
answers.  ``pid`` is the main process (upstart ``process N``, RHEL ``(pid N)``, systemd
``Main PID`` of a live process, rabbit's ``{pid,N}``).  A restart prints two states
(stop, then start): the last record of a service is its final state.

Worked example, ``service nova-network restart`` on Ubuntu 14.04::

    nova-network stop/waiting
    nova-network start/running, process 2168

gives ``{"service": "nova-network", "running": False, "state": "stop/waiting", "pid": None}``
(line 1) and ``{"service": "nova-network", "running": True, "state": "start/running",
"pid": 2168}`` (line 2).
"""
from __future__ import annotations

import re
from pathlib import Path

from grammar.lark_runtime import LarkError, Token, Transformer

from grammar.base import LazyLark, LineReadings, ParseResult, Problem, head_lines, lark_cache, line_problem, text_lines

KIND = "service_status"
# The facts this kind gives, each field in words (collected by kb/schema.py into
# rules/FACTS.md; node, type and prov are on every fact).
FACT_TYPES = {
    "service_status": {
        "doc": "what an init system or service tool on NODE says about a service",
        "fields": {
            "service": "the service's name as printed (nova-network, rabbit@controller ...)",
            "running": "true when it runs",
            "state": "the state as printed (start/running, is not running, active (running) ...)",
            "pid": "its process id, or empty",
        },
    },
}

COMMANDS = re.compile(
    r"^\s*(?:service\s+(?:[\w@.:-]+\s+(?:status|start|stop|restart|reload|force-reload|try-restart"
    r"|condrestart)\b|--status-all\b)"
    r"|(?:start|stop|restart|reload|status)\s+[\w@.-]+\s*$"
    r"|initctl\s+(?:status|start|stop|restart|reload)\b"
    r"|/etc/init\.d/\S+\s+(?:status|start|stop|restart|reload|force-reload)\b"
    r"|systemctl\s+(?:-\S+\s+)*(?:status|start|stop|restart|reload|try-restart|reload-or-restart)\b"
    r"|openstack-service\s+(?:status|start|stop|restart)\b"
    r"|rabbitmqctl\s+(?:-n\s+\S+\s+)?status\b)"
)
FILES = None

_COMMAND_SERVICE = (
    re.compile(r"\bservice\s+([\w@.:-]+)\s+\w"),
    re.compile(r"/etc/init\.d/([\w@.:-]+)"),
    re.compile(r"^\s*(?:start|stop|restart|reload|status)\s+([\w@.:-]+)"),
    re.compile(r"\binitctl\s+\w+\s+([\w@.:-]+)"),
    re.compile(r"\bsystemctl\s+(?:-\S+\s+)*\S+\s+([\w@.:\\-]+)"),
)
_UNIT_SUFFIX = re.compile(r"\.service$")
_RUNNING_UPSTART = ("/running", "/post-start", "/spawned")
_ACTION_WORD = {"Starting": "start", "Stopping": "stop", "Restarting": "restart",
                "Reloading": "reload", "Shutting down": "shut down"}
_ACTION_DONE = {"start": "started", "stop": "stopped", "restart": "restarted",
                "reload": "reloaded", "shut down": "shut down"}
_ACTION_ING = {"start": "starting", "stop": "stopping", "restart": "restarting",
               "reload": "reloading", "shut down": "shutting down"}
_NODE_IN_ERROR = re.compile(r"node '?([^\s':]+@[^\s':.]+(?:\.[^\s':.]+)*)'?")
_LOOKS = re.compile(
    r"^\s*(?:[\w@.+-]+ (?:\([^)]*\) )?(?:start|stop)/[\w-]+(?:, process \d+)?$"
    r"|(?:start|stop|restart|status): (?:Unknown instance:|Unknown job:|Job is already running:)"
    r"|[●○×↻] [\w@:.\\-]+\.\w+(?: - .*)?$"
    r"|(?:\* |\[ ?(?:ok|FAIL|info|\.\.\.\.) ?\] )?[\w@.+-]+ is (?:not )?running(?: \.\.\. ?failed!|\.|\.\.\.)?$"
    r"|[\w@.+-]+ \(pid +\d+(?: +\d+)*\) is (?:running\.\.\.|active)$|[\w@.+-]+ is stopped$"
    r"|[\w@.+-]+: unrecognized service$"
    r"|\* (?:Starting|Stopping|Restarting|Reloading) "
    r"|(?:Starting|Stopping|Restarting|Reloading) .*(?:\[ *(?:OK|ok|fail|FAILED) *\]|\.\.\. ?done\.?|: [\w@.+-]+\.|\.\.\. \(warning\)\.)\s*$"
    r"|Status of node \S+ \.\.\.$|Unit [\w@:.\\-]+ could not be found\.$|\[ [+?-] \]  \S"
    r"|Error: unable to (?:connect to|perform an operation on) node )"
)


class _ToLine(Transformer):
    """One line as a tagged tuple; the driver below makes the records."""

    def start(self, children):
        child = children[0]
        if isinstance(child, Token):  # SYSTEMCTL_HINT, SYSTEMD_OFFLINE: nothing to record
            return ("skip",)
        return child

    def upstart_job(self, children):
        name, _instance, state, _process, pid = children
        return ("state", str(name), str(state), str(state).endswith(_RUNNING_UPSTART),
                None if pid is None else int(pid))

    def upstart_message(self, children):
        kind = children[1].type
        if kind == "ALREADY_RUNNING":
            return ("state", str(children[2]), "already running", True, None)
        if kind == "UNKNOWN_INSTANCE":
            return ("state", None, "unknown instance", False, None)
        if kind == "UNKNOWN_JOB":
            return ("state", str(children[2]), "unknown job", False, None)
        if kind == "JOB_FAILED_TO_START":
            return ("state", None, "failed to start", False, None)
        return ("upstart_said", f"{children[0]} {children[1]}")

    def sysv_status(self, children):
        _mark, name, pids, state, _tail = children
        pid = None if pids is None else int(re.findall(r"\d+", pids)[0])
        return ("state", str(name), str(state), str(state) in ("is running", "is active"), pid)

    def unrecognized(self, children):
        return ("state", str(children[0]), "unrecognized service", False, None)

    def action(self, children):
        _mark, verb, text, result = children
        return ("action", _ACTION_WORD[str(verb)], "" if text is None else str(text).strip(),
                None if result is None else str(result))

    def action_result(self, children):
        return ("action_result", str(children[0]))

    def status_all_row(self, children):
        mark, name = children
        sign = str(mark)[2]
        if sign == "?":  # the script has no status command: nothing is known
            return ("skip",)
        return ("state", str(name), str(mark), sign == "+", None)

    def unit_header(self, children):
        _mark, unit, _description = children
        return ("unit", _UNIT_SUFFIX.sub("", str(unit)))

    def unit_loaded(self, children):
        return ("unit_loaded", str(children[1]))

    def unit_active(self, children):
        return ("unit_active", str(children[1]))

    def unit_main_pid(self, children):
        _key, pid, rest = children
        # "(code=exited, status=1/FAILURE)": the process is gone.
        alive = rest is None or not str(rest).startswith("(code=")
        return ("unit_pid", int(pid) if alive else None)

    def unit_missing(self, children):
        return ("state", _UNIT_SUFFIX.sub("", str(children[2])), "not-found", False, None)

    def job_failed(self, children):
        return ("state", _UNIT_SUFFIX.sub("", str(children[1])), "failed", False, None)

    def rabbit_node(self, children):
        return ("rabbit_node", str(children[1]).strip("'"))

    def rabbit_error(self, children):
        return ("rabbit_error", "" if children[1] is None else str(children[1]))

    def rabbit_pid(self, children):
        return ("rabbit_pid", int(re.findall(r"\d+", "".join(children))[0]))


_PARSER = LazyLark(
    (Path(__file__).parent / "service_status.lark").read_text(),
    parser="lalr",
    cache=lark_cache(__file__),
    lexer="contextual",
    maybe_placeholders=True,
    transformer=_ToLine(),
)

# Each distinct line read by lark once per process (base.LineReadings).
_READ = LineReadings(lambda line, _start: _PARSER.parse(line))


def _command_service(command: str) -> str | None:
    for pattern in _COMMAND_SERVICE:
        found = pattern.search(command)
        if found:
            return _UNIT_SUFFIX.sub("", found[1])
    return None


def _announced_name(text: str) -> str | None:
    """The service an announcement names, when the command does not say it."""
    text = text.rstrip(" .")
    if text.endswith("(warning)") and ": " in text:
        # Debian's log_warning_msg right after log_daemon_msg's name, glued to it:
        # "RabbitMQ Messaging Server: rabbitmq-serverFAILED - check ... (warning)".
        glued = text.split(": ", 1)[1].split()
        name = re.match(r"[^A-Z\s]*", glued[0])[0] if glued else ""
        if name:
            return name
    if ":" in text:
        before, after = text.rsplit(":", 1)
        after = after.strip().rstrip(".")
        # Debian "system message bus: dbus", RHEL "openstack-nova-compute:"
        return after.split()[-1] if after else (before.split() or [None])[0]
    words = text.split()
    return words[-1] if words else None  # Ubuntu "message broker rabbitmq-server"


def _action_outcome(verb: str, text: str, result: str | None) -> tuple[str, bool] | None:
    """(state, running) for an announcement; None when no result was printed."""
    if result is None:
        # Debian's log_end_msg ends a successful "Desc: name" announcement with ".".
        # After a log_warning_msg ("... (warning).") it prints its "." or " failed!" on
        # the next line: no result yet.
        if (":" in text and text.rstrip().endswith(".") and not text.rstrip().endswith("...")
                and not text.rstrip().endswith("(warning).")):
            result = "."
        else:
            return None
    failed = "fail" in result.lower()
    if failed:
        return f"failed to {verb}", verb == "stop"
    return _ACTION_DONE[verb], verb in ("start", "restart", "reload")


def _record(line: int, service: str, state: str, running: bool, pid: int | None) -> dict:
    return {"type": "service_status", "line": line, "service": service, "running": running,
            "state": state, "pid": pid}


def looks_like(text: str) -> bool:
    lines = [l for l in head_lines(text, 10) if l.strip()]
    return bool(lines) and bool(_LOOKS.match(lines[0]))


def parse(text: str, command: str = "") -> ParseResult:
    result = ParseResult()
    from_command = _command_service(command)
    unit: dict | None = None      # the systemd unit whose report is being read
    rabbit: dict | None = None    # the rabbitmqctl report being read
    pending: dict | None = None   # an announcement still waiting for its "...done."
    not_found = False             # the unit being read has "Loaded: not-found"

    def close_unit() -> None:
        nonlocal unit
        if unit is not None:
            if unit["state"] is None:
                result.problems.append(Problem(
                    unit["line"], f"systemd unit {unit['service']}: no Active: line (output cut?)"))
            else:
                result.records.append(unit)
        unit = None

    def close_rabbit() -> None:
        nonlocal rabbit
        if rabbit is not None:
            if rabbit["state"] is None:
                result.problems.append(Problem(rabbit["line"], f"rabbitmq node {rabbit['service']}: "
                                               "no status after the header (output cut?)"))
            else:
                result.records.append(rabbit)
        rabbit = None

    for lineno, raw in enumerate(text_lines(text), start=1):
        line = raw.rstrip()
        if not line.strip():
            continue
        try:
            parsed = _READ(line, "")
        except LarkError as error:
            if unit is not None or rabbit is not None:
                continue  # the rest of a unit's report (CGroup, journal) or of rabbit's
            result.problems.append(line_problem(lineno, error, "a service status"))
            continue
        tag = parsed[0]
        if tag == "skip":
            continue
        if unit is not None:
            if tag == "unit_loaded":
                # "Loaded: not-found": the unit file is missing, whatever Active: says.
                not_found = parsed[1] == "not-found"
                continue
            if tag == "unit_active":
                unit["state"] = "not-found" if not_found else parsed[1]
                unit["running"] = parsed[1].split()[0] in ("active", "reloading")
                continue
            if tag == "unit_pid":
                unit["pid"] = parsed[1]
                continue
            if tag not in ("unit", "state"):
                continue  # journal lines that happen to read as something else
            close_unit()
        if rabbit is not None:
            if tag == "rabbit_error":
                rabbit["state"], rabbit["running"] = parsed[1] or "error", False
                continue
            if tag == "rabbit_pid":
                if rabbit["state"] is None:
                    rabbit["state"], rabbit["running"], rabbit["pid"] = "running", True, parsed[1]
                continue
            if tag != "rabbit_node" and tag not in ("state", "unit", "action"):
                continue
            close_rabbit()
        if tag == "action_result":
            if pending is None:
                result.problems.append(Problem(lineno, "a result with no start/stop announcement before it"))
                continue
            outcome = _action_outcome(pending["_verb"], "", parsed[1])
            pending["state"], pending["running"] = outcome
            pending.pop("_verb")
            pending = None
            continue
        if pending is not None:
            pending.pop("_verb", None)
            pending = None
        if tag == "state":
            _, name, state, running, pid = parsed
            name = name or from_command
            if name is None:
                result.problems.append(Problem(lineno, f"upstart said '{state}' but no service is named"))
                continue
            result.records.append(_record(lineno, name, state, running, pid))
        elif tag == "upstart_said":
            result.problems.append(Problem(lineno, f"upstart refused: {parsed[1]}"))
        elif tag == "action":
            _, verb, text_, marker = parsed
            name = from_command or _announced_name(text_)
            if name is None:
                result.problems.append(Problem(lineno, "an announcement that names no service"))
                continue
            outcome = _action_outcome(verb, text_, marker)
            if outcome is None:
                record = _record(lineno, name, _ACTION_ING[verb], False, None)
                record["_verb"] = verb
                pending = record
            else:
                record = _record(lineno, name, outcome[0], outcome[1], None)
            result.records.append(record)
        elif tag == "unit":
            unit = _record(lineno, parsed[1], None, False, None)
            not_found = False
        elif tag in ("unit_loaded", "unit_active", "unit_pid"):
            result.problems.append(Problem(lineno, "a systemd unit field with no unit header before it"))
        elif tag == "rabbit_node":
            rabbit = _record(lineno, parsed[1], None, False, None)
        elif tag == "rabbit_error":
            found = _NODE_IN_ERROR.search(parsed[1])
            name = found[1] if found else (from_command or "rabbitmq")
            # rabbitmqctl 3.7+ prints no "Status of node" header for a node it cannot
            # reach: the error opens its report (the diagnostics that follow).
            rabbit = _record(lineno, name, parsed[1] or "error", False, None)
        elif tag == "rabbit_pid":
            result.problems.append(Problem(lineno, "a rabbit pid with no 'Status of node' before it"))
    close_unit()
    close_rabbit()
    if pending is not None:
        pending.pop("_verb", None)
    return result
