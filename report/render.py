"""A diagnosis as a person reads it (text, markdown, html) or a program does (json).

Every format shows, for each root cause: where, why in this lab's own values, the
steps of reasoning, the evidence lines with their source and line number, and the fix.
"""
from __future__ import annotations

import json
import re

from kb.diagnose import Diagnosis, Finding

# Characters that must not reach a terminal or a page as they are: control characters
# (a pasted ESC sequence could rewrite the reader's terminal), C1 controls, lone
# surrogates (no encoder writes them) and the bidirectional overrides that make text
# read other than it is.
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff\u2028\u2029"
                     "\u202a-\u202e\u2066-\u2069]")


def _escape_char(match: re.Match) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def safe_text(text: str) -> str:
    """Text with every unsafe character shown as its escape (``\\x1b``)."""
    return _UNSAFE.sub(_escape_char, text)


def render(diagnosis: Diagnosis, fmt: str) -> str:
    report = {"text": as_text, "json": as_json, "markdown": as_markdown, "html": as_html}[fmt](diagnosis)
    return report if fmt == "json" else safe_text(report)


def _json_escape_char(match: re.Match) -> str:
    return f"\\u{ord(match.group()):04x}"


def as_json(diagnosis: Diagnosis) -> str:
    # json escapes C0 controls itself; C1, surrogates and overrides are escaped here
    report = json.dumps(diagnosis.as_json(), indent=2, ensure_ascii=False)
    return _UNSAFE.sub(_json_escape_char, report) + "\n"


def _headline(diagnosis: Diagnosis) -> str:
    established = sum(f.status == "established" for f in diagnosis.findings)
    possible = len(diagnosis.findings) - established
    parts = []
    if established:
        parts.append(f"{established} root cause{'s' if established != 1 else ''} found")
    if possible:
        parts.append(f"{possible} possible cause{'s' if possible != 1 else ''} to tell apart")
    if not parts:
        parts.append("no root cause found")
    return ", ".join(parts) + f" ({diagnosis.facts} facts read)"


def _where(finding: Finding) -> str:
    where = f"on {finding.node}" if finding.node else "node unknown"
    return where + (f", service {finding.service}" if finding.service else "")


def _evidence_line(line: dict) -> tuple[str, str, str]:
    place = f"{line['source']}:{line['line']}" if line.get("line") else str(line["source"])
    context = " ".join(x for x in (line.get("node") or "", f"$ {line['command']}" if line.get("command") else "") if x)
    return place, context, line.get("text", "")


def as_text(diagnosis: Diagnosis) -> str:
    out = [f"stackdoc: {_headline(diagnosis)}", ""]
    for number, finding in enumerate(diagnosis.findings, 1):
        out.append(f"{number}. [{finding.status}] {finding.cause} — {_where(finding)}")
        out.append(f"   {finding.title}")
        out.append("")
        out.append("   Why:")
        out.extend(_wrap(finding.explanation, "     "))
        if finding.reasoning:
            out.append("   How we know:")
            out.extend(f"     - {step}" for step in finding.reasoning)
        out.append("   Evidence:")
        for line in finding.evidence:
            place, context, text = _evidence_line(line)
            out.append(f"     {place}  ({context})" if context else f"     {place}")
            out.append(f"       {text}")
        if finding.decide_by:
            out.append("   To tell the possibilities apart:")
            out.extend(f"     - {step}" for step in finding.decide_by)
        out.append("   Fix:")
        out.extend(f"     {i}. {step}" for i, step in enumerate(finding.fix, 1))
        out.append("")
    out.extend(_trailer_text(diagnosis))
    return "\n".join(out).rstrip() + "\n"


def _trailer_text(diagnosis: Diagnosis) -> list[str]:
    out = []
    if diagnosis.left_out:
        # a limit was reached: what was not looked at can hide a cause, so say it first
        out.append("Left out (a limit was reached; causes may be missing):")
        out.extend(f"  - {note}" for note in diagnosis.left_out)
        out.append("")
    if diagnosis.superseded:
        out.append("Evidence made stale by later changes (later evidence wins):")
        for change in diagnosis.superseded:
            out.append(f"  {change['source']}:{change['line']}  {change['node'] or ''} "
                       f"$ {change['command']}  -> {change['facts']} earlier fact(s) set aside")
        out.append("")
    if diagnosis.unparsed:
        out.append(f"Not read ({len(diagnosis.unparsed)}):")
        for item in diagnosis.unparsed:
            place = f"{item['source']}:{item['line']}" if item.get("line") else item["source"]
            command = f" $ {item['command']}" if item.get("command") else ""
            out.append(f"  {place}{' ' + item['node'] if item.get('node') else ''}{command} — {item['reason']}")
    return out


