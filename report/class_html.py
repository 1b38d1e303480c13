"""A class's reports as pages a teacher can zip and mail: ``index.html`` (labs x causes,
sortable by any column, and a bar chart of the causes across the class) and one page
per lab (its findings with their reasoning, evidence lines and fix, and for the causes
a packet walk confirmed, the walk hop by hop).

Every page stands alone: its style, its script and its chart are inline, and it links
only to its sibling pages, so it opens from a folder with no network and no server.
Everything from the evidence is escaped.
"""
from __future__ import annotations

import html

from kb.diagnose import Finding
from report.class_report import (as_diagnosis, cause_counts, headline, outcome, since_phrase,
                                 unread_summary)
from report.render import _evidence_line, _headline, _where

e = html.escape

_STYLE = """
body{font-family:system-ui,sans-serif;max-width:90rem;margin:1rem auto;padding:0 1rem;color:#1d1d1f}
h1{font-size:1.5rem}h2{font-size:1.2rem;margin-top:2rem}h3{font-size:1rem;margin-bottom:.3rem}
table{border-collapse:collapse}td,th{border:1px solid #ccd;padding:.25rem .5rem;vertical-align:top;text-align:left}
th button{font:inherit;font-weight:bold;background:none;border:0;padding:0;cursor:pointer;text-align:left}
th[aria-sort=ascending] button::after{content:" \\25B2"}th[aria-sort=descending] button::after{content:" \\25BC"}
td.established{background:#f8d7d3;text-align:center}td.possible{background:#fbeccc;text-align:center}
td.error{color:#8a1c00}td.lab,td.outcome{white-space:nowrap}.muted{color:#666}pre{margin:0;white-space:pre-wrap}
section.finding{border-left:4px solid #c0392b;padding-left:1rem;margin:1.5rem 0}
section.finding.possible{border-color:#d68910}ol.walk li{margin:.2rem 0}
.verdict{font-weight:bold}.assumed{color:#666;font-style:italic}
"""

_SORT_SCRIPT = """
document.querySelectorAll('table.sortable th button').forEach(function (button) {
  button.addEventListener('click', function () {
    var th = button.parentNode, table = th.closest('table'), body = table.tBodies[0];
    var index = Array.prototype.indexOf.call(th.parentNode.children, th);
    var ascending = th.getAttribute('aria-sort') !== 'ascending';
    table.querySelectorAll('th').forEach(function (h) { h.removeAttribute('aria-sort'); });
    th.setAttribute('aria-sort', ascending ? 'ascending' : 'descending');
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var x = a.cells[index].getAttribute('data-sort'), y = b.cells[index].getAttribute('data-sort');
      var nx = Number(x), ny = Number(y);
      var order = (x !== '' && y !== '' && !isNaN(nx) && !isNaN(ny)) ? nx - ny : x.localeCompare(y);
      return ascending ? order : -order;
    });
    rows.forEach(function (row) { body.appendChild(row); });
  });
});
"""

# cause cells sort established first, then possible, then labs without the cause
_CELL_RANK = {"established": 0, "possible": 1}


def _page(title: str, body: list[str], script: str = "") -> str:
    return ("<!doctype html>\n<html lang='en'><head><meta charset='utf-8'>"
            "<meta name='viewport' content='width=device-width, initial-scale=1'>"
            f"<title>{e(title)}</title><style>{_STYLE}</style></head><body>\n"
            + "\n".join(body)
            + (f"\n<script>{script}</script>" if script else "")
            + "\n</body></html>\n")


# --- the summary page ---------------------------------------------------------------------

