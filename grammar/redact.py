"""Secrets out of evidence before anything reads, stores or repeats it.

``redact(text)`` replaces every secret in a transcript, configuration file or log with
``***`` and leaves the rest readable, the option's name included, so that a diagnosis
can still say *which* password is set where::

    >>> redact("rabbit_password = Zq8ex")
    'rabbit_password = ***'
    >>> redact("connection = mysql+pymysql://nova:Zq8ex@10.0.0.5/nova?charset=utf8")
    'connection = mysql+pymysql://nova:***@10.0.0.5/nova?charset=utf8'
    >>> redact("export OS_PASSWORD='Zq 8ex'")
    "export OS_PASSWORD='***'"
    >>> redact("2014-08-28 16:22:33.781 3966 DEBUG x [-] body {'password': 'Zq8ex', 'user': 'nova'}")
    "2014-08-28 16:22:33.781 3966 DEBUG x [-] body {'password': '***', 'user': 'nova'}"

What counts as a secret follows the options OpenStack itself marks ``secret=True``
(nova, cinder, glance, keystone, neutron, oslo.messaging, oslo.db, keystonemiddleware):
``password``, ``*_password``, ``*_pass``, ``*_token`` (``admin_token``,
``OS_TOKEN``), ``*secret*`` (``metadata_proxy_shared_secret``, ``memcache_secret_key``),
the key options (``fixed_key``, ``metadata_encryption_key``, ``*_access_key``,
``swift_store_key``), ``server_auth``; and the password of any URL with
``user:password@`` (``connection``, ``transport_url``, ``backend_url``). They are found
as ``key = value`` lines (INI, ``env``, ``export``, ``declare -x``, YAML, with grep's
``file:line:`` in front), as ``key=value``, ``'key': 'value'`` and ``"key": "value"``
inside log lines, as command-line options (``--os-password X``, ``--pass X``,
``mysql -pX``, ``curl -u user:X``, iscsiadm's ``-n node.session.auth.password -v X``), as ``X-Auth-Token:`` headers and as a token's ``id`` in a keystone
response body.

A terminal wraps a long line into several: when a line is at least ``MIN_WRAP_WIDTH``
long, the next line is read as its possible continuation, so that a secret split by the
wrap is still found on both sides (``admin_pass`` / ``word = Zq8ex``). Lines are never
added or removed, so line numbers stay those of the input.

Where a value is ambiguous the text is redacted: hiding a non-secret is a lesser harm
than showing a secret. One exception keeps MySQL's diagnosis readable:
``(using password: YES)`` says whether a password was sent, not what it was.
"""
from __future__ import annotations

import re
from bisect import bisect_right
from itertools import accumulate

from grammar.base import keeps_readings
from grammar.digest import digest as content_digest

MASK = "***"

# The narrowest terminal a transcript is plausibly copied from; shorter lines are not
# taken to continue on the next one.
MIN_WRAP_WIDTH = 40
# How many wrapped lines are read joined at most (a 2,000-column line at width 80).
MAX_JOINED_LINES = 25

# Option and variable names whose value is a secret (matched case-insensitively, whole
# name). Names ending in "password"/"pass" or "token" may take a prefix joined by "_",
# "-" or "." (OS_PASSWORD, keystone_authtoken's admin_password, X-Auth-Token);
# "passwd" only with one (neutron's nvsd_passwd), for nsswitch.conf's "passwd: files".
_PASSWORD_NAME = r"(?:[\w.\-]*[_.\-](?:password|passwd|pass)|password|pass)"
_TOKEN_NAME = r"(?:[\w.\-]*[_.\-])?token"
_OTHER_NAME = (
    r"[\w.\-]*secret[\w.\-]*"
    r"|(?:[\w.\-]*[_.\-])?(?:fixed|encryption|access|store|swift|customer|api|private)_key"
    r"|server_?auth"
)
_NAME = rf"(?:{_PASSWORD_NAME}|{_TOKEN_NAME}|{_OTHER_NAME})"
# A name is whole: not the tail of a longer word ("bypass", "authtoken") nor followed
# by more of one.
_NAME_START = r"(?<![\w.\-])"
_NAME_END = r"(?![\w.\-])"

# Any line that might hold a secret holds one of these (the cheap first look).
_TRIGGER_WORDS = r"pass|token|secret|_key|server_?auth|://|mysql|authoriz|-u|--user"
_TRIGGER = re.compile(_TRIGGER_WORDS, re.IGNORECASE)
# The same on lower-cased text: several times faster than IGNORECASE on a long text.
_LOWER_TRIGGER = re.compile(_TRIGGER_WORDS)
# The same words as plain strings ("--user" holds "-u").
_TRIGGER_LITERALS = ("pass", "token", "secret", "_key", "serverauth", "server_auth", "://",
                     "mysql", "authoriz", "-u")

