"""The packet's path and its reply's, drawn as inline SVG from the facts.

One row per stop, top to bottom, so it stays legible on a phone (the SVG scales to the
width of the page):

    instance        request: from 10.20.4.5          reply: ?
    compute node    ✓ seen, from 10.20.4.5           –
    network node    ✓ seen, SNAT 10.20.4.5 → …       ✗ reply lost here
    gateway         ...
    outside

The request column shows what tcpdump saw at each stop and every source it carried
there (a translated source is shown as such, never folded into "+1"); the reply column
shows where replies were seen. Where the packet or its reply is lost comes from the
captures when they show it, else from the packet walk (kb/walk.py) over the evidence.
Every piece of text comes from the lab's evidence, so all of it is escaped: the markup
is built here and nowhere else, and the page trusts only this markup.
"""
from __future__ import annotations

import logging
from html import escape

from kb.addresses import covers
from tutor.roles import node_of

_LOG = logging.getLogger(__name__)
_WIDTH = 400
_ROW, _TOP, _LEFT_W = 64, 48, 104
_REQUEST_X, _REPLY_X = 110, 262
_STOPS = (("instance", None), ("compute node", "compute"), ("network node", "network"),
          ("gateway", "gateway"), ("outside", None))
_COLOURS = {"seen": "#1b7f3b", "lost": "#b3261e", "unknown": "#8a8a8a", "changed": "#8250df",
            "unchanged": "#b26a00", "text": "#1f2328", "muted": "#57606a"}
_LOST_VERDICTS = {"dropped", "no-route"}


def _text(x, y, words, size=12, anchor="start", fill="#1f2328", weight="normal") -> str:
    return (f'<text x="{x}" y="{y}" font-size="{size}" text-anchor="{anchor}" fill="{fill}" '
            f'font-family="sans-serif" font-weight="{weight}">{escape(str(words), quote=True)}</text>')


def _is_reply(packet: dict) -> bool:
    return "reply" in str(packet.get("icmp_type") or "")


def _walk_verdict(table, values: dict[str, str]) -> tuple[str, str | None, str] | None:
    """(verdict, node, summary) of the walk of the instance's ping, if it can be walked."""
    fixed, destination = values.get("fixed_address"), values.get("destination")
    if fixed and destination:
        try:
            from kb.walk import walk
            result = walk(table, fixed, destination)
            return result.verdict, result.node, result.summary
        except Exception as error:      # the picture must not cost the reply
            _LOG.info("no walk for the diagram: %s: %s", type(error).__name__, error)
    for fact in table.of("walk_verdict"):
        if fact.get("kind") == "vm-to-outside":
            return fact.get("verdict"), fact.get("failed_at"), str(fact.get("summary") or "")
    return None


def path_status(table, roles: dict[str, str], values: dict[str, str]) -> list[dict]:
    """For each stop: what the evidence says about the request and the reply there."""
    fixed = values.get("fixed_address")
    packets = table.of("packet")
    requests = [p for p in packets if not _is_reply(p)]
    replies = [p for p in packets if _is_reply(p)]
    stops = []
    for label, role in _STOPS:
        node = node_of(roles, role) if role else None
        stop = {"label": label, "node": node, "state": "unknown", "sources": [], "reply": None,
                "captured": False}
        if role and node:
            here = [p for p in requests if p.get("node") == node]
            captured = [c for c in table.of("capture") if c.get("node") == node]
            for packet in here:
                if packet.get("src") not in stop["sources"]:
                    stop["sources"].append(packet.get("src"))
            if here:
                stop["state"] = "seen"
            elif captured:
                stop["state"] = "lost"
            stop["captured"] = bool(captured or here)
            back = [p for p in replies if p.get("node") == node]
            if back:
                stop["reply"] = "seen"
                stop["reply_to"] = sorted({str(p.get("dst")) for p in back})
        if label == "instance" and fixed:
            stop["state"], stop["sources"] = "seen", [fixed]
        stops.append(stop)
    # where the source changes, or leaves unchanged, on the network node's uplink
    network = node_of(roles, "network")
    uplink = values.get("uplink")
    if network and uplink and fixed:
        leaving = [p for p in requests if p.get("node") == network and p.get("iface") == uplink]
        if leaving:
            stop = stops[2]
            if any(p.get("src") == fixed or covers(p.get("src"), fixed) for p in leaving):
                stop["snat"] = ("unchanged", f"leaves {uplink}, still from {fixed}")
            else:
                stop["snat"] = ("changed", f"SNAT {fixed} → {leaving[0].get('src')}")
    # the request is lost after the last stop that saw it, if a later one looked
    last_seen = max((i for i, s in enumerate(stops) if s["state"] == "seen"), default=None)
    for i, stop in enumerate(stops):
        if stop["state"] == "lost" and (last_seen is None or i > last_seen):
            stop["lost_here"] = "✗ lost here"
            break
    else:
        # the replies: seen at one stop but not at the stop before it that also captured
        for i in range(len(stops) - 1, 0, -1):
            if stops[i].get("reply"):
                before = next((s for s in reversed(stops[:i]) if s.get("captured")), None)
                if before is not None and not before.get("reply"):
                    stops[i]["reply_lost"] = "✗ reply lost here"
                break
    if not any(s.get("lost_here") or s.get("reply_lost") for s in stops):
        verdict = _walk_verdict(table, values)
        if verdict is not None:
            kind, node, summary = verdict
            where = next((s for s in stops if s["node"] and s["node"] == node), None)
            if kind == "private-source-leaves":
                # it leaves with a private source: the outside has no way to answer it
                stops[-1]["reply_lost"] = "✗ no reply (walk)"
            elif where is not None and kind in _LOST_VERDICTS:
                where["lost_here"] = "✗ lost here (walk)"
            elif where is not None and kind == "reply-lost":
                where["reply_lost"] = "✗ reply lost (walk)"
            for stop in stops:
                stop["walk"] = summary
    return stops