def summary_page(results: list[dict], since: dict[str, dict] | None, pages: dict[str, str]) -> str:
    counts = cause_counts(results)
    body = [f"<h1>stackdoc: {e(headline(results))}</h1>"]
    body.append("<h2>Causes across the class</h2>")
    body.append(bar_chart(counts) if counts else "<p class='muted'>No cause found in any lab.</p>")
    body.append("<h2>Labs</h2>")
    body.append("<p class='muted'>Click a column's name to sort by it; a lab's name opens its report.</p>")
    header = ["Lab", "Outcome", "Causes", *counts, "Not read"]
    if since is not None:
        header.append("Since last run")
    body.append("<div class='table-wrap'><table class='sortable' id='labs'><thead><tr>"
                + "".join(f"<th scope='col'><button type='button'>{e(h)}</button></th>" for h in header)
                + "</tr></thead><tbody>")
    for order, result in enumerate(results):
        lab = result["lab"]
        page = pages.get(lab)
        name = f"<a href='{e(page)}'>{e(lab)}</a>" if page else e(lab)
        marks = {}
        for finding in result["findings"]:
            if marks.get(finding["cause"]) != "established":
                marks[finding["cause"]] = finding["status"]
        error_class = " error" if result.get("error") else ""
        cells = [f"<td class='lab' data-sort='{order}'>{name}</td>",
                 f"<td class='outcome{error_class}' data-sort='{e(outcome(result))}'>{e(outcome(result))}</td>",
                 f"<td data-sort='{len(result['findings'])}'>{len(result['findings'])}</td>"]
        for cause in counts:
            status = marks.get(cause)
            if status:
                cells.append(f"<td class='{status}' data-sort='{_CELL_RANK[status]}' "
                             f"title='{e(cause)}: {status}'>{'●' if status == 'established' else '?'}</td>")
            else:
                cells.append("<td data-sort='2'></td>")
        unread = len(result.get("unparsed") or [])
        cells.append(f"<td data-sort='{unread}'>{e(unread_summary(result))}</td>")
        if since is not None:
            phrase = since_phrase(since.get(lab))
            cells.append(f"<td data-sort='{e(phrase)}'>{e(phrase)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    body.append("</tbody></table></div>")
    body.append("<p class='muted'>● established, ? possible (the lab's report says what would "
                "tell the possibilities apart).</p>")
    nothing = [r["lab"] for r in results if not r["findings"] and not r.get("error")]
    body.append("<h2>Nothing found</h2><p>" + (e(", ".join(nothing)) if nothing else "No lab.") + "</p>")
    failed = [r for r in results if r.get("error")]
    if failed:
        body.append("<h2>Not diagnosed</h2><ul>"
                    + "".join(f"<li>{e(r['lab'])}: {e(outcome(r))}</li>" for r in failed) + "</ul>")
    return _page(f"stackdoc: {headline(results)}", body, _SORT_SCRIPT)


def bar_chart(counts: dict[str, int]) -> str:
    """Causes across the class as an inline SVG: one bar per cause, its lab count at its end."""
    label_width, bar_width, row, top = 260, 360, 26, 8
    most = max(counts.values())
    height = top * 2 + row * len(counts)
    parts = [f"<svg xmlns='http://www.w3.org/2000/svg' role='img' class='chart' "
             f"width='{label_width + bar_width + 60}' height='{height}' "
             f"viewBox='0 0 {label_width + bar_width + 60} {height}' "
             f"aria-label='labs with each cause'>"]
    for index, (cause, count) in enumerate(counts.items()):
        y = top + index * row
        width = max(2, round(bar_width * count / most))
        parts.append(f"<g class='bar'><title>{e(cause)}: {count} lab{'s' if count != 1 else ''}</title>"
                     f"<text x='{label_width - 8}' y='{y + 17}' text-anchor='end' font-size='13' "
                     f"font-family='monospace'>{e(cause)}</text>"
                     f"<rect x='{label_width}' y='{y + 4}' width='{width}' height='{row - 8}' fill='#c0392b'/>"
                     f"<text x='{label_width + width + 6}' y='{y + 17}' font-size='13'>{count}</text></g>")
    parts.append("</svg>")
    return "".join(parts)


# --- one lab's page -----------------------------------------------------------------------

def lab_page(result: dict, since: dict | None = None) -> str:
    lab = result["lab"]
    body = ["<p><a href='index.html'>← all labs</a></p>"]
    diagnosis = as_diagnosis(result)
    if result.get("error") and not result["findings"]:
        body.append(f"<h1>{e(lab)}: {e(outcome(result))}</h1>")
    else:
        body.append(f"<h1>{e(lab)}: {e(_headline(diagnosis))}</h1>")
    phrase = since_phrase(since)
    if phrase:
        body.append(f"<p class='since'>{e(phrase)}</p>")
    walks = result.get("walks") or [[] for _ in result["findings"]]
    shown: dict[str, tuple[str, str]] = {}   # a walk shown -> (anchor, cause) it is under
    for number, (finding, finding_walks) in enumerate(zip(diagnosis.findings, walks), 1):
        body.extend(_finding(finding, finding_walks, f"finding-{number}", shown))
    if result.get("left_out"):
        body.append("<h2>Left out (a limit was reached; causes may be missing)</h2><ul class='left-out'>"
                    + "".join(f"<li>{e(note)}</li>" for note in result["left_out"]) + "</ul>")
    if result.get("superseded"):
        body.append("<h2>Evidence made stale by later changes</h2><ul>"
                    + "".join(f"<li><code>{e(str(c['source']))}:{c['line']}</code> {e(c.get('node') or '')} "
                              f"<code>$ {e(c['command'])}</code>: {c['facts']} earlier fact(s) set aside</li>"
                              for c in result["superseded"]) + "</ul>")
    if result.get("unparsed"):
        body.append(f"<h2>Not read ({len(result['unparsed'])})</h2><ul class='unparsed'>")
        for item in result["unparsed"]:
            place = f"{item['source']}:{item['line']}" if item.get("line") else str(item["source"])
            command = f" <code>$ {e(item['command'])}</code>" if item.get("command") else ""
            body.append(f"<li><code>{e(place)}</code> {e(item.get('node') or '')}{command}: "
                        f"{e(item['reason'])}</li>")
        body.append("</ul>")
    return _page(f"stackdoc: {lab}", body)


def _finding(finding: Finding, walks: list[dict], anchor: str,
             shown: dict[str, tuple[str, str]]) -> list[str]:
    out = [f"<section class='finding {e(finding.status)}' id='{anchor}'>",
           f"<h2><code>{e(finding.cause)}</code> ({e(finding.status)}) — {e(_where(finding))}</h2>",
           f"<p><strong>{e(finding.title)}</strong></p><p>{e(finding.explanation)}</p>"]
    if finding.reasoning:
        out.append("<h3>How we know</h3><ol class='reasoning'>"
                   + "".join(f"<li>{e(step)}</li>" for step in finding.reasoning) + "</ol>")
    out.append("<h3>Evidence</h3><table class='evidence'>")
    for line in finding.evidence:
        place, context, text = _evidence_line(line)
        out.append(f"<tr><td><code>{e(place)}</code></td><td>{e(context)}</td>"
                   f"<td><pre>{e(text)}</pre></td></tr>")
    out.append("</table>")
    for walk in walks:
        same = repr((walk.get("kind"), walk.get("packet"), walk["verdict"], walk["summary"]))
        if same in shown:
            where, cause = shown[same]
            out.append(f"<p class='walk-again'>Packet walk ({e(str(walk.get('kind') or ''))}): "
                       f"{e(_packet(walk))}, {e(_verdict(walk))}: hop by hop under "
                       f"<a href='#{where}'>{e(cause)}</a>.</p>")
            continue
        shown[same] = (anchor, finding.cause)
        out.extend(_walk(walk))
    if finding.decide_by:
        out.append("<h3>To tell the possibilities apart</h3><ul>"
                   + "".join(f"<li>{e(step)}</li>" for step in finding.decide_by) + "</ul>")
    out.append("<h3>Fix</h3><ol>" + "".join(f"<li><code>{e(step)}</code></li>" for step in finding.fix)
               + "</ol></section>")
    return out


def _walk(walk: dict) -> list[str]:
    out = [f"<h3 class='walk'>Packet walk ({e(str(walk.get('kind') or ''))}): {e(_packet(walk))}</h3>",
           f"<p><span class='verdict'>{e(_verdict(walk))}</span>: {e(walk['summary'])}</p>"]
    groups: list[tuple[str, list[dict]]] = []
    for step in walk["steps"]:
        if not groups or groups[-1][0] != step["direction"]:
            groups.append((step["direction"], []))
        groups[-1][1].append(step)
    for direction, steps in groups:
        out.append(f"<p class='muted'>{'The packet' if direction == 'packet' else 'The reply'}:</p>"
                   "<ol class='walk'>")
        for step in steps:
            evidence = "".join(f"<br><code>{e(str(line['source']))}:{line['line']}</code> "
                               f"<code>{e(line.get('text') or '')}</code>" for line in step["evidence"][:3])
            assumed = " class='assumed'" if step.get("assumed") else ""
            out.append(f"<li{assumed}>[{e(str(step['node']))}] {e(step['stage'])}: "
                       f"{e(step['text'])}{evidence}</li>")
        out.append("</ol>")
    if walk.get("assumptions"):
        out.append("<p class='muted'>Assumed (not in the evidence): "
                   + "; ".join(e(a) for a in walk["assumptions"]) + "</p>")
    return out


def _packet(walk: dict) -> str:
    packet = walk.get("packet") or {}
    return f"{packet.get('proto', '')} {packet.get('src', '')} > {packet.get('dst', '')}".strip()


def _verdict(walk: dict) -> str:
    return walk["verdict"] + (f" at {walk['node']}" if walk.get("node") else "")