# key = value as the whole line: INI (oslo.config's "=" or ":"), env, export,
# declare -x (bash's export -p), YAML; grep's "file:" and "12:" / "12-" in front.
_WHOLE_LINE = re.compile(
    r"^(?P<lead>[ \t]*(?:[^\s:=]+:)?(?:\d+[:-])?[ \t]*(?:[#;][ \t]*)?"
    r"(?:(?:export|declare[ \t]+-x|set|setenv)[ \t]+)?)"
    rf"(?P<key>{_NAME}){_NAME_END}[ \t]*(?:=|:(?!//))[ \t]*(?P<value>.*?)[ \t]*$",
    re.IGNORECASE,
)
# 'key': 'value', "key": "value", key='value', key="value" (u'' and b'' from Python 2
# reprs) anywhere in a line.
_QUOTED = re.compile(
    rf"""(?:[ub]?(?P<kq>['"]){_NAME}(?P=kq)|{_NAME_START}{_NAME}{_NAME_END})"""
    r"""[ \t]*[:=][ \t]*[ub]?(?P<q>['"])(?P<value>(?:\\.|(?!(?P=q)).)*)(?P=q)""",
    re.IGNORECASE,
)
# key=value unquoted inside a line (log lines, URL query strings); "key: value" too
# when a blank follows the colon, and "key:value" for password names (cinder's
# replication_device = backend_id:x,san_password:y) but not for tokens
# (keystonemiddleware.auth_token:filter_factory names a module).
_INLINE = re.compile(
    rf"{_NAME_START}(?:{_NAME}{_NAME_END}[ \t]*(?:=[ \t]*|:[ \t]+)"
    rf"|(?:{_PASSWORD_NAME}|[\w.\-]*secret[\w.\-]*){_NAME_END}:)"
    r"(?!YES\b|NO\b)(?P<value>[^\s'\",;&)}\]]+)",
    re.IGNORECASE,
)
# Command-line options: --os-password X, --pass X, --os-token X, --password=X.
_OPTION = re.compile(
    rf"(?<!\S)--?{_NAME}{_NAME_END}(?:=|[ \t]+)(?P<q>['\"])?(?P<value>(?(q)(?:(?!(?P=q)).)*|[^\s'\"]+))",
    re.IGNORECASE,
)
# mysql -uroot -pSECRET (a bare -p prompts instead, and is no secret), in each command
# of a line that runs mysql.
_MYSQL = re.compile(r"(?i)\bmysql(?:admin|dump|check|import|show)?\b")
_COMMAND_SEPARATOR = re.compile(r"[|;&]")
_MYSQL_P = re.compile(r"(?<=[ \t])-p['\"]?(?P<value>[^\s'\"|;&]+)")
# iscsiadm --op update -n node.session.auth.password -v SECRET (as nova and cinder log
# the command they run).
_NAME_VALUE_OPTIONS = re.compile(
    r"(?i)(?<!\S)-n[ \t]+\S*(?:password|passwd|secret)\S*[ \t]+-v[ \t]+(?P<value>[^\s'\"]+)")
# curl -u user:password / --user user:password (the user stays).
_USER_OPTION = re.compile(r"(?<!\S)(?:-u|--user)(?:[ \t]+|=)['\"]?[^\s:'\"]+:(?P<value>[^\s'\"]+)")
# Authorization: Basic dXNlcjpwYXNz / Bearer ... (the scheme stays).
_AUTHORIZATION = re.compile(
    r"(?i)\bauthorization['\"]?[ \t]*[:=][ \t]*['\"]?(?:[A-Za-z]+[ \t]+)?(?P<value>[^\s'\",;]+)")
# A keystone response body's token: "token": {"issued_at": ..., "id": "MIIQ..."}.
_TOKEN_ID = re.compile(r"""(?i)['"]token['"]:[ \t]*\{[^{}]{0,400}?['"]id['"]:[ \t]*u?['"](?P<value>[^'"]*)['"]""")
# scheme:// then user:password@host, repeated after "," (oslo.messaging's
# rabbit://u1:p1@h1,u2:p2@h2/). The password runs to the first "@" (RFC 3986 has
# "@" percent-encoded inside it), as SQLAlchemy and oslo.messaging read it.
_URL_START = re.compile(r"(?i)\b[a-z][a-z0-9+.\-]*://")
_USERINFO = re.compile(r"(?P<user>[^\s:@/,'\"]*):(?P<value>[^\s@'\"]*?)@(?P<host>[^\s,/@'\"]*)(?P<more>,?)")