def packet_path_svg(table, roles: dict[str, str], values: dict[str, str]) -> str:
    stops = path_status(table, roles, values)
    height = _TOP + len(stops) * _ROW + 22
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="packet-path" viewBox="0 0 {_WIDTH} {height}" '
             f'width="100%" preserveAspectRatio="xMinYMin meet" role="img" '
             f'aria-label="{escape("the packet path: " + "; ".join(_describe(s) for s in stops), quote=True)}">',
             _text(8, 18, "The ping and its reply, as the evidence shows them", 13, weight="bold"),
             _text(_REQUEST_X, 40, "request →", 12, fill=_COLOURS["muted"], weight="bold"),
             _text(_REPLY_X, 40, "← reply", 12, fill=_COLOURS["muted"], weight="bold")]
    for i, stop in enumerate(stops):
        y = _TOP + i * _ROW
        colour = _COLOURS[stop["state"]]
        parts.append(f'<rect x="6" y="{y}" width="{_LEFT_W - 8}" height="{_ROW - 10}" rx="7" '
                     f'fill="#ffffff" stroke="{colour}" stroke-width="2"/>')
        parts.append(_text(12, y + 20, stop["label"], 12, weight="bold"))
        if stop["node"]:
            parts.append(_text(12, y + 38, _short(stop["node"], 13), 12, fill=_COLOURS["muted"]))
        if i < len(stops) - 1:
            x = 6 + (_LEFT_W - 8) / 2
            line = "#57606a" if stops[i + 1]["state"] != "unknown" else "#c0c0c0"
            parts.append(f'<line x1="{x:.0f}" y1="{y + _ROW - 10}" x2="{x:.0f}" y2="{y + _ROW}" '
                         f'stroke="{line}" stroke-width="2"/>')
        for row, (words, fill, weight) in enumerate(_request_lines(stop)[:3]):
            parts.append(_text(_REQUEST_X, y + 16 + 16 * row, _short(words, 23), 12, fill=fill, weight=weight))
        for row, (words, fill, weight) in enumerate(_reply_lines(stop)[:3]):
            parts.append(_text(_REPLY_X, y + 16 + 16 * row, _short(words, 20), 12, fill=fill, weight=weight))
    parts.append(_text(8, height - 8, "green: seen by tcpdump · red: lost · grey: not looked yet",
                       10, fill=_COLOURS["muted"]))
    parts.append("</svg>")
    return "".join(parts)


def _request_lines(stop: dict) -> list[tuple[str, str, str]]:
    lines = []
    if stop.get("lost_here"):
        lines.append((stop["lost_here"], _COLOURS["lost"], "bold"))
    if stop["state"] == "seen":
        if stop["label"] != "instance":
            lines.append(("✓ seen", _COLOURS["seen"], "bold"))
        for n, source in enumerate(stop["sources"][:2]):
            # a later source at the same stop is the packet after translation
            lines.append((f"from {source}" if n == 0 else f"then from {source}", _COLOURS["text"], "normal"))
    elif stop["state"] == "lost" and not stop.get("lost_here"):
        lines.append(("captured: nothing", _COLOURS["lost"], "normal"))
    elif stop["state"] == "unknown" and not stop.get("lost_here"):
        lines.append(("not looked yet", _COLOURS["unknown"], "normal"))
    if stop.get("snat"):
        kind, words = stop["snat"]
        head, _, tail = words.partition(", ") if kind == "unchanged" else words.partition(" → ")
        lines = lines[:1] + [(head if kind == "unchanged" else f"{head} →", _COLOURS[kind], "bold"),
                             (tail, _COLOURS[kind], "bold")]
    return lines


def _reply_lines(stop: dict) -> list[tuple[str, str, str]]:
    lines = []
    if stop.get("reply_lost"):
        lines.append((stop["reply_lost"], _COLOURS["lost"], "bold"))
    if stop.get("reply") == "seen":
        if not stop.get("reply_lost"):
            lines.append(("✓ reply seen", _COLOURS["seen"], "bold"))
        for to in stop.get("reply_to", [])[:2]:
            lines.append((f"to {to}", _COLOURS["text"], "normal"))
    return lines


def _short(text: str, limit: int = 18) -> str:
    text = str(text)
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _describe(stop: dict) -> str:
    words = stop["label"] + (f" {stop['node']}" if stop["node"] else "")
    if stop.get("lost_here"):
        words += ": " + stop["lost_here"].lstrip("✗ ")
    elif stop["state"] == "seen":
        words += ": seen from " + ", ".join(str(s) for s in stop["sources"])
    elif stop["state"] == "unknown":
        words += ": not looked yet"
    if stop.get("snat"):
        words += f" ({stop['snat'][1]})"
    if stop.get("reply_lost"):
        words += "; " + stop["reply_lost"].lstrip("✗ ")
    elif stop.get("reply"):
        words += "; reply seen"
    return words