def _wrap(text: str, indent: str, width: int = 88) -> list[str]:
    lines, current = [], indent
    for word in text.split():
        if len(current) + len(word) + 1 > width and current.strip():
            lines.append(current.rstrip())
            current = indent
        current += word + " "
    if current.strip():
        lines.append(current.rstrip())
    return lines


def as_markdown(diagnosis: Diagnosis) -> str:
    out = [f"# stackdoc: {_headline(diagnosis)}", ""]
    for finding in diagnosis.findings:
        out.append(f"## {_md_code(finding.cause)} ({finding.status}) — {_md(_where(finding))}")
        out.append("")
        out.append(f"**{_md(finding.title)}**")
        out.append("")
        out.append(_md(finding.explanation))
        out.append("")
        if finding.reasoning:
            out.append("How we know:")
            out.append("")
            out.extend(f"- {_md(step)}" for step in finding.reasoning)
            out.append("")
        out.append("Evidence:")
        out.append("")
        for line in finding.evidence:
            place, context, text = _evidence_line(line)
            out.append(f"- {_md_code(place)} {_md(context)}")
            fence = _fence(text)
            out.append(f"  {fence}\n  {text}\n  {fence}")
        out.append("")
        if finding.decide_by:
            out.append("To tell the possibilities apart:")
            out.append("")
            out.extend(f"- {_md(step)}" for step in finding.decide_by)
            out.append("")
        out.append("Fix:")
        out.append("")
        out.extend(f"{i}. {_md(step)}" for i, step in enumerate(finding.fix, 1))
        out.append("")
    trailer = _trailer_text(diagnosis)
    if trailer:
        fence = _fence("\n".join(trailer))
        out.append("## Notes")
        out.append("")
        out.append(fence)
        out.extend(trailer)
        out.append(fence)
    return "\n".join(out).rstrip() + "\n"


_MD_SPECIAL = re.compile(r"([\\`*_\[\]<&])")


def _md(text: str) -> str:
    """Prose for markdown: characters markdown would read as markup (or raw HTML) are
    backslash-escaped, so evidence can neither inject a tag nor a link."""
    return _MD_SPECIAL.sub(r"\\\1", text)


def _longest_backtick_run(text: str) -> int:
    return max((len(run) for run in re.findall("`+", text)), default=0)


def _fence(text: str) -> str:
    """A code fence longer than any run of backticks inside the text it fences."""
    return "`" * max(3, _longest_backtick_run(text) + 1)


def _md_code(text: str) -> str:
    ticks = "`" * (_longest_backtick_run(text) + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{ticks}{pad}{text}{pad}{ticks}"


def as_html(diagnosis: Diagnosis) -> str:
    import html   # only here: its table of entities is a tenth of a short diagnosis's start-up
    e = html.escape
    body = [f"<h1>stackdoc: {e(_headline(diagnosis))}</h1>"]
    for finding in diagnosis.findings:
        body.append(f"<section class='finding {e(finding.status)}'>")
        body.append(f"<h2><code>{e(finding.cause)}</code> ({e(finding.status)}) — {e(_where(finding))}</h2>")
        body.append(f"<p><strong>{e(finding.title)}</strong></p><p>{e(finding.explanation)}</p>")
        if finding.reasoning:
            body.append("<h3>How we know</h3><ul>" + "".join(f"<li>{e(s)}</li>" for s in finding.reasoning) + "</ul>")
        body.append("<h3>Evidence</h3><table>")
        for line in finding.evidence:
            place, context, text = _evidence_line(line)
            body.append(f"<tr><td><code>{e(place)}</code></td><td>{e(context)}</td><td><pre>{e(text)}</pre></td></tr>")
        body.append("</table>")
        if finding.decide_by:
            body.append("<h3>To tell the possibilities apart</h3><ul>"
                        + "".join(f"<li>{e(s)}</li>" for s in finding.decide_by) + "</ul>")
        body.append("<h3>Fix</h3><ol>" + "".join(f"<li><code>{e(s)}</code></li>" for s in finding.fix) + "</ol>")
        body.append("</section>")
    trailer = _trailer_text(diagnosis)
    if trailer:
        body.append("<h2>Notes</h2><pre>" + e("\n".join(trailer)) + "</pre>")
    return ("<!doctype html><html><head><meta charset='utf-8'><title>stackdoc report</title>"
            "<style>body{font-family:sans-serif;max-width:60rem;margin:auto}pre{margin:0;white-space:pre-wrap}"
            "td{vertical-align:top;padding:.2rem .5rem}.possible h2{color:#8a5a00}</style></head><body>"
            + "\n".join(body) + "</body></html>\n")