# Every secret name (_NAME) holds one of these words, lower-cased.
_NAME_WORDS = ("pass", "token", "secret", "_key", "serverauth", "server_auth")
# Each pattern with the words one of which it cannot match without (None: a secret name).
_INLINE_PATTERNS = ((_QUOTED, None), (_INLINE, None), (_OPTION, None),
                    (_NAME_VALUE_OPTIONS, ("pass", "secret")), (_USER_OPTION, ("-u",)),
                    (_AUTHORIZATION, ("authoriz",)), (_TOKEN_ID, ("token",)))

# What a fresh line looks like, as opposed to the continuation of a wrapped one: a new
# option, section, log record, prompt or indented line.
# a log record's first line: a wrap that cut a row right before a timestamp is unlikely
_RECORD_START = re.compile(r"\d{4}-\d\d-\d\d[ T]\d\d:\d\d")
_FRESH_LINE = re.compile(
    r"^(?:$|[ \t]|[#;\[]|\d{4}-\d\d-\d\d|[\w.\-]+[ \t]*[=:]|\S*[$#>][ \t])")


def _whole_line_value(match: re.Match) -> tuple[int, int] | None:
    start, end = match.span("value")
    value = match.group("value")
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        start, end = start + 1, end - 1
    return (start, end) if end > start else None


def _url_spans(line: str) -> list[tuple[int, int]]:
    spans = []
    for start in _URL_START.finditer(line):
        position = start.end()
        while True:
            userinfo = _USERINFO.match(line, position)
            if not userinfo:
                break
            if userinfo.end("value") > userinfo.start("value"):
                spans.append(userinfo.span("value"))
            if not userinfo.group("more"):
                break
            position = userinfo.end()
    return spans


# Lines looked at before, with their spans: logs and listings repeat whole lines (the
# same keystonemiddleware.auth_token warning, the same URL), and a line's secrets are
# where they are whatever surrounds it. A line is kept by its digest, never as text: the
# secrets it may hold do not stay in a long-lived process (the chat's server). Bounded:
# it starts afresh when full.
_SPANS_SEEN: dict[tuple[bytes, bool], tuple[tuple[int, int], ...]] = {}
_MAX_LINES_SEEN = 8192
keeps_readings(_SPANS_SEEN.clear)


def secret_spans(line: str, whole_line: bool = True) -> list[tuple[int, int]]:
    """The (start, end) spans of the secrets in one line, in any order, maybe overlapping;
    ``whole_line=False`` leaves out the key = value reading of the whole line."""
    key = (content_digest(line.encode("utf-8", "surrogatepass")).digest(), whole_line)
    seen = _SPANS_SEEN.get(key)
    if seen is None:
        if len(_SPANS_SEEN) >= _MAX_LINES_SEEN:
            _SPANS_SEEN.clear()
        seen = _SPANS_SEEN[key] = tuple(_spans_in(line, whole_line))
    return list(seen)


def _spans_in(line: str, whole_line: bool) -> list[tuple[int, int]]:
    if not _TRIGGER.search(line):
        return []
    # Each pattern needs one of its words in the line; on ASCII text (where IGNORECASE
    # and lower() agree) the patterns whose words are absent are not run: a log line
    # holding a URL is not searched for passwords seven times over.
    lowered = line.lower() if line.isascii() else None
    spans: list[tuple[int, int]] = []
    names = lowered is None or any(word in lowered for word in _NAME_WORDS)
    whole = _WHOLE_LINE.match(line) if whole_line and names else None
    if whole:
        span = _whole_line_value(whole)
        if span:
            spans.append(span)
    for pattern, words in _INLINE_PATTERNS:
        if lowered is not None and not (names if words is None else any(w in lowered for w in words)):
            continue
        for match in pattern.finditer(line):
            if match.end("value") > match.start("value"):
                spans.append(match.span("value"))
    if lowered is None or "://" in lowered:
        spans.extend(_url_spans(line))
    if lowered is None or "mysql" in lowered:
        spans.extend(_mysql_password_spans(line))
    return spans


def _mysql_password_spans(line: str) -> list[tuple[int, int]]:
    if not _MYSQL.search(line):
        return []
    spans, start = [], 0
    for command in _COMMAND_SEPARATOR.split(line):
        if _MYSQL.search(command):
            spans.extend((start + match.start("value"), start + match.end("value"))
                         for match in _MYSQL_P.finditer(command))
        start += len(command) + 1
    return spans


