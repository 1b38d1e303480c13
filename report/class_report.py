"""A class of labs as a person reads it (text, markdown) or a program does (json), and
each lab's own report in the renderers ``diagnose`` uses (report/render.py).

Input is plain data, one dict per lab as the batch gives it (``lab``, ``findings`` as
``diagnose --format json`` prints them, ``unparsed``, ``facts``, ``superseded``,
``walks``, ``error``), in the order to show, and optionally per lab what changed since
its previous diagnosis (``since``: ``previous_run``, ``new``, ``fixed``, ``still``,
``evidence_unchanged``). Nothing here knows where the data came from.

With ``--format json`` the summary is one object, labs in the order given::

    {"labs": [{"lab": "<folder or inventory name>", "findings": [...], "unparsed": [...], "error": null}],
     "causes": {"<cause id>": 3}}

``causes`` counts, per cause, the labs where it was found (established or possible),
most frequent first.
"""
from __future__ import annotations

import json
import re

from kb.diagnose import Diagnosis, Finding
from report.render import render

EXTENSIONS = {"text": "txt", "json": "json", "markdown": "md", "html": "html"}


# --- shared by every format ---------------------------------------------------------------

def cause_counts(results: list[dict]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for result in results:
        for cause in sorted({f["cause"] for f in result["findings"]}):
            counts[cause] = counts.get(cause, 0) + 1
    return dict(sorted(counts.items(), key=lambda item: (-item[1], item[0])))


def page_names(labs: list[str], extension: str) -> dict[str, str]:
    """A file name per lab, safe on any file system, unique, never the summary's."""
    taken = {f"summary.{extension}", f"index.{extension}"}
    names = {}
    for lab in labs:
        stem = re.sub(r"[^A-Za-z0-9._-]+", "-", lab).strip("-.") or "lab"
        name, number = f"{stem}.{extension}", 2
        while name.lower() in taken:
            name, number = f"{stem}-{number}.{extension}", number + 1
        taken.add(name.lower())
        names[lab] = name
    return names


def where(finding: dict) -> str:
    parts = [finding["node"]] if finding.get("node") else []
    if finding.get("service"):
        parts.append(finding["service"])
    return f"{finding['cause']} ({', '.join(parts)})" if parts else finding["cause"]


def outcome(result: dict) -> str:
    """One phrase: what the batch made of this lab."""
    if result.get("error"):
        return result["error"] if result["error"].startswith(("not diagnosed", "internal error")) \
            else f"unusable: {result['error']}"
    established = sum(f["status"] == "established" for f in result["findings"])
    possible = len(result["findings"]) - established
    if not result["findings"]:
        return "nothing found"
    parts = []
    if established:
        parts.append(f"{established} root cause{'s' if established != 1 else ''}")
    if possible:
        parts.append(f"{possible} possible")
    return ", ".join(parts)


def unread_summary(result: dict) -> str:
    """What could not be read, in a few words: how many blocks, and of which commands."""
    unparsed = result.get("unparsed") or []
    if not unparsed:
        return ""
    commands = sorted({item["command"].split()[0] if item.get("command") else "text with no command"
                       for item in unparsed})
    return f"{len(unparsed)} not read ({', '.join(commands)})"


def since_phrase(change: dict | None) -> str:
    if change is None:
        return ""
    if change.get("previous_run") is None:
        return "first diagnosis"
    parts = []
    if change["new"]:
        parts.append("new: " + ", ".join(where(f) for f in change["new"]))
    if change["fixed"]:
        parts.append("fixed: " + ", ".join(where(f) for f in change["fixed"]))
    if change["still"]:
        parts.append("still broken: " + ", ".join(where(f) for f in change["still"]))
    if not parts:
        parts.append("nothing found then or now")
    if change.get("evidence_unchanged"):
        parts.append("evidence unchanged")
    return f"since run {change['previous_run']}: " + "; ".join(parts)


def headline(results: list[dict]) -> str:
    with_causes = sum(bool(r["findings"]) and not r.get("error") for r in results)
    clean = sum(not r["findings"] and not r.get("error") for r in results)
    failed = sum(bool(r.get("error")) for r in results)
    return (f"{len(results)} lab{'s' if len(results) != 1 else ''}: {with_causes} with root causes, "
            f"{clean} with nothing found, {failed} not diagnosed")


# --- the summary ----------------------------------------------------------------------------

def summary(results: list[dict], fmt: str, since: dict[str, dict] | None = None,
            pages: dict[str, str] | None = None) -> str:
    if fmt == "json":
        return summary_json(results, since)
    if fmt == "markdown":
        return summary_markdown(results, since, pages)
    if fmt == "html":
        from report.class_html import summary_page
        return summary_page(results, since, pages or {})
    return summary_text(results, since)


def summary_json(results: list[dict], since: dict[str, dict] | None = None) -> str:
    labs = []
    for result in results:
        lab = {"lab": result["lab"], "findings": result["findings"],
               "unparsed": result["unparsed"], "error": result.get("error")}
        if since is not None:
            lab["since"] = since.get(result["lab"])
        labs.append(lab)
    return json.dumps({"labs": labs, "causes": cause_counts(results)}, indent=2,
                      ensure_ascii=False) + "\n"


def summary_text(results: list[dict], since: dict[str, dict] | None = None) -> str:
    out = [f"stackdoc batch: {headline(results)}", ""]
    width = max((len(r["lab"]) for r in results), default=0) + 2
    for result in results:
        out.append(f"{result['lab']:<{width}}{outcome(result)}")
        pad = " " * width
        for finding in result["findings"]:
            out.append(f"{pad}[{finding['status']}] {where(finding)}")
        if unread_summary(result):
            out.append(f"{pad}{unread_summary(result)}")
        if since is not None and since_phrase(since.get(result["lab"])):
            out.append(f"{pad}{since_phrase(since.get(result['lab']))}")
    counts = cause_counts(results)
    out += ["", "Causes across the class (labs with each):"]
    if counts:
        cause_width = max(len(c) for c in counts) + 2
        out += [f"  {cause:<{cause_width}}{n:>3}  {'#' * n}" for cause, n in counts.items()]
    else:
        out.append("  none")
    nothing = [r["lab"] for r in results if not r["findings"] and not r.get("error")]
    out += ["", "Nothing found in: " + (", ".join(nothing) if nothing else "no lab")]
    failed = [r["lab"] for r in results if r.get("error")]
    if failed:
        out.append("Not diagnosed: " + ", ".join(failed))
    return "\n".join(out) + "\n"


def summary_markdown(results: list[dict], since: dict[str, dict] | None = None,
                     pages: dict[str, str] | None = None) -> str:
    pages = pages or {}
    counts = cause_counts(results)
    out = [f"# stackdoc batch: {headline(results)}", ""]
    header = ["lab", "outcome", *counts, "not read"] + (["since last run"] if since is not None else [])
    out.append("| " + " | ".join(_md_cell(h) for h in header) + " |")
    out.append("|" + "---|" * len(header))
    for result in results:
        lab = result["lab"]
        link = f"[{_md_cell(lab)}]({pages[lab]})" if lab in pages else _md_cell(lab)
        marks = {f["cause"]: f["status"] for f in result["findings"]}
        row = [link, _md_cell(outcome(result)),
               *(_md_cell(marks.get(cause, "")) for cause in counts),
               _md_cell(unread_summary(result))]
        if since is not None:
            row.append(_md_cell(since_phrase(since.get(lab))))
        out.append("| " + " | ".join(row) + " |")
    out += ["", "## Causes across the class", ""]
    out += [f"- `{cause}`: {n} lab{'s' if n != 1 else ''}" for cause, n in counts.items()] or ["- none"]
    nothing = [r["lab"] for r in results if not r["findings"] and not r.get("error")]
    out += ["", "## Nothing found", "", ", ".join(nothing) if nothing else "No lab."]
    return "\n".join(out) + "\n"


def _md_cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


# --- one lab --------------------------------------------------------------------------------

def as_diagnosis(result: dict) -> Diagnosis:
    """The batch's plain data back into what report/render.py renders."""
    findings = [Finding(cause=f["cause"], node=f.get("node"), service=f.get("service"),
                        status=f["status"], title=f["title"], explanation=f["explanation"],
                        fix=list(f["fix"]), evidence=list(f["evidence"]),
                        decide_by=list(f.get("decide_by") or []),
                        reasoning=list(f.get("reasoning") or []))
                for f in result["findings"]]
    return Diagnosis(findings, list(result["unparsed"]), result.get("facts", 0),
                     list(result.get("superseded") or []), table=None,
                     left_out=list(result.get("left_out") or []))


def lab_report(result: dict, fmt: str, since: dict | None = None) -> str:
    """The lab's report as ``diagnose`` would print it; a lab with no diagnosis says why."""
    if fmt == "html":
        from report.class_html import lab_page
        return lab_page(result, since)
    if result.get("error") and not result["findings"]:
        if fmt == "json":
            return json.dumps({"lab": result["lab"], "error": result["error"],
                               "unparsed": result["unparsed"]}, indent=2, ensure_ascii=False) + "\n"
        return f"stackdoc: {result['lab']}: {outcome(result)}\n"
    report = render(as_diagnosis(result), fmt)
    phrase = since_phrase(since)
    if phrase and fmt == "text":
        report = f"{result['lab']}: {phrase}\n\n" + report
    elif phrase and fmt == "markdown":
        report = f"_{result['lab']}: {phrase}_\n\n" + report
    return report