def _merged(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[list[int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return [(start, end) for start, end in merged]


def _masked(line: str, spans: list[tuple[int, int]]) -> str:
    parts, position = [], 0
    for start, end in _merged(spans):
        parts.append(line[position:start])
        parts.append(MASK)
        position = end
    parts.append(line[position:])
    return "".join(parts)


def _leading_run(line: str) -> int:
    """Where the first run of non-blank characters of a line ends."""
    match = re.match(r"[^\s'\",;&)}\]]*", line)
    return match.end()


def redact(text: str) -> str:
    """``text`` with every secret replaced by ``***``; same lines, same line count."""
    lowered = text.lower()
    if len(lowered) != len(text):  # a few characters lower-case to two (U+0130)
        lowered, trigger = text, _TRIGGER
    else:
        trigger = _LOWER_TRIGGER
    if trigger is _LOWER_TRIGGER:
        # Most text holds no secret: a substring test per word (on the lines joined, so
        # that a word a wrap cut is found too) is several times faster than the pattern.
        joined = lowered.replace("\n", "")
        if not any(word in joined for word in _TRIGGER_LITERALS):
            return text
    elif not trigger.search(lowered) and not trigger.search(lowered.replace("\n", "")):
        return text
    lines = text.split("\n")
    spans: dict[int, list[tuple[int, int]]] = {}
    # Lines holding a trigger word, found in one pass over the text.
    line_starts = [0, *accumulate(len(line) + 1 for line in lines)]
    hit_lines = {bisect_right(line_starts, match.start()) - 1 for match in trigger.finditer(lowered)}
    del lowered
    for index in sorted(hit_lines):
        found = secret_spans(lines[index])
        if found:
            spans[index] = found
    _wrapped_spans(lines, hit_lines, spans)
    if not spans:
        return text
    for index, found in spans.items():
        lines[index] = _masked(lines[index], found)
    return "\n".join(lines)


def _wrapped_spans(lines: list[str], hit_lines: set[int], spans: dict) -> None:
    """Adds the spans of secrets a terminal's wrap splits between lines.

    Consecutive lines of one length, at least ``MIN_WRAP_WIDTH`` (a terminal's width:
    a wrap cuts every row but the last at it), and the line after them are read joined,
    as the one line they may have been, unless a line's own secret runs to its end and
    the next line starts afresh (then it is a short value, not a wrapped one). A log's
    records, long, each of its own length and starting with its time, are not joined.
    """
    count, index = len(lines), 0
    while index < count - 1:
        width = len(lines[index])
        if width < MIN_WRAP_WIDTH:
            index += 1
            continue
        last = index
        while (last + 1 < count and last - index < MAX_JOINED_LINES
               and len(lines[last]) == width and not _RECORD_START.match(lines[last + 1])
               and not _ends_alone(lines, last, spans)):
            last += 1
        if last > index and _may_hold_secret(lines, index, last, hit_lines):
            _add_joined_spans(lines, index, last, spans)
        index = last if last > index and len(lines[last]) >= MIN_WRAP_WIDTH else last + 1
    for index in list(spans):
        _continue_long_value(lines, index, spans)


def _ends_alone(lines: list[str], index: int, spans: dict) -> bool:
    line = lines[index]
    return any(end >= len(line) for _, end in spans.get(index, ())) \
        and bool(_FRESH_LINE.match(lines[index + 1]))


def _may_hold_secret(lines: list[str], first: int, last: int, hit_lines: set[int]) -> bool:
    if any(index in hit_lines for index in range(first, last + 1)):
        return True
    return any(_TRIGGER.search(lines[index][-16:] + lines[index + 1][:16])
               for index in range(first, last))


def _add_joined_spans(lines: list[str], first: int, last: int, spans: dict) -> None:
    starts = [0]
    for index in range(first, last + 1):
        starts.append(starts[-1] + len(lines[index]))
    joined = "".join(lines[first:last + 1])
    found = secret_spans(joined, whole_line=False)
    whole = _WHOLE_LINE.match(joined)
    if whole and _whole_line_value(whole):
        # A key = value line's value ends with its line (or the first run of the next,
        # where the wrap cut it), not with the joined text.
        start, end = _whole_line_value(whole)
        line_of_start = bisect_right(starts, start) - 1
        end = min(end, starts[line_of_start + 1])
        if end == starts[line_of_start + 1] and first + line_of_start < last:
            end += _leading_run(lines[first + line_of_start + 1])
        found.append((start, end))
    for start, end in found:
        for offset, index in enumerate(range(first, last + 1)):
            line_start, line_end = starts[offset], starts[offset + 1]
            if start < line_end and end > line_start:
                spans.setdefault(index, []).append(
                    (max(start, line_start) - line_start, min(end, line_end) - line_start))


def _continue_long_value(lines: list[str], index: int, spans: dict) -> None:
    """A secret longer than a terminal line (a PKI token) fills whole lines: while one
    line is all secret, the next line's first run is the secret's tail."""
    while index + 1 < len(lines):
        line = lines[index]
        if len(line) < MIN_WRAP_WIDTH or (0, len(line)) not in _merged(spans.get(index, [])):
            return
        following = lines[index + 1]
        run = _leading_run(following)
        if not run:
            return
        spans.setdefault(index + 1, []).append((0, run))
        index += 1
